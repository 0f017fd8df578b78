"""Adapters for other libraries' mask objects: supervision for real, the others through stand-ins that carry
the same attributes as detectron2 Instances, mmdetection InstanceData and ultralytics Results."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from bpr_helpers import IdentityNet, model_with, random_blobs
from bprefine import Refiner
from bprefine.adapters import refine_detections, unletterbox
from bprefine.metrics import mask_iou


@pytest.fixture
def scene(rng):
    image = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    masks = random_blobs(rng, 90, 120, 3)
    masks[2] = False  # an empty mask keeps its box
    return image, masks


@pytest.fixture
def refiner():
    return Refiner(model_with(IdentityNet(), input_size=64), patch_size=16)


def test_supervision_detections(scene, refiner):
    sv = pytest.importorskip("supervision", reason="supervision not installed")
    image, masks = scene
    xyxy = np.array([[0, 0, 5, 5]] * 3, np.float32)
    dets = sv.Detections(xyxy=xyxy, mask=masks, class_id=np.array([1, 2, 3]), confidence=np.ones(3))
    out = refine_detections(refiner, image, dets)
    assert isinstance(out, sv.Detections) and out is not dets
    assert np.array_equal(out.mask, masks) and np.array_equal(out.class_id, [1, 2, 3])
    ys, xs = np.nonzero(masks[0])
    assert out.xyxy[0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert out.xyxy[2].tolist() == [0, 0, 5, 5] and dets.xyxy[0].tolist() == [0, 0, 5, 5]


class _Boxes:  # detectron2.structures.Boxes: a wrapper around an (N, 4) tensor
    def __init__(self, tensor):
        self.tensor = tensor


class _Instances:  # detectron2.structures.Instances: fields set as attributes, has(name)
    def __init__(self, **fields):
        self.__dict__.update(fields)

    def has(self, name):
        return name in self.__dict__


def test_detectron2_instances_stand_in(scene, refiner):
    image, masks = scene
    inst = _Instances(pred_masks=torch.as_tensor(masks), pred_boxes=_Boxes(torch.zeros(3, 4)),
                      scores=torch.ones(3))
    out = refine_detections(refiner, image, inst)
    assert out.pred_masks.dtype == torch.bool and torch.equal(out.pred_masks, torch.as_tensor(masks))
    assert out.pred_boxes.tensor[0].tolist() != [0, 0, 0, 0] and out.pred_boxes.tensor[2].tolist() == [0, 0, 0, 0]
    assert inst.pred_boxes.tensor.abs().sum() == 0  # the input is left alone


class _InstanceData:  # mmengine.structures.InstanceData: attributes masks, bboxes, scores, labels
    def __init__(self, **fields):
        self.__dict__.update(fields)


class _DetDataSample:
    def __init__(self, pred_instances):
        self.pred_instances = pred_instances


def test_mmdet_sample_stand_in(scene, refiner):
    image, masks = scene
    sample = _DetDataSample(_InstanceData(masks=torch.as_tensor(masks), bboxes=torch.zeros(3, 4),
                                          labels=torch.tensor([0, 1, 2])))
    out = refine_detections(refiner, image, sample)
    assert torch.equal(out.masks, torch.as_tensor(masks)) and torch.equal(out.labels, torch.tensor([0, 1, 2]))
    assert out.bboxes[0].abs().sum() > 0


def _letterbox(masks: np.ndarray, size: int = 640) -> np.ndarray:
    """What ultralytics predicts masks on: resized by one gain, centred, padded to size x size."""
    n, h, w = masks.shape
    gain = min(size / h, size / w)
    nh, nw = int(round(h * gain)), int(round(w * gain))
    top, left = int(round((size - nh) / 2 - 0.1)), int(round((size - nw) / 2 - 0.1))
    out = np.zeros((n, size, size), np.float32)
    for k, m in enumerate(masks):
        out[k, top : top + nh, left : left + nw] = cv2.resize(m.astype(np.float32), (nw, nh))
    return out


class _Masks:
    def __init__(self, data):
        self.data = data


class _Results:  # ultralytics.engine.results.Results: masks.data at inference size, orig_shape
    def __init__(self, data, orig_shape):
        self.masks = _Masks(data)
        self.orig_shape = orig_shape


@pytest.mark.parametrize("hw", [(90, 120), (120, 90), (64, 64)])
def test_ultralytics_masks_are_mapped_back_from_the_letterbox(rng, hw):
    masks = random_blobs(rng, *hw, 3)
    masks[:, :4] = False
    back = unletterbox(_letterbox(masks), hw)
    assert back.shape == masks.shape
    for m, b in zip(masks, back):
        if m.sum() > 30:
            assert mask_iou(m, b) > 0.9


def test_ultralytics_results_stand_in(scene, refiner):
    image, masks = scene
    results = _Results(torch.as_tensor(_letterbox(masks)), (90, 120))
    out = refine_detections(refiner, image, results)
    assert out.shape == masks.shape and out.dtype == bool
    with pytest.raises(ValueError, match="came from"):
        refine_detections(refiner, image[:50], results)


def test_unknown_objects_are_a_type_error(scene, refiner):
    with pytest.raises(TypeError, match="no adapter"):
        refine_detections(refiner, scene[0], object())
