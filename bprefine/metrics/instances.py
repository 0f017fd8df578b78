"""COCO-style instance metrics: mask AP, boundary AP (Boundary IoU) and AF (instance boundary F at 1 px).

- Mask AP, AP50, AP75, AP90, APs, APm, APl: pycocotools' COCOeval on segmentations (AP90 read off its
  precision array at IoU 0.90).
- Boundary AP (``APb``): the same evaluation with the IoU of each (detection, ground truth) pair replaced
  by ``min(mask IoU, boundary IoU)``, boundary band ``d = round(0.02 * image diagonal)`` (Cheng et al. 2021).
- AF: for each of the 10 IoU thresholds 0.50:0.95, the mean boundary F-score (1 px tolerance) of the true
  positives matched at that threshold; AF is the mean over thresholds (paper section 4.1).
Boundary bands are computed inside each mask's bounding box plus a margin, never on the full image.
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from bprefine.metrics.masks import band_width, boundary_f, boundary_iou

INSTANCE_METRICS = ("AP", "AP50", "AP75", "AP90", "APs", "APm", "APl", "APb", "AF")


class _CroppedMask:
    """A mask stored as its bounding-box crop (plus margin) and offset in the image."""

    def __init__(self, rle: dict, margin: int) -> None:
        full = mask_utils.decode(rle).astype(bool)
        h, w = full.shape
        x, y, bw, bh = (int(v) for v in mask_utils.toBbox(rle))
        self.x0, self.y0 = max(x - margin, 0), max(y - margin, 0)
        self.x1, self.y1 = min(x + bw + margin, w), min(y + bh + margin, h)
        # a copy: a view would keep the whole decoded image-sized mask alive in the cache
        self.mask = full[self.y0 : self.y1, self.x0 : self.x1].copy()
        self.hw = (h, w)

    def in_box(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """This mask placed into ``box = (x0, y0, x1, y1)``, a box that contains its crop."""
        x0, y0, x1, y1 = box
        out = np.zeros((y1 - y0, x1 - x0), bool)
        out[self.y0 - y0 : self.y1 - y0, self.x0 - x0 : self.x1 - x0] = self.mask
        return out


def _union_box(a: _CroppedMask, b: _CroppedMask) -> tuple[int, int, int, int]:
    return min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1), max(a.y1, b.y1)


def pair_boundary_iou(a: _CroppedMask, b: _CroppedMask, width: int) -> float:
    """Boundary IoU of two cropped masks, equal to the full-image value: each crop keeps a background
    margin wider than the band except at the image frame, where zero padding makes the frame a contour."""
    box = _union_box(a, b)
    return boundary_iou(a.in_box(box), b.in_box(box), width=width)


def pair_boundary_f(a: _CroppedMask, b: _CroppedMask, tolerance: float = 1.0) -> float:
    x0, y0, x1, y1 = _union_box(a, b)
    m = int(np.ceil(tolerance)) + 1  # room for the distance transform around both contours
    h, w = a.hw
    box = (max(x0 - m, 0), max(y0 - m, 0), min(x1 + m, w), min(y1 + m, h))
    return boundary_f(a.in_box(box), b.in_box(box), tolerance=tolerance)


class _MaskCache:
    """Cropped masks by (kind, annotation id), decoded once for boundary AP and AF together."""

    def __init__(self, coco_gt: COCO, coco_dt: COCO) -> None:
        self.cocos = {"gt": coco_gt, "dt": coco_dt}
        self.masks: dict[tuple[str, int], _CroppedMask] = {}

    def get(self, kind: str, ann_id: int) -> _CroppedMask:
        key = (kind, ann_id)
        if key not in self.masks:
            coco = self.cocos[kind]
            info = coco.imgs[coco.anns[ann_id]["image_id"]]
            margin = band_width((info["height"], info["width"])) + 2  # >= the AF tolerance + 1 too
            self.masks[key] = _CroppedMask(coco.anns[ann_id]["segmentation"], margin)
        return self.masks[key]


class BoundaryCOCOeval(COCOeval):
    """COCOeval whose segmentation IoU is ``min(mask IoU, boundary IoU)`` (crowd pairs keep mask IoU)."""

    def __init__(self, gt: COCO, dt: COCO, cache: _MaskCache | None = None) -> None:
        super().__init__(gt, dt, iouType="segm")
        self._cache = cache or _MaskCache(gt, dt)

    def computeIoU(self, imgId: int, catId: int):  # noqa: N802 (COCOeval's name)
        ious = super().computeIoU(imgId, catId)
        if len(ious) == 0:
            return ious
        p = self.params
        gts = self._gts[imgId, catId] if p.useCats else [g for c in p.catIds for g in self._gts[imgId, c]]
        dts = self._dts[imgId, catId] if p.useCats else [d for c in p.catIds for d in self._dts[imgId, c]]
        dts = [dts[i] for i in np.argsort([-d["score"] for d in dts], kind="mergesort")][: p.maxDets[-1]]
        info = self.cocoGt.imgs[imgId]
        width = band_width((info["height"], info["width"]))
        ious = np.array(ious, dtype=np.float64)
        for i, d in enumerate(dts):
            for j, g in enumerate(gts):
                if ious[i, j] > 0 and not g.get("iscrowd", 0):
                    b = pair_boundary_iou(self._cache.get("dt", d["id"]), self._cache.get("gt", g["id"]), width)
                    ious[i, j] = min(ious[i, j], b)
        return ious


def coco_from_dict(data: dict) -> COCO:
    """A pycocotools COCO index over an in-memory ground-truth dict (checked by ``load_ground_truth``)."""
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _load(gt: COCO | str, results: list[dict] | str) -> tuple[COCO, COCO]:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = gt if isinstance(gt, COCO) else COCO(gt)
        coco_dt = coco_gt.loadRes(copy.deepcopy(results) if isinstance(results, list) else results)
    return coco_gt, coco_dt


def _run(ev: COCOeval) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _ap_at(ev: COCOeval, thr: float) -> float:
    t = int(np.argmin(np.abs(ev.params.iouThrs - thr)))
    prec = ev.eval["precision"][t, :, :, 0, -1]  # (recall, category) at area "all", maxDets 100
    valid = prec[prec > -1]
    return float(valid.mean()) if valid.size else -1.0


def _af(ev: COCOeval, cache: _MaskCache) -> float:
    """Mean over IoU thresholds of the mean 1-px boundary F of that threshold's true positives."""
    per_thr: list[list[float]] = [[] for _ in ev.params.iouThrs]

    f_cache: dict[tuple[int, int], float] = {}
    area_all = ev.params.areaRng[0]
    for e in ev.evalImgs:
        if e is None or e["aRng"] != area_all:
            continue
        for t in range(len(ev.params.iouThrs)):
            for k, dt_id in enumerate(e["dtIds"]):
                gt_id = int(e["dtMatches"][t, k])
                if gt_id == 0 or e["dtIgnore"][t, k]:
                    continue
                if (dt_id, gt_id) not in f_cache:
                    f_cache[dt_id, gt_id] = pair_boundary_f(cache.get("dt", dt_id), cache.get("gt", gt_id))
                per_thr[t].append(f_cache[dt_id, gt_id])
    means = [float(np.mean(v)) for v in per_thr if v]
    return float(np.mean(means)) if means else 0.0


def evaluate_instances(gt: COCO | str, results: list[dict] | str) -> dict[str, float]:
    """Mask AP family, boundary AP and AF for COCO results against COCO ground truth (fractions, not %).

    An empty result list is valid: nothing was detected, so every figure is 0.
    """
    if isinstance(results, list) and not results:
        return {k: 0.0 for k in INSTANCE_METRICS}
    coco_gt, coco_dt = _load(gt, results)
    mask_ev = _run(COCOeval(coco_gt, coco_dt, iouType="segm"))
    s = mask_ev.stats
    out = {"AP": s[0], "AP50": s[1], "AP75": s[2], "AP90": _ap_at(mask_ev, 0.90), "APs": s[3], "APm": s[4],
           "APl": s[5]}
    cache = _MaskCache(coco_gt, coco_dt)
    out["APb"] = _run(BoundaryCOCOeval(coco_gt, coco_dt, cache)).stats[0]
    out["AF"] = _af(mask_ev, cache)
    return {k: float(v) for k, v in out.items()}
