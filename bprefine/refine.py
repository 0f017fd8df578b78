"""The Refiner: boundary patches in, refined masks out (instances and class-agnostic masks).

Thin over ``bprefine.pipeline`` (boxes, batching, network, accumulation); semantic and panoptic
refinement live in ``bprefine.tasks`` and are reachable here as methods.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable, Collection, Sequence

import numpy as np
import torch

from bprefine.data.images import binarize_mask
from bprefine.engine import FlipEngine, make_engine, resolve_device
from bprefine.model import ModelConfig, RefinementModel, bundled_int8, bundled_models, load_model
from bprefine.patches import SCHEMES, PatchAccumulator, extract_boxes, mask_bbox
from bprefine.pipeline import Job, make_plan, run_plan
from bprefine.quantize import calibration_batches
from bprefine.tasks import refine_exclusive, refine_panoptic, refine_semantic

DEFAULT_BATCH_SIZE = 32
DEFAULT_SCHEME = "dense"
DEFAULT_MIN_AREA = 16


def _as_bool_stack(stack: np.ndarray) -> np.ndarray:
    """(N, H, W) bool; other dtypes mask by mask through ``binarize_mask`` (the rule files follow)."""
    stack = np.asarray(stack)
    if stack.dtype == bool or stack.ndim != 3:
        return stack.astype(bool, copy=False)
    return np.stack([binarize_mask(m) for m in stack]) if len(stack) else stack.astype(bool)


def _validate(image: np.ndarray, masks: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H x W x 3 uint8 RGB, got {image.shape} {image.dtype}")
    if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
        raise ValueError(f"masks must be N x H x W matching the image {image.shape[:2]}, got {masks.shape}")


class Refiner:
    """Boundary Patch Refinement of instance, class-agnostic, semantic and panoptic masks.

    >>> refiner = Refiner("default")
    >>> refined = refiner.refine_instances(image, masks)  # (N, H, W) bool in, (N, H, W) bool out

    Args:
        model: a bundled model's name (``"default"``, see ``bundled_models()``), the path of a model
            file (``.safetensors`` beside its ``.json``), or a ``RefinementModel``.
        device: torch device for the ``torch`` engine (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
        batch_size: patches per network call.
        nms_threshold: IoU above which overlapping boundary boxes are suppressed (``"dense"`` scheme);
            between 0.1 and 1, higher keeps more patches (slower; below 0.1 boxes stop overlapping and
            gaps are covered again, so there are more). None (default): the model's,
            ``bprefine.model.DEFAULT_NMS_THRESHOLD`` (0.1) unless its config says otherwise: measured with
            ``default`` on person photos, nuclei and street scenes (docs/benchmarks.md), 0.1 refines 38-45% of the patches of the paper's 0.55 and
            80-95% of those of 0.25, within 0.11 points of either's accuracy.
        patch_size: side of the boundary boxes in image pixels; None takes the model's.
        padding: context added around each box (cropped, never pasted back); None takes the model's.
        scheme: how boxes are chosen, one of ``SCHEMES``: ``"dense"`` (boundary boxes + NMS, the paper's
            method), ``"grid"`` (fixed grid cells with boundary pixels), ``"instance"`` (whole instance box).
        engine: one of ``ENGINES``: ``"auto"`` (on the CPU: the int8 network shipped beside a bundled model,
            whose accuracy was measured on every domain; ONNX Runtime fp32 for other preset networks; else
            PyTorch), ``"torch"``, ``"onnx"`` or ``"onnx-int8"`` (int8 static quantization, calibrated on
            the bundled sample photos' patches; see docs/benchmarks.md for its speed and accuracy). The
            engine works on its own copy when it must move or switch the network; the caller's module is
            never changed.
        progress: show a progress bar over patch batches.
        min_area: masks with fewer foreground pixels carry no usable boundary and are returned unchanged.
        move_limit: the do-no-harm guard: pixels may change only within ``max(2, move_limit * sqrt(area))``
            px of the coarse boundary (area of that mask); None: no distance bound.
        min_confidence: a pixel changes only where the mean patch logit is at least this far from 0
            (0: wherever the network says so). None (default): the model's ``min_confidence`` (0.25 for
            ``street``: 90-92% of its CamVid gain kept, refined ground truth 98.49 instead of 98.21 mIoU in
            int8; 0.1 for ``people``: 98-99% kept, 99.02 instead of 98.93; 0.1 for ``default``: 91-99% kept on every
            domain; 0.1 for ``nuclei``: 95-98% of its AP gain kept, fewer nuclei made worse: docs/results.md).
        min_move: a box's changes are kept only where refinement moves the coarse boundary in it by at
            least this many pixels on average (changed pixels per contour pixel): sub-pixel disagreement
            with a boundary that is already right is dropped. 0: off. None (default): the model's
            ``min_move`` (0.5 for ``people``; on v1: 96% of its gain kept, refined ground truth 98.96 instead of
            98.52 mIoU; off for the others, where it drops real sub-pixel corrections: docs/results.md).
        max_change: a mask whose refinement would change more than this share of its coarse area (counted
            after the other guards) keeps its coarse mask whole: a nucleus eroded to half its size is
            more often a mistake than a correction. 0: off. None (default): the model's: 0.2 for
            ``nuclei`` (13 fewer of 4,975 held-out nuclei made worse, AP unchanged), 0.3 for ``default``
            (photos unchanged, 99% of the CamVid gain, 9 fewer nuclei made worse); off for ``people`` (no
            photo is redrawn that much) and ``street`` (small segments of a label map are rightly redrawn
            by more): docs/results.md, "Do no harm: a bound on how much of a mask may change".
        min_mask_confidence: a mask whose changed pixels (those the per-pixel guards let through) have a
            mean |logit| below this changes nothing: a refinement that is unsure as a whole is more often
            noise on a good boundary than a correction. In label maps and panoptic maps such a segment
            claims nothing (unlike ``max_change``, other segments may still take its pixels). 0: off.
            None (default): the model's (docs/results.md, "Do no harm: how sure a mask's refinement is as
            a whole").
        edge_skip: skip boxes whose coarse boundary already follows the strongest image edge near it
            (``bprefine.selection``; alignment in [0, 1] at least ``edge_skip``). None (default): refine
            every box. Measured at 0.5: 14% fewer boxes on person photos for -0.12 boundary IoU, but 47%
            fewer on nuclei for -3 AP (docs/benchmarks.md), hence off by default.
        flip: test-time flip: every patch also runs mirrored left to right and the two logits are averaged
            (``FlipEngine``); twice the network time. Off by default.
        consensus: for disjoint masks (semantic labels, panoptic segments): a pixel changes hands only where
            its coarse owner's refinement gives it up (mean logit <= 0, or no patch of the owner covers it)
            and another mask claims it; off: the most confident claim wins, the owner's included. None
            (default): the model's (on for ``street``, where it keeps 94% of the mIoU gain and makes a third
            fewer segments worse: docs/training.md; off for the others).

    Patches larger than the image: the patch shrinks to the image's shorter side, but never below a
    quarter of the requested size; below that, crops are edge-padded.
    """

    def __init__(
        self,
        model: str | Path | RefinementModel = "default",
        *,
        device: str | torch.device = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        nms_threshold: float | None = None,
        patch_size: int | None = None,
        padding: int | None = None,
        scheme: str = DEFAULT_SCHEME,
        engine: str = "auto",
        progress: bool = False,
        min_area: int = DEFAULT_MIN_AREA,
        move_limit: float | None = None,
        min_confidence: float | None = None,
        min_move: float | None = None,
        max_change: float | None = None,
        min_mask_confidence: float | None = None,
        edge_skip: float | None = None,
        flip: bool = False,
        consensus: bool | None = None,
    ) -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"unknown patch scheme {scheme!r}; choose one of {SCHEMES}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if nms_threshold is not None and not 0.0 <= nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold must lie in [0, 1], got {nms_threshold}")
        if patch_size is not None and patch_size < 4:
            raise ValueError(f"patch_size must be at least 4, got {patch_size}")
        if padding is not None and padding < 0:
            raise ValueError(f"padding must be at least 0, got {padding}")
        if edge_skip is not None and not 0.0 < edge_skip <= 1.0:
            raise ValueError(f"edge_skip must lie in (0, 1], got {edge_skip}")
        if (min_area < 0 or (move_limit is not None and move_limit <= 0)
                or (min_confidence is not None and min_confidence < 0)
                or (min_move is not None and min_move < 0) or (max_change is not None and max_change < 0)
                or (min_mask_confidence is not None and min_mask_confidence < 0)):
            raise ValueError(f"bad guard settings: min_area={min_area}, move_limit={move_limit}, "
                             f"min_confidence={min_confidence}, min_move={min_move}, max_change={max_change}, "
                             f"min_mask_confidence={min_mask_confidence}")
        self.device = resolve_device(device)
        self.model = model if isinstance(model, RefinementModel) else load_model(model, device=self.device)
        shipped_int8 = bundled_int8(model) if isinstance(model, str) and model in bundled_models() else None
        self.engine = make_engine(self.model.net, kind=engine, device=self.device,
                                  input_size=self.model.config.input_size,
                                  calibration=partial(calibration_batches, self.model.config), int8_model=shipped_int8)
        if flip:
            self.engine = FlipEngine(self.engine)
        self.batch_size = batch_size
        self.nms_threshold = self.model.config.nms_threshold if nms_threshold is None else nms_threshold
        self.patch_size = patch_size or self.model.config.patch_size
        self.padding = self.model.config.padding if padding is None else padding
        self.scheme = scheme
        self.progress = progress
        self.min_area = min_area
        self.move_limit = move_limit
        self.min_confidence = self.model.config.min_confidence if min_confidence is None else min_confidence
        self.min_move = self.model.config.min_move if min_move is None else min_move
        self.max_change = self.model.config.max_change if max_change is None else max_change
        self.min_mask_confidence = (self.model.config.min_mask_confidence if min_mask_confidence is None
                                    else min_mask_confidence)
        self.edge_skip = edge_skip
        self.consensus = self.model.config.consensus if consensus is None else consensus

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def refine(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Refine one class-agnostic H x W mask of an H x W x 3 uint8 image: bool, any two-valued mask
        (0/1, 0/255) or a soft mask (0-255, 0-1), read by ``bprefine.data.images.binarize_mask``."""
        return self.refine_instances(image, binarize_mask(mask)[None])[0]

    def refine_instances(self, image: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Refine N instance masks of one image: (N, H, W) bool -> (N, H, W) bool."""
        return self.refine_batch([image], [masks])[0]

    def refine_batch(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Refine the instances of several images, batching patches across all of them."""
        if len(images) != len(masks):
            raise ValueError(f"got {len(images)} images but {len(masks)} mask stacks")
        stacks = [_as_bool_stack(stack) for stack in masks]
        jobs: list[Job] = []
        for i, (image, stack) in enumerate(zip(images, stacks)):
            _validate(image, stack)
            jobs += [Job(i, m) for m in stack]
        accs = iter(self._run(images, jobs))
        out = []
        for stack in stacks:
            refined = stack.copy()  # one copy of the stack, patched in place
            for mask in refined:
                self._write(next(accs), mask)
            out.append(refined)
        return out

    def refine_crops(self, image: np.ndarray, crops: Sequence[tuple[np.ndarray, tuple[int, int]]]
                     ) -> list[np.ndarray]:
        """Refine instances given as crops, for images too large to hold N full-size masks.

        ``crops`` are ``(mask, (x0, y0))``: an (h, w) bool mask whose top-left pixel lies at ``(x0, y0)``
        in the H x W x 3 ``image``. Returns the refined (h, w) crops. Crops reaching at least
        ``crop_margin()`` px beyond each mask's bounding box (or the image edge) give exactly what
        ``refine_instances`` gives on the full-size masks; use ``crop_around`` to cut them.
        """
        patch = self.patch_for(image.shape[:2])
        views, jobs = [], []
        for k, (mask, (x0, y0)) in enumerate(crops):
            mask = _as_bool_stack(np.asarray(mask)[None])[0]
            h, w = mask.shape
            if x0 < 0 or y0 < 0 or y0 + h > image.shape[0] or x0 + w > image.shape[1]:
                raise ValueError(f"crop {k} at ({x0}, {y0}) of size {w}x{h} leaves the {image.shape[1]}x"
                                 f"{image.shape[0]} image")
            views.append(image[y0 : y0 + h, x0 : x0 + w])  # a view: no copy of the image
            jobs.append(Job(k, mask))
        # boxes follow the full image's patch size, so cropping changes nothing
        accs = self._run(views, jobs, boxes_for=partial(self._boxes, patch=patch))
        out = [job.mask.copy() for job in jobs]
        for acc, refined in zip(accs, out):
            self._write(acc, refined)
        return out

    def crop_margin(self, image_hw: tuple[int, int]) -> int:
        """How far beyond a mask's bounding box its crop must reach for ``refine_crops`` to be exact."""
        return self.patch_for(image_hw) + self.padding + 2

    def crop_around(self, mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """``(crop, (x0, y0))`` of a full-size H x W mask: its bounding box plus ``crop_margin``."""
        h, w = mask.shape
        box = mask_bbox(mask)
        if box is None:
            return np.zeros((0, 0), bool), (0, 0)
        m = self.crop_margin((h, w))
        x0, y0 = max(box[0] - m, 0), max(box[1] - m, 0)
        x1, y1 = min(box[2] + m, w), min(box[3] + m, h)
        return np.ascontiguousarray(mask[y0:y1, x0:x1]), (x0, y0)

    def refine_semantic(self, image: np.ndarray, labels: np.ndarray | None, num_classes: int,
                        ignore_index: int | None = None, *, probs: np.ndarray | None = None) -> np.ndarray:
        """Refine an H x W label map; see ``bprefine.tasks.semantic.refine_semantic``."""
        return refine_semantic(self, image, labels, num_classes, ignore_index, probs=probs)

    def refine_panoptic(self, image: np.ndarray, segment_ids: np.ndarray, segments_info: list[dict],
                        things: Collection[int] | None = None) -> tuple[np.ndarray, list[dict]]:
        """Refine a panoptic id map and its ``segments_info`` (``things``: the thing category ids, to refine
        things as instances over the stuff); see ``bprefine.tasks.panoptic.refine_panoptic``."""
        return refine_panoptic(self, image, segment_ids, segments_info, things)

    def refine_exclusive(self, image: np.ndarray, masks: np.ndarray, *, fixed: np.ndarray | None = None,
                         channels: np.ndarray | None = None, priority: np.ndarray | None = None,
                         release: bool = False) -> np.ndarray:
        """One owner per pixel for K disjoint masks; see ``bprefine.tasks.exclusive.refine_exclusive``."""
        return refine_exclusive(self, image, masks, fixed=fixed, channels=channels, priority=priority,
                                release=release)

    def accumulate(self, image: np.ndarray, masks: np.ndarray, *, channels: np.ndarray | None = None
                   ) -> list[PatchAccumulator | None]:
        """Patch logits of each of the (K, H, W) masks, one accumulator per mask (None: no boundary).

        ``channels`` (K, H, W) uint8 (probabilities x 255), when given, feed the network's mask
        channel instead of the binary masks, which still decide the boxes.
        """
        masks = np.asarray(masks).astype(bool, copy=False)
        _validate(image, masks)
        return self._run([image], [Job(0, m) for m in masks], channels)

    def allowed(self, acc: PatchAccumulator, coarse: np.ndarray) -> np.ndarray | None:
        """The guard: an (h, w) bool map over ``acc``'s buffer of the pixels refinement may change for the
        H x W ``coarse`` mask, or None when every covered pixel may change (none when ``holds``)."""
        allowed = self.pixel_guard(acc, coarse)
        return np.zeros(acc.count.shape, bool) if self.holds(acc, coarse, allowed) else allowed

    def pixel_guard(self, acc: PatchAccumulator, coarse: np.ndarray) -> np.ndarray | None:
        """``allowed`` before ``max_change``: the per-pixel guards (``move_limit``, ``min_confidence``,
        ``min_move``), then ``min_mask_confidence`` (nothing is allowed when the pixels they let change
        have a mean |logit| below it), as an (h, w) bool map over ``acc``'s buffer, or None when none is on."""
        allowed = None
        if self.move_limit is not None:
            limit = max(2.0, self.move_limit * float(np.sqrt(coarse.sum())))
            allowed = acc.allowed(coarse, limit)
        if self.min_confidence > 0:
            sure = np.abs(acc.mean_logits()[0]) >= self.min_confidence
            allowed = sure if allowed is None else allowed & sure
        if self.min_move > 0:
            moved = acc.moved_boxes(coarse, self.min_move)
            allowed = moved if allowed is None else allowed & moved
        if self.min_mask_confidence > 0:
            changed = acc.flips(coarse, allowed)
            if changed.any() and acc.confidence(changed) < self.min_mask_confidence:
                return np.zeros(acc.count.shape, bool)
        return allowed

    def holds(self, acc: PatchAccumulator, coarse: np.ndarray, allowed: np.ndarray | None) -> bool:
        """``max_change``: whether the H x W ``coarse`` mask keeps its coarse pixels whole because its
        refinement, as far as the (h, w) ``allowed`` map (``pixel_guard``) lets it, would flip more than
        ``max_change`` times its area."""
        if self.max_change <= 0:
            return False
        changed = acc.flips(coarse, allowed)
        return np.count_nonzero(changed) > self.max_change * max(np.count_nonzero(coarse), 1)

    def patch_for(self, image_hw: tuple[int, int]) -> int:
        """The patch side used on an image of this size (see the class docstring)."""
        short = min(image_hw)
        if short >= self.patch_size:
            return self.patch_size
        return max(short, -(-self.patch_size // 4))

    def boxes_for(self, mask: np.ndarray) -> np.ndarray:
        """The boxes this refiner would refine for one mask (K x 4 ``boxes_xyxy``); none for masks
        smaller than ``min_area``."""
        return self._boxes(mask, patch=self.patch_for(mask.shape))

    def _boxes(self, mask: np.ndarray, *, patch: int) -> np.ndarray:
        if self.min_area and np.count_nonzero(mask) < self.min_area:
            return np.zeros((0, 4), np.int64)
        return extract_boxes(mask, scheme=self.scheme, patch_size=patch, nms_threshold=self.nms_threshold)

    def _write(self, acc: PatchAccumulator | None, mask: np.ndarray) -> None:
        """Overwrite ``mask`` (the coarse mask, in place) with its refined pixels, as the guard allows."""
        if acc is not None:
            acc.write_into(mask, self.allowed(acc, mask))

    def _run(self, images: Sequence[np.ndarray], jobs: list[Job], channels: np.ndarray | None = None,
             boxes_for: Callable[[np.ndarray], np.ndarray] | None = None) -> list[PatchAccumulator | None]:
        plan = make_plan(images, jobs, boxes_for or self.boxes_for, channels, edge_skip=self.edge_skip)
        return run_plan(plan, self.engine, self.config, batch_size=self.batch_size, padding=self.padding,
                        progress=self.progress)
