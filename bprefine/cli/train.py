"""``bprefine train``, ``bprefine patches`` and ``bprefine simulate``: training on your own data."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bprefine.cli.common import Group, progress
from bprefine.data.folders import check_out_dir, check_out_file, png_files
from bprefine.data.coco import (
    decode_segmentation,
    load_image_info,
    refined_entry,
    write_json,
)
from bprefine.data.images import read_mask, staged_dir, write_mask


@click.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Training YAML (see configs/); key=value arguments override it.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run folder: checkpoints, log, patches.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.argument("overrides", nargs=-1)
def train(config_path: Path | None, out: Path, resume: bool, overrides: tuple[str, ...]) -> None:
    """Train a refinement network. Runs under torchrun for DDP (gloo on CPU, NCCL on GPU).

    Example: bprefine train --config configs/ccp.yaml --out runs/ccp iterations=2000 model.input_size=128
    """
    from bprefine.training import load_train_config
    from bprefine.training import train as run_training

    config = load_train_config(config_path, list(overrides))
    if (out / "last_state.json").exists() and not resume:
        raise ValueError(f"{out}: holds a checkpoint already; pass --resume to continue it or choose another --out")
    if resume and not (out / "last_state.json").exists():
        raise ValueError(f"{out}: no checkpoint to resume (last_state.json is missing); drop --resume to start")
    model = run_training(config, out)
    precision = json.loads((out / "train_config.json").read_text())["precision"]  # what "auto" resolved to
    click.echo(f"final model: {out / 'final.safetensors'} ({model.config.preset}, input {model.config.input_size}, "
               f"trained in {precision})")


@click.group(cls=Group)
def patches() -> None:
    """Training patch sets."""


@patches.command("build")
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the .npz shards.")
@click.argument("overrides", nargs=-1)
def patches_build(config_path: Path, out: Path, overrides: tuple[str, ...]) -> None:
    """Build (or reuse) the patch shards a training config needs, one .npz per source."""
    from bprefine.training import load_train_config
    from bprefine.training.cache import load_or_build
    from bprefine.training.patchset import PatchSet

    config = load_train_config(config_path, list(overrides))
    for val in (False, True):
        for shard in load_or_build(config, out, val=val, main=True):
            click.echo(f"{shard}: {len(PatchSet.load(shard))} patches")


@click.group(cls=Group)
def simulate() -> None:
    """Make seeded coarse predictions from ground truth, for data without model outputs."""


@simulate.command("masks")
@click.option("--gt", "gt_dir", type=click.Path(path_type=Path), required=True, help="Ground-truth mask PNGs.")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
def simulate_masks(gt_dir: Path, out: Path, seed: int) -> None:
    """Class-agnostic masks through a random low-resolution predictor (stride 2-16)."""
    from bprefine.simulate import random_low_res, rng_for

    paths = png_files(gt_dir)
    if not paths:
        raise FileNotFoundError(f"{gt_dir}: no PNG masks found")
    check_out_dir(out, gt_dir)
    with staged_dir(out) as stage:
        for p in progress(paths, "masks"):
            write_mask(stage / p.name, random_low_res(read_mask(p), rng=rng_for(seed, p.name)))
    click.echo(f"wrote {len(paths)} simulated masks to {out}")


@simulate.command("instances")
@click.option("--gt", "gt_json", type=click.Path(path_type=Path), required=True, help="COCO ground-truth JSON.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="COCO results JSON to write.")
@click.option("--seed", type=int, default=0, show_default=True)
def simulate_instances(gt_json: Path, out: Path, seed: int) -> None:
    """COCO results from a simulated Mask R-CNN-like mask head (score 1.0 per ground-truth instance)."""
    from bprefine.data.coco import load_ground_truth
    from bprefine.simulate import mask_head, rng_for

    check_out_file(out, gt_json)
    data = load_ground_truth(gt_json)  # checked: ids, categories, segmentations
    infos = load_image_info(gt_json)
    results = []
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        info = infos[ann["image_id"]]
        gt = decode_segmentation(ann["segmentation"], info.height, info.width)
        coarse = mask_head(gt, rng=rng_for(seed, str(ann["id"])))
        results.append(refined_entry({"image_id": info.id, "category_id": ann["category_id"], "score": 1.0}, coarse))
    write_json(out, results)
    click.echo(f"wrote {len(results)} simulated instance masks to {out}")


@simulate.command("semantic")
@click.option("--labels", "labels_dir", type=click.Path(path_type=Path), required=True, help="Label PNGs.")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--num-classes", type=click.IntRange(1), required=True)
@click.option("--ignore-index", type=int, default=None)
@click.option("--seed", type=int, default=0, show_default=True)
def simulate_semantic(labels_dir: Path, out: Path, num_classes: int, ignore_index: int | None, seed: int) -> None:
    """Label maps from simulated low-resolution logits (output stride 8 or 16) and an argmax."""
    from bprefine.data.images import read_label_map, write_label_map
    from bprefine.simulate import rng_for, semantic_low_res

    paths = png_files(labels_dir)
    if not paths:
        raise FileNotFoundError(f"{labels_dir}: no label PNGs found")
    check_out_dir(out, labels_dir)
    with staged_dir(out) as stage:
        for p in progress(paths, "maps"):
            labels = read_label_map(p)
            coarse = semantic_low_res(labels, num_classes=num_classes, rng=rng_for(seed, p.name),
                                      ignore_index=ignore_index)
            write_label_map(stage / p.name, coarse)
    click.echo(f"wrote {len(paths)} simulated label maps to {out}")


