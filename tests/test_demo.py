"""The bundled default model on the bundled sample photos: the README's first command."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from bprefine import bundled_models, load_model
from bprefine.cli import main

pytestmark = pytest.mark.skipif("default" not in bundled_models(), reason="no bundled default model")


def test_default_model_loads_with_provenance():
    model = load_model("default")
    assert model.config.preset == "mobilenet_v2"
    assert "ccp" in model.config.provenance.get("data", "")


def test_demo_improves_boundaries_and_writes_overlays(tmp_path):
    from bprefine.demo import run_demo

    summary = run_demo(tmp_path / "out")
    assert summary["BIoU"]["after"] > summary["BIoU"]["before"] + 0.02
    assert summary["BF@1px"]["after"] > summary["BF@1px"]["before"] + 0.05
    assert summary["IoU"]["after"] > summary["IoU"]["before"]
    panels = sorted((tmp_path / "out").glob("*_before_after.png"))
    assert len(panels) == 4


def test_demo_command_names_its_model_and_folder(tmp_path):
    res = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "d")])
    assert res.exit_code == 0, res.output
    assert "model: default (mobilenet_v2" in res.output and str(tmp_path / "d") in res.output
    rows = [line for line in res.output.splitlines() if line.startswith("mean")]
    values = np.array(rows[0].split()[1:], float)
    assert values[3] > values[2]  # BIoU after > before


@pytest.mark.parametrize("name", sorted(set(bundled_models()) - {"default"}))
def test_every_specialist_loads_and_refines(name, rng):
    from bprefine import Refiner

    refiner = Refiner(name)
    assert refiner.config.provenance.get("card") and refiner.config.provenance.get("recipe")
    labels = np.zeros((60, 80), np.int64)
    labels[20:, :] = 1
    labels[30:50, 30:60] = 2
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    out = refiner.refine_semantic(image, labels, 3)
    assert out.shape == labels.shape and set(np.unique(out)) <= {0, 1, 2}
