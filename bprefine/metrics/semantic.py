"""Semantic segmentation metrics: mIoU with an ignore label, and per-class boundary F-score.

Boundary F (as in SegFix / Gated-SCNN): for each image and class present in the prediction or the
ground truth, the F-score of the class's 1-pixel contours matched within ``tolerance`` pixels;
contour pixels on ignored ground truth do not count. Per class it is averaged over images, and
``BF`` is the mean over classes.
"""

from __future__ import annotations

import numpy as np

from bprefine.metrics.masks import boundary_band, contour_f

SEMANTIC_METRICS = ("mIoU", "BF")


def confusion(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    """(num_classes, num_classes + 1) counts, rows = ground truth, columns = prediction; ignore pixels
    skipped. The last column counts predictions outside ``0..num_classes-1`` (including the ignore
    label): they match no class, so they count against the ground-truth class of their pixel."""
    valid = (gt >= 0) & (gt < num_classes)
    if ignore_index is not None:
        valid &= gt != ignore_index
    p = pred[valid]
    p = np.where((p >= 0) & (p < num_classes), p, num_classes)
    g = gt[valid]
    counts = np.bincount(g * (num_classes + 1) + p, minlength=num_classes * (num_classes + 1))
    return counts.reshape(num_classes, num_classes + 1)


def class_boundary_f(pred: np.ndarray, gt: np.ndarray, cls: int, *, valid: np.ndarray, tolerance: float) -> float | None:
    """Boundary F of one class in one image, or None when the class is in neither map."""
    pm, gm = pred == cls, gt == cls
    if not pm.any() and not gm.any():
        return None
    return contour_f(boundary_band(pm, 1) & valid, boundary_band(gm, 1) & valid, tolerance)


class SemanticAccumulator:
    """Accumulates a confusion matrix and per-class boundary F over images."""

    def __init__(self, num_classes: int, *, ignore_index: int | None = None, tolerance: float = 1.0) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.tolerance = tolerance
        self.conf = np.zeros((num_classes, num_classes + 1), np.int64)  # see ``confusion``
        self.bf: list[list[float]] = [[] for _ in range(num_classes)]

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        if pred.shape != gt.shape:
            raise ValueError(f"prediction is {pred.shape} but ground truth is {gt.shape}")
        pred, gt = pred.astype(np.int64), gt.astype(np.int64)
        self.conf += confusion(pred, gt, self.num_classes, self.ignore_index)
        valid = np.ones(gt.shape, bool) if self.ignore_index is None else gt != self.ignore_index
        for c in range(self.num_classes):
            f = class_boundary_f(pred, gt, c, valid=valid, tolerance=self.tolerance)
            if f is not None:
                self.bf[c].append(f)

    def result(self, names: list[str] | None = None) -> dict:
        inter = np.diag(self.conf).astype(np.float64)
        union = self.conf[:, : self.num_classes].sum(0) + self.conf.sum(1) - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
        bf = np.array([np.mean(v) if v else np.nan for v in self.bf])
        names = names or [str(c) for c in range(self.num_classes)]
        return {"mIoU": float(np.nanmean(iou)), "BF": float(np.nanmean(bf)),
                "per_class": {n: {"IoU": _num(i), "BF": _num(b)} for n, i, b in zip(names, iou, bf)}}


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)
