"""Inputs for the benchmarks, none of which need the shared data: synthetic scenes and the bundled photos.

Conventions: images are H x W x 3 uint8 RGB; instance masks (N, H, W) bool; label maps H x W int64.
"""

from __future__ import annotations

import cv2
import numpy as np

STREET_CLASSES = 11


def synthetic_scene(seed: int = 0, hw: tuple[int, int] = (1024, 2048), n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A textured image and ``n`` instance masks (random polygons, 40-400 px) with ragged edges."""
    rng = np.random.default_rng(seed)
    h, w = hw
    image = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (7, 7), 0)
    masks = np.zeros((n, h, w), np.uint8)
    for k in range(n):
        size = rng.uniform(40, 400)
        cx, cy = rng.uniform(size, w - size), rng.uniform(size / 2, h - size / 2)
        angles = np.sort(rng.uniform(0, 2 * np.pi, 24))
        radii = size / 2 * rng.uniform(0.6, 1.0, 24)
        pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1).astype(np.int32)
        cv2.fillPoly(masks[k], [pts], 1)
    return image, masks.astype(bool)


def street_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 480 x 360 street-like frame with 11 classes: (image, coarse labels, true labels).

    The coarse labels come from the output-stride-8 semantic simulator, as in training."""
    from bprefine.simulate import rng_for, semantic_low_res

    rng = np.random.default_rng(seed)
    canvas = np.zeros((360, 480), np.uint8)
    canvas[180:] = 3  # road below the horizon
    for c in range(1, STREET_CLASSES):
        for _ in range(2):
            cv2.fillPoly(canvas, [rng.integers([0, 60], [480, 360], (6, 2)).astype(np.int32)], c)
    labels = canvas.astype(np.int64)
    image = cv2.GaussianBlur(rng.integers(0, 256, (360, 480, 3), dtype=np.uint8), (5, 5), 0)
    coarse = semantic_low_res(labels, num_classes=STREET_CLASSES, rng=rng_for(seed, "bench"))
    return image, coarse, labels


def sample_photos() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The bundled person photos (550 x ~830): (image, real coarse mask, ground truth), masks H x W bool."""
    from bprefine.data.images import read_image, read_mask
    from bprefine.demo import SAMPLES

    return [(read_image(p), read_mask(SAMPLES / "coarse" / f"{p.stem}.png"), read_mask(SAMPLES / "gt" / f"{p.stem}.png"))
            for p in sorted((SAMPLES / "images").glob("*.jpg"))]
