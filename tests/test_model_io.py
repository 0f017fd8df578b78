from __future__ import annotations

import json
from dataclasses import replace as replace_config

import numpy as np
import pytest
import torch

from bprefine import ModelConfig, RefinementModel, load_model, save_model


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = RefinementModel.untrained(ModelConfig(preset="mobilenet_v2", input_size=64, provenance={"a": 1}))
    model.net.eval()
    path = save_model(model, tmp_path / "m")
    assert path.name == "m.safetensors" and (tmp_path / "m.json").is_file()
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.config == model.config
    x, m = torch.randn(2, 3, 64, 64), torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.net(x, m), loaded.net(x, m))
    assert load_model(tmp_path / "m.json").config.provenance == {"a": 1}


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.safetensors"):
        load_model(tmp_path / "nothere")
    save_model(RefinementModel.untrained(ModelConfig()), tmp_path / "m")
    (tmp_path / "m.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="m.safetensors"):
        load_model(tmp_path / "m")
    save_model(RefinementModel.untrained(ModelConfig()), tmp_path / "m")
    cfg = json.loads((tmp_path / "m.json").read_text())
    (tmp_path / "m.json").write_text(json.dumps(cfg | {"preset": "fcn_resnet18"}))
    with pytest.raises(ValueError, match="do not match preset 'fcn_resnet18'"):
        load_model(tmp_path / "m")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ValueError, match="m.json"):
        load_model(tmp_path / "m")


def test_config_validation():
    with pytest.raises(ValueError, match="input_size"):
        ModelConfig(input_size=100)
    assert ModelConfig.from_json(ModelConfig().to_json()) == ModelConfig()
    assert np.allclose(ModelConfig().image_mean, (0.485, 0.456, 0.406))


def test_written_files_get_normal_permissions(tmp_path):
    import os
    import stat

    path = save_model(RefinementModel.untrained(ModelConfig()), tmp_path / "m")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_export_hugging_face_layout_loads_back(tmp_path):
    import json

    import numpy as np
    from click.testing import CliRunner

    from bprefine import Refiner
    from bprefine.cli import main

    res = CliRunner().invoke(main, ["export", "--model", "default", "--out", str(tmp_path / "hf"), "--int8"])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in (tmp_path / "hf").iterdir())
    assert names == ["README.md", "config.json", "model.int8.onnx", "model.onnx", "model.safetensors",
                     "preprocessing.json"]
    card = (tmp_path / "hf" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: bprefine\n") and "\n---\n" in card
    steps = json.loads((tmp_path / "hf" / "preprocessing.json").read_text())
    assert steps["image"]["mean"][0] == 0.485
    assert "session.x64quantprecision=1" in steps["int8_runtime"]  # how to run the int8 network exactly
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    mask = np.zeros((60, 80), bool)
    mask[10:50, 20:60] = True
    a = Refiner("default", engine="torch").refine(image, mask)
    b = Refiner(tmp_path / "hf", engine="torch").refine(image, mask)
    assert np.array_equal(a, b)
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "hf" / "model.onnx"), providers=["CPUExecutionProvider"])
    out = session.run(None, {"image": np.zeros((2, 3, 128, 128), np.float32), "mask": np.zeros((2, 1, 128, 128), np.float32)})
    assert out[0].shape == (2, 1, 128, 128)


def test_a_soup_is_the_weighted_average_of_its_ingredients(tmp_path):
    from bprefine.training.soup import average_models

    torch.manual_seed(0)
    config = ModelConfig(preset="mobilenet_v2", input_size=64, patch_size=32, min_move=0.5)
    a, b = RefinementModel.untrained(config), RefinementModel.untrained(replace_config(config, min_move=0.0))
    with torch.no_grad():
        for p in b.net.parameters():
            p.add_(1.0)
        for m in b.net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.fill_(3.0)
                m.num_batches_tracked.fill_(9)
    soup = average_models([a, b], [3, 1])
    sa, sb, ss = a.net.state_dict(), b.net.state_dict(), soup.net.state_dict()
    for k, v in ss.items():
        if v.is_floating_point():
            assert torch.allclose(v, 0.75 * sa[k] + 0.25 * sb[k], atol=1e-6), k
        else:
            assert torch.equal(v, sa[k]), k  # integer buffers: the first ingredient's
    assert soup.config == a.config  # the first ingredient says how the soup runs
    assert not soup.net.training
    equal = average_models([a, b])
    assert torch.allclose(next(iter(equal.net.parameters())),
                          (next(iter(a.net.parameters())) + next(iter(b.net.parameters()))) / 2)
    same = average_models([a])  # a soup of one is that network
    assert all(torch.equal(v, sa[k]) for k, v in same.net.state_dict().items())


def test_a_soup_refuses_networks_that_differ(tmp_path):
    from bprefine.training.soup import average_models

    a = RefinementModel.untrained(ModelConfig(preset="mobilenet_v2", input_size=64))
    other = RefinementModel.untrained(ModelConfig(preset="mobilenet_v2_fine", input_size=64))
    with pytest.raises(ValueError, match="fine.safetensors: preset 'mobilenet_v2_fine'"):
        average_models([a, other], names=["a.safetensors", "fine.safetensors"])
    no_mask = RefinementModel.untrained(ModelConfig(preset="mobilenet_v2", input_size=64, use_mask=False))
    with pytest.raises(ValueError, match="use_mask False"):
        average_models([a, no_mask])
    for bad in ([1.0], [1.0, -1.0], [0.0, 0.0]):
        with pytest.raises(ValueError, match="soup weights"):
            average_models([a, a], bad)
    with pytest.raises(ValueError, match="at least one model"):
        average_models([])


@pytest.mark.parametrize("name", ["default", "people", "nuclei", "street"])
def test_a_bundled_model_runs_with_the_settings_its_recipe_names(name):
    """Retraining from the recorded recipe gives a model that refines as the bundled one does (same
    network, boxes, guards and NMS threshold): the recipe's ``model:`` section is the bundled config."""
    import re
    from dataclasses import asdict
    from pathlib import Path

    import yaml

    from bprefine.model import WEIGHTS_DIR

    bundled = ModelConfig.from_json(json.loads((WEIGHTS_DIR / f"{name}.json").read_text()))
    recipe = re.search(r"--config (\S+)", bundled.provenance["recipe"]).group(1)
    model = yaml.safe_load((Path(__file__).resolve().parents[1] / recipe).read_text())["model"]
    assert asdict(replace_config(bundled, provenance={})) == asdict(ModelConfig.from_json(model, where=recipe))
