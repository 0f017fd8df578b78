"""Write docs/results.md: the bundled model's accuracy before/after refinement on held-out real data.

    python scripts/make_results.py --data ../shared/data --model default --out docs/results.md

Sections (all on data the model never trained on; simulated coarse inputs use seed 0):
- ccp:      CCP 0701-0804 person masks; coarse = real MediaPipe selfie masks, real MediaPipe pose masks
            (transfer: never seen in training), and the ground truth itself (stability); NMS 0.1 / 0.25 / 0.55.
- dsb:      DSB2018 train images 201-300 (held out by every recipe in configs/), nuclei through the simulated
            Mask R-CNN-like mask head; COCO mask AP, boundary AP, AF, mean boundary IoU.
- camvid:   CamVid val (101 frames), simulated stride-8/16 semantic predictions; mIoU and boundary F
            (1 px) overall and per class, and the refinement time per frame.
- panoptic: the two COCO panoptic samples and DSB images 201-220 (each segment through the mask-head /
            low-resolution simulator) and CCP 0701-0804 (the real selfie mask as a person on a background)
            as panoptic predictions; PQ and boundary PQ under both rules of Refiner.refine_panoptic.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pycocotools.coco import COCO

from bprefine import Refiner
from bprefine.data.coco import encode_mask
from bprefine.data.images import read_image, read_label_map, read_mask
from bprefine.metrics import boundary_iou, mask_iou
from bprefine.metrics.evaluate import MASK_METRICS, mask_scores, mean_scores
from bprefine.metrics.instances import INSTANCE_METRICS, evaluate_instances
from bprefine.data.panoptic import rgb_to_id
from bprefine.hardware import describe_cpu
from bprefine.metrics.panoptic import PanopticAccumulator
from bprefine.metrics.semantic import SemanticAccumulator
from bprefine.simulate import low_res, mask_head, rng_for, semantic_low_res

CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
                  "Pedestrian", "Bicyclist")


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


SETTINGS: dict = {}  # Refiner keyword arguments from the command line (engine, guard)
HEADLINES: dict = {}  # headline figures of the last run, by domain (read by scripts/model_matrix.py)
WORSE = 0.02  # an instance / segment counts as made worse when its IoU falls by more than 2 points


NMS = {"threshold": 0.55}  # the sections' inference NMS threshold (--nms-threshold); the paper's by default


class PatchCounter:
    """An engine wrapper that counts the patches it is given."""

    def __init__(self, engine) -> None:
        self.engine, self.name, self.patches = engine, engine.name, 0

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.patches += image.shape[0]
        return self.engine(image, mask)


def study_parser(doc: str | None) -> argparse.ArgumentParser:
    """The command line every held-out study script starts from: --data, --model, --engine (int8, as
    ``engine="auto"`` runs a bundled model) and --nms-threshold (0.1, the library's default)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--engine", default="onnx-int8")
    ap.add_argument("--nms-threshold", type=float, default=0.1)
    return ap


def parse_settings(items: list[str], where: str, *, name: str = "SETTING",
                   keys: tuple[str, ...] | None = None) -> dict[str, float]:
    """Numeric ``Refiner`` settings from ``NAME=VALUE`` items of a study script's model spec (``keys``: the
    names allowed, None: any); ValueError naming ``where`` and the bad item."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or (keys is not None and key not in keys):
            allowed = f" with {name} one of {keys}" if keys is not None else ""
            raise ValueError(f"{where}: {item!r} is not {name}=VALUE{allowed}")
        settings[key] = float(value)
    return settings


def make_refiner(model: str, **kw) -> Refiner:
    refiner = Refiner(model, **({"nms_threshold": NMS["threshold"]} | SETTINGS | kw))
    refiner.engine = PatchCounter(refiner.engine)
    return refiner


def counted(refiner: Refiner, fn):
    """``fn()`` and the number of patches the refiner's network saw while running it."""
    start = refiner.engine.patches
    return fn(), refiner.engine.patches - start


def worse_fraction(before: list[float], after: list[float]) -> float:
    """Share of items whose IoU fell by more than ``WORSE``."""
    b, a = np.asarray(before), np.asarray(after)
    return float(np.mean(a < b - WORSE)) if len(b) else 0.0


def dsb_type(image: np.ndarray) -> str:
    """DSB2018 image type: stained tissue (colourful), fluorescence (dark background) or brightfield."""
    x = image.astype(np.float32)
    if (x.max(axis=2) - x.min(axis=2)).mean() > 20:
        return "stained tissue"
    return "fluorescence" if x.mean() < 100 else "brightfield"


# ------------------------------------------------------------------ CCP


def ccp_items(data: Path, coarse_dir: str | None):
    """(name, image H x W x 3 uint8, ground truth H x W bool, coarse H x W bool) of the held-out CCP photos
    0701-0804; ``coarse_dir`` None gives the ground truth as the coarse mask."""
    for i in range(701, 805):
        name = f"{i:04d}"
        image = read_image(data / "ccp" / "images" / f"{name}.jpg")
        gt = read_mask(data / "ccp" / "masks" / f"{name}.png")
        yield name, image, gt, gt if coarse_dir is None else read_mask(data / "ccp" / coarse_dir / f"{name}.png")


def ccp_eval(refiner: Refiner, data: Path, coarse_dir: str | None) -> tuple[dict, dict, float, float]:
    """(before, after, mean patches per image, median seconds per image) on CCP 0701-0804; ``after``
    also holds ``worse``, the share of photos whose mask IoU fell by more than 2 points."""
    before, after, patches, seconds = [], [], [], []
    for _, image, gt, coarse in ccp_items(data, coarse_dir):
        t = time.perf_counter()
        refined, n = counted(refiner, lambda: refiner.refine(image, coarse))
        seconds.append(time.perf_counter() - t)
        patches.append(n)
        before.append(mask_scores(coarse, gt))
        after.append(mask_scores(refined, gt))
    worse = worse_fraction([r["mIoU"] for r in before], [r["mIoU"] for r in after])
    return mean_scores(before), mean_scores(after) | {"worse": worse}, float(np.mean(patches)), \
        statistics.median(seconds)


def section_ccp(model: str, data: Path) -> list[str]:
    refiner = make_refiner(model)
    head = "| coarse input | " + " | ".join(f"{k} before | {k} after" for k in MASK_METRICS) + " | worse |"
    lines = ["## CCP person masks: 104 held-out photos (0701-0804)", "",
             "Percent. mIoU: mean mask IoU; mBIoU: mean boundary IoU (band 2% of the image diagonal, about 20 px "
             "here); BF1 / BF3: mean boundary F-score at 1 / 3 px. "
             f"Inference NMS {NMS['threshold']}.", "",
             "worse: share of photos whose mask IoU fell by more than 2 points.", "",
             head, "|" + "---|" * (2 + 2 * len(MASK_METRICS))]
    runs = {}
    for label, coarse in (("MediaPipe selfie (real)", "coarse_selfie"),
                          ("MediaPipe pose (real, never trained on)", "coarse_pose"),
                          ("ground truth (stability)", None)):
        runs[coarse] = b, a, n, sec = ccp_eval(refiner, data, coarse)
        HEADLINES[f"ccp {coarse or 'gt'}"] = {"before": b, "after": a, "patches_per_image": n}
        lines.append(f"| {label} | " + " | ".join(f"{pct(b[k])} | **{pct(a[k])}**" for k in MASK_METRICS)
                     + f" | {pct(a['worse'])} |")
        print(label, {k: round(100 * (a[k] - b[k]), 2) for k in MASK_METRICS}, flush=True)
    lines += ["", "Inference NMS threshold (paper Table 7), selfie masks:", "",
              "| NMS | patches / image | median s / image | " + " | ".join(MASK_METRICS) + " |",
              "|---|---|---|" + "---|" * len(MASK_METRICS)]
    for thr in (0.1, 0.25, 0.55):
        _, a, n, sec = (runs["coarse_selfie"] if thr == NMS["threshold"]
                        else ccp_eval(make_refiner(model, nms_threshold=thr), data, "coarse_selfie"))
        lines.append(f"| {thr} | {n:.0f} | {sec:.2f} | " + " | ".join(pct(a[k]) for k in MASK_METRICS) + " |")
    return lines + [""]


# ------------------------------------------------------------------ DSB2018


def dsb_items(data: Path, start: int, stop: int) -> list[dict]:
    index = json.loads((data / "dsb2018" / "train" / "index.json").read_text())
    return index[start:stop]


def dsb_instances(data: Path, entry: dict) -> tuple[np.ndarray, np.ndarray]:
    root = data / "dsb2018" / "train"
    image = read_image(root / "images" / f"{entry['id']}.png")
    ids = read_label_map(root / "instances" / f"{entry['id']}.png")
    labels = np.unique(ids)[1:]
    return image, ids[None] == labels[:, None, None]


def _dsb_coco(images: list[dict], gts: list[dict]) -> COCO:
    gt = COCO()
    gt.dataset = {"images": images, "annotations": gts, "categories": [{"id": 1, "name": "nucleus"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def section_dsb(model: str, data: Path) -> list[str]:
    refiner = make_refiner(model)
    images, anns, types = [], [], {}
    preds: dict[str, list[dict]] = {"coarse": [], "refined": [], "gt refined": []}
    ious: dict[str, list[float]] = {"coarse": [], "refined": [], "gt refined": []}
    biou: dict[str, list[float]] = {"coarse": [], "refined": []}
    kind_of: list[str] = []
    patches: list[int] = []
    for k, entry in enumerate(dsb_items(data, 200, 300)):
        image, gts = dsb_instances(data, entry)
        types[k] = dsb_type(image)
        coarse = np.stack([mask_head(g, rng=rng_for(0, f"{entry['id']}/{j}")) for j, g in enumerate(gts)])
        refined, n = counted(refiner, lambda: refiner.refine_instances(image, coarse))
        patches.append(n)
        outs = {"coarse": coarse, "refined": refined, "gt refined": refiner.refine_instances(image, gts)}
        images.append({"id": k, "file_name": entry["id"], "height": image.shape[0], "width": image.shape[1]})
        for j, g in enumerate(gts):
            anns.append({"id": len(anns) + 1, "image_id": k, "category_id": 1, "segmentation": encode_mask(g),
                         "area": float(g.sum()), "bbox": [0, 0, 1, 1], "iscrowd": 0})
            kind_of.append(types[k])
            for name, stack in outs.items():
                preds[name].append({"image_id": k, "category_id": 1, "score": 1.0,
                                    "segmentation": encode_mask(stack[j])})
                ious[name].append(mask_iou(stack[j], g))
            biou["coarse"].append(boundary_iou(coarse[j], g))
            biou["refined"].append(boundary_iou(outs["refined"][j], g))
    keys = INSTANCE_METRICS
    gt = _dsb_coco(images, anns)
    b, a = evaluate_instances(gt, preds["coarse"]), evaluate_instances(gt, preds["refined"])
    lines = ["## DSB2018 nuclei: 100 held-out images (positions 200-299), simulated Mask R-CNN-like coarse masks", "",
             f"{len(anns)} nuclei. COCO-style figures in percent (every instance scored 1.0, so AP measures mask "
             f"quality only); mBIoU: mean boundary IoU per instance. Inference NMS {NMS['threshold']}: "
             f"{np.mean(patches):.1f} patches per image.", "",
             "| | " + " | ".join(keys) + " | mBIoU |", "|---|" + "---|" * (len(keys) + 1),
             "| coarse | " + " | ".join(pct(b[k]) for k in keys) + f" | {pct(float(np.mean(biou['coarse'])))} |",
             "| refined | " + " | ".join(f"**{pct(a[k])}**" for k in keys)
             + f" | **{pct(float(np.mean(biou['refined'])))}** |", "",
             "Per image type (held out by index; the type is read off the image: colourful = stained tissue, dark = "
             "fluorescence, else brightfield). worse: share of nuclei whose IoU fell by more than 2 points; "
             "stability: mean IoU of refined ground-truth masks.", "",
             "| type | images | nuclei | AP before | AP after | mean IoU before | mean IoU after | worse | stability |",
             "|---|---|---|---|---|---|---|---|---|"]
    kinds = np.asarray(kind_of)
    for t in ("fluorescence", "stained tissue", "brightfield", "all"):
        sel = np.ones(len(kinds), bool) if t == "all" else kinds == t
        img_ids = {k for k, v in types.items() if t == "all" or v == t}
        if not sel.any():
            continue
        sub = _dsb_coco([im for im in images if im["id"] in img_ids], [a_ for a_ in anns if a_["image_id"] in img_ids])
        ap = {n: evaluate_instances(sub, [p for p in preds[n] if p["image_id"] in img_ids])["AP"]
              for n in ("coarse", "refined")}
        iou = {n: np.asarray(v)[sel] for n, v in ious.items()}
        HEADLINES[f"dsb {t}"] = {"AP": (ap["coarse"], ap["refined"]), "worse": worse_fraction(iou["coarse"], iou["refined"]),
                                 "stability": float(iou["gt refined"].mean()),
                                 "patches_per_image": float(np.mean([patches[k] for k in sorted(img_ids)]))}
        lines.append(f"| {t} | {len(img_ids)} | {int(sel.sum())} | {pct(ap['coarse'])} | **{pct(ap['refined'])}** | "
                     f"{pct(iou['coarse'].mean())} | **{pct(iou['refined'].mean())}** | "
                     f"{pct(worse_fraction(iou['coarse'], iou['refined']))} | {pct(iou['gt refined'].mean())} |")
    return lines + [""]


# ------------------------------------------------------------------ CamVid


def _segment_ious(pred: np.ndarray, gt: np.ndarray, n: int, ignore: int) -> dict[int, float]:
    """IoU of each class present in the ground truth of one frame (ignore pixels left out)."""
    valid = gt != ignore
    out = {}
    for c in np.unique(gt[valid]):
        p, g = (pred == c) & valid, gt == c
        out[int(c)] = float((p & g).sum() / max((p | g).sum(), 1))
    return out


def section_camvid(model: str, data: Path) -> list[str]:
    refiner = make_refiner(model)
    root = data / "camvid" / "val"
    accs = {k: SemanticAccumulator(11, ignore_index=11) for k in ("coarse", "refined", "gt refined")}
    seconds, seg_b, seg_a, patches = [], [], [], []
    for path in sorted((root / "images").glob("*.jpg")):
        image, labels = read_image(path), read_label_map(root / "labels" / f"{path.stem}.png")
        coarse = semantic_low_res(labels, num_classes=11, rng=rng_for(0, path.name), ignore_index=11)
        t = time.perf_counter()
        refined, n = counted(refiner, lambda: refiner.refine_semantic(image, coarse, 11, ignore_index=11))
        seconds.append(time.perf_counter() - t)
        patches.append(n)
        for name, pred in (("coarse", coarse), ("refined", refined),
                           ("gt refined", refiner.refine_semantic(image, labels, 11, ignore_index=11))):
            accs[name].add(pred, labels)
        ib, ia = _segment_ious(coarse, labels, 11, 11), _segment_ious(refined, labels, 11, 11)
        seg_b += [ib[c] for c in ib]
        seg_a += [ia[c] for c in ib]
    b, a = accs["coarse"].result(list(CAMVID_CLASSES)), accs["refined"].result(list(CAMVID_CLASSES))
    stab = accs["gt refined"].result(list(CAMVID_CLASSES))
    HEADLINES["camvid"] = {"mIoU": (b["mIoU"], a["mIoU"]), "BF": (b["BF"], a["BF"]), "worse": worse_fraction(seg_b, seg_a),
                           "stability": stab["mIoU"], "seconds": statistics.median(seconds),
                           "patches_per_image": float(np.mean(patches))}
    lines = ["## CamVid val: 101 frames, simulated stride-8/16 semantic predictions", "",
             f"Percent. BF: boundary F-score at 1 px, averaged over classes. Median refinement time per 480x360 "
             f"frame: {statistics.median(seconds):.2f} s ({torch.get_num_threads()} threads, engine "
             f"`{refiner.engine.name}`, NMS {NMS['threshold']}: {np.mean(patches):.1f} patches per frame). worse: share of (frame, class) segments whose IoU fell by more than "
             "2 points; stability: mIoU of the refined ground-truth label maps.", "",
             "| | mIoU | BF | worse | stability |", "|---|---|---|---|---|",
             f"| coarse | {pct(b['mIoU'])} | {pct(b['BF'])} | | |",
             f"| refined | **{pct(a['mIoU'])}** | **{pct(a['BF'])}** | {pct(worse_fraction(seg_b, seg_a))} | "
             f"{pct(stab['mIoU'])} |",
             "", "Per class (paper Table 15):", "",
             "| class | IoU before | IoU after | BF before | BF after | IoU of refined ground truth |",
             "|---|---|---|---|---|---|"]
    for name in CAMVID_CLASSES:
        pb, pa, ps = b["per_class"][name], a["per_class"][name], stab["per_class"][name]
        lines.append(f"| {name} | {pct(pb['IoU'])} | {pct(pa['IoU'])} | {pct(pb['BF'])} | {pct(pa['BF'])} | "
                     f"{pct(ps['IoU'])} |")
    return lines + [""]


# ------------------------------------------------------------------ panoptic


def coarse_panoptic(ids: np.ndarray, segments: list[dict], key: str) -> np.ndarray:
    """Each segment through a simulator (mask head for things, low resolution for stuff), painted in
    order of decreasing area so small segments stay on top; void stays void."""
    out = np.zeros_like(ids)
    for s in sorted(segments, key=lambda s: -int((ids == s["id"]).sum())):
        m = ids == s["id"]
        rng = rng_for(0, f"{key}/{s['id']}")
        sim = mask_head(m, rng=rng) if s.get("isthing", 1) else low_res(m, rng=rng, stride=8)
        out[sim] = s["id"]
    out[ids == 0] = 0
    return out


def section_panoptic(model: str, data: Path) -> list[str]:
    refiner = make_refiner(model)
    lines = ["## Panoptic: simulated and real coarse segments", "",
             "PQ and boundary PQ in percent before / after refinement, under both rules of "
             "`Refiner.refine_panoptic`: all segments equal (the default), and things refined as instances "
             "over the stuff (`things=` / `--categories`). CCP: the real selfie mask as one person thing on "
             "one background stuff segment.", "",
             "| data | rule | PQ | PQ_th | PQ_st | PQb |", "|---|---|---|---|---|---|"]
    root = data / "samples" / "coco_panoptic_panopticapi"
    cats = {c["id"]: c for c in json.loads((root / "panoptic_coco_categories.json").read_text())}
    two = {1: {"id": 1, "isthing": 1}, 2: {"id": 2, "isthing": 0}}
    sets = (("COCO panoptic samples (2 images)", cats, lambda: _coco_panoptic_items(root, cats)),
            ("DSB2018 201-220 (nuclei + background)", two, lambda: _dsb_panoptic_items(data)),
            ("CCP 0701-0804 (person + background)", two, lambda: _ccp_panoptic_items(data)))
    for label, categories, items in sets:
        things = {c for c, info in categories.items() if info["isthing"]}
        b, a = _panoptic_rows(refiner, categories, items(), None)
        _, t = _panoptic_rows(refiner, categories, items(), things)
        for rule, after in (("all equal", a), ("things over stuff", t)):
            lines.append(f"| {label} | {rule} | " + " | ".join(f"{pct(b[k])} / **{pct(after[k])}**"
                                                              for k in ("PQ", "PQ_th", "PQ_st", "PQb")) + " |")
        if label.startswith("DSB"):
            HEADLINES["panoptic dsb"] = {"PQ": (b["PQ"], a["PQ"]), "PQb": (b["PQb"], a["PQb"])}
            HEADLINES["panoptic dsb things"] = {"PQ": (b["PQ"], t["PQ"]), "PQb": (b["PQb"], t["PQb"])}
    return lines + [""]


def _coco_panoptic_items(root: Path, cats: dict):
    data = json.loads((root / "panoptic_examples.json").read_text())
    for ann in data["annotations"]:
        ids = rgb_to_id(np.asarray(Image.open(root / "panoptic_examples" / ann["file_name"]).convert("RGB")))
        image = read_image(root / "input_images" / ann["file_name"].replace(".png", ".jpg"))
        segs = [dict(s, isthing=cats[s["category_id"]]["isthing"]) for s in ann["segments_info"]]
        yield ann["file_name"], image, ids, segs


def _dsb_panoptic_items(data: Path):
    for entry in dsb_items(data, 200, 220):
        image, gts = dsb_instances(data, entry)
        ids = np.ones(gts.shape[1:], np.int64)  # background stuff segment 1
        segs = [{"id": 1, "category_id": 2, "iscrowd": 0, "isthing": 0}]
        for j, g in enumerate(gts):
            ids[g] = j + 2
            segs.append({"id": j + 2, "category_id": 1, "iscrowd": 0, "isthing": 1})
        yield entry["id"], image, ids, segs


def _ccp_panoptic_items(data: Path):
    """CCP held-out photos as background (id 1, stuff category 2) + person (id 2, thing category 1), with
    the real selfie mask as the coarse map (``coarse`` in the yielded tuple)."""
    segs = [{"id": 1, "category_id": 2, "iscrowd": 0, "isthing": 0},
            {"id": 2, "category_id": 1, "iscrowd": 0, "isthing": 1}]
    for name, image, gt, coarse in ccp_items(data, "coarse_selfie"):
        yield name, image, np.where(gt, 2, 1).astype(np.int64), segs, np.where(coarse, 2, 1).astype(np.int64)


def _panoptic_rows(refiner: Refiner, cats: dict, items, things: set[int] | None) -> tuple[dict, dict]:
    """(before, after) PQ figures; ``items`` yield (key, image, ids, segments[, coarse ids]): without a
    coarse map one is simulated (``coarse_panoptic``)."""
    acc_b, acc_a = PanopticAccumulator(cats), PanopticAccumulator(cats)
    for key, image, ids, segs, *given in items:
        coarse = given[0] if given else coarse_panoptic(ids, segs, key)
        pred_segs = [{"id": s["id"], "category_id": s["category_id"]} for s in segs if (coarse == s["id"]).any()]
        refined, refined_segs = refiner.refine_panoptic(image, coarse, pred_segs, things)
        acc_b.add(ids, segs, coarse, pred_segs)
        acc_a.add(ids, segs, refined, refined_segs)
    return acc_b.result(), acc_a.result()


SECTIONS = {"ccp": section_ccp, "dsb": section_dsb, "camvid": section_camvid, "panoptic": section_panoptic}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", type=Path, default=Path("docs/results.md"))
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of " + ",".join(SECTIONS))
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--nms-threshold", type=float, default=0.55,
                    help="inference NMS threshold of every section (default: the paper's 0.55)")
    ap.add_argument("--edge-skip", type=float, default=None, help="skip edge-aligned boxes (Refiner edge_skip)")
    ap.add_argument("--move-limit", type=float, default=None, help="the do-no-harm guard (Refiner move_limit)")
    ap.add_argument("--min-confidence", type=float, default=None,
                    help="the guard's logit margin (default: the model's; 0: off)")
    ap.add_argument("--min-move", type=float, default=None,
                    help="the guard's minimum mean boundary move in px (default: the model's; 0: off)")
    ap.add_argument("--max-change", type=float, default=None,
                    help="the guard's largest share of a mask's area that may change (default: the model's; 0: off)")
    ap.add_argument("--min-mask-confidence", type=float, default=None,
                    help="the guard's least mean |logit| over a mask's changed pixels (default: the model's; 0: off)")
    ap.add_argument("--flip", action="store_true", help="test-time flip (Refiner flip)")
    ap.add_argument("--consensus", action=argparse.BooleanOptionalAction, default=None,
                    help="semantic / panoptic consensus rule (Refiner consensus; default: the model's)")
    ap.add_argument("--patch-size", type=int, default=None, help="box side in image px (default: the model's)")
    ap.add_argument("--padding", type=int, default=None,
                    help="context px cropped around each box and not pasted back (default: the model's)")
    ap.add_argument("--headlines", type=Path, default=None,
                    help="also write the headline figures as JSON (scripts/model_matrix.py builds its table from them)")
    args = ap.parse_args()
    NMS["threshold"] = args.nms_threshold
    SETTINGS.update(engine=args.engine, move_limit=args.move_limit, min_confidence=args.min_confidence,
                    min_move=args.min_move, max_change=args.max_change,
                    min_mask_confidence=args.min_mask_confidence, edge_skip=args.edge_skip, flip=args.flip, consensus=args.consensus,
                    patch_size=args.patch_size, padding=args.padding)
    refiner = make_refiner(args.model)
    cfg = refiner.config
    lines = ["# Results", "",
             f"Produced by `python scripts/make_results.py --data ../shared/data --model {args.model}"
             + (f" --sections {args.sections}" if args.sections != ",".join(SECTIONS) else "")
             + (f" --engine {args.engine}" if args.engine != "auto" else "")
             + (f" --nms-threshold {args.nms_threshold}" if args.nms_threshold != 0.55 else "")
             + (f" --edge-skip {args.edge_skip}" if args.edge_skip is not None else "")
             + (f" --move-limit {args.move_limit}" if args.move_limit is not None else "")
             + (f" --min-confidence {args.min_confidence}" if args.min_confidence is not None else "")
             + (f" --min-move {args.min_move}" if args.min_move is not None else "")
             + (f" --max-change {args.max_change}" if args.max_change is not None else "")
             + (f" --min-mask-confidence {args.min_mask_confidence}" if args.min_mask_confidence is not None else "")
             + (" --flip" if args.flip else "")
             + ({True: " --consensus", False: " --no-consensus", None: ""}[args.consensus])
             + (f" --patch-size {args.patch_size}" if args.patch_size is not None else "")
             + (f" --padding {args.padding}" if args.padding is not None else "") + "` "
             f"(deterministic: simulated inputs use seed 0; torch {torch.__version__}, {torch.get_num_threads()} "
             f"CPU threads on {describe_cpu()}, engine `{refiner.engine.name}`, guard min_move {refiner.min_move}"
             + (f", min_confidence {refiner.min_confidence}" if refiner.min_confidence else "")
             + (f", max_change {refiner.max_change}" if refiner.max_change else "")
             + (f", min_mask_confidence {refiner.min_mask_confidence}" if refiner.min_mask_confidence else "")
             + f"{', consensus' if refiner.consensus else ''}).",
             f"Model: `{args.model}` ({cfg.preset}, input {cfg.input_size}, patch {refiner.patch_size}, "
             f"padding {refiner.padding}); see "
             "docs/model_card.md. Bold: after refinement.", ""]
    for name in args.sections.split(","):
        t = time.time()
        lines += SECTIONS[name](args.model, args.data)
        print(f"{name}: {time.time() - t:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    if args.headlines:
        args.headlines.parent.mkdir(parents=True, exist_ok=True)
        args.headlines.write_text(json.dumps({"model": args.model, "settings": SETTINGS, "command": lines[2],
                                              "headlines": HEADLINES}, indent=1))
    print("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
