"""The training loop: SGD with poly decay and BCE on patches, read as setup, step, hooks.

Run as one process, or as several under ``torchrun`` (see ``distributed``). Only rank 0 writes
files. The concerns around the loop each have a module: ``cache`` (patch shards), ``batches`` and
``augment`` (inputs), ``checkpoint`` (exact resume), ``average`` (the moving average of the weights),
``quantsim`` (int8 rounding simulated in training), ``validation``, ``provenance``.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

import numpy as np
import torch
from tqdm import tqdm

from bprefine.data.images import atomic_path
from bprefine.model import RefinementModel, save_model
from bprefine.training.batches import make_batch, patch_loss, sample_batch
from bprefine.training.cache import load_or_build
from bprefine.training.average import WeightAverage
from bprefine.training.checkpoint import resume, resume_average, save_checkpoint, save_rng
from bprefine.training.config import TrainConfig
from bprefine.training.distributed import Dist, init_dist
from bprefine.training.init import init_net
from bprefine.training.patchset import PatchSet
from bprefine.training.precision import resolve_precision
from bprefine.training.provenance import provenance
from bprefine.training.quantsim import QuantSim
from bprefine.training.validation import validate


@dataclass
class _Run:
    """The state a training run carries from setup through its steps and hooks."""

    config: TrainConfig
    out: Path
    dist: Dist
    sets: list[PatchSet]
    val_sets: list[PatchSet]
    weights: np.ndarray  # per-source sampling weights, summing to 1
    net: torch.nn.Module  # the bare network (what checkpoints store)
    step_net: torch.nn.Module  # the network the step calls (DDP-wrapped under torchrun)
    opt: torch.optim.Optimizer
    rng: np.random.Generator
    init: str
    start: int
    average: WeightAverage | None = None  # the moving average of ``net`` (``TrainConfig.ema_decay`` > 0)
    quant: QuantSim | None = None  # int8 rounding simulated in the forward pass (``TrainConfig.quantization_aware``)

    def model(self) -> RefinementModel:
        return RefinementModel(self.config.model, self.net)

    def shipped_net(self) -> torch.nn.Module:
        """The weights the run validates and writes as ``iter_<N>`` / ``final``: the average, if kept."""
        return self.average.net if self.average is not None else self.net

    def rounded(self, net: torch.nn.Module, *, observe: bool) -> contextlib.AbstractContextManager:
        """The context ``net`` computes in: int8 rounding simulated where the run is quantization-aware."""
        return self.quant.applied(net, observe=observe) if self.quant is not None else contextlib.nullcontext()


def _load_patches(config: TrainConfig, out: Path, d: Dist) -> tuple[list[PatchSet], list[PatchSet]]:
    shards = load_or_build(config, out / "patches", val=False, main=d.main)
    val_shards = load_or_build(config, out / "patches", val=True, main=d.main)
    d.barrier()
    sets = [PatchSet.load(s) for s in shards]
    empty = [config.sources[i].images for i, s in enumerate(sets) if len(s) == 0]
    if empty:
        raise ValueError(f"no training patches from source(s) {empty}")
    return sets, [PatchSet.load(s) for s in val_shards]


def _setup(config: TrainConfig, out: Path) -> _Run:
    if not config.sources:
        raise ValueError("the training config lists no data sources")
    d = init_dist(config.device)
    config = replace(config, precision=resolve_precision(config.precision, d.device))  # "auto" -> fp32 / bf16
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    sets, val_sets = _load_patches(config, out, d)
    weights = np.asarray([s.weight for s in config.sources], np.float64)
    model, init = init_net(config)
    net = d.prepare(model.net)
    if config.channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    rng = np.random.default_rng([config.seed, d.rank])
    start = resume(out, net, opt, rng, d.rank)
    average = WeightAverage(net, config.ema_decay) if config.ema_decay else None
    if average is not None and start and not resume_average(out, average.net):
        raise ValueError(f"{out}: the checkpoint has no moving average (last_average.safetensors), "
                         f"but the config asks for ema_decay {config.ema_decay}")
    quant = QuantSim() if config.quantization_aware else None
    if quant is not None and start:
        quant.load(out)  # a checkpoint without ranges (quantization-aware from here on) observes them afresh
    if d.main:
        meta = config.to_json() | {"init": init, "world_size": d.world, "resumed_from": start}
        with atomic_path(out / "train_config.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=2))
    return _Run(config, out, d, sets, val_sets, weights / weights.sum(), net, d.wrap(net), opt, rng, init, start,
                average, quant)


def _mismatch_weights(config: TrainConfig, source: np.ndarray) -> float | torch.Tensor:
    """The loss weight of wrongly predicted pixels: the config's number, or (B,) one per patch where a
    source sets its own (``SourceConfig.mismatch_weight``)."""
    per_source = [config.mismatch_weight if s.mismatch_weight is None else s.mismatch_weight for s in config.sources]
    if len(set(per_source)) == 1:
        return per_source[0]
    return torch.tensor(per_source, dtype=torch.float32)[torch.from_numpy(source)]


def _step(run: _Run, it: int) -> float:
    """One SGD step at iteration ``it`` (poly learning rate); returns the loss."""
    c = run.config
    lr = c.lr * (1 - it / c.iterations) ** c.poly_power
    for group in run.opt.param_groups:
        group["lr"] = lr
    per_rank = max(c.batch_size // run.dist.world, 1)
    patches, source = sample_batch(run.sets, run.weights, per_rank, run.rng)
    x, m, t = make_batch(patches, run.rng, config=c.model, augmentation=c.augmentation, mask_noise=c.mask_noise)
    d = run.dist.device
    fmt = torch.channels_last if c.channels_last else torch.contiguous_format
    x, m, t = x.to(d, memory_format=fmt), m.to(d, memory_format=fmt), t.to(d)
    with torch.autocast(d.type, dtype=torch.bfloat16, enabled=c.precision == "bf16"), \
            run.rounded(run.net, observe=True):
        logits = run.step_net(x, m)
    loss = patch_loss(logits.float(), t, m, mismatch_weight=_mismatch_weights(c, source),
                      boundary_weight=c.boundary_weight, boundary_px=c.boundary_px)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    if run.average is not None:
        run.average.update(run.net, it)
    return loss.item()


def _hooks(run: _Run, done: int, end: int, loss: float, lr: float, elapsed: float) -> dict:
    """Logging, checkpointing and validation after iteration ``done``; the log record (may be empty)."""
    c = run.config
    record: dict = {}
    if (done - 1) % c.log_every == 0 or done == end:
        record = {"iter": done, "loss": round(loss, 5), "lr": lr, "elapsed_s": round(elapsed, 1)}
    if done % c.checkpoint_every == 0 or done == end:
        save_rng(run.out, run.dist.rank, done, run.rng)  # before the weights: last_state.json comes last
        if run.dist.main:
            if run.quant is not None:
                run.quant.save(run.out)
            average = RefinementModel(c.model, run.average.net) if run.average is not None else None
            save_checkpoint(run.out, run.model(), run.opt, done, average)
    if c.val_sources and (done % c.val_every == 0 or done == c.iterations) and run.dist.main:
        net = run.shipped_net()
        net.eval()
        with run.rounded(net, observe=False):  # quantization-aware: the figures of the rounded network
            record = record | {"iter": done} | validate(net, run.val_sets, c, run.dist.device)
        run.net.train()
    return record


def _finish(run: _Run, end: int) -> RefinementModel:
    run.net.eval()
    c = run.config
    net = run.shipped_net()
    if run.dist.main and end == c.iterations:
        final = replace(c.model, provenance=c.model.provenance | provenance(c, run.init, run.dist.world))
        save_model(RefinementModel(final, net), run.out / "final")
    return RefinementModel(c.model, net)


def train(config: TrainConfig, out_dir: str | Path, *, progress: bool = True, stop_at: int | None = None
          ) -> RefinementModel:
    """Train (or, if ``out_dir`` holds a checkpoint, resume from it) and return the final model.

    ``stop_at`` ends the run after that iteration (a checkpoint is written there); the learning-rate
    schedule still spans ``config.iterations``, so a later call continues the same run.
    """
    run = _setup(config, Path(out_dir))
    end = min(config.iterations, stop_at) if stop_at else config.iterations
    log: IO[str] | None = (run.out / "log.jsonl").open("a") if run.dist.main else None
    bar = tqdm(range(run.start, end), disable=not (progress and run.dist.main), desc="train",
               initial=run.start, total=end)
    t0 = time.time()
    try:
        for it in bar:
            loss = _step(run, it)
            lr = run.opt.param_groups[0]["lr"]
            record = _hooks(run, it + 1, end, loss, lr, time.time() - t0)
            if record and log:
                bar.set_postfix(loss=f"{loss:.4f}")
                log.write(json.dumps(record) + "\n")
                log.flush()
    finally:
        if log:
            log.close()
    return _finish(run, end)
