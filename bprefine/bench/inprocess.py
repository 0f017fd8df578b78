"""Timings inside one process: end to end with the paper's breakdown, the pipeline alone, each preset.

All times are medians over ``repeats`` runs after one warm-up, on this process's CPU threads.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from bprefine.bench import scenes
from bprefine.model import ModelConfig, RefinementModel
from bprefine.nets import build_net
from bprefine.refine import Refiner


class _NullNet(nn.Module):
    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def pipeline_ms(nms_threshold: float, repeats: int) -> tuple[float, int]:
    image, masks = scenes.synthetic_scene()
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


def _median_s(fn: Callable[[], object], repeats: int) -> float:
    return _median_ms(fn, repeats) / 1000.0


def breakdown_ms(refiner: Refiner, image: np.ndarray, masks: np.ndarray, repeats: int) -> dict[str, float]:
    """The paper's three parts, run one after another (no overlap), medians in ms."""
    from bprefine.pipeline import Job, batches, crop_batch, make_plan
    from bprefine.tensors import logits_to_patches, patches_to_tensors

    jobs = [Job(0, m) for m in masks]
    parts: dict[str, list[float]] = {"extraction": [], "network": [], "reassembly": []}
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        plan = make_plan([image], jobs, refiner.boxes_for)
        inputs = []
        for batch in batches(plan.patches, refiner.batch_size):
            imgs, msks = crop_batch(plan, batch, refiner.padding)
            inputs.append((batch, patches_to_tensors(imgs, msks, config=refiner.config)))
        t1 = time.perf_counter()
        logits = [(batch, refiner.engine(x, m)) for batch, (x, m) in inputs]
        t2 = time.perf_counter()
        for batch, out in logits:
            for p, patch_logits in zip(batch, logits_to_patches(out, box_hw=batch[0].hw, padding=refiner.padding)):
                plan.accumulators[p.job].add(p.box, patch_logits)
        refined = masks.copy()
        for mask, acc in zip(refined, plan.accumulators):
            if acc is not None:
                acc.write_into(mask, refiner.allowed(acc, mask))
        t3 = time.perf_counter()
        for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2)):
            parts[key].append(dt)
    return {k: round(1000 * statistics.median(v[1:]), 1) for k, v in parts.items()}


def cityscapes_like(refiner: Refiner, repeats: int, target: int = 135) -> dict:
    """End to end and breakdown on a 1024 x 2048 scene with about ``target`` patches."""
    image, masks = scenes.synthetic_scene(hw=(1024, 2048), n=40)
    counts = np.cumsum([len(refiner.boxes_for(m)) for m in masks])
    n = int(np.searchsorted(counts, target)) + 1
    masks = masks[:n]
    total = _median_s(lambda: refiner.refine_instances(image, masks), repeats)
    return {"patches": int(counts[n - 1]), "instances": n, "end_to_end_s": round(total, 3),
            "breakdown_ms": breakdown_ms(refiner, image, masks, repeats)}


def sample_photos(refiner: Refiner, repeats: int) -> dict:
    """Median seconds per bundled sample photo (decode excluded) and its patch count."""
    times, patches = [], []
    for image, mask, _ in scenes.sample_photos():
        times.append(_median_s(lambda: refiner.refine(image, mask), repeats))
        patches.append(len(refiner.boxes_for(mask)))
    return {"images": len(times), "median_s": round(statistics.median(times), 3),
            "median_patches": int(statistics.median(patches))}


def street_frame(refiner: Refiner, repeats: int) -> dict:
    """Median seconds for semantic refinement of the synthetic 480 x 360 street frame with 11 classes."""
    image, coarse, _ = scenes.street_scene()
    seconds = _median_s(lambda: refiner.refine_semantic(image, coarse, scenes.STREET_CLASSES), repeats)
    return {"classes": int(len(np.unique(coarse))), "median_s": round(seconds, 3)}
