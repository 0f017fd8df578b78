"""Analysis tools from the paper: the oracle study (Table 1), per-instance IoU scatter (Fig. 9) and
before/after overlay panels (Figs. 2 and 5)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from bprefine.data.images import atomic_path
from bprefine.patches import boundary_map

ORACLE_DISTANCES = (1, 2, 3, math.inf)


def oracle_mask(pred: np.ndarray, gt: np.ndarray, distance: float) -> np.ndarray:
    """``pred`` with every pixel within ``distance`` px of its own boundary replaced by ground truth.

    This is what a perfect boundary refiner working in a band of that width could reach. An empty
    prediction has no boundary and stays empty; ``inf`` replaces everything.
    """
    if math.isinf(distance):
        return gt.copy()
    edge = boundary_map(pred)
    if not edge.any():
        return pred.copy()
    dist = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    band = dist <= distance
    return np.where(band, gt, pred)


def best_match(pred: np.ndarray, gts: np.ndarray) -> int | None:
    """Index of the ground-truth mask with the highest IoU with ``pred`` (None if none overlaps)."""
    if len(gts) == 0:
        return None
    inter = (gts & pred).reshape(len(gts), -1).sum(1)
    union = (gts | pred).reshape(len(gts), -1).sum(1)
    iou = inter / np.maximum(union, 1)
    k = int(iou.argmax())
    return k if iou[k] > 0 else None


_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
            ".tiff": "TIFF"}


def image_format(path: str | Path) -> str:
    """Pillow's format name for an output file's extension, or a ValueError naming the file."""
    fmt = _FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image extension; use one of {sorted(_FORMATS)}")
    return fmt


def scatter_plot(before: np.ndarray, after: np.ndarray, path: str | Path, *, size: int = 480,
                 title: str = "per-instance IoU") -> None:
    """A scatter of IoU before (x) against after (y) with the diagonal; points above it improved. The
    format follows the file's extension (.png, .jpg/.jpeg, .webp, .bmp, .tif/.tiff)."""
    fmt = image_format(path)
    pad = 48
    canvas = np.full((size + 2 * pad, size + 2 * pad, 3), 255, np.uint8)
    x0, y0, x1, y1 = pad, pad, pad + size, pad + size
    cv2.rectangle(canvas, (x0, y0), (x1, y1), (0, 0, 0), 1)
    cv2.line(canvas, (x0, y1), (x1, y0), (160, 160, 160), 1)
    for t in (0.25, 0.5, 0.75):
        cv2.putText(canvas, f"{t:.2f}", (x0 + int(t * size) - 14, y1 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        cv2.putText(canvas, f"{t:.2f}", (4, y1 - int(t * size) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.putText(canvas, "IoU before", (x0 + size // 2 - 40, y1 + 38), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.putText(canvas, "after", (4, y0 - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    better = int((after > before).sum())
    worse = int((after < before).sum())
    cv2.putText(canvas, f"{title}: {better} better, {worse} worse of {len(before)}", (x0, 20),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    for b, a in zip(np.clip(before, 0, 1), np.clip(after, 0, 1)):
        colour = (0, 150, 60) if a > b else (220, 40, 40) if a < b else (90, 90, 90)
        cv2.circle(canvas, (x0 + int(b * size), y1 - int(a * size)), 2, colour, -1)
    with atomic_path(path) as tmp:
        Image.fromarray(canvas).save(tmp, format=fmt)


def oracle_instances(gt, results: list[dict], distance: float) -> list[dict]:
    """COCO results with each prediction repaired within ``distance`` px of its boundary from the
    same-category ground-truth mask it overlaps most (predictions overlapping none are unchanged)."""
    from bprefine.data.coco import decode_segmentation, refined_entry

    by_image: dict[int, list[int]] = {}
    for k, r in enumerate(results):
        by_image.setdefault(int(r["image_id"]), []).append(k)
    out: list[dict] = list(results)
    for image_id, idx in by_image.items():
        info = gt.imgs[image_id]
        h, w = info["height"], info["width"]
        anns = [a for a in gt.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)]
        gts = np.stack([gt.annToMask(a).astype(bool) for a in anns]) if anns else np.zeros((0, h, w), bool)
        cats = np.array([a["category_id"] for a in anns])
        for k in idx:
            pred = decode_segmentation(results[k]["segmentation"], h, w)
            same = np.flatnonzero(cats == results[k]["category_id"]) if len(anns) else np.zeros(0, int)
            j = best_match(pred, gts[same]) if len(same) else None
            fixed = pred if j is None else oracle_mask(pred, gts[same[j]], distance)
            out[k] = refined_entry(results[k], fixed)
    return out
