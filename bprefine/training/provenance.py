"""What a trained model records about how it was made (stored in its JSON config)."""

from __future__ import annotations

from pathlib import Path

from bprefine.training.config import TrainConfig


def describe_sources(config: TrainConfig) -> str:
    parts = []
    for s in config.sources:
        coarse = f"coarse {Path(s.coarse).name}" if s.coarse else f"simulated {s.simulate}"
        subset = (f" {s.stems}" if s.stems else "") + (f" #{s.indices}" if s.indices else "") \
            + (f" first {s.limit}" if s.limit else "")
        where = "/".join(Path(s.images).parts[-3:])
        mismatch = f", mismatch weight {s.mismatch_weight}" if s.mismatch_weight is not None else ""
        parts.append(f"{where}{subset} ({s.kind}, {coarse}, weight {s.weight}{mismatch})")
    return "; ".join(parts)


def provenance(config: TrainConfig, init: str, world: int) -> dict:
    return {"data": describe_sources(config), "iterations": config.iterations, "batch_size": config.batch_size,
            "seed": config.seed, "init": init, "processes": world, "nms_threshold": config.nms_threshold,
            "augmentation": config.augmentation, "mask_noise": config.mask_noise,
            "mismatch_weight": config.mismatch_weight, "precision": config.precision} \
        | ({"ema_decay": config.ema_decay} if config.ema_decay else {}) \
        | ({"quantization_aware": True} if config.quantization_aware else {})
