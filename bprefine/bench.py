"""``bprefine bench``: the numbers behind the speed claims in docs/benchmarks.md.

1. End to end with the bundled model and the engine ``auto`` picks (or ``--engine``): a 1024 x 2048
   image with about 135 boundary patches (the paper's Cityscapes case), split into the paper's three
   parts (extraction: boxes, crops, input tensors; network; reassembly: logits back, averaging,
   writing), the bundled sample photos (550 x ~830 person photos, real coarse masks) and a synthetic
   480 x 360 street frame with 11 classes (semantic refinement). The DenseCRF comparison and the folder
   throughput are separate scripts: benchmarks/densecrf.py, benchmarks/folder_throughput.py.
2. The patch pipeline without the network on a 1024 x 2048 image with 20 instances.
3. Each network preset's throughput in patches/s at input sizes 64/128/256 (eager PyTorch).
All times are medians over ``repeats`` runs on this machine's CPU threads; ``--json`` prints one object.
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
    image, masks = synthetic_scene(hw=(1024, 2048), n=40)
    counts = np.cumsum([len(refiner.boxes_for(m)) for m in masks])
    n = int(np.searchsorted(counts, target)) + 1
    masks = masks[:n]
    total = _median_s(lambda: refiner.refine_instances(image, masks), repeats)
    return {"patches": int(counts[n - 1]), "instances": n, "end_to_end_s": round(total, 3),
            "breakdown_ms": breakdown_ms(refiner, image, masks, repeats)}


def sample_photos(refiner: Refiner, repeats: int) -> dict:
    """Median seconds per bundled sample photo (decode excluded) and its patch count."""
    from bprefine.demo import SAMPLES

    from bprefine.data.images import read_image, read_mask

    times, patches = [], []
    for path in sorted((SAMPLES / "images").glob("*.jpg")):
        image, mask = read_image(path), read_mask(SAMPLES / "coarse" / f"{path.stem}.png")
        times.append(_median_s(lambda: refiner.refine(image, mask), repeats))
        patches.append(len(refiner.boxes_for(mask)))
    return {"images": len(times), "median_s": round(statistics.median(times), 3),
            "median_patches": int(statistics.median(patches))}


def street_frame(refiner: Refiner, repeats: int) -> dict:
    """Median seconds for semantic refinement of a synthetic 480 x 360 street-like frame with 11 classes."""
    from bprefine.simulate import rng_for, semantic_low_res

    rng = np.random.default_rng(0)
    canvas = np.zeros((360, 480), np.uint8)
    canvas[180:] = 3  # road below the horizon
    for c in range(1, 11):
        for _ in range(2):
            cv2.fillPoly(canvas, [rng.integers([0, 60], [480, 360], (6, 2)).astype(np.int32)], c)
    labels = canvas.astype(np.int64)
    image = cv2.GaussianBlur(rng.integers(0, 256, (360, 480, 3), dtype=np.uint8), (5, 5), 0)
    coarse = semantic_low_res(labels, num_classes=11, rng=rng_for(0, "bench"))
    seconds = _median_s(lambda: refiner.refine_semantic(image, coarse, 11), repeats)
    return {"classes": int(len(np.unique(coarse))), "median_s": round(seconds, 3)}


def run_bench(*, presets: list[str] | None = None, repeats: int = 5, quick: bool = False, engine: str = "auto",
              model: str = "default", nms_threshold: float | None = None, as_json: bool = False) -> dict:
    from bprefine.refine import DEFAULT_NMS_THRESHOLD

    thr = DEFAULT_NMS_THRESHOLD if nms_threshold is None else nms_threshold
    refiner = Refiner(model, engine=engine, nms_threshold=thr)
    report: dict = {"torch": torch.__version__, "threads": torch.get_num_threads(), "engine": refiner.engine.name,
                    "model": model, "nms_threshold": thr, "repeats": repeats}
    report["cityscapes_1024x2048"] = cityscapes_like(refiner, repeats)
    report["sample_photos"] = sample_photos(refiner, repeats)
    report["street_frame_480x360"] = street_frame(refiner, repeats)
    report["pipeline_without_network_ms"] = {f"nms_{t:.2f}": dict(zip(("ms", "patches"), pipeline_ms(t, repeats)))
                                             for t in (0.25, 0.55)}
    sizes = (128,) if quick else (64, 128, 256)
    rates = {}
    for preset in presets or sorted(PRESETS):
        if preset not in PRESETS:
            raise ValueError(f"unknown network preset {preset!r}; choose from {sorted(PRESETS)}")
        rates[preset] = {str(s): round(preset_patches_per_s(preset, s, repeats), 1) for s in sizes}
    report["torch_patches_per_s_batch16"] = rates
    if as_json:
        import json

        click.echo(json.dumps(report))
        return report
    c, p = report["cityscapes_1024x2048"], report["sample_photos"]
    click.echo(f"torch {report['torch']}, {report['threads']} threads; engine {report['engine']}; model {model}; "
               f"nms {thr}")
    click.echo(f"1024x2048, {c['patches']} patches ({c['instances']} instances): {c['end_to_end_s']:.3f} s end to end; "
               + ", ".join(f"{k} {v:.1f} ms" for k, v in c["breakdown_ms"].items()))
    click.echo(f"sample photos ({p['images']}, median {p['median_patches']} patches): {p['median_s']:.3f} s per photo")
    f = report["street_frame_480x360"]
    click.echo(f"street frame 480x360, {f['classes']} classes (synthetic): {f['median_s']:.3f} s")
    click.echo("patch pipeline without the network, 1024x2048, 20 instances (median ms):")
    for k, v in report["pipeline_without_network_ms"].items():
        click.echo(f"  {k}: {v['ms']:7.1f} ms  ({v['patches']} patches)")
    click.echo(f"network throughput, eager PyTorch, batch 16 (patches/s, median of {repeats}):")
    click.echo(f"  {'preset':<18}" + "".join(f"{s:>10}" for s in sizes))
    for preset, r in rates.items():
        click.echo(f"  {preset:<18}" + "".join(f"{v:>10.1f}" for v in r.values()))
    return report
