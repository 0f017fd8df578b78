"""The Refiner: boundary patches in, refined masks out. The numpy <-> torch boundary lives here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from bprefine.engine import make_engine
from bprefine.model import ModelConfig, RefinementModel, load_model
from bprefine.patches import SCHEMES, PatchAccumulator, crop_patches, extract_boxes


def patches_to_tensors(
    image_patches: np.ndarray, mask_patches: np.ndarray, *, config: ModelConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize native crops to the network input and normalise them (shared by training and inference).

    ``image_patches`` (K, h, w, 3) uint8 and ``mask_patches`` (K, h, w) in {0, 1} become
    (K, 3, S, S) and (K, 1, S, S) float32 tensors, resized bilinearly. Bilinear weights sum to one,
    so normalising before resizing gives the same values on 4x fewer pixels.
    """
    k, h, w = mask_patches.shape
    std = np.asarray(config.image_std, np.float32)
    scale = np.append(1.0 / (255.0 * std), 1.0 / config.mask_std).astype(np.float32)
    shift = np.append(np.asarray(config.image_mean, np.float32) / std, config.mask_mean / config.mask_std)
    both = np.empty((k, h, w, 4), np.float32)
    both[..., :3] = image_patches
    both[..., 3] = mask_patches
    both *= scale
    both -= shift.astype(np.float32)
    s = config.input_size
    if (h, w) != (s, s):  # cv2 matches torch's align_corners=False bilinear and is ~8x faster here
        resized = np.empty((k, s, s, 4), np.float32)
        for src, dst in zip(both, resized):
            cv2.resize(src, (s, s), dst=dst, interpolation=cv2.INTER_LINEAR)
        both = resized
    t = torch.from_numpy(both).permute(0, 3, 1, 2)  # (K, 4, S, S) view of channels-last memory
    return t[:, :3], t[:, 3:]


def logits_to_patches(logits: torch.Tensor, *, box_hw: tuple[int, int], padding: int) -> np.ndarray:
    """Resize (K, 1, S, S) logits back to the padded crop and drop the context border: (K, h, w)."""
    h, w = box_hw
    out = F.interpolate(logits.float(), size=(h + 2 * padding, w + 2 * padding), mode="bilinear",
                        align_corners=False)
    return out[:, 0, padding : padding + h, padding : padding + w].cpu().numpy()


@dataclass
class _Patch:
    job: int  # index into the flat list of (image, mask) jobs
    box: np.ndarray  # (4,) boxes_xyxy row


def _validate(image: np.ndarray, masks: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H x W x 3 uint8 RGB, got {image.shape} {image.dtype}")
    if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
        raise ValueError(f"masks must be N x H x W matching the image {image.shape[:2]}, got {masks.shape}")


class Refiner:
    """Boundary Patch Refinement of instance and class-agnostic masks.

    >>> refiner = Refiner("default")
    >>> refined = refiner.refine_instances(image, masks)  # (N, H, W) bool in, (N, H, W) bool out
    """

    def __init__(
        self,
        model: str | Path | RefinementModel = "default",
        *,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
        nms_threshold: float = 0.55,
        patch_size: int | None = None,
        padding: int | None = None,
        scheme: str = "dense",
        engine: str = "auto",
        progress: bool = False,
    ) -> None:
        self.model = model if isinstance(model, RefinementModel) else load_model(model, device=device)
        self.device = torch.device(device)
        self.engine = make_engine(self.model.net, kind=engine, device=self.device,
                                  input_size=self.model.config.input_size)
        if scheme not in SCHEMES:
            raise ValueError(f"unknown patch scheme {scheme!r}; choose one of {SCHEMES}")
        if batch_size < 1 or not 0.0 <= nms_threshold <= 1.0:
            raise ValueError(f"bad batch_size/nms_threshold: {batch_size}/{nms_threshold}")
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
        jobs: list[tuple[int, np.ndarray]] = []  # (image index, coarse mask)
        for i, (image, stack) in enumerate(zip(images, masks)):
            stack = np.asarray(stack).astype(bool, copy=False)
            _validate(image, stack)
            jobs += [(i, m) for m in stack]
        patches, accs = self._plan(images, jobs)
        self._run(images, jobs, patches, accs)
        refined = [acc.apply(mask) if acc else mask.copy() for (_, mask), acc in zip(jobs, accs)]
        out, start = [], 0
        for image, stack in zip(images, masks):
            n = len(stack)
            out.append(np.stack(refined[start : start + n]) if n else np.zeros((0, *image.shape[:2]), bool))
            start += n
        return out

    def boxes_for(self, mask: np.ndarray) -> np.ndarray:
        """The boxes this refiner would refine for one mask (K x 4 ``boxes_xyxy``)."""
        return extract_boxes(mask, scheme=self.scheme, patch_size=self.patch_size,
                             iou_threshold=self.nms_threshold)

    def _plan(self, images, jobs) -> tuple[list[_Patch], list[PatchAccumulator | None]]:
        patches: list[_Patch] = []
        accs: list[PatchAccumulator | None] = []
        for j, (i, mask) in enumerate(jobs):
            boxes = self.boxes_for(mask)
            accs.append(PatchAccumulator.for_boxes(boxes, mask.shape) if len(boxes) else None)
            patches += [_Patch(j, b) for b in boxes]
        # Group equal box sizes so each batch is one tensor (only the "instance" scheme varies).
        patches.sort(key=lambda p: (int(p.box[2] - p.box[0]), int(p.box[3] - p.box[1])))
        return patches, accs

    def _batches(self, patches: list[_Patch]) -> Iterator[list[_Patch]]:
        batch: list[_Patch] = []
        for p in patches:
            if batch and (len(batch) == self.batch_size or _hw(p.box) != _hw(batch[0].box)):
                yield batch
                batch = []
            batch.append(p)
        if batch:
            yield batch

    def _run(self, images, jobs, patches: list[_Patch], accs) -> None:
        batches = self._batches(patches)
        if self.progress:
            total = -(-len(patches) // self.batch_size)
            batches = tqdm(batches, total=total, desc="patches", unit="batch", leave=False)
        for batch in batches:
            imgs, msks = self._crop(images, jobs, batch)
            x, m = patches_to_tensors(imgs, msks, config=self.config)
            logits = self.engine(x, m)
            out = logits_to_patches(logits, box_hw=_hw(batch[0].box), padding=self.padding)
            for p, patch_logits in zip(batch, out):
                accs[p.job].add(p.box, patch_logits)

    def _crop(self, images, jobs, batch: list[_Patch]) -> tuple[np.ndarray, np.ndarray]:
        """Crops of a batch in batch order, cut one job (image, mask) at a time."""
        imgs, msks = [], []
        start = 0
        while start < len(batch):
            end = start
            while end < len(batch) and batch[end].job == batch[start].job:
                end += 1
            i, mask = jobs[batch[start].job]
            boxes = np.stack([p.box for p in batch[start:end]])
            ci, cm = crop_patches(images[i], mask, boxes, padding=self.padding)
            imgs.append(ci)
            msks.append(cm)
            start = end
        return np.concatenate(imgs), np.concatenate(msks)


def _hw(box: np.ndarray) -> tuple[int, int]:
    return int(box[3] - box[1]), int(box[2] - box[0])
