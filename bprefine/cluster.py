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


class ShardRefiner:
    """A Ray Data callable class: one Refiner per actor; each call refines whole shards and writes them."""

    def __init__(self, out_dir: str, refiner_kwargs: dict[str, Any], threads: int = 1) -> None:
        import torch

        from bprefine.refine import Refiner

        torch.set_num_threads(threads)  # this actor's process: as many threads as CPUs it was given
        self.out = Path(out_dir)
        self.refiner = Refiner(**refiner_kwargs)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from bprefine.data.images import atomic_path, read_image, read_mask, write_mask

        done, counts, seconds = [], [], []
        for shard, pairs in zip(batch["shard"], batch["pairs"]):
            t = time.perf_counter()
            names = []
            for image_path, mask_path in pairs:
                image, mask = read_image(image_path), read_mask(mask_path)
                if mask.shape != image.shape[:2]:
                    raise ValueError(f"{mask_path}: mask is {mask.shape} but image {Path(image_path).name} is "
                                     f"{image.shape[:2]}")
                write_mask(self.out / Path(mask_path).name, self.refiner.refine(image, mask))
                names.append(Path(mask_path).name)
            with atomic_path(self.out / MARKERS / f"{shard}.json") as tmp:  # the shard is done once this exists
                tmp.write_text(json.dumps({"shard": shard, "files": names}))
            done.append(shard)
            counts.append(len(names))
            seconds.append(time.perf_counter() - t)
        return {"shard": done, "images": counts, "seconds": seconds}


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
    import ray

    from bprefine.cli.common import check_out_dir, mask_pairs

    images_dir, masks_dir, out = Path(images_dir), Path(masks_dir), Path(out_dir)
    pairs = mask_pairs(images_dir, masks_dir)
    check_out_dir(out, masks_dir, images_dir)
    out.mkdir(parents=True, exist_ok=True)
    shards = shard_pairs(pairs, shard_size)
    todo = pending_shards(shards, out)
    stats = {"shards": len(shards), "skipped": len(shards) - len(todo), "images": 0, "seconds": 0.0}
    if not todo:
        return stats
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        n = workers or max(int(ray.cluster_resources().get("CPU", 1)), 1)
        kwargs = {"model": "default"} | (refiner_kwargs or {})
        t = time.perf_counter()
        ds = ray.data.from_items(todo, override_num_blocks=len(todo))
        ds = ds.map_batches(ShardRefiner, fn_constructor_kwargs={"out_dir": str(out), "refiner_kwargs": kwargs},
                            batch_size=1, concurrency=min(n, len(todo)), num_cpus=1)
        for row in ds.iter_rows():
            stats["images"] += int(row["images"])
        stats["seconds"] = time.perf_counter() - t
    finally:
        if started:
            ray.shutdown()
    stats["images_per_s"] = stats["images"] / stats["seconds"] if stats["seconds"] else 0.0
    return stats


class InstanceShardRefiner:
    """A Ray Data callable class for COCO instance results: one Refiner per actor; each shard (a list of
    results, all of its images) is refined and written as one JSON file."""

    def __init__(self, images_dir: str, image_info: str, out_dir: str, refiner_kwargs: dict[str, Any],
                 threads: int = 1) -> None:
        import torch

        from bprefine.data.coco import load_image_info
        from bprefine.refine import Refiner

        torch.set_num_threads(threads)
        self.images = Path(images_dir)
        self.infos = load_image_info(image_info)
        self.out = Path(out_dir)
        self.refiner = Refiner(**refiner_kwargs)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from bprefine.cli.refine import refine_results
        from bprefine.data.coco import write_json

        done, counts = [], []
        for shard, source in zip(batch["shard"], batch["source"]):
            results = json.loads(Path(source).read_text()) if isinstance(source, str) else json.loads(source[0])
            refined = refine_results(self.refiner, self.images, results, self.infos, Path(str(shard)))
            write_json(self.out / f"{shard}.json", refined)  # atomic: the shard is done once this exists
            done.append(shard)
            counts.append(len(refined))
        return {"shard": done, "results": counts}


def instance_shards(pred: str | Path | list[str | Path], shard_images: int = 8) -> list[dict[str, Any]]:
    """Shards of COCO results: each file of a list is one shard (named by its stem); a single file is split
    into shards of ``shard_images`` images (named by position), entries kept in their order."""
    from bprefine.data.coco import load_results

    if isinstance(pred, (list, tuple)):
        for p in pred:
            load_results(p)  # clear errors before any work
        return [{"shard": Path(p).stem, "source": str(p)} for p in pred]
    results = load_results(pred)
    order: list = []
    for entry in results:
        if entry["image_id"] not in order:
            order.append(entry["image_id"])
    groups = [set(order[k : k + shard_images]) for k in range(0, len(order), shard_images)]
    return [{"shard": f"{k:05d}", "source": [json.dumps([e for e in results if e["image_id"] in g])]}
            for k, g in enumerate(groups)]


def refine_instances_ray(images_dir: str | Path, pred: str | Path | list[str | Path], image_info: str | Path,
                         out_dir: str | Path, *, address: str | None = None, workers: int | None = None,
                         shard_images: int = 8, refiner_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Refine COCO instance results on Ray: one refined JSON per shard in ``out_dir`` (written atomically;
    a rerun skips shards whose JSON exists). ``pred``: one results JSON (split per image) or a list of them."""
    import ray

    from bprefine.data.coco import image_id_of, load_image_info, load_results

    out = Path(out_dir)
    infos = load_image_info(image_info)
    for path in pred if isinstance(pred, (list, tuple)) else [pred]:
        for k, entry in enumerate(load_results(path)):  # every image id checked before any work
            image_id_of(entry, f"{path}: entry {k}", infos)
    shards = instance_shards(pred, shard_images)
    out.mkdir(parents=True, exist_ok=True)
    todo = [s for s in shards if not (out / f"{s['shard']}.json").is_file()]
    stats = {"shards": len(shards), "skipped": len(shards) - len(todo), "results": 0, "seconds": 0.0}
    if not todo:
        return stats
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        n = workers or max(int(ray.cluster_resources().get("CPU", 1)), 1)
        kwargs = {"model": "default"} | (refiner_kwargs or {})
        t = time.perf_counter()
        ds = ray.data.from_items(todo, override_num_blocks=len(todo))
        ds = ds.map_batches(InstanceShardRefiner, batch_size=1, concurrency=min(n, len(todo)), num_cpus=1,
                            fn_constructor_kwargs={"images_dir": str(images_dir), "image_info": str(image_info),
                                                   "out_dir": str(out), "refiner_kwargs": kwargs})
        for row in ds.iter_rows():
            stats["results"] += int(row["results"])
        stats["seconds"] = time.perf_counter() - t
    finally:
        if started:
            ray.shutdown()
    return stats
