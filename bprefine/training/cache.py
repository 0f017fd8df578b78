"""The training patch cache: one ``.npz`` shard per source, rebuilt only when its recipe changes.

Each shard ``{train,val}_<i>.npz`` has a manifest ``.json`` holding the key it was built under (the
source, patch geometry, seed and extraction options); a shard whose manifest differs is rebuilt.
"""

from __future__ import annotations

import json
from pathlib import Path

from bprefine.data.images import atomic_path
from bprefine.training.config import TrainConfig
from bprefine.training.sources import ExtractOptions, build_patches


def extract_options(config: TrainConfig) -> ExtractOptions:
    return ExtractOptions(config.nms_threshold, config.border_as_contour, config.drop_border_full)


def cache_key(config: TrainConfig, index: int, val: bool) -> dict:
    src = (config.val_sources if val else config.sources)[index]
    m = config.model
    return {"source": src.__dict__, "patch_size": m.patch_size, "padding": m.padding, "seed": config.seed,
            "extract": extract_options(config).__dict__}


def load_or_build(config: TrainConfig, cache: Path, *, val: bool, main: bool) -> list[Path]:
    """Shard paths of every (val) source under ``cache``; the main process builds those missing or stale."""
    sources = config.val_sources if val else config.sources
    out = []
    for i, source in enumerate(sources):
        shard = cache / f"{'val' if val else 'train'}_{i}.npz"
        manifest = shard.with_suffix(".json")
        key = cache_key(config, i, val)
        fresh = shard.is_file() and manifest.is_file() and json.loads(manifest.read_text()) == key
        if main and not fresh:
            ps = build_patches(source, model=config.model, options=extract_options(config), seed=config.seed,
                               workers=config.workers)
            cache.mkdir(parents=True, exist_ok=True)
            ps.save(shard)
            with atomic_path(manifest) as tmp:
                tmp.write_text(json.dumps(key))
        out.append(shard)
    return out
