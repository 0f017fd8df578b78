"""Seeded coarse-prediction simulators, for data that has no model outputs to refine.

Three degradations, each drawn with random strength so that a model trained on them is not tuned to one
exact blur:
- ``mask_head``: a Mask R-CNN-like instance mask head. The ground-truth box is jittered, the mask inside
  it is averaged down to at most 28 x 28 cells (never finer than stride 4), perturbed by smooth noise,
  pasted back into the box with bilinear upsampling and thresholded at 0.5.
- ``low_res``: a class-agnostic mask seen by a stride-8/16 predictor: averaged down, smooth noise, a
  sub-cell shift, bilinear upsampling, threshold 0.5. Stride 2 gives near-perfect masks.
- ``semantic_low_res``: per-class low-resolution logits (one-hot averaged down, smooth noise, bilinear
  upsampling) and an argmax, so every pixel gets exactly one class.
Every function takes a ``numpy.random.Generator``; ``rng_for(seed, key)`` makes one per file, so one file's
result does not depend on which other files were simulated before it.
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np

from bprefine.patches import mask_bbox

MASK_HEAD_CELLS = 28
MASK_HEAD_STRIDE = 4


def rng_for(seed: int, key: str) -> np.random.Generator:
    """A generator determined by ``seed`` and a name (e.g. an image file name)."""
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def smooth_noise(shape: tuple[int, int], *, rng: np.random.Generator, cell: float, amplitude: float) -> np.ndarray:
    """Noise in about [-amplitude, amplitude] that varies smoothly over ``cell`` pixels."""
    h, w = shape
    gh, gw = max(int(h / cell), 1) + 2, max(int(w / cell), 1) + 2
    grid = rng.uniform(-amplitude, amplitude, size=(gh, gw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _upsample_shifted(small: np.ndarray, hw: tuple[int, int], rng: np.random.Generator, shift: float) -> np.ndarray:
    dx, dy = rng.uniform(-shift, shift, size=2)
    warp = np.float32([[1, 0, dx], [0, 1, dy]])
    sh, sw = small.shape[:2]
    small = cv2.warpAffine(small, warp, (sw, sh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)


def low_res(mask: np.ndarray, *, rng: np.random.Generator, stride: int = 8, noise: float = 0.25,
            shift: float = 0.5) -> np.ndarray:
    """A bool mask as a stride-``stride`` predictor would produce it."""
    h, w = mask.shape
    lh, lw = max(int(round(h / stride)), 1), max(int(round(w / stride)), 1)
    small = cv2.resize(mask.astype(np.float32), (lw, lh), interpolation=cv2.INTER_AREA)
    small += smooth_noise((lh, lw), rng=rng, cell=3, amplitude=noise)
    return _upsample_shifted(small, (h, w), rng, shift) > 0.5


def random_low_res(mask: np.ndarray, *, rng: np.random.Generator, strides: tuple[int, ...] = (2, 4, 8, 16)) -> np.ndarray:
    """``low_res`` with a random stride from ``strides`` and a random noise level."""
    return low_res(mask, rng=rng, stride=int(rng.choice(strides)), noise=float(rng.uniform(0.1, 0.35)))


def _jitter_box(box: tuple[int, int, int, int], hw: tuple[int, int], rng: np.random.Generator,
                jitter: float) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    dx0, dx1 = rng.normal(0, jitter * bw, 2)
    dy0, dy1 = rng.normal(0, jitter * bh, 2)
    nx0, ny0 = int(np.clip(round(x0 + dx0), 0, hw[1] - 1)), int(np.clip(round(y0 + dy0), 0, hw[0] - 1))
    nx1, ny1 = int(np.clip(round(x1 + dx1), nx0 + 1, hw[1])), int(np.clip(round(y1 + dy1), ny0 + 1, hw[0]))
    return nx0, ny0, nx1, ny1


def mask_head(mask: np.ndarray, *, rng: np.random.Generator, jitter: float | None = None,
              noise: float | None = None) -> np.ndarray:
    """A Mask R-CNN-like coarse version of one instance mask (empty in, empty out)."""
    box = mask_bbox(mask)
    if box is None:
        return np.zeros_like(mask, dtype=bool)
    jitter = float(rng.uniform(0.0, 0.08)) if jitter is None else jitter
    noise = float(rng.uniform(0.1, 0.4)) if noise is None else noise
    x0, y0, x1, y1 = _jitter_box(box, mask.shape, rng, jitter)
    bw, bh = x1 - x0, y1 - y0
    cw = int(np.clip(round(bw / MASK_HEAD_STRIDE), 1, MASK_HEAD_CELLS))
    ch = int(np.clip(round(bh / MASK_HEAD_STRIDE), 1, MASK_HEAD_CELLS))
    cells = cv2.resize(mask[y0:y1, x0:x1].astype(np.float32), (cw, ch), interpolation=cv2.INTER_AREA)
    cells += smooth_noise((ch, cw), rng=rng, cell=max(min(ch, cw) / 4, 1), amplitude=noise)
    out = np.zeros(mask.shape, bool)
    out[y0:y1, x0:x1] = cv2.resize(cells, (bw, bh), interpolation=cv2.INTER_LINEAR) > 0.5
    return out


def semantic_low_res(labels: np.ndarray, *, num_classes: int, rng: np.random.Generator,
                     stride: int | None = None, noise: float | None = None,
                     ignore_index: int | None = None) -> np.ndarray:
    """Coarse semantic labels from low-resolution noisy logits; ignore pixels keep ``ignore_index``."""
    stride = int(rng.choice((8, 16))) if stride is None else stride
    noise = float(rng.uniform(0.1, 0.3)) if noise is None else noise
    h, w = labels.shape
    lh, lw = max(int(round(h / stride)), 1), max(int(round(w / stride)), 1)
    # cv2 resizes at most 4 channels at a time: one class at a time
    small = np.stack([cv2.resize((labels == c).astype(np.float32), (lw, lh), interpolation=cv2.INTER_AREA)
                      for c in range(num_classes)], axis=-1)
    for c in range(num_classes):
        small[..., c] += smooth_noise((lh, lw), rng=rng, cell=2, amplitude=noise)
    up = np.stack([_upsample_shifted(small[..., c], (h, w), rng, 0.0) for c in range(num_classes)], axis=-1)
    out = up.argmax(axis=-1).astype(labels.dtype)
    if ignore_index is not None:
        out[labels == ignore_index] = ignore_index
    return out
