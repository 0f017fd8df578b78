"""Strict configs: unknown keys and bad values are errors that name the key and the place."""

from __future__ import annotations

import json

import pytest

from bprefine.model import ModelConfig, load_model, save_model, RefinementModel
from bprefine.training.config import TrainConfig, load_train_config, train_config_from_dict

SOURCE = {"kind": "masks", "images": "a", "gt": "b", "simulate": "low_res"}


def test_model_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['inputsize'\]"):
        ModelConfig.from_json({"inputsize": 64})


@pytest.mark.parametrize("data, message", [
    ({"input_size": "64"}, "input_size must be int"),
    ({"input_size": 96}, "input_size must be one of"),
    ({"use_mask": 1}, "use_mask must be bool"),
    ({"image_mean": [0.5, 0.5]}, "image_mean must be"),
    ({"patch_size": 2}, "patch_size must be at least 4"),
    ({"mask_std": 0}, "mask_std must be positive"),
])
def test_model_config_rejects_bad_values(data, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_json(data)


def test_model_file_with_an_unknown_key_names_the_file_and_the_key(tmp_path):
    save_model(RefinementModel.untrained(ModelConfig()), tmp_path / "m")
    path = tmp_path / "m.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"colour": "red"}))
    with pytest.raises(ValueError, match=r"m\.json.*unknown key.*colour"):
        load_model(tmp_path / "m.safetensors")


def test_training_override_with_a_misspelt_model_key_is_an_error():
    with pytest.raises(ValueError, match=r"model: unknown key.*inputsize"):
        load_train_config(None, ["model.inputsize=64"])


def test_unknown_source_key_names_the_source():
    with pytest.raises(ValueError, match=r"sources\[0\]: unknown key.*colour"):
        train_config_from_dict({"sources": [SOURCE | {"colour": 1}]})


def test_unknown_source_kind_says_so():
    with pytest.raises(ValueError, match="source kind must be one of"):
        train_config_from_dict({"sources": [SOURCE | {"kind": "bogus"}]})


@pytest.mark.parametrize("override, message", [
    ("iterations=abc", "iterations must be int"),
    ("iterations=-5", "iterations must be at least 1"),
    ("iterations=0", "iterations must be at least 1"),
    ("batch_size=0", "batch_size must be at least 1"),
    ("lr=0", "lr must be a finite number > 0"),
    ("momentum=1.5", "momentum must lie in"),
    ("nms_threshold=2", "nms_threshold must lie in"),
    ("device=gpu", "device must be"),
    ("imagenet_init=maybe", "imagenet_init must be bool"),
    ("sources=3", "sources must be a list"),
])
def test_training_values_are_validated(override, message):
    with pytest.raises(ValueError, match=message):
        load_train_config(None, [override])


def test_source_weights_summing_to_zero_are_an_error():
    with pytest.raises(ValueError, match="must not all be zero"):
        train_config_from_dict({"sources": [SOURCE | {"weight": 0}, SOURCE | {"weight": 0.0}]})
    with pytest.raises(ValueError, match=r"sources\[0\].*weight must be"):
        train_config_from_dict({"sources": [SOURCE | {"weight": -1}]})


def test_defaults_and_yaml_round_trip(tmp_path):
    import yaml

    config = train_config_from_dict({"sources": [SOURCE], "iterations": 10})
    path = tmp_path / "c.yaml"
    data = config.to_json()
    path.write_text(yaml.safe_dump(data))
    assert load_train_config(path) == config
    assert TrainConfig().iterations == 2000
