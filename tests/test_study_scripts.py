"""scripts/cascade_study.py, scripts/int8_panoptic.py and benchmarks/int8_vs_float.py: the parts that decide what is measured."""

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
