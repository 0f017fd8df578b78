"""The refinement pipeline behind ``Refiner``: plan boxes, crop and batch, run the network, accumulate.

Its stages pass one ``RefinePlan`` along (as segment-anything passes ``MaskData``):

1. ``make_plan``: one job per coarse mask; the boxes of every job become patches, sorted so patches of
   one box size are adjacent, and each job gets a ``PatchAccumulator`` spanning its boxes.
2. ``run_plan``: patches are cut in batches (one image crop per job and batch), converted to tensors,
   run through the engine, and their logits added to their job's accumulator.

Conventions: ``images`` are H x W x 3 uint8 RGB; a job's ``mask`` is H x W bool over image ``image``;
``channels`` (one H x W uint8 map per job, probabilities x 255), when given, feed the network's mask
channel instead of the binary mask, which still decides the boxes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby
from typing import Callable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from bprefine.engine import Engine
from bprefine.model import ModelConfig
from bprefine.patches import PatchAccumulator, crop_patches
from bprefine.selection import gradient_magnitude, skip_aligned
from bprefine.tensors import logits_to_patches, patches_to_tensors


@dataclass(frozen=True)
class Job:
    """One coarse mask to refine: ``mask`` (H, W) bool over ``images[image]``."""

    image: int
    mask: np.ndarray


@dataclass(frozen=True)
class Patch:
    """One box to refine: ``box`` is a (4,) ``boxes_xyxy`` row of job ``job``."""

    job: int
    box: np.ndarray

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.box[3] - self.box[1]), int(self.box[2] - self.box[0])


@dataclass
class RefinePlan:
    """Everything the stages share: inputs, jobs, their patches (sorted by box size) and accumulators."""

    images: Sequence[np.ndarray]
    jobs: list[Job]
    patches: list[Patch] = field(default_factory=list)
    accumulators: list[PatchAccumulator | None] = field(default_factory=list)
    channels: np.ndarray | None = None  # (len(jobs), H, W) uint8, or None


BoxesFor = Callable[[np.ndarray], np.ndarray]  # mask (H, W) bool -> boxes_xyxy (K, 4)


def make_plan(images: Sequence[np.ndarray], jobs: list[Job], boxes_for: BoxesFor,
              channels: np.ndarray | None = None, *, edge_skip: float | None = None) -> RefinePlan:
    """Stage 1: boxes and an accumulator per job; patches grouped by box size (one tensor per batch).

    With ``edge_skip``, boxes whose coarse boundary already follows the image's strongest edge
    (``bprefine.selection``, alignment >= ``edge_skip``) are not refined."""
    plan = RefinePlan(images, jobs, channels=channels)
    gradients: dict[int, np.ndarray] = {}  # per image, computed once for all its jobs
    for j, job in enumerate(jobs):
        boxes = boxes_for(job.mask)
        if edge_skip is not None and len(boxes):
            if job.image not in gradients:
                gradients[job.image] = gradient_magnitude(images[job.image])
            boxes = skip_aligned(gradients[job.image], job.mask, boxes, edge_skip)
        plan.accumulators.append(PatchAccumulator.for_boxes(boxes, job.mask.shape) if len(boxes) else None)
        plan.patches += [Patch(j, b) for b in boxes]
    plan.patches.sort(key=lambda p: p.hw)  # only the "instance" scheme has more than one size
    return plan


def batches(patches: list[Patch], batch_size: int) -> Iterator[list[Patch]]:
    """Consecutive runs of at most ``batch_size`` patches of one box size."""
    batch: list[Patch] = []
    for p in patches:
        if batch and (len(batch) == batch_size or p.hw != batch[0].hw):
            yield batch
            batch = []
        batch.append(p)
    if batch:
        yield batch


def crop_batch(plan: RefinePlan, batch: list[Patch], padding: int) -> tuple[np.ndarray, np.ndarray]:
    """Crops of a batch in batch order: (B, h, w, 3) uint8 and (B, h, w) masks (uint8 or float32 in [0, 1])."""
    imgs, msks = [], []
    for j, group in groupby(batch, key=lambda p: p.job):  # patches of one job are adjacent
        job = plan.jobs[j]
        boxes = np.stack([p.box for p in group])
        source = job.mask if plan.channels is None else plan.channels[j]
        ci, cm = crop_patches(plan.images[job.image], source, boxes, padding=padding)
        imgs.append(ci)
        msks.append(cm if plan.channels is None else cm.astype(np.float32) / 255.0)
    return np.concatenate(imgs), np.concatenate(msks)


def _inputs(plan: RefinePlan, batch: list[Patch], config: ModelConfig, padding: int):
    imgs, msks = crop_batch(plan, batch, padding)
    return patches_to_tensors(imgs, msks, config=config)


def run_plan(plan: RefinePlan, engine: Engine, config: ModelConfig, *, batch_size: int, padding: int,
             progress: bool = False) -> list[PatchAccumulator | None]:
    """Stage 2: run every patch through ``engine`` and accumulate its logits; returns the accumulators.

    The next batch is cropped and converted on a helper thread while the engine runs the current one
    (ONNX Runtime, PyTorch and OpenCV release the GIL), so the CPU-side work overlaps the network.
    """
    todo: Iterator[list[Patch]] = batches(plan.patches, batch_size)
    if progress:
        total = -(-len(plan.patches) // batch_size)
        todo = tqdm(todo, total=total, desc="patches", unit="batch", leave=False)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bprefine-crop") as pool:
        batch = next(todo, None)
        pending = pool.submit(_inputs, plan, batch, config, padding) if batch else None
        while batch is not None:
            x, m = pending.result()
            following = next(todo, None)
            if following is not None:
                pending = pool.submit(_inputs, plan, following, config, padding)
            out = logits_to_patches(engine(x, m), box_hw=batch[0].hw, padding=padding)
            for p, patch_logits in zip(batch, out):
                plan.accumulators[p.job].add(p.box, patch_logits)
            batch = following
    return plan.accumulators
