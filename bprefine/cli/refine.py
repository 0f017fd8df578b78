"""``bprefine refine``: instance (COCO), class-agnostic (PNG), semantic and panoptic refinement."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from bprefine.cli.common import BackgroundWriter, Group, make_refiner, progress, read_ahead, refiner_options
from bprefine.data.coco import image_id_of, load_image_info, load_results, write_json
from bprefine.data.folders import check_out_dir, check_out_file, check_same_size, mask_pairs
from bprefine.data.images import read_image, staged_dir, write_mask
from bprefine.tasks.files import read_pair, refine_coco_results, refine_mask_file


@click.group(cls=Group)
def refine() -> None:
    """Refine instance (COCO), class-agnostic (PNG), semantic and panoptic predictions."""


@refine.command("instances")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), required=True, help="Image folder.")
@click.option("--pred", type=click.Path(path_type=Path), required=True, help="COCO results JSON to refine.")
@click.option("--image-info", type=click.Path(path_type=Path), required=True,
              help="Any COCO JSON with an 'images' list (id, file_name, height, width).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Refined COCO results JSON.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              help="Run on Ray (needs bprefine[ray]); shards go to OUT.shards/ and are merged into OUT.")
@click.option("--workers", type=click.IntRange(1), default=None, help="Ray actors, one CPU each [all CPUs].")
@refiner_options
def refine_instances_cmd(images_dir: Path, pred: Path, image_info: Path, out: Path, ray_address: str | None,
                         workers: int | None, **opts) -> None:
    """Refine COCO instance results: same entries, same order, refined RLE, bbox and area recomputed."""
    check_out_file(out, pred, image_info)
    if ray_address is not None:
        _refine_instances_on_ray(images_dir, pred, image_info, out, ray_address, workers, opts)
        return
    infos = load_image_info(image_info)
    results = load_results(pred)
    n_images = len({image_id_of(e, f"{pred}: entry {k}", infos) for k, e in enumerate(results)})
    refiner = make_refiner(**opts)
    refined = refine_coco_results(refiner, images_dir, results, infos, pred, progress=progress)
    write_json(out, refined)
    click.echo(f"wrote {len(refined)} refined results for {n_images} images to {out}")


@refine.command("masks")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), required=True, help="Image folder.")
@click.option("--masks", "masks_dir", type=click.Path(path_type=Path), required=True,
              help="Folder of binary mask PNGs named like the images (0/255, 0/1 or 1-bit).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for refined 0/255 PNGs.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              help="Run on Ray: --ray alone starts a local Ray; --ray ADDRESS joins a cluster (needs bprefine[ray]).")
@click.option("--workers", type=click.IntRange(1), default=None, help="Ray actors, one CPU each [all CPUs].")
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="Processes on this machine, one thread each (the CPU-side work of one process does not use a "
                   "second core fully; --jobs 2 on 2 cores: docs/benchmarks.md).")
@refiner_options
def refine_masks_cmd(images_dir: Path, masks_dir: Path, out: Path, ray_address: str | None, workers: int | None,
                     jobs: int, **opts) -> None:
    """Refine one class-agnostic mask per image; outputs keep the mask file names."""
    if ray_address is not None:
        _refine_masks_on_ray(images_dir, masks_dir, out, ray_address, workers, opts)
        return
    pairs = mask_pairs(images_dir, masks_dir)
    check_out_dir(out, masks_dir, images_dir)
    if jobs > 1:
        _refine_masks_in_processes(pairs, out, jobs, opts)
        return
    refiner = make_refiner(**opts)
    groups = _groups(pairs, IMAGES_PER_BATCH)
    bar = progress(pairs, "masks")
    with staged_dir(out) as stage, BackgroundWriter() as writer:
        # Groups of images share network batches; reading and writing run beside the refinement.
        for names, group in zip(groups, read_ahead(_read_pairs, groups)):
            refined = refiner.refine_batch([image for image, _ in group], [mask[None] for _, mask in group])
            for (_, mask_path), new in zip(names, refined):
                writer.submit(write_mask, stage / mask_path.name, new[0])
            bar.update(len(group))
    bar.close()
    click.echo(f"wrote {len(pairs)} refined masks to {out}")


_WORKER: dict = {}


def _init_worker(opts: dict) -> None:
    import torch

    torch.set_num_threads(1)  # this worker process only: one core each
    _WORKER["refiner"] = make_refiner(**opts)


def _refine_group(args: tuple[list[tuple[Path, Path]], Path]) -> int:
    group, stage = args
    for image_path, mask_path in group:
        refine_mask_file(_WORKER["refiner"], image_path, mask_path, stage / mask_path.name)
    return len(group)


def _refine_masks_in_processes(pairs: list[tuple[Path, Path]], out: Path, jobs: int, opts: dict) -> None:
    """``jobs`` worker processes (spawned, one Refiner and one thread each) refine groups of images into the
    staging folder; the files are the same as one process writes."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    bar = progress(pairs, "masks")
    with staged_dir(out) as stage, ProcessPoolExecutor(jobs, mp_context=get_context("spawn"),
                                                       initializer=_init_worker, initargs=(opts,)) as pool:
        for n in pool.map(_refine_group, [(g, stage) for g in _groups(pairs, IMAGES_PER_BATCH)]):
            bar.update(n)
    bar.close()
    click.echo(f"wrote {len(pairs)} refined masks to {out} ({jobs} processes)")


def _ray_kwargs(opts: dict) -> dict:
    """The Refiner's arguments for the Ray actors: the refine options are named after them."""
    return dict(opts)


def _refine_instances_on_ray(images_dir: Path, pred: Path, image_info: Path, out: Path, address: str,
                             workers: int | None, opts: dict) -> None:
    try:
        import ray  # noqa: F401

        from bprefine.cluster import refine_instances_ray
    except ImportError:
        raise ValueError("--ray needs Ray: pip install 'bprefine[ray]'") from None
    shards = out.with_name(out.name + ".shards")
    stats = refine_instances_ray(images_dir, pred, image_info, shards, address=None if address == "local" else address,
                                 workers=workers, refiner_kwargs=_ray_kwargs(opts))
    import json

    merged = [e for f in sorted(shards.glob("*.json")) for e in json.loads(f.read_text())]
    write_json(out, merged)
    click.echo(f"wrote {len(merged)} refined results to {out} on Ray ({stats['shards']} shards in {shards}, "
               f"{stats['skipped']} already done)")


def _refine_masks_on_ray(images_dir: Path, masks_dir: Path, out: Path, address: str, workers: int | None,
                         opts: dict) -> None:
    try:
        from bprefine.cluster import refine_masks_ray
        import ray  # noqa: F401
    except ImportError:
        raise ValueError("--ray needs Ray: pip install 'bprefine[ray]'") from None
    stats = refine_masks_ray(images_dir, masks_dir, out, address=None if address == "local" else address,
                             workers=workers, refiner_kwargs=_ray_kwargs(opts))
    click.echo(f"wrote {stats['images']} refined masks to {out} on Ray ({stats['shards']} shards, "
               f"{stats['skipped']} already done; {stats.get('images_per_s', 0):.2f} images/s)")


IMAGES_PER_BATCH = 4  # images whose patches share network batches in the folder commands


def _groups(items: list, size: int) -> list[list]:
    return [items[k : k + size] for k in range(0, len(items), size)]


def _read_pairs(group: list[tuple[Path, Path]]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [read_pair(image_path, mask_path) for image_path, mask_path in group]


@refine.command("semantic")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), required=True, help="Image folder.")
@click.option("--labels", "labels_dir", type=click.Path(path_type=Path), required=True,
              help="Folder of label PNGs (uint8 or uint16) named like the images.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for refined label PNGs.")
@click.option("--num-classes", type=click.IntRange(1), required=True)
@click.option("--ignore-index", type=int, default=None, help="Label left untouched (e.g. 255).")
@click.option("--probs", "probs_dir", type=click.Path(path_type=Path), default=None,
              help="Optional folder of <stem>.npy per-class probabilities (num_classes x H x W) for the mask channel.")
@refiner_options
def refine_semantic_cmd(images_dir: Path, labels_dir: Path, out: Path, num_classes: int, ignore_index: int | None,
                        probs_dir: Path | None, **opts) -> None:
    """Refine semantic label maps: every class mask is refined, one label per pixel, ignore untouched."""
    from bprefine.data.images import read_label_map, write_label_map
    from bprefine.tasks.semantic import check_probs

    pairs = mask_pairs(images_dir, labels_dir)
    check_out_dir(out, labels_dir, images_dir)
    refiner = make_refiner(**opts)
    with staged_dir(out) as stage:
        for image_path, label_path in progress(pairs, "maps"):
            image, labels = read_image(image_path), read_label_map(label_path)
            check_same_size(image, labels, image_path, label_path)
            probs = None
            if probs_dir:
                probs_path = probs_dir / f"{label_path.stem}.npy"
                probs = _load_probs(probs_path)
                try:
                    probs = check_probs(probs, num_classes, image.shape[:2])
                except ValueError as err:
                    raise ValueError(f"{probs_path}: {err}") from None
            try:
                refined = refiner.refine_semantic(image, labels, num_classes, ignore_index, probs=probs)
            except ValueError as err:
                raise ValueError(f"{label_path}: {err}") from None
            write_label_map(stage / label_path.name, refined)
    click.echo(f"wrote {len(pairs)} refined label maps to {out}")


def _load_probs(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: probability file not found")
    try:
        return np.load(path, allow_pickle=False)  # plain arrays only: nothing is unpickled
    except (ValueError, OSError) as err:
        raise ValueError(f"{path}: cannot read probabilities ({err})") from None


@refine.command("panoptic")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), required=True, help="Image folder.")
@click.option("--pred-json", type=click.Path(path_type=Path), required=True, help="COCO panoptic JSON.")
@click.option("--pred-dir", type=click.Path(path_type=Path), required=True, help="Its PNG folder.")
@click.option("--out-json", type=click.Path(path_type=Path), required=True)
@click.option("--out-dir", type=click.Path(path_type=Path), required=True)
@click.option("--categories", "categories_json", type=click.Path(path_type=Path), default=None,
              help="COCO categories JSON (or a panoptic ground-truth JSON) whose 'isthing' marks the things: "
                   "things are then refined as instances over the stuff (see docs/results.md).")
@refiner_options
def refine_panoptic_cmd(images_dir: Path, pred_json: Path, pred_dir: Path, out_json: Path, out_dir: Path,
                        categories_json: Path | None, **opts) -> None:
    """Refine COCO-format panoptic predictions (also Cityscapes panoptic): PNG ids + segments_info."""
    from bprefine.data.images import safe_name
    from bprefine.data.panoptic import (
        check_categories_known,
        load_categories,
        load_panoptic_json,
        read_panoptic_png,
        write_panoptic_png,
    )

    categories = None if categories_json is None else load_categories(categories_json)
    things = None if categories is None else {c for c, isthing in categories.items() if isthing}
    data, anns = load_panoptic_json(pred_json)
    if categories is not None:
        for ann in anns:
            check_categories_known(ann["segments_info"], categories, f"{pred_json}: {ann['file_name']}")
    check_out_dir(out_dir, pred_dir, images_dir)
    check_out_file(out_json, pred_json)
    names = _panoptic_image_names(data, pred_json)
    refiner = make_refiner(**opts)
    refined_anns = []
    with staged_dir(out_dir) as stage:
        for ann in progress(anns, "images"):
            png = pred_dir / ann["file_name"]
            image_name = names.get(ann.get("image_id"), Path(ann["file_name"]).stem + ".jpg")
            image_path = images_dir / safe_name(image_name, str(pred_json))
            image, ids = read_image(image_path), read_panoptic_png(png)
            check_same_size(image, ids, image_path, png)
            try:
                new_ids, segments = refiner.refine_panoptic(image, ids, ann["segments_info"], things)
            except ValueError as err:
                raise ValueError(f"{png}: {err}") from None
            write_panoptic_png(stage / ann["file_name"], new_ids)
            refined_anns.append(dict(ann, segments_info=segments))
        write_json(out_json, dict(data, annotations=refined_anns))
    click.echo(f"wrote {len(refined_anns)} refined panoptic predictions to {out_json} and {out_dir}")


def _panoptic_image_names(data: dict, pred_json: Path) -> dict:
    """image_id -> image file name, from the JSON's "images" list when it has one."""
    out = {}
    for im in data.get("images", []) or []:
        if isinstance(im, dict) and "id" in im and "file_name" in im:
            out[im["id"]] = im["file_name"]
    return out


