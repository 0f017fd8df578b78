"""Seeded coarse-mask simulators, for data that has no model predictions.

``low_res_mask`` imitates a low-resolution predictor: the mask is averaged down by ``stride``,
perturbed by smooth noise, upsampled bilinearly and thresholded. The result has a good interior and
blobby, shifted boundaries, like a real segmentation head.
"""

from __future__ import annotations

import cv2
import numpy as np


def smooth_noise(shape: tuple[int, int], *, rng: np.random.Generator, cell: int, amplitude: float) -> np.ndarray:
    """Noise that varies smoothly over ``cell`` pixels, in [-amplitude, amplitude]."""
    h, w = shape
    gh, gw = max(h // cell, 1) + 2, max(w // cell, 1) + 2
    coarse = rng.uniform(-amplitude, amplitude, size=(gh, gw)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def low_res_mask(
    mask: np.ndarray, *, rng: np.random.Generator, stride: int = 8, noise: float = 0.25,
    shift: float = 0.5,
) -> np.ndarray:
    """A coarse version of a bool mask as a stride-``stride`` predictor would produce it."""
    h, w = mask.shape
    lh, lw = max(int(round(h / stride)), 1), max(int(round(w / stride)), 1)
    small = cv2.resize(mask.astype(np.float32), (lw, lh), interpolation=cv2.INTER_AREA)
    small += smooth_noise((lh, lw), rng=rng, cell=3, amplitude=noise)
    dx, dy = rng.uniform(-shift, shift, size=2)
    warp = np.float32([[1, 0, dx], [0, 1, dy]])
    small = cv2.warpAffine(small, warp, (lw, lh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return up > 0.5
