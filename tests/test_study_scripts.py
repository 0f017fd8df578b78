"""scripts/cascade_study.py, scripts/int8_panoptic.py, scripts/change_share.py, scripts/mask_confidence.py,
scripts/soup_models.py and benchmarks/int8_vs_float.py: the parts
that decide what is measured."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from cascade_study import parse_pass, run_passes  # noqa: E402


def test_a_pass_names_its_model_nms_and_numeric_settings():
    refiner = parse_pass("default:0.25:min_move=0.5:min_confidence=1")
    assert refiner.nms_threshold == 0.25
    assert refiner.min_move == 0.5 and refiner.min_confidence == 1.0


@pytest.mark.parametrize("text", ["default", ":0.1", "default:0.1:min_move", "default:high"])
def test_a_malformed_pass_is_refused_with_its_text(text):
    with pytest.raises(ValueError):
        parse_pass(text)


def test_passes_run_in_order_each_on_the_previous_output():
    seen = []

    class Shift:
        def __init__(self, by: int) -> None:
            self.by = by

        def refine(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
            seen.append((self.by, int(mask.sum())))
            return np.roll(mask, self.by, axis=1)

    mask = np.zeros((8, 8), bool)
    mask[2:4, 0:2] = True
    out = run_passes([Shift(1), Shift(2)], np.zeros((8, 8, 3), np.uint8), mask)
    assert seen == [(1, 4), (2, 4)]
    assert out[2:4, 3:5].all() and out.sum() == 4


def test_int8_variants_are_the_float_the_shipped_or_a_quantized_network():
    pytest.importorskip("onnxruntime")
    from int8_panoptic import variant_network

    from bprefine import Refiner
    from bprefine.model import WEIGHTS_DIR

    refiner = Refiner("default", engine="onnx")
    assert variant_network("shipped", refiner, "default", None) == (WEIGHTS_DIR / "default.int8.onnx").read_bytes()
    assert variant_network("fp32", refiner, "default", None) != variant_network("shipped", refiner, "default", None)
    with pytest.raises(ValueError, match="no shipped int8 network"):
        variant_network("shipped", refiner, "no-such-model", None)


def test_int8_against_float_counts_flipped_decisions_and_needs_held_out_images(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import torch
    from int8_vs_float import disagreement, held_out_pairs

    a = torch.tensor([1.0, -1.0, 2.0, -0.5])
    b = torch.tensor([1.0, 1.0, 2.0, -0.5])  # one of four decisions differs, by 2 in logit
    assert disagreement(a, b).startswith("25.000% flipped") and "0.500" in disagreement(a, b)
    config = tmp_path / "no_val.yaml"
    config.write_text("iterations: 10\n")
    with pytest.raises(SystemExit, match="no val_sources"):
        next(held_out_pairs(config, 2))


def test_change_share_counts_flips_per_coarse_pixel_under_the_pixel_guards():
    import torch
    from bpr_helpers import model_with

    from bprefine.refine import Refiner
    from change_share import flip_shares

    class Grow(torch.nn.Module):  # every boundary moves out 1 image px (16-px boxes at input 128)
        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.max_pool2d(mask, 17, stride=1, padding=8)

    masks = np.zeros((2, 80, 80), bool)
    masks[0, 10:40, 10:50] = True  # 30 x 40: a 1-px ring is 144 pixels
    masks[1, 60:64, 60:64] = True  # 4 x 4 -> 6 x 6
    image = np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8)
    shares, refined = flip_shares(Refiner(model_with(Grow(), patch_size=16), max_change=0.5), image, masks)
    assert np.allclose(shares, [144 / 1200, 20 / 16])  # max_change is not applied: the speck is counted
    assert refined[1].sum() == 36 and refined[0].sum() == 1344
    sure, _ = flip_shares(Refiner(model_with(Grow(), patch_size=16), min_confidence=2.0), image, masks)
    assert (sure == 0).all()  # the margin is applied: logits of +-1 change nothing


def test_mask_confidence_records_what_the_refiner_s_mask_guard_decides_on():
    import torch
    from bpr_helpers import model_with
    from bprefine.refine import Refiner
    from mask_confidence import change_records, held

    class SureWhereBright(torch.nn.Module):  # grows 1 image px; |logit| 4 on white pixels, 1 on black ones
        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            grown = torch.nn.functional.max_pool2d(mask, 17, stride=1, padding=8)
            return grown * (1 + 3 * (image[:, :1] > 0).float())

    masks = np.zeros((3, 80, 80), bool)
    masks[0, 10:40, 10:50] = True  # on white
    masks[1, 60:64, 60:64] = True  # on black
    image = np.zeros((80, 80, 3), np.uint8)
    image[:, :56] = 255
    net = model_with(SureWhereBright(), patch_size=16)
    shares, confidence, refined = change_records(Refiner(net), image, masks)
    assert np.allclose(shares, [144 / 1200, 20 / 16, 0]) and np.allclose(confidence, [4, 1, 0], atol=0.3)  # resizing blurs a little
    rec = {"share": shares, "confidence": confidence}
    assert held(rec, 0, 2.0).tolist() == [False, True, False]  # an empty mask flips nothing: never held
    assert held(rec, 0.5, 0).tolist() == [False, True, False]  # max_change alone
    for threshold in (0.5, 2.0, 5.0):
        guarded = Refiner(net, min_mask_confidence=threshold).refine_instances(image, masks)
        expected = np.where(held(rec, 0, threshold)[:, None, None], masks, refined)
        assert np.array_equal(guarded, expected)


def test_a_speed_spec_names_flip_nms_and_guard_settings():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from model_speed import make_refiner

    refiner = make_refiner("default+flip@0.25%max_change=0%min_confidence=0.5", "torch")
    assert refiner.nms_threshold == 0.25 and refiner.max_change == 0 and refiner.min_confidence == 0.5
    assert refiner.engine.name.endswith("+flip")
    with pytest.raises(ValueError, match="GUARD"):
        make_refiner("default%max_chnage=0", "torch")


def test_a_bundled_soup_records_its_ingredients_and_command(tmp_path):
    import torch

    from bprefine import ModelConfig, RefinementModel, load_model, save_model
    from soup_models import make_soup

    torch.manual_seed(0)
    for name in ("a", "b"):
        save_model(RefinementModel.untrained(ModelConfig(input_size=64, provenance={"recipe": f"train {name}"})),
                   tmp_path / name)
    paths = [str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")]
    soup = make_soup(paths, [3, 1], "a card", "python scripts/soup_models.py ...")
    save_model(soup, tmp_path / "soup")
    prov = load_model(tmp_path / "soup").config.provenance
    assert [i["share"] for i in prov["soup"]] == [0.75, 0.25]
    assert [i["recipe"] for i in prov["soup"]] == ["train a", "train b"]
    assert prov["card"] == "a card" and prov["recipe"].startswith("python scripts/soup_models.py")
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        make_soup([paths[0], str(tmp_path / "missing.safetensors")], None, "", "")
