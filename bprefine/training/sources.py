"""Reading training sources into (image, ground truth, coarse) samples and building patch sets."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from bprefine.data.coco import (
    decode_segmentation,
    load_image_info,
    load_json,
    load_results,
)
from bprefine.data.images import list_images, read_image, read_label_map, read_mask
from bprefine.model import ModelConfig
from bprefine.simulate import mask_head, random_low_res, rng_for, semantic_low_res
from bprefine.training.config import SourceConfig
from bprefine.training.patchset import PatchSet, patches_from_triple

MATCH_IOU = 0.5


@dataclass
class SemanticLabels:
    """The label maps behind a semantic sample: ``classes[k]`` is the class of the sample's pair ``k``."""

    gt: np.ndarray  # (H, W) int64
    coarse: np.ndarray  # (H, W) int64
    classes: list[int]


@dataclass
class Sample:
    """One image with the (ground truth, coarse) mask pairs to train on (H x W bool each)."""

    name: str
    image: np.ndarray
    pairs: list[tuple[np.ndarray, np.ndarray]]
    drop_border_full: bool = False
    labels: SemanticLabels | None = None  # semantic sources only


def match_to_ground_truth(pred: np.ndarray, pred_cats: list[int], gt: np.ndarray, gt_cats: list[int]) -> list[tuple[int, int]]:
    """(pred index, gt index) for each prediction whose best same-category IoU with a gt mask is > 0.5."""
    if len(pred) == 0 or len(gt) == 0:
        return []
    enc = [[mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in stack] for stack in (pred, gt)]
    ious = np.asarray(mask_utils.iou(enc[0], enc[1], [0] * len(gt))).reshape(len(pred), len(gt))
    same = np.asarray(pred_cats)[:, None] == np.asarray(gt_cats)[None, :]
    ious = np.where(same, ious, 0.0)
    best = ious.argmax(axis=1)
    return [(p, int(g)) for p, g in enumerate(best) if ious[p, g] > MATCH_IOU]


def _in_range(stem: str, stems: str | None) -> bool:
    if stems is None:
        return True
    lo, hi = stems.split("-")
    return lo <= stem <= hi if len(stem) == len(lo) else False


def list_items(source: SourceConfig) -> list[str]:
    """The names of the source's images, after ``stems`` and ``limit``."""
    if source.kind == "coco":
        infos = _coco_gt(source.gt)[0]
        names = sorted(info.file_name for info in infos.values())
    else:
        names = [p.name for p in list_images(source.images)]
    names = [n for n in names if _in_range(Path(n).stem, source.stems)]
    if source.indices:
        names = [n for k, n in enumerate(names) if _in_index_ranges(k, source.indices)]
    return names[: source.limit] if source.limit else names


def _in_index_ranges(k: int, ranges: str) -> bool:
    """Whether position ``k`` lies in one of the inclusive ranges "a-b" ("a-": to the end)."""
    for part in ranges.split(","):
        lo, hi = part.split("-")
        if int(lo) <= k and (hi == "" or k <= int(hi)):
            return True
    return False


def _file_key(path: str) -> tuple[str, int, int]:
    """(path, mtime in ns, size): a cache key that changes when the file does."""
    st = Path(path).stat() if Path(path).is_file() else None
    return (path, st.st_mtime_ns, st.st_size) if st else (path, 0, -1)


def _coco_gt(path: str):
    return _coco_gt_cached(_file_key(path))


def _coco_pred(path: str) -> dict[int, list[dict]]:
    return _coco_pred_cached(_file_key(path))


@functools.lru_cache(maxsize=4)
def _coco_gt_cached(key: tuple[str, int, int]):
    path = key[0]
    infos = load_image_info(path)
    anns: dict[int, list[dict]] = {}
    for ann in load_json(path).get("annotations", []):
        if not ann.get("iscrowd", 0):
            anns.setdefault(int(ann["image_id"]), []).append(ann)
    by_name = {info.file_name: info for info in infos.values()}
    return infos, anns, by_name


@functools.lru_cache(maxsize=4)
def _coco_pred_cached(key: tuple[str, int, int]) -> dict[int, list[dict]]:
    path = key[0]
    out: dict[int, list[dict]] = {}
    for entry in load_results(path):
        out.setdefault(int(entry["image_id"]), []).append(entry)
    return out


def _instances(ids: np.ndarray) -> np.ndarray:
    labels = np.unique(ids)
    labels = labels[labels != 0]
    return ids[None] == labels[:, None, None] if len(labels) else np.zeros((0, *ids.shape), bool)


def _matched_pairs(gt: np.ndarray, gt_cats: list[int], pred: np.ndarray, pred_cats: list[int]):
    return [(gt[g], pred[p]) for p, g in match_to_ground_truth(pred, pred_cats, gt, gt_cats)]


def _simulate(source: SourceConfig, gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The coarse mask the source's simulator makes from one H x W bool ground-truth mask."""
    if source.simulate == "identity":
        return gt.copy()
    if source.simulate == "mask_head":
        return mask_head(gt, rng=rng)
    return random_low_res(gt, rng=rng)


def load_sample(source: SourceConfig, name: str, seed: int) -> Sample:
    """Read (and, where asked, simulate) one image's training pairs."""
    rng = rng_for(seed, f"{source.gt}/{name}")
    stem = Path(name).stem
    if source.kind == "coco":
        return _coco_sample(source, name, rng)
    image = read_image(Path(source.images) / name)
    if source.kind == "masks":
        gt = read_mask(Path(source.gt) / f"{stem}.png")
        coarse = read_mask(Path(source.coarse) / f"{stem}.png") if source.coarse else _simulate(source, gt, rng)
        return Sample(name, image, [(gt, coarse)])
    if source.kind == "instance_png":
        gt = _instances(read_label_map(Path(source.gt) / f"{stem}.png"))
        if source.coarse is None:
            return Sample(name, image, [(g, _simulate(source, g, rng)) for g in gt])
        pred = _instances(read_label_map(Path(source.coarse) / f"{stem}.png"))
        return Sample(name, image, _matched_pairs(gt, [0] * len(gt), pred, [0] * len(pred)))
    labels = read_label_map(Path(source.gt) / f"{stem}.png")
    if source.coarse:
        coarse = read_label_map(Path(source.coarse) / f"{stem}.png")
    elif source.simulate == "identity":
        coarse = labels.copy()
    else:
        coarse = semantic_low_res(labels, num_classes=source.num_classes, rng=rng, ignore_index=source.ignore_index)
    classes = [c for c in range(source.num_classes) if (coarse == c).any() or (labels == c).any()]
    pairs = [(labels == c, coarse == c) for c in classes]
    return Sample(name, image, pairs, drop_border_full=True, labels=SemanticLabels(labels, coarse, classes))


def _coco_sample(source: SourceConfig, name: str, rng: np.random.Generator) -> Sample:
    _, anns, by_name = _coco_gt(source.gt)
    info = by_name[name]
    image = read_image(Path(source.images) / name)
    gt_anns = anns.get(info.id, [])
    gt = np.stack([decode_segmentation(a["segmentation"], info.height, info.width) for a in gt_anns]) \
        if gt_anns else np.zeros((0, info.height, info.width), bool)
    gt_cats = [int(a["category_id"]) for a in gt_anns]
    if source.coarse is None:
        return Sample(name, image, [(g, _simulate(source, g, rng)) for g in gt])
    preds = _coco_pred(source.coarse).get(info.id, [])
    pred = np.stack([decode_segmentation(p["segmentation"], info.height, info.width) for p in preds]) \
        if preds else np.zeros((0, info.height, info.width), bool)
    return Sample(name, image, _matched_pairs(gt, gt_cats, pred, [int(p["category_id"]) for p in preds]))


@dataclass(frozen=True)
class ExtractOptions:
    nms_threshold: float = 0.25
    border_as_contour: bool = False
    drop_border_full: bool = True  # applies to semantic sources only


def sample_patches(source: SourceConfig, name: str, seed: int, model: ModelConfig, options: ExtractOptions) -> PatchSet:
    sample = load_sample(source, name, seed)
    side = model.patch_size + 2 * model.padding
    drop = sample.drop_border_full and options.drop_border_full
    sets = [patches_from_triple(sample.image, gt, coarse, patch_size=model.patch_size, padding=model.padding,
                                nms_threshold=options.nms_threshold, drop_border_full=drop,
                                border_as_contour=options.border_as_contour)
            for gt, coarse in sample.pairs]
    return PatchSet.concat(sets, side)


def _work(args: tuple) -> PatchSet:
    return sample_patches(*args)


def build_patches(source: SourceConfig, *, model: ModelConfig, options: ExtractOptions = ExtractOptions(),
                  seed: int = 0, workers: int = 1) -> PatchSet:
    """All training patches of one source (``workers`` processes, results in image order)."""
    jobs = [(source, name, seed, model, options) for name in list_items(source)]
    if not jobs:
        raise ValueError(f"source {source.images}: no images selected")
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:
            sets = pool.map(_work, jobs, chunksize=4)
    else:
        sets = [_work(j) for j in jobs]
    return PatchSet.concat(sets, model.patch_size + 2 * model.padding)
