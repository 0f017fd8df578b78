"""Validation during training: patch IoU on held-out patches, and boundary IoU on whole held-out images.

Whole images go through the same refinement users run: instance sources through instance refinement,
semantic sources through semantic refinement (one label per pixel), scored per class mask.
"""

from __future__ import annotations

import numpy as np
import torch

from bprefine.metrics import boundary_iou
from bprefine.model import ModelConfig, RefinementModel
from bprefine.refine import Refiner
from bprefine.training.batches import make_batch
from bprefine.training.config import SourceConfig, TrainConfig
from bprefine.training.patchset import PatchSet
from bprefine.training.sources import Sample, list_items, load_sample


def patch_iou(net: torch.nn.Module, patches: PatchSet, config: ModelConfig, device: torch.device) -> dict:
    """Pixel IoU of the refined and of the coarse patches against ground truth, over all patches."""
    inter = union = cinter = cunion = 0.0
    with torch.inference_mode():
        for start in range(0, len(patches), 64):
            x, m, t = make_batch(patches.subset(np.arange(start, min(start + 64, len(patches)))), None, config=config)
            pred = net(x.to(device), m.to(device)).cpu() > 0
            coarse, gt = m > 0, t > 0.5
            inter += (pred & gt).sum().item()
            union += (pred | gt).sum().item()
            cinter += (coarse & gt).sum().item()
            cunion += (coarse | gt).sum().item()
    return {"patch_iou": inter / max(union, 1), "patch_iou_coarse": cinter / max(cunion, 1)}


def refined_pairs(refiner: Refiner, source: SourceConfig, sample: Sample) -> np.ndarray:
    """(N, H, W) refined masks for the sample's N (ground truth, coarse) pairs, refined as the task would be."""
    if sample.labels is None:
        return refiner.refine_instances(sample.image, np.stack([c for _, c in sample.pairs]))
    refined = refiner.refine_semantic(sample.image, sample.labels.coarse, source.num_classes, source.ignore_index)
    return np.stack([refined == c for c in sample.labels.classes])


def image_biou(net: torch.nn.Module, config: TrainConfig, device: torch.device) -> dict:
    """Mean boundary IoU before/after refining whole validation images (first ``val_images`` per source)."""
    refiner = Refiner(RefinementModel(config.model, net), device=device, engine="torch")
    before, after = [], []
    for source in config.val_sources:
        for name in list_items(source)[: config.val_images]:
            sample = load_sample(source, name, config.seed)
            if not sample.pairs:
                continue
            refined = refined_pairs(refiner, source, sample)
            before += [boundary_iou(c, g) for g, c in sample.pairs]
            after += [boundary_iou(r, g) for r, (g, _) in zip(refined, sample.pairs)]
    return {"biou_before": float(np.mean(before)), "biou_after": float(np.mean(after))} if before else {}


def validate(net: torch.nn.Module, val_sets: list[PatchSet], config: TrainConfig, device: torch.device) -> dict:
    """Patch IoU on up to 512 validation patches, then whole-image boundary IoU before/after."""
    out: dict = {}
    patches = PatchSet.concat(val_sets, config.model.patch_size + 2 * config.model.padding)
    if len(patches):
        out |= patch_iou(net, patches.subset(np.arange(min(len(patches), 512))), config.model, device)
    return out | image_biou(net, config, device)
