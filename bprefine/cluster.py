"""Refinement of whole datasets on a Ray cluster (``pip install 'bprefine[ray]'``).

A Ray Data pipeline: the work is cut into shards (a few images each), ``map_batches`` sends each shard to
a pool of actors that each hold one ``Refiner`` (built once per worker), and every shard writes its own
outputs atomically, then a marker ``.bprefine-shards/<shard>.json``. A rerun skips the shards whose marker
exists, so a killed job resumes where it stopped. The outputs are the same files, byte for byte, as the
single-process ``bprefine refine masks`` writes.

    from bprefine.cluster import refine_masks_ray
    stats = refine_masks_ray("images/", "masks/", "out/", address=None, workers=2)   # None: a local Ray

COCO instance results: ``refine_instances_ray`` takes one results JSON (split per image into shards) or a
list of results files (one shard each) and writes one refined JSON per shard.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

MARKERS = ".bprefine-shards"


def shard_pairs(pairs: list[tuple[Path, Path]], shard_size: int) -> list[dict[str, Any]]:
    """Shards of (image, mask) pairs, named by their position: ``{"shard": "00000", "pairs": [[img, mask], ...]}``."""
    return [{"shard": f"{k // shard_size:05d}", "pairs": [[str(i), str(m)] for i, m in pairs[k : k + shard_size]]}
            for k in range(0, len(pairs), shard_size)]


class _Actor:
    """Base of the Ray Data callable classes: one Refiner per actor process, one thread per CPU it was given."""

    def __init__(self, refiner_kwargs: dict[str, Any], threads: int = 1) -> None:
        import torch

        from bprefine.refine import Refiner

        torch.set_num_threads(threads)  # this actor's process only
        self.refiner = Refiner(**refiner_kwargs)


class ShardRefiner(_Actor):
    """Refines whole shards of (image, mask) pairs, writing each mask and then the shard's marker."""

    def __init__(self, out_dir: str, refiner_kwargs: dict[str, Any], threads: int = 1) -> None:
        super().__init__(refiner_kwargs, threads)
        self.out = Path(out_dir)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from bprefine.data.images import atomic_path
        from bprefine.tasks.files import refine_mask_file

        done, counts = [], []
        for shard, pairs in zip(batch["shard"], batch["pairs"]):
            names = []
            for image_path, mask_path in pairs:
                refine_mask_file(self.refiner, Path(image_path), Path(mask_path), self.out / Path(mask_path).name)
                names.append(Path(mask_path).name)
            with atomic_path(self.out / MARKERS / f"{shard}.json") as tmp:  # the shard is done once this exists
                tmp.write_text(json.dumps({"shard": shard, "files": names}))
            done.append(shard)
            counts.append(len(names))
        return {"shard": done, "count": counts}


class InstanceShardRefiner(_Actor):
    """Refines shards of COCO results (all entries of their images), one JSON file per shard."""

    def __init__(self, images_dir: str, image_info: str, out_dir: str, refiner_kwargs: dict[str, Any],
                 threads: int = 1) -> None:
        from bprefine.data.coco import load_image_info

        super().__init__(refiner_kwargs, threads)
        self.images = Path(images_dir)
        self.infos = load_image_info(image_info)
        self.out = Path(out_dir)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from bprefine.data.coco import write_json
        from bprefine.tasks.files import refine_coco_results

        done, counts = [], []
        for shard, source in zip(batch["shard"], batch["source"]):
            results = json.loads(Path(source).read_text()) if isinstance(source, str) else json.loads(source[0])
            refined = refine_coco_results(self.refiner, self.images, results, self.infos, Path(str(shard)))
            write_json(self.out / f"{shard}.json", refined)  # atomic: the shard is done once this exists
            done.append(shard)
            counts.append(len(refined))
        return {"shard": done, "count": counts}


def _run_on_ray(todo: list[dict[str, Any]], actor: type, actor_kwargs: dict[str, Any], *, address: str | None,
                workers: int | None, refiner_kwargs: dict[str, Any] | None) -> tuple[int, float]:
    """Run ``todo`` shards through a pool of ``actor``s (one CPU each); (items done, seconds). Starts a Ray
    (local, or joining ``address``) unless one is running, and stops only the one it started."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        n = workers or max(int(ray.cluster_resources().get("CPU", 1)), 1)
        kwargs = actor_kwargs | {"refiner_kwargs": {"model": "default"} | (refiner_kwargs or {})}
        t = time.perf_counter()
        ds = ray.data.from_items(todo, override_num_blocks=len(todo))
        ds = ds.map_batches(actor, fn_constructor_kwargs=kwargs, batch_size=1, concurrency=min(n, len(todo)),
                            num_cpus=1)
        count = sum(int(row["count"]) for row in ds.iter_rows())
        return count, time.perf_counter() - t
    finally:
        if started:
            ray.shutdown()


def pending_shards(shards: list[dict[str, Any]], out_dir: Path) -> list[dict[str, Any]]:
    """The shards without a completion marker in ``out_dir``."""
    return [s for s in shards if not (out_dir / MARKERS / f"{s['shard']}.json").is_file()]


def refine_masks_ray(images_dir: str | Path, masks_dir: str | Path, out_dir: str | Path, *,
                     address: str | None = None, workers: int | None = None, shard_size: int = 8,
                     refiner_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Refine a folder of (image, mask PNG) pairs on Ray; returns counts and images/s.

    ``address``: a running cluster's address (``"auto"``, ``"ray://host:10001"``), or None for a local Ray
    using this machine's CPUs. ``workers``: actors, one CPU each (default: the cluster's CPUs).
    """
    from bprefine.data.folders import check_out_dir, mask_pairs

    images_dir, masks_dir, out = Path(images_dir), Path(masks_dir), Path(out_dir)
    pairs = mask_pairs(images_dir, masks_dir)
    check_out_dir(out, masks_dir, images_dir)
    out.mkdir(parents=True, exist_ok=True)
    shards = shard_pairs(pairs, shard_size)
    todo = pending_shards(shards, out)
    stats = {"shards": len(shards), "skipped": len(shards) - len(todo), "images": 0, "seconds": 0.0}
    if todo:
        stats["images"], stats["seconds"] = _run_on_ray(todo, ShardRefiner, {"out_dir": str(out)}, address=address,
                                                        workers=workers, refiner_kwargs=refiner_kwargs)
    stats["images_per_s"] = stats["images"] / stats["seconds"] if stats["seconds"] else 0.0
    return stats


def instance_shards(pred: str | Path | list[str | Path], results: list[dict] | None = None,
                    shard_images: int = 8) -> list[dict[str, Any]]:
    """Shards of COCO results: each file of a list is one shard (named by its stem); a single file (its
    ``results``) is split into shards of ``shard_images`` images (named by position), entries in order."""
    if isinstance(pred, (list, tuple)):
        return [{"shard": Path(p).stem, "source": str(p)} for p in pred]
    position = {image_id: k // shard_images for k, image_id in enumerate(dict.fromkeys(e["image_id"] for e in results))}
    groups: list[list[dict]] = [[] for _ in range(max(position.values(), default=-1) + 1)]
    for entry in results:
        groups[position[entry["image_id"]]].append(entry)
    return [{"shard": f"{k:05d}", "source": [json.dumps(g)]} for k, g in enumerate(groups)]


def refine_instances_ray(images_dir: str | Path, pred: str | Path | list[str | Path], image_info: str | Path,
                         out_dir: str | Path, *, address: str | None = None, workers: int | None = None,
                         shard_images: int = 8, refiner_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Refine COCO instance results on Ray: one refined JSON per shard in ``out_dir`` (written atomically;
    a rerun skips shards whose JSON exists). ``pred``: one results JSON (split per image) or a list of them."""
    from bprefine.data.coco import image_id_of, load_image_info, load_results

    out = Path(out_dir)
    infos = load_image_info(image_info)
    loaded = {}
    for path in pred if isinstance(pred, (list, tuple)) else [pred]:
        loaded[str(path)] = load_results(path)
        for k, entry in enumerate(loaded[str(path)]):  # every image id checked before any work
            image_id_of(entry, f"{path}: entry {k}", infos)
    single = None if isinstance(pred, (list, tuple)) else loaded[str(pred)]
    shards = instance_shards(pred, single, shard_images)
    out.mkdir(parents=True, exist_ok=True)
    todo = [s for s in shards if not (out / f"{s['shard']}.json").is_file()]
    stats = {"shards": len(shards), "skipped": len(shards) - len(todo), "results": 0, "seconds": 0.0}
    if todo:
        actor_kwargs = {"images_dir": str(images_dir), "image_info": str(image_info), "out_dir": str(out)}
        stats["results"], stats["seconds"] = _run_on_ray(todo, InstanceShardRefiner, actor_kwargs, address=address,
                                                         workers=workers, refiner_kwargs=refiner_kwargs)
    return stats
