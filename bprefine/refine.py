"""The Refiner: boundary patches in, refined masks out. The numpy <-> torch boundary lives here."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
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
    std = torch.tensor(config.image_std, dtype=torch.float32)
    img = torch.from_numpy(np.ascontiguousarray(image_patches)).float()  # (K, h, w, 3)
    img.mul_(1.0 / (255.0 * std)).sub_(torch.tensor(config.image_mean, dtype=torch.float32) / std)
    msk = torch.from_numpy(np.ascontiguousarray(mask_patches)).float()
    msk.sub_(config.mask_mean).div_(config.mask_std)
    both = torch.cat([img, msk.unsqueeze(-1)], dim=-1).numpy()  # (K, h, w, 4), channels last
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
        stacks = [np.asarray(stack).astype(bool, copy=False) for stack in masks]
        jobs: list[tuple[int, np.ndarray]] = []  # (image index, coarse mask)
        for i, (image, stack) in enumerate(zip(images, stacks)):
            _validate(image, stack)
            jobs += [(i, m) for m in stack]
        accs = iter(self._accumulate(images, jobs))
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
        """Refine an H x W label map; each class's mask is refined as an instance (paper section 3.3).

        Every output pixel gets exactly one label: where several classes' refined patches claim a
        pixel (mean logit > 0) the most confident wins; where none does, the coarse label stays.
        Pixels labelled ``ignore_index`` stay as they are and no other pixel becomes ``ignore_index``.
        ``probs`` (num_classes x H x W, in [0, 1]), where the segmentation model provides them, feed
        each class's probability map to the network's mask channel instead of its binary mask;
        ``labels`` may then be None (argmax of ``probs``).
        """
        if probs is not None:
            probs = _check_probs(probs, num_classes, image.shape[:2])
            labels = probs.argmax(axis=0) if labels is None else labels
        if labels is None:
            raise ValueError("give labels, probs, or both")
        labels = np.asarray(labels)
        if labels.shape != image.shape[:2]:
            raise ValueError(f"labels must be H x W matching the image {image.shape[:2]}, got {labels.shape}")
        fixed = labels == ignore_index if ignore_index is not None else np.zeros(labels.shape, bool)
        bad = ~fixed & ((labels < 0) | (labels >= num_classes))
        if bad.any():
            raise ValueError(f"labels hold values outside 0..{num_classes - 1}: {np.unique(labels[bad])[:5].tolist()}")
        classes = [c for c in range(num_classes) if (labels == c).any()]
        masks = np.stack([labels == c for c in classes]) if classes else np.zeros((0, *labels.shape), bool)
        channels = None if probs is None else np.round(probs[classes] * 255).astype(np.uint8)
        owner = self.refine_exclusive(image, masks, fixed=fixed, channels=channels)
        out = labels.copy()
        moved = owner >= 0
        out[moved] = np.asarray(classes, labels.dtype)[owner[moved]]
        return out

    def refine_panoptic(self, image: np.ndarray, segment_ids: np.ndarray, segments_info: list[dict]
                        ) -> tuple[np.ndarray, list[dict]]:
        """Refine a panoptic prediction: an H x W segment-id map (0 = void) and its ``segments_info``.

        Every segment, thing or stuff, is refined as an instance; each pixel then gets one segment
        (most confident claim wins, unclaimed pixels keep theirs). Void stays void. Ids and categories
        are kept; ``area`` and ``bbox`` are recomputed; a segment refined away is dropped.
        """
        segment_ids = np.asarray(segment_ids)
        if segment_ids.shape != image.shape[:2]:
            raise ValueError(f"segment map must be H x W matching the image {image.shape[:2]}, got {segment_ids.shape}")
        info = {int(s["id"]): s for s in segments_info}
        present = [int(v) for v in np.unique(segment_ids) if v != 0]
        unknown = [v for v in present if v not in info]
        if unknown:
            raise ValueError(f"segment ids {unknown[:5]} are in the map but not in segments_info")
        ids = [v for v in present]
        masks = np.stack([segment_ids == v for v in ids]) if ids else np.zeros((0, *segment_ids.shape), bool)
        owner = self.refine_exclusive(image, masks, fixed=segment_ids == 0)
        out = np.where(owner >= 0, np.asarray(ids + [0], segment_ids.dtype)[owner], segment_ids).astype(segment_ids.dtype)
        return out, _updated_segments(out, segments_info)

    def refine_exclusive(self, image: np.ndarray, masks: np.ndarray, *, fixed: np.ndarray | None = None,
                         channels: np.ndarray | None = None) -> np.ndarray:
        """Refine K disjoint masks together and give each pixel one owner: an (H, W) int index into
        ``masks`` (-1 where no mask owns it). ``fixed`` pixels (void, ignore) keep their coarse owner."""
        masks = np.asarray(masks).astype(bool, copy=False)
        _validate(image, masks)
        h, w = image.shape[:2]
        owner = np.full((h, w), -1, np.int32)
        for k, m in enumerate(masks):
            owner[m] = k
        best = np.full((h, w), -np.inf, np.float32)  # one image-sized buffer for all masks
        new_owner = owner.copy()
        for k, acc in enumerate(self._accumulate([image], [(0, m) for m in masks], channels)):
            if acc is None:
                continue
            ox, oy = acc.origin_xy
            bh, bw = acc.count.shape
            mean = acc.logit_sum / np.maximum(acc.count, 1)
            region_best, region_owner = best[oy : oy + bh, ox : ox + bw], new_owner[oy : oy + bh, ox : ox + bw]
            wins = (acc.count > 0) & (mean > 0) & (mean > region_best)
            region_best[wins] = mean[wins]
            region_owner[wins] = k
        claimed = np.isfinite(best)
        if fixed is not None:
            claimed &= ~fixed
        return np.where(claimed, new_owner, owner)

    def _accumulate(self, images, jobs, channels: np.ndarray | None = None) -> list[PatchAccumulator | None]:
        """Per-job logit accumulators. ``channels`` (one uint8 0-255 map per job), when given, feed the
        network's mask channel instead of the binary masks (which still decide the boxes)."""
        patches, accs = self._plan(images, jobs)
        self._run(images, jobs, patches, accs, channels)
        return accs

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

    def _run(self, images, jobs, patches: list[_Patch], accs, channels: np.ndarray | None = None) -> None:
        batches = self._batches(patches)
        if self.progress:
            total = -(-len(patches) // self.batch_size)
            batches = tqdm(batches, total=total, desc="patches", unit="batch", leave=False)
        for batch in batches:
            imgs, msks = self._crop(images, jobs, batch, channels)
            x, m = patches_to_tensors(imgs, msks, config=self.config)
            logits = self.engine(x, m)
            out = logits_to_patches(logits, box_hw=_hw(batch[0].box), padding=self.padding)
            for p, patch_logits in zip(batch, out):
                accs[p.job].add(p.box, patch_logits)

    def _crop(self, images, jobs, batch: list[_Patch], channels: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Crops of a batch in batch order, cut one job (image, mask) at a time."""
        imgs, msks = [], []
        for job, group in groupby(batch, key=lambda p: p.job):  # patches of one job are adjacent
            i, mask = jobs[job]
            boxes = np.stack([p.box for p in group])
            if channels is None:
                ci, cm = crop_patches(images[i], mask, boxes, padding=self.padding)
            else:  # soft mask channel: probabilities stored as 0-255
                ci, cm = crop_patches(images[i], channels[job], boxes, padding=self.padding)
                cm = cm.astype(np.float32) / 255.0
            imgs.append(ci)
            msks.append(cm)
        return np.concatenate(imgs), np.concatenate(msks)


def _check_probs(probs: np.ndarray, num_classes: int, hw: tuple[int, ...]) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float32)
    if probs.shape != (num_classes, *hw):
        raise ValueError(f"probs must be num_classes x H x W = {(num_classes, *hw)}, got {probs.shape}")
    if not np.isfinite(probs).all() or probs.min() < 0 or probs.max() > 1:
        raise ValueError("probs must be finite probabilities in [0, 1]")
    return probs


def _updated_segments(segment_ids: np.ndarray, segments_info: list[dict]) -> list[dict]:
    """``segments_info`` in its order with area and bbox (x, y, w, h) recomputed; empty segments dropped."""
    from bprefine.patches import mask_bbox

    out = []
    for s in segments_info:
        m = segment_ids == int(s["id"])
        box = mask_bbox(m)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        out.append(dict(s, area=int(m.sum()), bbox=[x0, y0, x1 - x0, y1 - y0]))
    return out


def _hw(box: np.ndarray) -> tuple[int, int]:
    return int(box[3] - box[1]), int(box[2] - box[0])
