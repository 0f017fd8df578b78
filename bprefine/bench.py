"""``bprefine bench``: the numbers behind the speed claims in docs/benchmarks.md.

1. The patch pipeline without the network (boundary detection, box proposal, NMS, cropping,
   resizing to the input size, reassembly) on a synthetic 1024 x 2048 image with 20 instances,
   timed through the real ``Refiner`` with a network that costs nothing.
2. Each network preset's throughput in patches/s at input sizes 64/128/256.
All times are medians over ``repeats`` runs on this machine's CPU threads.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import click
import cv2
import numpy as np
import torch
from torch import nn

from bprefine.model import ModelConfig, RefinementModel
from bprefine.nets import PRESETS, build_net
from bprefine.refine import Refiner


class _NullNet(nn.Module):
    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask


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


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def pipeline_ms(nms_threshold: float, repeats: int) -> tuple[float, int]:
    image, masks = synthetic_scene()
    refiner = Refiner(RefinementModel(ModelConfig(), _NullNet()), nms_threshold=nms_threshold, batch_size=64)
    patches = sum(len(refiner.boxes_for(m)) for m in masks)
    return _median_ms(lambda: refiner.refine_instances(image, masks), repeats), patches


def preset_patches_per_s(preset: str, size: int, repeats: int, batch: int = 16) -> float:
    net = build_net(preset).eval()
    x, m = torch.randn(batch, 3, size, size), torch.randn(batch, 1, size, size)

    def run() -> None:
        with torch.inference_mode():
            net(x, m)

    return batch / (_median_ms(run, repeats) / 1000)


def run_bench(*, presets: list[str] | None = None, repeats: int = 5, quick: bool = False) -> None:
    click.echo(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    click.echo("patch pipeline without the network, 1024x2048 image, 20 instances (median ms):")
    for thr in (0.25, 0.55):
        ms, n = pipeline_ms(thr, repeats)
        click.echo(f"  nms {thr:.2f}: {ms:7.1f} ms/image  ({n} patches)")
    sizes = (128,) if quick else (64, 128, 256)
    click.echo(f"network throughput, batch 16 (patches/s, median of {repeats}):")
    click.echo(f"  {'preset':<18}" + "".join(f"{s:>10}" for s in sizes))
    for preset in presets or sorted(PRESETS):
        if preset not in PRESETS:
            raise ValueError(f"unknown network preset {preset!r}; choose from {sorted(PRESETS)}")
        rates = [preset_patches_per_s(preset, s, repeats) for s in sizes]
        click.echo(f"  {preset:<18}" + "".join(f"{r:>10.1f}" for r in rates))
