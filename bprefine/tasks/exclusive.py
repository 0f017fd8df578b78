"""Disjoint masks refined together: each pixel ends with exactly one owner.

Where several masks' refined patches claim a pixel (mean logit > 0) the most confident claim wins;
where none does, the coarse owner stays; ``fixed`` pixels (void, ignore) never change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bprefine.refine import Refiner


def coarse_owner(masks: np.ndarray) -> np.ndarray:
    """(H, W) int32 index of the last mask of the (K, H, W) stack covering each pixel, -1 where none does."""
    owner = np.full(masks.shape[1:], -1, np.int32)
    for k, m in enumerate(masks):
        owner[m] = k
    return owner


def refine_exclusive(refiner: "Refiner", image: np.ndarray, masks: np.ndarray, *, fixed: np.ndarray | None = None,
                     channels: np.ndarray | None = None) -> np.ndarray:
    """Refine K disjoint (K, H, W) masks of an H x W x 3 uint8 image and return the (H, W) int32 owner
    index into ``masks`` (-1 where no mask owns the pixel). ``fixed`` (H, W) bool pixels keep their
    coarse owner; ``channels`` (K, H, W) uint8 feed the network's mask channel (see ``Refiner.accumulate``)."""
    masks = np.asarray(masks).astype(bool, copy=False)
    owner = coarse_owner(masks)
    best = np.full(owner.shape, -np.inf, np.float32)  # one image-sized buffer for all masks
    new_owner = owner.copy()
    for k, acc in enumerate(refiner.accumulate(image, masks, channels=channels)):
        if acc is None:
            continue
        mean, covered = acc.mean_logits()
        allowed = refiner.allowed(acc, masks[k])
        if allowed is not None:
            covered = covered & allowed
        region_best, region_owner = acc.region(best), acc.region(new_owner)
        wins = covered & (mean > 0) & (mean > region_best)
        region_best[wins] = mean[wins]
        region_owner[wins] = k
    claimed = np.isfinite(best)
    if fixed is not None:
        claimed &= ~fixed
    return np.where(claimed, new_owner, owner)
