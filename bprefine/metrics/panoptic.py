"""Panoptic Quality (Kirillov et al. 2019) and boundary PQ (Cheng et al. 2021).

Follows panopticapi's rules: a ground-truth and a predicted segment of the same category match when
their IoU is > 0.5, where the predicted segment's overlap with void (id 0 / unlabelled) is left out of
the union; crowd ground truth never matches; an unmatched prediction is a false positive unless more
than half of it lies in void or in a crowd region of its category. PQ, SQ and RQ are averaged over
the categories that occur, overall and for things / stuff.

Boundary PQ replaces each pair's IoU by ``min(mask IoU, boundary IoU)`` (band 2% of the image diagonal)
for matching and for SQ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bprefine.data.panoptic import check_ids_listed
from bprefine.metrics.masks import band_width, boundary_iou_cropped

OFFSET = 256 * 256 * 256
VOID = 0
PANOPTIC_METRICS = ("PQ", "SQ", "RQ", "PQ_th", "PQ_st", "PQb")


@dataclass
class _Stat:
    iou: float = 0.0
    tp: int = 0
    fp: int = 0
    fn: int = 0


@dataclass
class PanopticAccumulator:
    """Collects per-category matches over images; ``categories`` maps id -> {"isthing": 0/1, ...}."""

    categories: dict[int, dict]
    stats: dict[int, _Stat] = field(default_factory=dict)
    boundary_stats: dict[int, _Stat] = field(default_factory=dict)

    def add(self, gt_ids: np.ndarray, gt_segments: list[dict], pred_ids: np.ndarray, pred_segments: list[dict]) -> None:
        """One image: id maps (H x W int) and their ``segments_info`` lists."""
        if gt_ids.shape != pred_ids.shape:
            raise ValueError(f"prediction is {pred_ids.shape} but ground truth is {gt_ids.shape}")
        check_ids_listed(pred_ids, pred_segments)
        check_ids_listed(gt_ids, gt_segments)
        gt_seg = {s["id"]: s for s in gt_segments}
        pred_seg = {s["id"]: s for s in pred_segments}
        for s in pred_segments:
            if s["category_id"] not in self.categories:
                raise ValueError(f"segment {s['id']} has unknown category_id {s['category_id']}")
        pairs = gt_ids.astype(np.int64) * OFFSET + pred_ids.astype(np.int64)
        labels, counts = np.unique(pairs, return_counts=True)
        inter = {(int(l // OFFSET), int(l % OFFSET)): int(c) for l, c in zip(labels, counts)}
        g_area = {k: int(v) for k, v in zip(*np.unique(gt_ids, return_counts=True))}
        p_area = {k: int(v) for k, v in zip(*np.unique(pred_ids, return_counts=True))}
        width = band_width(gt_ids.shape)
        for target, boundary in ((self.stats, False), (self.boundary_stats, True)):
            self._match(target, boundary, inter, gt_seg, pred_seg, g_area, p_area, gt_ids, pred_ids, width)

    def _match(self, stats, boundary, inter, gt_seg, pred_seg, g_area, p_area, gt_ids, pred_ids, width) -> None:
        gt_matched, pred_matched = set(), set()
        for (g, p), n in inter.items():
            if g not in gt_seg or p not in pred_seg:
                continue
            gs, ps = gt_seg[g], pred_seg[p]
            if gs.get("iscrowd", 0) or gs["category_id"] != ps["category_id"]:
                continue
            union = p_area.get(p, 0) + g_area.get(g, 0) - n - inter.get((VOID, p), 0)
            iou = n / union if union else 0.0
            if boundary and iou > 0.5:
                # void pixels are left out of the prediction, as they are left out of the mask IoU's union
                iou = min(iou, boundary_iou_cropped((pred_ids == p) & (gt_ids != VOID), gt_ids == g, width))
            if iou > 0.5:
                st = stats.setdefault(gs["category_id"], _Stat())
                st.tp += 1
                st.iou += iou
                gt_matched.add(g)
                pred_matched.add(p)
        crowd_by_cat = {s["category_id"]: i for i, s in gt_seg.items() if s.get("iscrowd", 0)}
        for g, s in gt_seg.items():
            if g not in gt_matched and not s.get("iscrowd", 0):
                stats.setdefault(s["category_id"], _Stat()).fn += 1
        for p, s in pred_seg.items():
            if p in pred_matched:
                continue
            ignored = inter.get((VOID, p), 0)
            crowd = crowd_by_cat.get(s["category_id"])
            if crowd is not None:
                ignored += inter.get((crowd, p), 0)
            if p_area.get(p, 0) and ignored / p_area[p] > 0.5:
                continue
            stats.setdefault(s["category_id"], _Stat()).fp += 1

    def result(self) -> dict[str, float]:
        out = {}
        for suffix, isthing in (("", None), ("_th", 1), ("_st", 0)):
            pq, sq, rq = _average(self.stats, self.categories, isthing)
            out |= {f"PQ{suffix}": pq} if suffix else {"PQ": pq, "SQ": sq, "RQ": rq}
        out["PQb"] = _average(self.boundary_stats, self.categories, None)[0]
        return out


def _average(stats: dict[int, _Stat], categories: dict[int, dict], isthing: int | None) -> tuple[float, float, float]:
    pqs, sqs, rqs = [], [], []
    for cat, info in categories.items():
        if isthing is not None and int(info.get("isthing", 0)) != isthing:
            continue
        st = stats.get(cat)
        if st is None or st.tp + st.fp + st.fn == 0:
            continue
        denom = st.tp + 0.5 * st.fp + 0.5 * st.fn
        sq = st.iou / st.tp if st.tp else 0.0
        rq = st.tp / denom
        pqs.append(sq * rq)
        sqs.append(sq)
        rqs.append(rq)
    if not pqs:
        return 0.0, 0.0, 0.0
    return float(np.mean(pqs)), float(np.mean(sqs)), float(np.mean(rqs))
