"""No global side effects: importing, engines, caches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from bpr_helpers import IdentityNet, model_with, random_blobs
from bprefine.engine import inference_copy, make_engine, onnx_available, resolve_device
from bprefine.nets import build_net


def test_import_leaves_pillow_decompression_guard_alone():
    code = ("from PIL import Image; before = Image.MAX_IMAGE_PIXELS; import bprefine, bprefine.cli, "
            "bprefine.training; print(before == Image.MAX_IMAGE_PIXELS and before is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_oversized_image_is_refused_with_the_file_name(tmp_path, monkeypatch):
    from PIL import Image

    from bprefine.data.images import read_image

    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # limit 2000 pixels < 10000
    with pytest.raises(ValueError, match=r"big\.png.*decompression-bomb limit of 2000"):
        read_image(path)


def test_torch_engine_never_changes_the_callers_network():
    net = build_net("mobilenet_v2").train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    engine = make_engine(net, kind="torch", device=torch.device("cpu"), input_size=64)
    engine(torch.randn(2, 3, 64, 64), torch.randn(2, 1, 64, 64))
    assert net.training  # still in training mode: the engine runs a copy in eval mode
    assert engine.net is not net and not engine.net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # BN stats untouched


def test_inference_copy_reuses_a_ready_network():
    net = build_net("mobilenet_v2").eval()
    assert inference_copy(net, torch.device("cpu")) is net


@pytest.mark.skipif(not onnx_available(), reason="onnx/onnxruntime not installed")
def test_onnx_export_leaves_the_callers_network_in_training_mode():
    net = build_net("mobilenet_v2").train()
    make_engine(net, kind="onnx", device=torch.device("cpu"), input_size=64)
    assert net.training


@pytest.mark.parametrize("device, message", [("bogus", "unknown device"), ("xla", "unsupported device"), ("cuda:x", "unknown device")])
def test_bad_devices_are_value_errors(device, message):
    with pytest.raises(ValueError, match=message):
        resolve_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error():
    from bprefine import Refiner

    with pytest.raises(ValueError, match="no CUDA GPU"):
        Refiner(model_with(IdentityNet(), input_size=64), device="cuda")


def test_coco_cache_follows_a_changed_file(tmp_path):
    from bprefine.training.config import SourceConfig
    from bprefine.training.sources import list_items

    gt = tmp_path / "gt.json"

    def write(names):
        images = [{"id": i, "file_name": n, "height": 4, "width": 4} for i, n in enumerate(names)]
        gt.write_text(json.dumps({"images": images, "annotations": []}))

    source = SourceConfig(kind="coco", images=str(tmp_path), gt=str(gt), simulate="mask_head")
    write(["a.jpg"])
    assert list_items(source) == ["a.jpg"]
    write(["a.jpg", "b.jpg"])
    os.utime(gt, ns=(gt.stat().st_atime_ns, gt.stat().st_mtime_ns + 10**9))  # even within one clock tick
    assert list_items(source) == ["a.jpg", "b.jpg"]


def test_accumulator_mean_logits_and_region():
    from bprefine.patches import PatchAccumulator

    boxes = np.array([[2, 2, 6, 6], [4, 4, 8, 8]])
    acc = PatchAccumulator.for_boxes(boxes, (10, 10))
    acc.add(boxes[0], np.full((4, 4), 2.0, np.float32))
    acc.add(boxes[1], np.full((4, 4), -4.0, np.float32))
    mean, covered = acc.mean_logits()
    assert mean.shape == covered.shape == (6, 6)
    assert mean[0, 0] == 2.0 and mean[5, 5] == -4.0 and mean[2, 2] == -1.0  # overlap: (2 - 4) / 2
    assert not covered[0, 5] and mean[0, 5] == 0.0
    image = np.arange(100).reshape(10, 10)
    assert np.array_equal(acc.region(image), image[2:8, 2:8])


def test_semantic_validation_runs_semantic_refinement(rng):
    from bprefine.training.config import SourceConfig
    from bprefine.training.sources import Sample, SemanticLabels
    from bprefine.training.validation import refined_pairs

    class Spy:
        calls: list[str] = []

        def refine_semantic(self, image, labels, num_classes, ignore_index):
            self.calls.append("semantic")
            return np.where(labels == 1, 2, labels)  # class 1 becomes class 2 everywhere

        def refine_instances(self, image, masks):
            self.calls.append("instances")
            return masks

    labels = rng.integers(0, 3, (16, 16))
    sample = Sample("x", np.zeros((16, 16, 3), np.uint8), [(labels == c, labels == c) for c in (0, 1, 2)],
                    labels=SemanticLabels(labels, labels, [0, 1, 2]))
    source = SourceConfig(kind="semantic", images="i", gt="g", simulate="semantic_low_res", num_classes=3)
    out = refined_pairs(Spy(), source, sample)
    assert Spy.calls == ["semantic"]
    assert not out[1].any() and np.array_equal(out[2], (labels == 1) | (labels == 2))
    instance_sample = Sample("y", sample.image, [(labels == 0, labels == 0)])
    refined_pairs(Spy(), source, instance_sample)
    assert Spy.calls == ["semantic", "instances"]


def test_cropped_boundary_iou_equals_the_full_image_value(rng):
    from bprefine.metrics.masks import boundary_iou, boundary_iou_cropped

    for _ in range(20):
        a, b = random_blobs(rng, 60, 80, 2)
        for width in (1, 3, 7):
            assert boundary_iou_cropped(a, b, width) == pytest.approx(boundary_iou(a, b, width=width))
    empty = np.zeros((10, 10), bool)
    assert boundary_iou_cropped(empty, empty, 2) == 1.0
