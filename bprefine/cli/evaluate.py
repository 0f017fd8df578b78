"""``bprefine eval``: the paper's metrics for masks, instances, semantic and panoptic outputs."""

from __future__ import annotations

from pathlib import Path

import click

from bprefine.cli.common import Group, json_flag, report
from bprefine.data.coco import checked_results, load_ground_truth, load_image_info, load_results


@click.group(cls=Group, name="eval")
def eval_group() -> None:
    """Measure masks against ground truth."""


@eval_group.command("masks")
@click.option("--gt", "gt_dir", type=click.Path(path_type=Path), required=True, help="Ground-truth mask PNGs.")
@click.option("--pred", "pred_dir", type=click.Path(path_type=Path), required=True, help="Predicted mask PNGs.")
@click.option("--baseline", type=click.Path(path_type=Path), default=None,
              help="Masks before refinement, to print before/after side by side.")
@json_flag
def eval_masks_cmd(gt_dir: Path, pred_dir: Path, baseline: Path | None, as_json: bool) -> None:
    """Class-agnostic masks: mean IoU, mean boundary IoU, boundary F at 1 px and 3 px."""
    from bprefine.metrics.evaluate import MASK_METRICS, evaluate_mask_dirs

    scores = evaluate_mask_dirs(gt_dir, pred_dir)
    before = evaluate_mask_dirs(gt_dir, baseline) if baseline else None
    report(scores, before, MASK_METRICS, as_json,
            f"({scores['n']} masks; mBIoU band = 2% of the image diagonal; BF at 1 and 3 px)")


@eval_group.command("instances")
@click.option("--gt", "gt_json", type=click.Path(path_type=Path), required=True, help="COCO ground-truth JSON.")
@click.option("--pred", "pred_json", type=click.Path(path_type=Path), required=True, help="COCO results JSON.")
@click.option("--baseline", type=click.Path(path_type=Path), default=None, help="Results before refinement.")
@json_flag
def eval_instances_cmd(gt_json: Path, pred_json: Path, baseline: Path | None, as_json: bool) -> None:
    """Mask AP, AP50/75/90, APs/m/l, boundary AP (APb) and AF (boundary F at 1 px over true positives)."""
    from bprefine.metrics.instances import INSTANCE_METRICS, coco_from_dict, evaluate_instances

    gt = coco_from_dict(load_ground_truth(gt_json))
    infos = load_image_info(gt_json)

    def run(path: Path) -> dict:
        return evaluate_instances(gt, checked_results(load_results(path), infos, path))

    scores = run(pred_json)
    before = run(baseline) if baseline else None
    report(scores, before, INSTANCE_METRICS, as_json, "(COCO-style, fractions; APb: Boundary IoU, AF: 1 px)")


@eval_group.command("semantic")
@click.option("--gt", "gt_dir", type=click.Path(path_type=Path), required=True, help="Ground-truth label PNGs.")
@click.option("--pred", "pred_dir", type=click.Path(path_type=Path), required=True, help="Predicted label PNGs.")
@click.option("--num-classes", type=click.IntRange(1), required=True)
@click.option("--ignore-index", type=int, default=None)
@click.option("--tolerance", type=click.FloatRange(0), default=1.0, show_default=True, help="Boundary F tolerance (px).")
@click.option("--baseline", type=click.Path(path_type=Path), default=None, help="Labels before refinement.")
@json_flag
def eval_semantic_cmd(gt_dir: Path, pred_dir: Path, num_classes: int, ignore_index: int | None, tolerance: float,
                      baseline: Path | None, as_json: bool) -> None:
    """mIoU and boundary F-score averaged over classes (per-class figures in --json)."""
    from bprefine.metrics.evaluate import evaluate_semantic_dirs
    from bprefine.metrics.semantic import SEMANTIC_METRICS

    kw = dict(num_classes=num_classes, ignore_index=ignore_index, tolerance=tolerance)
    scores = evaluate_semantic_dirs(gt_dir, pred_dir, **kw)
    before = evaluate_semantic_dirs(gt_dir, baseline, **kw) if baseline else None
    report(scores, before, SEMANTIC_METRICS, as_json, f"({scores['n']} images; BF at {tolerance:g} px)")


@eval_group.command("cityscapes")
@click.option("--gt", "gt_dir", type=click.Path(path_type=Path), required=True,
              help="Folder searched for *_gtFine_instanceIds.png.")
@click.option("--pred", "pred_dir", type=click.Path(path_type=Path), required=True,
              help="Cityscapes-format results: <city>_<seq>_<frame>*.txt files and their mask PNGs.")
@json_flag
def eval_cityscapes_cmd(gt_dir: Path, pred_dir: Path, as_json: bool) -> None:
    """Cityscapes-style instance AP and AP50 (needs: pip install 'bprefine[cityscapes]')."""
    from bprefine.metrics.cityscapes import evaluate_cityscapes_instances

    report(evaluate_cityscapes_instances(gt_dir, pred_dir), None, ("AP", "AP50"), as_json, "(cityscapesscripts)")


@eval_group.command("panoptic")
@click.option("--gt-json", type=click.Path(path_type=Path), required=True)
@click.option("--gt-dir", type=click.Path(path_type=Path), required=True)
@click.option("--pred-json", type=click.Path(path_type=Path), required=True)
@click.option("--pred-dir", type=click.Path(path_type=Path), required=True)
@click.option("--baseline-json", type=click.Path(path_type=Path), default=None, help="Predictions before refinement.")
@click.option("--baseline-dir", type=click.Path(path_type=Path), default=None)
@json_flag
def eval_panoptic_cmd(gt_json: Path, gt_dir: Path, pred_json: Path, pred_dir: Path, baseline_json: Path | None,
                      baseline_dir: Path | None, as_json: bool) -> None:
    """PQ, SQ, RQ, PQ for things and stuff, and boundary PQ (COCO or Cityscapes panoptic PNG + JSON)."""
    from bprefine.metrics.evaluate import evaluate_panoptic
    from bprefine.metrics.panoptic import PANOPTIC_METRICS

    if (baseline_json is None) != (baseline_dir is None):
        raise ValueError("give both --baseline-json and --baseline-dir, or neither")
    scores = evaluate_panoptic(gt_json, gt_dir, pred_json, pred_dir)
    before = evaluate_panoptic(gt_json, gt_dir, baseline_json, baseline_dir) if baseline_json else None
    report(scores, before, PANOPTIC_METRICS, as_json, f"({scores['n']} images)")


