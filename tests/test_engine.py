from __future__ import annotations

import numpy as np
import pytest
import torch

from bprefine import ModelConfig, RefinementModel, Refiner
from bprefine.engine import FlipEngine, make_engine, onnx_available
from bpr_helpers import IdentityNet, model_with, random_blobs

needs_onnx = pytest.mark.skipif(not onnx_available(), reason="onnx/onnxruntime not installed")


@needs_onnx
def test_onnx_engine_matches_torch():
    torch.manual_seed(0)
    net = RefinementModel.untrained(ModelConfig(input_size=64)).net.eval()
    x, m = torch.randn(5, 3, 64, 64), torch.randn(5, 1, 64, 64)
    ref = make_engine(net, kind="torch", device=torch.device("cpu"), input_size=64)(x, m)
    out = make_engine(net, kind="onnx", device=torch.device("cpu"), input_size=64)(x, m)
    assert out.shape == (5, 1, 64, 64)
    assert torch.allclose(out, ref, atol=1e-4)


@needs_onnx
def test_auto_engine_choice():
    preset = RefinementModel.untrained(ModelConfig(input_size=64))
    assert Refiner(preset).engine.name == "onnx"
    assert Refiner(preset, engine="torch").engine.name == "torch"
    assert Refiner(model_with(IdentityNet())).engine.name == "torch"  # not an exportable preset


@needs_onnx
def test_refined_masks_agree_between_engines():
    rng = np.random.default_rng(1)
    torch.manual_seed(0)
    model = RefinementModel.untrained(ModelConfig(input_size=64))
    image = rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)
    masks = random_blobs(rng, 80, 90, 2)
    a = Refiner(model, engine="torch").refine_instances(image, masks)
    b = Refiner(model, engine="onnx").refine_instances(image, masks)
    assert (a != b).mean() < 1e-3  # only pixels whose mean logit is ~0 may differ


def test_bad_engine():
    with pytest.raises(ValueError, match="unknown engine"):
        Refiner(model_with(IdentityNet()), engine="tensorrt")


@needs_onnx
def test_int8_engine_agrees_with_fp32_on_most_pixels(rng):
    from bprefine import Refiner

    fp32 = Refiner("default", engine="onnx")
    int8 = Refiner("default", engine="onnx-int8")
    assert int8.engine.name == "onnx-int8"
    image = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    masks = random_blobs(rng, 96, 128, 3)
    a, b = fp32.refine_instances(image, masks), int8.refine_instances(image, masks)
    assert (a != b).mean() < 0.01


@needs_onnx
@pytest.mark.parametrize("name", ["default", "people", "nuclei", "street"])
def test_shipped_int8_networks_decide_boundary_patches_like_fp32(name):
    """On real boundary patches (the sample photos', as calibration takes them) each shipped int8 network
    must decide under 1% of the pixels unlike its float network: on x86 CPUs without VNNI, ONNX Runtime's
    saturating u8 x s8 kernels flipped 5.6% of them before ``session_options`` asked for exact products."""
    from bprefine.quantize import calibration_batches

    auto, fp32 = Refiner(name), Refiner(name, engine="onnx")
    assert auto.engine.name == "onnx-int8"
    feeds = calibration_batches(auto.config)[:2]
    x = torch.from_numpy(np.concatenate([f["image"] for f in feeds]))
    m = torch.from_numpy(np.concatenate([f["mask"] for f in feeds]))
    flipped = ((auto.engine(x, m) > 0) != (fp32.engine(x, m) > 0)).float().mean().item()
    assert flipped < 0.01, f"{name}: {100 * flipped:.2f}% of patch pixels decided unlike fp32"


@needs_onnx
def test_seven_bit_weights_stay_within_what_fast_kernels_multiply_exactly():
    import onnx
    from onnx import numpy_helper

    from bprefine.engine import export_onnx
    from bprefine.quantize import calibration_batches, quantize_int8

    model = RefinementModel.untrained(ModelConfig(input_size=64))
    fp32 = export_onnx(model.net, 64)
    feeds = calibration_batches(model.config, limit=64)
    largest = {}
    for seven_bit in (False, True):
        graph = onnx.load_from_string(quantize_int8(fp32, feeds, seven_bit=seven_bit)).graph
        weights = [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
        largest[seven_bit] = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
    assert largest[False] > 64 >= largest[True]  # 7 bits: |w| <= 64, no 16-bit saturation in pairs of products


@needs_onnx
def test_auto_uses_the_shipped_int8_network_only_while_it_matches_the_weights(tmp_path, monkeypatch):
    import shutil

    from bprefine import Refiner, model as model_module

    assert Refiner("default").engine.name == "onnx-int8"  # shipped beside the bundled default
    for name in model_module.bundled_models():  # every shipped int8 network matches its weights
        if (model_module.WEIGHTS_DIR / f"{name}.int8.onnx").is_file():
            assert model_module.bundled_int8(name) is not None, name
    for f in model_module.WEIGHTS_DIR.glob("default.*"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "default.int8.json").write_text('{"weights_sha256": "stale"}')
    monkeypatch.setattr(model_module, "WEIGHTS_DIR", tmp_path)
    assert model_module.bundled_int8("default") is None
    assert Refiner("default").engine.name == "onnx"


class _ColumnRamp(torch.nn.Module):
    """logit = column index - half the width: not mirror-symmetric, so a flip must undo itself."""

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = mask.shape[-1]
        return (torch.arange(w, dtype=mask.dtype) - (w - 1) / 2).expand_as(mask).clone()


def test_flip_engine_averages_the_mirrored_logits_flipped_back():
    cpu = torch.device("cpu")
    plain = make_engine(_ColumnRamp(), kind="torch", device=cpu, input_size=8)
    flipped = FlipEngine(plain)
    x, m = torch.randn(3, 3, 8, 8), torch.randn(3, 1, 8, 8)
    # the ramp is odd under mirroring: plain + mirrored-and-back cancel exactly
    assert torch.equal(flipped(x, m), torch.zeros(3, 1, 8, 8))
    assert flipped.name == "torch+flip"
    same = FlipEngine(make_engine(IdentityNet(), kind="torch", device=cpu, input_size=8))
    assert torch.allclose(same(x, m), m)  # a mirror-equivariant network is unchanged, batch order kept


def test_refiner_flip_keeps_a_mirror_equivariant_refinement():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    masks = random_blobs(rng, 70, 90, 3)
    model = model_with(IdentityNet(), input_size=64)
    refiner = Refiner(model, flip=True)
    assert refiner.engine.name == "torch+flip"
    assert np.array_equal(refiner.refine_instances(image, masks), Refiner(model).refine_instances(image, masks))


def test_calibration_comes_from_the_given_images_and_masks(rng):
    from bprefine.quantize import calibration_batches

    config = ModelConfig(input_size=64, patch_size=32)
    image = np.full((80, 90, 3), 200, np.uint8)  # one flat colour: every calibration image patch equals it
    masks = random_blobs(rng, 80, 90, 2)
    feeds = calibration_batches(config, batch=4, limit=40, pairs=[(image, m) for m in masks])
    assert feeds and all(f["image"].shape[1:] == (3, 64, 64) and f["mask"].shape[1:] == (1, 64, 64) for f in feeds)
    photos = calibration_batches(config, batch=4, limit=40)  # the bundled sample photos
    flat = np.concatenate([f["image"] for f in feeds])
    assert np.unique(flat.round(4)).size <= 5 * 3  # 5 colour variants x 3 channels of one flat colour
    assert np.unique(np.concatenate([f["image"] for f in photos]).round(4)).size > 100


def test_calibration_without_a_boundary_patch_says_so():
    from bprefine.quantize import calibration_batches

    image = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(ValueError, match="no boundary patches"):
        calibration_batches(ModelConfig(input_size=64, patch_size=32), pairs=[(image, np.zeros((40, 40), bool))])
