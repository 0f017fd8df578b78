"""Training patches at native resolution, cut by the same code the Refiner uses at inference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from bprefine.data.images import atomic_path
from bprefine.patches import crop_masks, crop_patches, extract_boxes


@dataclass
class PatchSet:
    """images (K, h, w, 3), coarse and gt masks (K, h, w); all uint8, masks in {0, 1}."""

    images: np.ndarray
    coarse: np.ndarray
    gt: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def empty(cls, side: int) -> "PatchSet":
        return cls(np.zeros((0, side, side, 3), np.uint8), *np.zeros((2, 0, side, side), np.uint8))

    @classmethod
    def concat(cls, sets: Iterable["PatchSet"], side: int) -> "PatchSet":
        sets = [s for s in sets if len(s)]
        if not sets:
            return cls.empty(side)
        return cls(*(np.concatenate([getattr(s, k) for s in sets]) for k in ("images", "coarse", "gt")))

    def subset(self, idx: np.ndarray) -> "PatchSet":
        return PatchSet(self.images[idx], self.coarse[idx], self.gt[idx])

    def save(self, path: str | Path) -> None:
        """One uncompressed ``.npz`` shard, written atomically."""
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, images=self.images, coarse=self.coarse, gt=self.gt)

    @classmethod
    def load(cls, path: str | Path) -> "PatchSet":
        with np.load(path) as z:
            return cls(z["images"], z["coarse"], z["gt"])


def border_full(mask: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
    """Boxes touching the image border whose mask crop is entirely foreground (paper section 3.3)."""
    h, w = mask.shape
    b = boxes_xyxy
    at_border = (b[:, 0] <= 0) | (b[:, 1] <= 0) | (b[:, 2] >= w) | (b[:, 3] >= h)
    full = np.array([mask[y0:y1, x0:x1].all() for x0, y0, x1, y1 in b.tolist()], bool)
    return at_border & full


def patches_from_triple(
    image: np.ndarray, gt: np.ndarray, coarse: np.ndarray, *, patch_size: int = 64, padding: int = 0,
    nms_threshold: float = 0.25, drop_border_full: bool = False, border_as_contour: bool = False,
) -> PatchSet:
    """Boundary patches of one coarse mask, supervised by its ground-truth mask.

    ``drop_border_full`` drops border patches whose coarse mask is all foreground (semantic/panoptic
    data, section 3.3); such patches exist only when ``border_as_contour`` makes the frame a contour.
    """
    boxes = extract_boxes(coarse, patch_size=patch_size, nms_threshold=nms_threshold,
                          border_as_contour=border_as_contour)
    if drop_border_full and len(boxes):
        boxes = boxes[~border_full(coarse, boxes)]
    if len(boxes) == 0:
        return PatchSet.empty(patch_size + 2 * padding)
    imgs, cms = crop_patches(image, coarse, boxes, padding=padding)
    return PatchSet(imgs, cms, crop_masks(gt, boxes, padding=padding))
