"""Training throughput (patches/s) of the SGD step, split into batch assembly and network step.

    python benchmarks/train_speed.py [--iters 30] [--threads 2] [--preset mobilenet_v2] [--json]

Synthetic 64 x 64 native patches (as the patch cache stores them) at input size 128, batch 32. Variants:
fp32, bf16 autocast (CPU), channels_last memory format, and both; a variant naming ``bf16-depthwise``
also runs the depthwise convolutions in bf16 (the networks keep them in float32 under autocast, see
``bprefine.nets.common.Float32Conv2d``). Medians over the timed iterations; variants alternate
iteration by iteration so that they share the machine's state.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from torch import nn

from bprefine.model import ModelConfig, RefinementModel
from bprefine.nets.common import Float32Conv2d
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


def plain_depthwise(net: nn.Module) -> nn.Module:
    """Replace every ``Float32Conv2d`` by an ``nn.Conv2d`` with the same weights (bf16 under autocast)."""
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, Float32Conv2d):
                plain = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride,
                                  child.padding, child.dilation, child.groups, bias=child.bias is not None)
                plain.load_state_dict(child.state_dict())
                setattr(module, name, plain)
    return net


class Variant:
    """One variant's network, optimiser, batch source and timings."""

    def __init__(self, name: str, preset: str, batch: int, input_size: int) -> None:
        torch.manual_seed(0)
        self.name, self.batch = name, batch
        self.config = ModelConfig(preset=preset, input_size=input_size)
        net = RefinementModel.untrained(self.config).net.train()
        if "bf16-depthwise" in name:
            net = plain_depthwise(net)
        self.channels_last = "channels_last" in name
        self.bf16 = "bf16" in name
        self.net = net.to(memory_format=torch.channels_last) if self.channels_last else net
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.9)
        self.sets = [synthetic_patches(2048, 64)]
        self.rng = np.random.default_rng(0)
        self.data_t: list[float] = []
        self.step_t: list[float] = []

    def step(self, timed: bool) -> None:
        t0 = time.perf_counter()
        x, m, t = make_batch(sample_batch(self.sets, np.ones(1), self.batch, self.rng)[0], self.rng, config=self.config)
        if self.channels_last:
            x, m = x.contiguous(memory_format=torch.channels_last), m.contiguous(memory_format=torch.channels_last)
        t1 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.net(x, m)
        loss = F.binary_cross_entropy_with_logits(logits.float(), t)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        t2 = time.perf_counter()
        if timed:
            self.data_t.append(t1 - t0)
            self.step_t.append(t2 - t1)

    def row(self) -> dict:
        d, s = statistics.median(self.data_t), statistics.median(self.step_t)
        return {"variant": self.name, "data_ms": round(1000 * d, 1), "step_ms": round(1000 * s, 1),
                "patches_per_s": round(self.batch / (d + s), 1)}


def run(names: list[str], preset: str, iters: int, batch: int, input_size: int) -> list[dict]:
    """Three warm-up steps, then ``iters`` timed steps of each variant, alternating."""
    variants = [Variant(n, preset, batch, input_size) for n in names]
    for it in range(iters + 3):
        for v in variants:
            v.step(timed=it >= 3)
    return [v.row() for v in variants]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--preset", default="mobilenet_v2")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--variants", default="fp32,bf16,channels_last,bf16+channels_last,"
                                          "bf16+channels_last+bf16-depthwise")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = run(args.variants.split(","), args.preset, args.iters, args.batch, args.input_size)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{args.preset}, batch {args.batch}, input {args.input_size}, {args.threads} threads")
    for r in rows:
        print(f"{r['variant']:<34} data {r['data_ms']:>7.1f} ms  step {r['step_ms']:>7.1f} ms  "
              f"{r['patches_per_s']:>7.1f} patches/s")


if __name__ == "__main__":
    main()
