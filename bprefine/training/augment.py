"""Training-time augmentation of native patches.

- ``basic``: horizontal flips, brightness, contrast and saturation (the paper's photometric distortion).
- ``strong``: ``basic`` plus the appearance changes a model meets on other cameras, stains and sensors:
  hue rotation, grayscale, colour inversion (fluorescence vs brightfield), stain-like colour jitter in
  optical-density space, Gaussian blur, sensor noise and JPEG compression, each applied per patch
  with its own probability. Masks are only ever flipped (appearance changes keep the geometry).
- ``mask_noise`` (a probability): the coarse mask channel of a patch is eroded, dilated or shifted by
  1-3 px, so the network cannot learn to copy its mask input.
All functions take and return (B, h, w, 3) uint8 images or (B, h, w) uint8 masks.
"""

from __future__ import annotations

import cv2
import numpy as np

from bprefine.training.config import AUGMENTATIONS
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


def _hue_rotation(angles: np.ndarray) -> np.ndarray:
    """(B, 3, 3) RGB matrices rotating hue by ``angles`` (radians) about the grey axis."""
    c, s = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    k = np.full((3, 3), 1.0 / 3.0)
    cross = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]]) / np.sqrt(3.0)
    return (c * (np.eye(3) - k) + s * cross + k).astype(np.float32)


def colour_transforms(images: np.ndarray, rng: np.random.Generator, p: float = 0.3) -> np.ndarray:
    """Hue rotation, stain-like optical-density jitter, grayscale and inversion, each with probability ``p``
    (inversion and grayscale with ``p / 2``)."""
    x = images.astype(np.float32)
    b = len(x)
    hue = rng.random(b) < p
    if hue.any():
        x[hue] = np.einsum("bhwc,bdc->bhwd", x[hue], _hue_rotation(rng.uniform(-np.pi, np.pi, hue.sum())))
    stain = rng.random(b) < p
    if stain.any():  # Beer-Lambert: scale and shift each channel's optical density
        od = -np.log((np.clip(x[stain], 0, 255) + 1.0) / 256.0)
        scale = rng.uniform(0.6, 1.4, (stain.sum(), 1, 1, 3)).astype(np.float32)
        shift = rng.uniform(-0.15, 0.15, (stain.sum(), 1, 1, 3)).astype(np.float32)
        x[stain] = 256.0 * np.exp(-(od * scale + shift)) - 1.0
    gray = rng.random(b) < p / 2
    if gray.any():
        x[gray] = x[gray].mean(axis=3, keepdims=True)
    invert = rng.random(b) < p / 2
    x[invert] = 255.0 - x[invert]
    return np.clip(x, 0, 255).astype(np.uint8)


def degrade(images: np.ndarray, rng: np.random.Generator, p: float = 0.2) -> np.ndarray:
    """Gaussian blur, Gaussian noise and JPEG compression, each with probability ``p`` per patch."""
    out = images.copy()
    for i in np.flatnonzero(rng.random(len(out)) < p):
        sigma = rng.uniform(0.3, 1.5)
        out[i] = cv2.GaussianBlur(out[i], (0, 0), sigma)
    noisy = np.flatnonzero(rng.random(len(out)) < p)
    if noisy.size:
        sd = rng.uniform(2, 12, (noisy.size, 1, 1, 1))
        out[noisy] = np.clip(out[noisy] + rng.normal(0, 1, out[noisy].shape) * sd, 0, 255).astype(np.uint8)
    for i in np.flatnonzero(rng.random(len(out)) < p):
        ok, buf = cv2.imencode(".jpg", out[i], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
        if ok:
            out[i] = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).reshape(out[i].shape)
    return out


def perturb_masks(masks: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """Each (h, w) mask with probability ``p``: eroded, dilated (1-3 px) or shifted by up to 3 px."""
    out = masks.copy()
    for i in np.flatnonzero(rng.random(len(out)) < p):
        r = int(rng.integers(1, 4))
        kind = int(rng.integers(0, 3))
        if kind < 2:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
            op = cv2.erode if kind == 0 else cv2.dilate
            out[i] = op(out[i], kernel, borderType=cv2.BORDER_REPLICATE)
        else:
            dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
            shift = np.float32([[1, 0, dx], [0, 1, dy]])
            out[i] = cv2.warpAffine(out[i], shift, out[i].shape[::-1], flags=cv2.INTER_NEAREST,
                                    borderMode=cv2.BORDER_REPLICATE)
    return out


def random_flip(patches: PatchSet, rng: np.random.Generator) -> PatchSet:
    """Each patch (image, coarse and ground truth together) mirrored left-right with probability 1/2."""
    flip = rng.random(len(patches)) < 0.5
    return PatchSet(np.where(flip[:, None, None, None], patches.images[:, :, ::-1], patches.images),
                    np.where(flip[:, None, None], patches.coarse[:, :, ::-1], patches.coarse),
                    np.where(flip[:, None, None], patches.gt[:, :, ::-1], patches.gt))


def augment(patches: PatchSet, rng: np.random.Generator, *, kind: str = "basic", mask_noise: float = 0.0
            ) -> PatchSet:
    """Augmented copy of a batch of patches (see the module docstring for ``kind`` and ``mask_noise``)."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {kind!r}")
    if kind == "none":
        return patches
    flipped = random_flip(patches, rng)
    images = flipped.images
    if kind == "strong":
        images = colour_transforms(images, rng)
    images = photometric_distortion(images, rng)
    if kind == "strong":
        images = degrade(images, rng)
    coarse = perturb_masks(flipped.coarse, rng, mask_noise) if mask_noise > 0 else flipped.coarse
    return PatchSet(images, coarse, flipped.gt)
