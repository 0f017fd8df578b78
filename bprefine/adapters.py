"""Refine the mask objects of other libraries in place of their N x H x W stacks. No import of those
libraries happens here: objects are recognised by their attributes.

- supervision ``Detections`` (``.mask`` N x H x W bool, ``.xyxy``): a new ``Detections`` with refined masks
  and boxes recomputed from them.
- detectron2 ``Instances`` (``.pred_masks`` N x H x W torch bool, ``.pred_boxes``): a new ``Instances`` with
  refined ``pred_masks`` (same device and dtype) and ``pred_boxes`` recomputed. detectron2 images are BGR:
  pass ``image`` as RGB.
- mmdetection ``DetDataSample`` (``.pred_instances.masks``) or its ``InstanceData``: refined ``masks``
  (and ``bboxes``) in a new ``InstanceData``.
- ultralytics ``Results`` (``.masks.data`` N x h x w at inference resolution, letterboxed; ``.orig_shape``):
  masks mapped back to the original image (padding removed, resized, thresholded at 0.5), refined, and
  returned as an N x H x W bool array.

``refine_detections(refiner, image, detections)`` dispatches on the object's attributes.
"""

from __future__ import annotations

import copy
from typing import Any

import cv2
import numpy as np

from bprefine.patches import mask_bbox
from bprefine.refine import Refiner


def _boxes_xyxy(masks: np.ndarray, fallback: np.ndarray | None) -> np.ndarray:
    """(N, 4) float32 x0, y0, x1, y1 of each mask (pixel-edge coordinates); an empty mask keeps its fallback."""
    out = np.zeros((len(masks), 4), np.float32) if fallback is None else np.array(fallback, np.float32, copy=True)
    for k, m in enumerate(masks):
        box = mask_bbox(m)
        if box is not None:
            out[k] = box
    return out


def _to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def refine_supervision(refiner: Refiner, image: np.ndarray, detections: Any) -> Any:
    """A copy of a supervision ``Detections`` with refined ``mask`` and ``xyxy``."""
    if detections.mask is None:
        raise ValueError("these Detections carry no masks (Detections.mask is None)")
    masks = refiner.refine_instances(image, np.asarray(detections.mask, bool))
    out = copy.deepcopy(detections)
    out.mask = masks
    out.xyxy = _boxes_xyxy(masks, np.asarray(detections.xyxy)).astype(np.asarray(detections.xyxy).dtype)
    return out


def refine_detectron2(refiner: Refiner, image: np.ndarray, instances: Any) -> Any:
    """A copy of detectron2 ``Instances`` with refined ``pred_masks`` (and ``pred_boxes`` when present)."""
    import torch

    masks_t = instances.pred_masks
    refined = refiner.refine_instances(image, _to_numpy(masks_t).astype(bool))
    out = copy.copy(instances)
    out.pred_masks = torch.as_tensor(refined, device=masks_t.device).to(masks_t.dtype)
    if instances.has("pred_boxes"):
        boxes = instances.pred_boxes
        old = _to_numpy(boxes.tensor)
        out.pred_boxes = type(boxes)(torch.as_tensor(_boxes_xyxy(refined, old), device=boxes.tensor.device))
    return out


def refine_mmdet(refiner: Refiner, image: np.ndarray, sample: Any) -> Any:
    """A copy of mmdetection ``pred_instances`` (from a ``DetDataSample`` or the ``InstanceData`` itself)
    with refined ``masks`` and recomputed ``bboxes``."""
    import torch

    inst = sample.pred_instances if hasattr(sample, "pred_instances") else sample
    masks_t = inst.masks
    refined = refiner.refine_instances(image, _to_numpy(masks_t).astype(bool))
    out = copy.copy(inst)
    out.masks = torch.as_tensor(refined, device=masks_t.device).to(masks_t.dtype)
    if hasattr(inst, "bboxes"):
        b = inst.bboxes
        out.bboxes = torch.as_tensor(_boxes_xyxy(refined, _to_numpy(b)), device=b.device).to(b.dtype)
    return out


def unletterbox(masks: np.ndarray, orig_hw: tuple[int, int]) -> np.ndarray:
    """N x h x w masks (probabilities or 0/1) predicted on a letterboxed h x w input -> N x H x W bool on
    the original image: the centred padding is removed and the rest resized bilinearly, threshold 0.5."""
    n, h, w = masks.shape
    oh, ow = orig_hw
    gain = min(h / oh, w / ow)
    pad_x, pad_y = (w - ow * gain) / 2, (h - oh * gain) / 2
    top, left = int(round(pad_y - 0.1)), int(round(pad_x - 0.1))
    bottom, right = int(round(h - pad_y + 0.1)), int(round(w - pad_x + 0.1))
    out = np.zeros((n, oh, ow), bool)
    for k, m in enumerate(masks.astype(np.float32)):
        out[k] = cv2.resize(m[top:bottom, left:right], (ow, oh), interpolation=cv2.INTER_LINEAR) > 0.5
    return out


def refine_ultralytics(refiner: Refiner, image: np.ndarray, results: Any) -> np.ndarray:
    """Refined N x H x W bool masks of one ultralytics ``Results`` (ultralytics images are BGR: pass RGB)."""
    if results.masks is None:
        raise ValueError("these Results carry no masks (a detection-only model?)")
    orig = tuple(int(v) for v in results.orig_shape)
    if image.shape[:2] != orig:
        raise ValueError(f"image is {image.shape[0]}x{image.shape[1]} but the Results came from {orig[0]}x{orig[1]}")
    masks = unletterbox(_to_numpy(results.masks.data), orig)
    return refiner.refine_instances(image, masks)


def refine_detections(refiner: Refiner, image: np.ndarray, detections: Any) -> Any:
    """Refine the masks of a supervision, detectron2, mmdetection or ultralytics object (see the module doc)."""
    if hasattr(detections, "mask") and hasattr(detections, "xyxy"):
        return refine_supervision(refiner, image, detections)
    if hasattr(detections, "pred_masks"):
        return refine_detectron2(refiner, image, detections)
    if hasattr(detections, "pred_instances") or (hasattr(detections, "masks") and hasattr(detections, "bboxes")):
        return refine_mmdet(refiner, image, detections)
    if hasattr(detections, "masks") and hasattr(detections, "orig_shape"):
        return refine_ultralytics(refiner, image, detections)
    raise TypeError(f"no adapter for {type(detections).__name__}: expected supervision Detections, detectron2 "
                    "Instances, an mmdetection DetDataSample/InstanceData or ultralytics Results")
