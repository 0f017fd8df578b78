"""The Refiner: boundary patches in, refined masks out (instances and class-agnostic masks).

Thin over ``bprefine.pipeline`` (boxes, batching, network, accumulation); semantic and panoptic
refinement live in ``bprefine.tasks`` and are reachable here as methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from bprefine.engine import make_engine, resolve_device
from bprefine.model import ModelConfig, RefinementModel, load_model
from bprefine.patches import SCHEMES, PatchAccumulator, extract_boxes
from bprefine.pipeline import Job, make_plan, run_plan
from bprefine.tasks import refine_exclusive, refine_panoptic, refine_semantic

DEFAULT_BATCH_SIZE = 32
DEFAULT_NMS_THRESHOLD = 0.55
DEFAULT_SCHEME = "dense"


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
            higher keeps more patches: better, slower. The paper uses 0.25 for ablations, 0.55 for its best models.
        patch_size: side of the boundary boxes in image pixels; None takes the model's.
        padding: context added around each box (cropped, never pasted back); None takes the model's.
        scheme: how boxes are chosen, one of ``SCHEMES``: ``"dense"`` (boundary boxes + NMS, the paper's
            method), ``"grid"`` (fixed grid cells with boundary pixels), ``"instance"`` (whole instance box).
        engine: one of ``ENGINES``: ``"auto"`` (ONNX Runtime on the CPU for the preset networks, else
            PyTorch), ``"torch"`` or ``"onnx"``. The engine works on its own copy when it must move or
            switch the network; the caller's module is never changed.
        progress: show a progress bar over patch batches.
    """

    def __init__(
        self,
        model: str | Path | RefinementModel = "default",
        *,
        device: str | torch.device = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        nms_threshold: float = DEFAULT_NMS_THRESHOLD,
        patch_size: int | None = None,
        padding: int | None = None,
        scheme: str = DEFAULT_SCHEME,
        engine: str = "auto",
        progress: bool = False,
    ) -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"unknown patch scheme {scheme!r}; choose one of {SCHEMES}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if not 0.0 <= nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold must lie in [0, 1], got {nms_threshold}")
        if patch_size is not None and patch_size < 4:
            raise ValueError(f"patch_size must be at least 4, got {patch_size}")
        if padding is not None and padding < 0:
            raise ValueError(f"padding must be at least 0, got {padding}")
        self.device = resolve_device(device)
        self.model = model if isinstance(model, RefinementModel) else load_model(model, device=self.device)
        self.engine = make_engine(self.model.net, kind=engine, device=self.device,
                                  input_size=self.model.config.input_size)
        self.batch_size = batch_size
        self.nms_threshold = nms_threshold
        self.patch_size = patch_size or self.model.config.patch_size
        self.padding = self.model.config.padding if padding is None else padding
        self.scheme = scheme
        self.progress = progress

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def refine(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Refine one class-agnostic H x W mask (bool, or 0/1, or 0/255) of an H x W x 3 uint8 image."""
        return self.refine_instances(image, (np.asarray(mask) > 0)[None])[0]

    def refine_instances(self, image: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Refine N instance masks of one image: (N, H, W) bool -> (N, H, W) bool."""
        return self.refine_batch([image], [masks])[0]

    def refine_batch(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Refine the instances of several images, batching patches across all of them."""
        if len(images) != len(masks):
            raise ValueError(f"got {len(images)} images but {len(masks)} mask stacks")
        stacks = [np.asarray(stack).astype(bool, copy=False) for stack in masks]
        jobs: list[Job] = []
        for i, (image, stack) in enumerate(zip(images, stacks)):
            _validate(image, stack)
            jobs += [Job(i, m) for m in stack]
        accs = iter(self._run(images, jobs))
        out = []
        for stack in stacks:
            refined = stack.copy()  # one copy of the stack, patched in place
            for mask in refined:
                acc = next(accs)
                if acc is not None:
                    acc.write_into(mask)
            out.append(refined)
        return out

    def refine_semantic(self, image: np.ndarray, labels: np.ndarray | None, num_classes: int,
                        ignore_index: int | None = None, *, probs: np.ndarray | None = None) -> np.ndarray:
        """Refine an H x W label map; see ``bprefine.tasks.semantic.refine_semantic``."""
        return refine_semantic(self, image, labels, num_classes, ignore_index, probs=probs)

    def refine_panoptic(self, image: np.ndarray, segment_ids: np.ndarray, segments_info: list[dict]
                        ) -> tuple[np.ndarray, list[dict]]:
        """Refine a panoptic id map and its ``segments_info``; see ``bprefine.tasks.panoptic.refine_panoptic``."""
        return refine_panoptic(self, image, segment_ids, segments_info)

    def refine_exclusive(self, image: np.ndarray, masks: np.ndarray, *, fixed: np.ndarray | None = None,
                         channels: np.ndarray | None = None) -> np.ndarray:
        """One owner per pixel for K disjoint masks; see ``bprefine.tasks.exclusive.refine_exclusive``."""
        return refine_exclusive(self, image, masks, fixed=fixed, channels=channels)

    def accumulate(self, image: np.ndarray, masks: np.ndarray, *, channels: np.ndarray | None = None
                   ) -> list[PatchAccumulator | None]:
        """Patch logits of each of the (K, H, W) masks, one accumulator per mask (None: no boundary).

        ``channels`` (K, H, W) uint8 (probabilities x 255), when given, feed the network's mask
        channel instead of the binary masks, which still decide the boxes.
        """
        masks = np.asarray(masks).astype(bool, copy=False)
        _validate(image, masks)
        return self._run([image], [Job(0, m) for m in masks], channels)

    def boxes_for(self, mask: np.ndarray) -> np.ndarray:
        """The boxes this refiner would refine for one mask (K x 4 ``boxes_xyxy``)."""
        return extract_boxes(mask, scheme=self.scheme, patch_size=self.patch_size,
                             nms_threshold=self.nms_threshold)

    def _run(self, images: Sequence[np.ndarray], jobs: list[Job], channels: np.ndarray | None = None
             ) -> list[PatchAccumulator | None]:
        plan = make_plan(images, jobs, self.boxes_for, channels)
        return run_plan(plan, self.engine, self.config, batch_size=self.batch_size, padding=self.padding,
                        progress=self.progress)
