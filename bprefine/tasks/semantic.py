"""Semantic refinement: every class's mask of an H x W label map is refined (paper section 3.3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bprefine.tasks.exclusive import refine_exclusive

if TYPE_CHECKING:
    from bprefine.refine import Refiner


def check_probs(probs: np.ndarray, num_classes: int, hw: tuple[int, ...]) -> np.ndarray:
    """``probs`` as float32 (num_classes, H, W) finite probabilities in [0, 1], or a ValueError."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.shape != (num_classes, *hw):
        raise ValueError(f"probs must be num_classes x H x W = {(num_classes, *hw)}, got {probs.shape}")
    if not np.isfinite(probs).all() or probs.min() < 0 or probs.max() > 1:
        raise ValueError("probs must be finite probabilities in [0, 1]")
    return probs


def refine_semantic(refiner: "Refiner", image: np.ndarray, labels: np.ndarray | None, num_classes: int,
                    ignore_index: int | None = None, *, probs: np.ndarray | None = None) -> np.ndarray:
    """Refine an H x W integer label map of an H x W x 3 uint8 image; returns a label map of its dtype.

    Every output pixel gets exactly one label: where several classes' refined patches claim a pixel
    (mean logit > 0) the most confident wins; where none does, the coarse label stays. Pixels labelled
    ``ignore_index`` stay as they are and no other pixel becomes ``ignore_index``. ``probs``
    (num_classes x H x W, in [0, 1]), where the segmentation model provides them, feed each class's
    probability map to the network's mask channel instead of its binary mask; ``labels`` may then be
    None (argmax of ``probs``).
    """
    if probs is not None:
        probs = check_probs(probs, num_classes, image.shape[:2])
        labels = probs.argmax(axis=0) if labels is None else labels
    if labels is None:
        raise ValueError("give labels, probs, or both")
    labels = np.asarray(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels must be H x W matching the image {image.shape[:2]}, got {labels.shape}")
    fixed = labels == ignore_index if ignore_index is not None else np.zeros(labels.shape, bool)
    bad = ~fixed & ((labels < 0) | (labels >= num_classes))
    if bad.any():
        raise ValueError(f"labels hold values outside 0..{num_classes - 1}: {np.unique(labels[bad])[:5].tolist()}")
    classes = [c for c in range(num_classes) if (labels == c).any()]
    masks = np.stack([labels == c for c in classes]) if classes else np.zeros((0, *labels.shape), bool)
    channels = None if probs is None else np.round(probs[classes] * 255).astype(np.uint8)
    owner = refine_exclusive(refiner, image, masks, fixed=fixed, channels=channels)
    out = labels.copy()
    moved = owner >= 0
    out[moved] = np.asarray(classes, labels.dtype)[owner[moved]]
    return out
