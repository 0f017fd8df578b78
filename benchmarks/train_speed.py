"""Training throughput (patches/s) of the SGD step, split into batch assembly and network step.

    python benchmarks/train_speed.py [--iters 30] [--threads 2] [--preset mobilenet_v2] [--json]

Synthetic 64 x 64 native patches (as the patch cache stores them) at input size 128, batch 32. Variants:
fp32, bf16 autocast (CPU), channels_last memory format, and both. Medians over the timed iterations.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from bprefine.model import ModelConfig, RefinementModel
from bprefine.training.batches import make_batch, sample_batch
from bprefine.training.patchset import PatchSet


def synthetic_patches(n: int, side: int, seed: int = 0) -> PatchSet:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:side, :side]
    cut = rng.uniform(0.3, 0.7, (n, 1, 1)) * side
    gt = (xx[None] + 0.3 * yy[None] > cut).astype(np.uint8)
    coarse = (xx[None] + 0.3 * yy[None] > cut + rng.normal(0, 3, (n, 1, 1))).astype(np.uint8)
    return PatchSet(images, coarse, gt)


def run(variant: str, preset: str, iters: int, batch: int, input_size: int) -> dict:
    torch.manual_seed(0)
    config = ModelConfig(preset=preset, input_size=input_size)
    net = RefinementModel.untrained(config).net.train()
    channels_last = "channels_last" in variant
    bf16 = "bf16" in variant
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    sets = [synthetic_patches(2048, 64)]
    rng = np.random.default_rng(0)
    data_t, step_t = [], []
    for it in range(iters + 3):
        t0 = time.perf_counter()
        x, m, t = make_batch(sample_batch(sets, np.ones(1), batch, rng), rng, config=config)
        if channels_last:
            x, m = x.contiguous(memory_format=torch.channels_last), m.contiguous(memory_format=torch.channels_last)
        t1 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(x, m)
        loss = F.binary_cross_entropy_with_logits(logits.float(), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if it >= 3:
            data_t.append(t1 - t0)
            step_t.append(t2 - t1)
    d, s = statistics.median(data_t), statistics.median(step_t)
    return {"variant": variant, "data_ms": round(1000 * d, 1), "step_ms": round(1000 * s, 1),
            "patches_per_s": round(batch / (d + s), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--preset", default="mobilenet_v2")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--variants", default="fp32,bf16,channels_last,bf16+channels_last")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = [run(v, args.preset, args.iters, args.batch, args.input_size) for v in args.variants.split(",")]
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{args.preset}, batch {args.batch}, input {args.input_size}, {args.threads} threads")
    for r in rows:
        print(f"{r['variant']:<22} data {r['data_ms']:>7.1f} ms  step {r['step_ms']:>7.1f} ms  "
              f"{r['patches_per_s']:>7.1f} patches/s")


if __name__ == "__main__":
    main()
