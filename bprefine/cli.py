"""The ``bprefine`` command line: thin over the library. Bad input ends in one line and exit 1."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import numpy as np
from PIL import Image
from tqdm import tqdm

from bprefine.data.coco import ImageInfo, decode_segmentation, load_image_info, load_results, refined_entry, write_json
from bprefine.data.images import list_images, read_image, read_mask, staged_dir, write_mask


class _Group(click.Group):
    """Turns the library's input errors into ``Error: <message>`` and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ValueError, FileNotFoundError, OSError) as err:
            raise click.ClickException(str(err).splitlines()[0] if str(err) else repr(err)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bprefine")
def main() -> None:
    """bprefine: make segmentation mask boundaries precise with Boundary Patch Refinement."""


def refiner_options(f):
    """Options shared by every refine command."""
    options = [
        click.option("--model", default="default", show_default=True,
                     help="'default' (bundled) or a model file (.safetensors beside its .json)."),
        click.option("--nms-thr", type=click.FloatRange(0, 1), default=0.55, show_default=True,
                     help="NMS IoU threshold for boundary patches (higher: more patches, better, slower)."),
        click.option("--patch-size", type=click.IntRange(4), default=None, help="Boundary patch side in pixels [model's]."),
        click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True),
        click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda."),
        click.option("--engine", type=click.Choice(["auto", "torch", "onnx"]), default="auto", show_default=True,
                     help="Inference backend; auto = ONNX Runtime on the CPU when installed."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _make_refiner(model: str, nms_thr: float, patch_size: int | None, batch_size: int, device: str, engine: str):
    from bprefine.refine import Refiner

    return Refiner(model, device=device, batch_size=batch_size, nms_threshold=nms_thr, patch_size=patch_size,
                   engine=engine)


@main.group(cls=_Group)
def refine() -> None:
    """Refine instance masks (COCO JSON) or class-agnostic masks (PNG)."""


@refine.command("instances")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), required=True, help="Image folder.")
@click.option("--pred", type=click.Path(path_type=Path), required=True, help="COCO results JSON to refine.")
@click.option("--image-info", type=click.Path(path_type=Path), required=True,
              help="Any COCO JSON with an 'images' list (id, file_name, height, width).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Refined COCO results JSON.")
@refiner_options
def refine_instances_cmd(images_dir: Path, pred: Path, image_info: Path, out: Path, **opts) -> None:
    """Refine COCO instance results: same entries, same order, refined RLE, bbox and area recomputed."""
    infos = load_image_info(image_info)
    results = load_results(pred)
    by_image: dict[int, list[int]] = {}
    for k, entry in enumerate(results):
        by_image.setdefault(_image_id(entry, k, pred, infos, image_info), []).append(k)
    refiner = _make_refiner(**opts)
    refined: list[dict[str, Any] | None] = [None] * len(results)
    for image_id, idx in _progress(by_image.items(), "images"):
        info = infos[image_id]
        image = _load_image(images_dir / info.file_name, info)
        masks = _decode_all(results, idx, info, pred)
        for k, mask in zip(idx, refiner.refine_instances(image, masks)):
            refined[k] = refined_entry(results[k], mask)
    write_json(out, refined)
    click.echo(f"wrote {len(refined)} refined results for {len(by_image)} images to {out}")


def _progress(items, unit: str):
    """A progress bar on stderr, shown only on a terminal."""
    return tqdm(list(items), unit=f" {unit}", desc="refining", disable=None, file=sys.stderr)


def _image_id(entry: dict, k: int, pred: Path, infos: dict[int, ImageInfo], image_info: Path) -> int:
    try:
        image_id = int(entry["image_id"])
    except (TypeError, ValueError):
        raise ValueError(f"{pred}: entry {k} has a non-integer image_id {entry['image_id']!r}") from None
    if image_id not in infos:
        raise ValueError(f"{pred}: entry {k} refers to image_id {image_id}, which {image_info} does not list")
    return image_id


def _load_image(path: Path, info: ImageInfo) -> np.ndarray:
    image = read_image(path)
    if image.shape[:2] != (info.height, info.width):
        raise ValueError(f"{path}: image is {image.shape[0]}x{image.shape[1]} (HxW) but the image info says "
                         f"{info.height}x{info.width}")
    return image


def _decode_all(results: list[dict], idx: list[int], info: ImageInfo, pred: Path) -> np.ndarray:
    masks = np.zeros((len(idx), info.height, info.width), bool)
    for j, k in enumerate(idx):
        try:
            masks[j] = decode_segmentation(results[k]["segmentation"], info.height, info.width)
        except ValueError as err:
            raise ValueError(f"{pred}: entry {k} (image {info.id}): {err}") from None
    return masks


@refine.command("masks")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), required=True, help="Image folder.")
@click.option("--masks", "masks_dir", type=click.Path(path_type=Path), required=True,
              help="Folder of binary mask PNGs named like the images (0/255, 0/1 or 1-bit).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for refined 0/255 PNGs.")
@refiner_options
def refine_masks_cmd(images_dir: Path, masks_dir: Path, out: Path, **opts) -> None:
    """Refine one class-agnostic mask per image; outputs keep the mask file names."""
    pairs = mask_pairs(images_dir, masks_dir)
    refiner = _make_refiner(**opts)
    with staged_dir(out) as stage:
        for image_path, mask_path in _progress(pairs, "masks"):
            image, mask = read_image(image_path), read_mask(mask_path)
            check_same_size(image, mask, image_path, mask_path)
            write_mask(stage / mask_path.name, refiner.refine(image, mask))
    click.echo(f"wrote {len(pairs)} refined masks to {out}")


@refine.command("semantic")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), required=True, help="Image folder.")
@click.option("--labels", "labels_dir", type=click.Path(path_type=Path), required=True,
              help="Folder of label PNGs (uint8 or uint16) named like the images.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for refined label PNGs.")
@click.option("--num-classes", type=click.IntRange(1), required=True)
@click.option("--ignore-index", type=int, default=None, help="Label left untouched (e.g. 255).")
@refiner_options
def refine_semantic_cmd(images_dir: Path, labels_dir: Path, out: Path, num_classes: int, ignore_index: int | None,
                        **opts) -> None:
    """Refine semantic label maps: every class mask is refined, one label per pixel, ignore untouched."""
    from PIL import Image

    from bprefine.data.images import atomic_path, read_label_map

    pairs = mask_pairs(images_dir, labels_dir)
    refiner = _make_refiner(**opts)
    with staged_dir(out) as stage:
        for image_path, label_path in _progress(pairs, "maps"):
            image, labels = read_image(image_path), read_label_map(label_path)
            check_same_size(image, labels, image_path, label_path)
            try:
                refined = refiner.refine_semantic(image, labels, num_classes, ignore_index)
            except ValueError as err:
                raise ValueError(f"{label_path}: {err}") from None
            dtype = np.uint8 if refined.max(initial=0) < 256 else np.uint16
            with atomic_path(stage / label_path.name) as tmp:
                Image.fromarray(refined.astype(dtype)).save(tmp, format="PNG")
    click.echo(f"wrote {len(pairs)} refined label maps to {out}")


@refine.command("panoptic")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), required=True, help="Image folder.")
@click.option("--pred-json", type=click.Path(path_type=Path), required=True, help="COCO panoptic JSON.")
@click.option("--pred-dir", type=click.Path(path_type=Path), required=True, help="Its PNG folder.")
@click.option("--out-json", type=click.Path(path_type=Path), required=True)
@click.option("--out-dir", type=click.Path(path_type=Path), required=True)
@refiner_options
def refine_panoptic_cmd(images_dir: Path, pred_json: Path, pred_dir: Path, out_json: Path, out_dir: Path,
                        **opts) -> None:
    """Refine COCO-format panoptic predictions (also Cityscapes panoptic): PNG ids + segments_info."""
    from PIL import Image

    from bprefine.data.coco import load_json
    from bprefine.data.images import atomic_path
    from bprefine.metrics.panoptic import id_to_rgb, read_panoptic_png

    data = load_json(pred_json)
    anns = data.get("annotations") if isinstance(data, dict) else None
    if not isinstance(anns, list):
        raise ValueError(f"{pred_json}: expected a COCO panoptic JSON with an 'annotations' list")
    names = _panoptic_image_names(data, pred_json)
    refiner = _make_refiner(**opts)
    refined_anns = []
    with staged_dir(out_dir) as stage:
        for k, ann in enumerate(_progress(anns, "images")):
            if not isinstance(ann, dict) or "file_name" not in ann or "segments_info" not in ann:
                raise ValueError(f"{pred_json}: annotation {k} needs file_name and segments_info")
            png = pred_dir / ann["file_name"]
            image_path = images_dir / names.get(ann.get("image_id"), Path(ann["file_name"]).stem + ".jpg")
            image, ids = read_image(image_path), read_panoptic_png(png)
            check_same_size(image, ids, image_path, png)
            try:
                new_ids, segments = refiner.refine_panoptic(image, ids, ann["segments_info"])
            except ValueError as err:
                raise ValueError(f"{png}: {err}") from None
            with atomic_path(stage / ann["file_name"]) as tmp:
                Image.fromarray(id_to_rgb(new_ids)).save(tmp, format="PNG")
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


def mask_pairs(images_dir: Path, masks_dir: Path) -> list[tuple[Path, Path]]:
    """(image, mask PNG) pairs matched by file stem; every image needs its mask."""
    images = list_images(images_dir)
    if not images:
        raise ValueError(f"{images_dir}: no images found")
    if not masks_dir.is_dir():
        raise FileNotFoundError(f"{masks_dir}: directory not found")
    pairs = []
    for image in images:
        mask = masks_dir / f"{image.stem}.png"
        if not mask.is_file():
            raise FileNotFoundError(f"{mask}: no mask for image {image.name}")
        pairs.append((image, mask))
    return pairs


def check_same_size(image: np.ndarray, mask: np.ndarray, image_path: Path, mask_path: Path) -> None:
    if mask.shape != image.shape[:2]:
        raise ValueError(f"{mask_path}: map is {mask.shape[0]}x{mask.shape[1]} but image {image_path.name} is "
                         f"{image.shape[0]}x{image.shape[1]} (HxW)")


@main.group(cls=_Group, name="eval")
def eval_group() -> None:
    """Measure masks against ground truth."""


def _report(scores: dict, before: dict | None, keys: tuple[str, ...], as_json: bool, note: str) -> None:
    """One JSON object, or a table with a before/after column when a baseline was given."""
    import json

    if as_json:
        click.echo(json.dumps(scores | ({"baseline": before} if before else {})))
        return
    click.echo(f"{'metric':<8}{'baseline':>10}{'pred':>10}{'delta':>10}" if before else f"{'metric':<8}{'pred':>10}")
    for k in keys:
        if before:
            click.echo(f"{k:<8}{before[k]:>10.4f}{scores[k]:>10.4f}{scores[k] - before[k]:>+10.4f}")
        else:
            click.echo(f"{k:<8}{scores[k]:>10.4f}")
    click.echo(note)


_json_flag = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")


@eval_group.command("masks")
@click.option("--gt", "gt_dir", type=click.Path(path_type=Path), required=True, help="Ground-truth mask PNGs.")
@click.option("--pred", "pred_dir", type=click.Path(path_type=Path), required=True, help="Predicted mask PNGs.")
@click.option("--baseline", type=click.Path(path_type=Path), default=None,
              help="Masks before refinement, to print before/after side by side.")
@_json_flag
def eval_masks_cmd(gt_dir: Path, pred_dir: Path, baseline: Path | None, as_json: bool) -> None:
    """Class-agnostic masks: mean IoU, mean boundary IoU, boundary F at 1 px and 3 px."""
    from bprefine.metrics.evaluate import MASK_METRICS, evaluate_mask_dirs

    scores = evaluate_mask_dirs(gt_dir, pred_dir)
    before = evaluate_mask_dirs(gt_dir, baseline) if baseline else None
    _report(scores, before, MASK_METRICS, as_json,
            f"({scores['n']} masks; mBIoU band = 2% of the image diagonal; BF at 1 and 3 px)")


@eval_group.command("instances")
@click.option("--gt", "gt_json", type=click.Path(path_type=Path), required=True, help="COCO ground-truth JSON.")
@click.option("--pred", "pred_json", type=click.Path(path_type=Path), required=True, help="COCO results JSON.")
@click.option("--baseline", type=click.Path(path_type=Path), default=None, help="Results before refinement.")
@_json_flag
def eval_instances_cmd(gt_json: Path, pred_json: Path, baseline: Path | None, as_json: bool) -> None:
    """Mask AP, AP50/75/90, APs/m/l, boundary AP (APb) and AF (boundary F at 1 px over true positives)."""
    from bprefine.metrics.instances import INSTANCE_METRICS, evaluate_instances

    def run(path: Path) -> dict:
        load_image_info(gt_json)  # clear errors for a missing or malformed file
        return evaluate_instances(str(gt_json), load_results(path))

    scores = run(pred_json)
    before = run(baseline) if baseline else None
    _report(scores, before, INSTANCE_METRICS, as_json, "(COCO-style, fractions; APb: Boundary IoU, AF: 1 px)")


@eval_group.command("semantic")
@click.option("--gt", "gt_dir", type=click.Path(path_type=Path), required=True, help="Ground-truth label PNGs.")
@click.option("--pred", "pred_dir", type=click.Path(path_type=Path), required=True, help="Predicted label PNGs.")
@click.option("--num-classes", type=click.IntRange(1), required=True)
@click.option("--ignore-index", type=int, default=None)
@click.option("--tolerance", type=click.FloatRange(0), default=1.0, show_default=True, help="Boundary F tolerance (px).")
@click.option("--baseline", type=click.Path(path_type=Path), default=None, help="Labels before refinement.")
@_json_flag
def eval_semantic_cmd(gt_dir: Path, pred_dir: Path, num_classes: int, ignore_index: int | None, tolerance: float,
                      baseline: Path | None, as_json: bool) -> None:
    """mIoU and boundary F-score averaged over classes (per-class figures in --json)."""
    from bprefine.metrics.evaluate import evaluate_semantic_dirs

    kw = dict(num_classes=num_classes, ignore_index=ignore_index, tolerance=tolerance)
    scores = evaluate_semantic_dirs(gt_dir, pred_dir, **kw)
    before = evaluate_semantic_dirs(gt_dir, baseline, **kw) if baseline else None
    _report(scores, before, ("mIoU", "BF"), as_json, f"({scores['n']} images; BF at {tolerance:g} px)")


@eval_group.command("cityscapes")
@click.option("--gt", "gt_dir", type=click.Path(path_type=Path), required=True,
              help="Folder searched for *_gtFine_instanceIds.png.")
@click.option("--pred", "pred_dir", type=click.Path(path_type=Path), required=True,
              help="Cityscapes-format results: <city>_<seq>_<frame>*.txt files and their mask PNGs.")
@_json_flag
def eval_cityscapes_cmd(gt_dir: Path, pred_dir: Path, as_json: bool) -> None:
    """Cityscapes-style instance AP and AP50 (needs: pip install 'bprefine[cityscapes]')."""
    from bprefine.metrics.cityscapes import evaluate_cityscapes_instances

    _report(evaluate_cityscapes_instances(gt_dir, pred_dir), None, ("AP", "AP50"), as_json, "(cityscapesscripts)")


@eval_group.command("panoptic")
@click.option("--gt-json", type=click.Path(path_type=Path), required=True)
@click.option("--gt-dir", type=click.Path(path_type=Path), required=True)
@click.option("--pred-json", type=click.Path(path_type=Path), required=True)
@click.option("--pred-dir", type=click.Path(path_type=Path), required=True)
@click.option("--baseline-json", type=click.Path(path_type=Path), default=None, help="Predictions before refinement.")
@click.option("--baseline-dir", type=click.Path(path_type=Path), default=None)
@_json_flag
def eval_panoptic_cmd(gt_json: Path, gt_dir: Path, pred_json: Path, pred_dir: Path, baseline_json: Path | None,
                      baseline_dir: Path | None, as_json: bool) -> None:
    """PQ, SQ, RQ, PQ for things and stuff, and boundary PQ (COCO or Cityscapes panoptic PNG + JSON)."""
    from bprefine.metrics.evaluate import evaluate_panoptic
    from bprefine.metrics.panoptic import PANOPTIC_METRICS

    if (baseline_json is None) != (baseline_dir is None):
        raise ValueError("give both --baseline-json and --baseline-dir, or neither")
    scores = evaluate_panoptic(gt_json, gt_dir, pred_json, pred_dir)
    before = evaluate_panoptic(gt_json, gt_dir, baseline_json, baseline_dir) if baseline_json else None
    _report(scores, before, PANOPTIC_METRICS, as_json, f"({scores['n']} images)")


@main.group(cls=_Group)
def analyze() -> None:
    """The paper's analysis tools: oracle headroom, IoU scatter, overlay panels."""


@analyze.command("oracle")
@click.option("--gt", "gt_dir", type=click.Path(path_type=Path), required=True, help="Ground-truth mask PNGs.")
@click.option("--pred", "pred_dir", type=click.Path(path_type=Path), required=True, help="Coarse mask PNGs.")
@_json_flag
def analyze_oracle(gt_dir: Path, pred_dir: Path, as_json: bool) -> None:
    """Replace predictions within d px of their boundaries by ground truth (d = 1, 2, 3, inf): the
    headroom any boundary refiner can reach on these masks (paper Table 1)."""
    import json

    from bprefine.analysis import ORACLE_DISTANCES, oracle_mask
    from bprefine.metrics.evaluate import MASK_METRICS, mask_dir_pairs, mask_scores, mean_scores

    rows: dict[str, list] = {"pred": []} | {f"d={d}": [] for d in ORACLE_DISTANCES}
    for pred_path, gt_path in _progress(mask_dir_pairs(gt_dir, pred_dir), "masks"):
        pred, gt = read_mask(pred_path), read_mask(gt_path)
        if pred.shape != gt.shape:
            raise ValueError(f"{pred_path}: mask is {pred.shape} but ground truth is {gt.shape}")
        rows["pred"].append(mask_scores(pred, gt))
        for d in ORACLE_DISTANCES:
            rows[f"d={d}"].append(mask_scores(oracle_mask(pred, gt, d), gt))
    table = {k: mean_scores(v) for k, v in rows.items()}
    if as_json:
        click.echo(json.dumps(table))
        return
    click.echo(f"{'':<8}" + "".join(f"{k:>10}" for k in MASK_METRICS))
    for name, sc in table.items():
        click.echo(f"{name:<8}" + "".join(f"{sc[k]:>10.4f}" for k in MASK_METRICS))


@analyze.command("oracle-instances")
@click.option("--gt", "gt_json", type=click.Path(path_type=Path), required=True, help="COCO ground-truth JSON.")
@click.option("--pred", "pred_json", type=click.Path(path_type=Path), required=True, help="COCO results JSON.")
@_json_flag
def analyze_oracle_instances(gt_json: Path, pred_json: Path, as_json: bool) -> None:
    """The oracle study on COCO instances: each prediction repaired within d px of its boundary from its
    best-overlapping same-category ground truth (d = 1, 2, 3, inf), scored with the instance metrics."""
    import contextlib
    import io
    import json

    from pycocotools.coco import COCO

    from bprefine.analysis import ORACLE_DISTANCES, oracle_instances
    from bprefine.metrics.instances import INSTANCE_METRICS, evaluate_instances

    load_image_info(gt_json)
    results = load_results(pred_json)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_json))
    table = {"pred": evaluate_instances(gt, results)}
    for d in ORACLE_DISTANCES:
        table[f"d={d}"] = evaluate_instances(gt, oracle_instances(gt, results, d))
    if as_json:
        click.echo(json.dumps(table))
        return
    click.echo(f"{'':<8}" + "".join(f"{k:>8}" for k in INSTANCE_METRICS))
    for name, sc in table.items():
        click.echo(f"{name:<8}" + "".join(f"{sc[k]:>8.4f}" for k in INSTANCE_METRICS))


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

    before, after = [], []
    pairs_b, pairs_a = mask_dir_pairs(gt_dir, before_dir), mask_dir_pairs(gt_dir, after_dir)
    for (b, g), (a, _) in zip(pairs_b, pairs_a):
        gt = read_mask(g)
        before.append(mask_iou(read_mask(b), gt))
        after.append(mask_iou(read_mask(a), gt))
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
    with staged_dir(out) as stage:
        for image_path, gt_path in _progress(pairs, "images"):
            image, gt = read_image(image_path), read_mask(gt_path)
            before, after = read_mask(before_dir / gt_path.name), read_mask(after_dir / gt_path.name)
            for m, p in ((gt, gt_path), (before, before_dir / gt_path.name), (after, after_dir / gt_path.name)):
                check_same_size(image, m, image_path, p)
            from bprefine.data.images import atomic_path

            with atomic_path(stage / f"{image_path.stem}_panel.png") as tmp:
                Image.fromarray(before_after_panel(image, before, after, gt)).save(tmp, format="PNG")
    click.echo(f"wrote {len(pairs)} panels to {out}")


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("bprefine_demo"), show_default=True,
              help="Folder for the before/after overlay PNGs.")
@click.option("--model", default="default", show_default=True)
def demo(out: Path, model: str) -> None:
    """Refine the bundled sample photos and print IoU / boundary IoU / boundary F before and after."""
    from bprefine.demo import run_demo

    run_demo(out, model=model)


@main.command(context_settings={"ignore_unknown_options": False})
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Training YAML (see configs/); key=value arguments override it.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run folder: checkpoints, log, patches.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.argument("overrides", nargs=-1)
def train(config_path: Path | None, out: Path, resume: bool, overrides: tuple[str, ...]) -> None:
    """Train a refinement network. Runs under torchrun for DDP (gloo on CPU, NCCL on GPU).

    Example: bprefine train --config configs/ccp.yaml --out runs/ccp iterations=2000 model.input_size=128
    """
    from bprefine.training import load_train_config, train as run_training

    config = load_train_config(config_path, list(overrides))
    if (out / "last_state.json").exists() and not resume:
        raise ValueError(f"{out}: holds a checkpoint already; pass --resume to continue it or choose another --out")
    model = run_training(config, out)
    click.echo(f"final model: {out / 'final.safetensors'} ({model.config.preset}, input {model.config.input_size})")


@main.group(cls=_Group)
def patches() -> None:
    """Training patch sets."""


@patches.command("build")
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the .npz shards.")
@click.argument("overrides", nargs=-1)
def patches_build(config_path: Path, out: Path, overrides: tuple[str, ...]) -> None:
    """Build (or reuse) the patch shards a training config needs, one .npz per source."""
    from bprefine.training import load_train_config
    from bprefine.training.loop import load_or_build
    from bprefine.training.patchset import PatchSet

    config = load_train_config(config_path, list(overrides))
    for val in (False, True):
        for shard in load_or_build(config, out, val=val, main=True):
            click.echo(f"{shard}: {len(PatchSet.load(shard))} patches")


@main.group(cls=_Group)
def simulate() -> None:
    """Make seeded coarse predictions from ground truth, for data without model outputs."""


@simulate.command("masks")
@click.option("--gt", "gt_dir", type=click.Path(path_type=Path), required=True, help="Ground-truth mask PNGs.")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
def simulate_masks(gt_dir: Path, out: Path, seed: int) -> None:
    """Class-agnostic masks through a random low-resolution predictor (stride 2-16)."""
    from bprefine.simulate import random_low_res, rng_for

    paths = sorted(gt_dir.glob("*.png")) if gt_dir.is_dir() else []
    if not paths:
        raise FileNotFoundError(f"{gt_dir}: no PNG masks found")
    with staged_dir(out) as stage:
        for p in _progress(paths, "masks"):
            write_mask(stage / p.name, random_low_res(read_mask(p), rng=rng_for(seed, p.name)))
    click.echo(f"wrote {len(paths)} simulated masks to {out}")


@simulate.command("instances")
@click.option("--gt", "gt_json", type=click.Path(path_type=Path), required=True, help="COCO ground-truth JSON.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="COCO results JSON to write.")
@click.option("--seed", type=int, default=0, show_default=True)
def simulate_instances(gt_json: Path, out: Path, seed: int) -> None:
    """COCO results from a simulated Mask R-CNN-like mask head (score 1.0 per ground-truth instance)."""
    from bprefine.data.coco import load_json
    from bprefine.simulate import mask_head, rng_for

    infos = load_image_info(gt_json)
    results = []
    for k, ann in enumerate(load_json(gt_json).get("annotations", [])):
        if ann.get("iscrowd", 0):
            continue
        info = infos.get(int(ann["image_id"]))
        if info is None:
            raise ValueError(f"{gt_json}: annotation {k} refers to unknown image_id {ann['image_id']}")
        try:
            gt = decode_segmentation(ann["segmentation"], info.height, info.width)
        except ValueError as err:
            raise ValueError(f"{gt_json}: annotation {k}: {err}") from None
        coarse = mask_head(gt, rng=rng_for(seed, str(ann.get("id", k))))
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
    from PIL import Image

    from bprefine.data.images import atomic_path, read_label_map
    from bprefine.simulate import rng_for, semantic_low_res

    paths = sorted(labels_dir.glob("*.png")) if labels_dir.is_dir() else []
    if not paths:
        raise FileNotFoundError(f"{labels_dir}: no label PNGs found")
    with staged_dir(out) as stage:
        for p in _progress(paths, "maps"):
            labels = read_label_map(p)
            coarse = semantic_low_res(labels, num_classes=num_classes, rng=rng_for(seed, p.name),
                                      ignore_index=ignore_index)
            dtype = np.uint8 if max(num_classes, ignore_index or 0) < 256 else np.uint16
            with atomic_path(stage / p.name) as tmp:
                Image.fromarray(coarse.astype(dtype)).save(tmp, format="PNG")
    click.echo(f"wrote {len(paths)} simulated label maps to {out}")


@main.command()
@click.option("--presets", default=None, help="Comma-separated presets to time [all].")
@click.option("--repeats", type=click.IntRange(1), default=5, show_default=True)
@click.option("--quick", is_flag=True, help="Fewer repeats and sizes, for a smoke run.")
def bench(presets: str | None, repeats: int, quick: bool) -> None:
    """Time the patch pipeline (boxes, NMS, crop, reassembly) and each network preset's patches/s."""
    from bprefine.bench import run_bench

    run_bench(presets=presets.split(",") if presets else None, repeats=repeats, quick=quick)


if __name__ == "__main__":  # pragma: no cover
    main()
