"""Per-mask metrics on H x W bool masks.

- ``boundary_iou``: Boundary IoU (Cheng et al., CVPR 2021): IoU of the bands of pixels inside each
  mask within ``d`` pixels of its contour, ``d = max(1, round(0.02 * image diagonal))``. As in the
  reference implementation, the image border counts as contour.
- ``boundary_f``: boundary F-score at a pixel tolerance: precision and recall of the 1-pixel contours
  of prediction and ground truth matched within ``tolerance`` pixels (Euclidean distance).
Both return 1.0 when both masks are empty.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

_KERNEL = np.ones((3, 3), np.uint8)


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def band_width(hw: tuple[int, int], ratio: float = 0.02) -> int:
    return max(1, int(round(ratio * math.hypot(*hw))))


def boundary_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Mask pixels within ``width`` pixels (chessboard erosion steps) of the contour or image border."""
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, _KERNEL, iterations=width)[1:-1, 1:-1]
    return mask & ~eroded.astype(bool)


def boundary_iou(pred: np.ndarray, gt: np.ndarray, *, ratio: float = 0.02, width: int | None = None) -> float:
    d = width if width is not None else band_width(gt.shape, ratio)
    return mask_iou(boundary_band(pred, d), boundary_band(gt, d))


def boundary_iou_cropped(pred: np.ndarray, gt: np.ndarray, width: int) -> float:
    """``boundary_iou(pred, gt, width=width)`` computed inside the masks' joint bounding box (plus a margin).

    Inside the image the margin is background, and at the image frame zero padding makes the frame a
    contour, exactly as on the full image; so the result equals the full-image one.
    """
    ys, xs = np.nonzero(pred | gt)
    if ys.size == 0:
        return 1.0
    h, w = gt.shape
    m = width + 2
    y0, y1 = max(ys.min() - m, 0), min(ys.max() + m + 1, h)
    x0, x1 = max(xs.min() - m, 0), min(xs.max() + m + 1, w)
    return boundary_iou(pred[y0:y1, x0:x1], gt[y0:y1, x0:x1], width=width)


def _distance_to(points: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel to the nearest True pixel of ``points``."""
    return cv2.distanceTransform((~points).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def contour_f(pred_contour: np.ndarray, gt_contour: np.ndarray, tolerance: float) -> float:
    """F-score of two H x W bool contour maps: a contour pixel is matched when the other contour lies
    within ``tolerance`` pixels (Euclidean). 1.0 when both are empty, 0.0 when only one is."""
    n_p, n_g = int(pred_contour.sum()), int(gt_contour.sum())
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    precision = float((_distance_to(gt_contour)[pred_contour] <= tolerance).mean())
    recall = float((_distance_to(pred_contour)[gt_contour] <= tolerance).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def boundary_f(pred: np.ndarray, gt: np.ndarray, *, tolerance: float = 1.0) -> float:
    return contour_f(boundary_band(pred, 1), boundary_band(gt, 1), tolerance)
