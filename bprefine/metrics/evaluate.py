"""Dataset-level evaluation of class-agnostic masks stored as PNG folders."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from bprefine.data.images import read_mask
from bprefine.metrics.masks import boundary_f, boundary_iou, mask_iou

MASK_METRICS = ("mIoU", "mBIoU", "BF1", "BF3")


def mask_scores(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """IoU, boundary IoU (band 2% of the diagonal), boundary F at 1 px and 3 px for one mask pair."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction is {pred.shape} but ground truth is {gt.shape}")
    return {"mIoU": mask_iou(pred, gt), "mBIoU": boundary_iou(pred, gt),
            "BF1": boundary_f(pred, gt, tolerance=1), "BF3": boundary_f(pred, gt, tolerance=3)}


def mean_scores(rows: Iterable[dict[str, float]]) -> dict[str, float]:
    rows = list(rows)
    if not rows:
        raise ValueError("nothing to evaluate")
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def mask_dir_pairs(gt_dir: str | Path, pred_dir: str | Path) -> list[tuple[Path, Path]]:
    """(prediction, ground truth) PNG pairs by file name; every ground-truth mask needs a prediction."""
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    for d in (gt_dir, pred_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: directory not found")
    gts = sorted(p for p in gt_dir.iterdir() if p.is_file() and p.suffix.lower() == ".png")
    if not gts:
        raise ValueError(f"{gt_dir}: no PNG masks found")
    pairs = []
    for gt in gts:
        pred = _same_name(pred_dir, gt.name)
        if not pred.is_file():
            raise FileNotFoundError(f"{pred}: no prediction for ground truth {gt.name}")
        pairs.append((pred, gt))
    return pairs


def _same_name(folder: Path, name: str) -> Path:
    """``folder / name``, or the file whose name differs from it only in the extension's case."""
    exact = folder / name
    if exact.is_file():
        return exact
    stem, suffix = Path(name).stem, Path(name).suffix.lower()
    for p in folder.glob(f"{stem}.*"):
        if p.suffix.lower() == suffix:
            return p
    return exact


def evaluate_mask_dirs(gt_dir: str | Path, pred_dir: str | Path) -> dict[str, float]:
    """Mean mask metrics over all ground-truth PNGs in ``gt_dir`` (``MASK_METRICS`` keys, plus ``n``)."""
    rows = []
    for pred_path, gt_path in mask_dir_pairs(gt_dir, pred_dir):
        pred, gt = read_mask(pred_path), read_mask(gt_path)
        try:
            rows.append(mask_scores(pred, gt))
        except ValueError as err:
            raise ValueError(f"{pred_path}: {err}") from None
    return mean_scores(rows) | {"n": len(rows)}


def evaluate_semantic_dirs(gt_dir: str | Path, pred_dir: str | Path, *, num_classes: int,
                           ignore_index: int | None = None, tolerance: float = 1.0) -> dict:
    """mIoU and mean per-class boundary F over label PNGs matched by name (plus ``per_class`` and ``n``)."""
    from bprefine.data.images import read_label_map
    from bprefine.metrics.semantic import SemanticAccumulator

    acc = SemanticAccumulator(num_classes, ignore_index=ignore_index, tolerance=tolerance)
    pairs = mask_dir_pairs(gt_dir, pred_dir)
    for pred_path, gt_path in pairs:
        try:
            acc.add(read_label_map(pred_path), read_label_map(gt_path))
        except ValueError as err:
            raise ValueError(f"{pred_path}: {err}") from None
    return acc.result() | {"n": len(pairs)}


def _panoptic_annotations(json_path: Path) -> dict[str, dict]:
    from bprefine.data.panoptic import load_panoptic_json

    return {a["file_name"]: a for a in load_panoptic_json(json_path)[1]}


def evaluate_panoptic(gt_json: str | Path, gt_dir: str | Path, pred_json: str | Path, pred_dir: str | Path) -> dict:
    """PQ, SQ, RQ, PQ_th, PQ_st and boundary PQ for COCO panoptic PNG + JSON predictions."""
    from bprefine.data.coco import load_json
    from bprefine.data.panoptic import check_ids_listed, read_panoptic_png
    from bprefine.metrics.panoptic import PanopticAccumulator

    gt_json, pred_json = Path(gt_json), Path(pred_json)
    gt_data = load_json(gt_json)
    cats = gt_data.get("categories") if isinstance(gt_data, dict) else None
    if not isinstance(cats, list) or not cats:
        raise ValueError(f"{gt_json}: expected a non-empty 'categories' list")
    for k, c in enumerate(cats):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or isinstance(c.get("id"), bool):
            raise ValueError(f"{gt_json}: categories[{k}] needs an integer 'id'")
    acc = PanopticAccumulator({c["id"]: c for c in cats})
    gts, preds = _panoptic_annotations(gt_json), _panoptic_annotations(pred_json)
    for name, g in gts.items():
        if name not in preds:
            raise ValueError(f"{pred_json}: no prediction for {name}")
        p = preds[name]
        gt_ids, pred_ids = read_panoptic_png(Path(gt_dir) / name), read_panoptic_png(Path(pred_dir) / name)
        try:
            check_ids_listed(gt_ids, g["segments_info"])
        except ValueError as err:
            raise ValueError(f"{Path(gt_dir) / name}: {err}") from None
        try:
            acc.add(gt_ids, g["segments_info"], pred_ids, p["segments_info"])
        except ValueError as err:
            raise ValueError(f"{Path(pred_dir) / name}: {err}") from None
    return acc.result() | {"n": len(gts)}
