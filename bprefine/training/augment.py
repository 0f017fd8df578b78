"""Training-time augmentation of native patches: horizontal flips and photometric distortion."""

from __future__ import annotations

import numpy as np

from bprefine.training.patchset import PatchSet


def photometric_distortion(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation per patch on (B, h, w, 3) uint8."""
    x = images.astype(np.float32)
    b = len(x)
    x += rng.uniform(-32, 32, size=(b, 1, 1, 1)).astype(np.float32)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * rng.uniform(0.5, 1.5, size=(b, 1, 1, 1)).astype(np.float32) + mean
    gray = x.mean(axis=3, keepdims=True)
    x = (x - gray) * rng.uniform(0.5, 1.5, size=(b, 1, 1, 1)).astype(np.float32) + gray
    return np.clip(x, 0, 255).astype(np.uint8)


def random_flip(patches: PatchSet, rng: np.random.Generator) -> PatchSet:
    """Each patch (image, coarse and ground truth together) mirrored left-right with probability 1/2."""
    flip = rng.random(len(patches)) < 0.5
    return PatchSet(np.where(flip[:, None, None, None], patches.images[:, :, ::-1], patches.images),
                    np.where(flip[:, None, None], patches.coarse[:, :, ::-1], patches.coarse),
                    np.where(flip[:, None, None], patches.gt[:, :, ::-1], patches.gt))


def augment(patches: PatchSet, rng: np.random.Generator) -> PatchSet:
    """Flip, then distort the image colours; masks are only flipped."""
    flipped = random_flip(patches, rng)
    return PatchSet(photometric_distortion(flipped.images, rng), flipped.coarse, flipped.gt)
