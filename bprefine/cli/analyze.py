"""``bprefine analyze``: oracle headroom, IoU scatter plots and before/after panels."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
from PIL import Image

from bprefine.cli.common import Group, json_flag, progress
from bprefine.data.folders import check_out_dir, check_same_size, check_writable, mask_pairs
from bprefine.data.coco import load_image_info, load_results
from bprefine.data.images import read_image, read_mask, staged_dir


@click.group(cls=Group)
def analyze() -> None:
    """The paper's analysis tools: oracle headroom, IoU scatter, overlay panels."""


@analyze.command("oracle")
@click.option("--gt", "gt_dir", type=click.Path(path_type=Path), required=True, help="Ground-truth mask PNGs.")
@click.option("--pred", "pred_dir", type=click.Path(path_type=Path), required=True, help="Coarse mask PNGs.")
@json_flag
def analyze_oracle(gt_dir: Path, pred_dir: Path, as_json: bool) -> None:
    """Replace predictions within d px of their boundaries by ground truth (d = 1, 2, 3, inf): the
    headroom any boundary refiner can reach on these masks (paper Table 1)."""

    from bprefine.analysis import ORACLE_DISTANCES, oracle_mask
    from bprefine.metrics.evaluate import (
        MASK_METRICS,
        mask_dir_pairs,
        mask_scores,
        mean_scores,
    )

    rows: dict[str, list] = {"pred": []} | {f"d={d}": [] for d in ORACLE_DISTANCES}
    for pred_path, gt_path in progress(mask_dir_pairs(gt_dir, pred_dir), "masks"):
        pred, gt = read_mask(pred_path), read_mask(gt_path)
        if pred.shape != gt.shape:
            raise ValueError(f"{pred_path}: mask is {pred.shape} but ground truth is {gt.shape}")
        rows["pred"].append(mask_scores(pred, gt))
        for d in ORACLE_DISTANCES:
            rows[f"d={d}"].append(mask_scores(oracle_mask(pred, gt, d), gt))
    _print_table({k: mean_scores(v) for k, v in rows.items()}, MASK_METRICS, as_json)


@analyze.command("oracle-instances")
@click.option("--gt", "gt_json", type=click.Path(path_type=Path), required=True, help="COCO ground-truth JSON.")
@click.option("--pred", "pred_json", type=click.Path(path_type=Path), required=True, help="COCO results JSON.")
@json_flag
def analyze_oracle_instances(gt_json: Path, pred_json: Path, as_json: bool) -> None:
    """The oracle study on COCO instances: each prediction repaired within d px of its boundary from its
    best-overlapping same-category ground truth (d = 1, 2, 3, inf), scored with the instance metrics."""
    from bprefine.analysis import ORACLE_DISTANCES, oracle_instances
    from bprefine.data.coco import checked_results, load_ground_truth
    from bprefine.metrics.instances import INSTANCE_METRICS, coco_from_dict, evaluate_instances

    gt = coco_from_dict(load_ground_truth(gt_json))
    results = checked_results(load_results(pred_json), load_image_info(gt_json), pred_json)
    table = {"pred": evaluate_instances(gt, results)}
    for d in ORACLE_DISTANCES:
        table[f"d={d}"] = evaluate_instances(gt, oracle_instances(gt, results, d))
    _print_table(table, INSTANCE_METRICS, as_json)


def _print_table(table: dict[str, dict[str, float]], keys: tuple[str, ...], as_json: bool) -> None:
    """Rows "pred", "d=1", ... of an oracle study, as JSON or as a table."""
    if as_json:
        click.echo(json.dumps(table))
        return
    click.echo(f"{'':<8}" + "".join(f"{k:>9}" for k in keys))
    for name, scores in table.items():
        click.echo(f"{name:<8}" + "".join(f"{scores[k]:>9.4f}" for k in keys))


@analyze.command("scatter")
@click.option("--gt", "gt_dir", type=click.Path(path_type=Path), required=True, help="Ground-truth mask PNGs.")
@click.option("--before", "before_dir", type=click.Path(path_type=Path), required=True)
@click.option("--after", "after_dir", type=click.Path(path_type=Path), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="PNG to write.")
def analyze_scatter(gt_dir: Path, before_dir: Path, after_dir: Path, out: Path) -> None:
    """Per-mask IoU before vs after refinement as a scatter plot PNG (paper Fig. 9)."""
    from bprefine.analysis import scatter_plot
    from bprefine.metrics import mask_iou
    from bprefine.metrics.evaluate import mask_dir_pairs

    from bprefine.analysis import image_format

    image_format(out)
    check_writable(out)
    before, after = [], []
    pairs_b, pairs_a = mask_dir_pairs(gt_dir, before_dir), mask_dir_pairs(gt_dir, after_dir)
    for (b, g), (a, _) in zip(pairs_b, pairs_a):
        gt = read_mask(g)
        for path, scores in ((b, before), (a, after)):
            pred = read_mask(path)
            if pred.shape != gt.shape:
                raise ValueError(f"{path}: mask is {pred.shape[0]}x{pred.shape[1]} (HxW) but ground truth {g.name} "
                                 f"is {gt.shape[0]}x{gt.shape[1]}")
            scores.append(mask_iou(pred, gt))
    scatter_plot(np.asarray(before), np.asarray(after), out)
    click.echo(f"wrote {out}: {sum(a > b for a, b in zip(after, before))} of {len(before)} masks improved")


@analyze.command("panels")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), required=True)
@click.option("--gt", "gt_dir", type=click.Path(path_type=Path), required=True)
@click.option("--before", "before_dir", type=click.Path(path_type=Path), required=True)
@click.option("--after", "after_dir", type=click.Path(path_type=Path), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the panels.")
def analyze_panels(images_dir: Path, gt_dir: Path, before_dir: Path, after_dir: Path, out: Path) -> None:
    """Before/after overlay panels per image (paper Figs. 2 and 5): coarse left, refined right, gt contour red."""
    from bprefine.demo import before_after_panel

    pairs = mask_pairs(images_dir, gt_dir)
    check_out_dir(out, images_dir, gt_dir, before_dir, after_dir)
    with staged_dir(out) as stage:
        for image_path, gt_path in progress(pairs, "images"):
            image, gt = read_image(image_path), read_mask(gt_path)
            before, after = read_mask(before_dir / gt_path.name), read_mask(after_dir / gt_path.name)
            for m, p in ((gt, gt_path), (before, before_dir / gt_path.name), (after, after_dir / gt_path.name)):
                check_same_size(image, m, image_path, p)
            from bprefine.data.images import atomic_path

            with atomic_path(stage / f"{image_path.stem}_panel.png") as tmp:
                Image.fromarray(before_after_panel(image, before, after, gt)).save(tmp, format="PNG")
    click.echo(f"wrote {len(pairs)} panels to {out}")


