"""Where a training run's network starts: a bundled or saved model (fine-tuning), ImageNet, or random."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import torch

from bprefine.training import imagenet

if TYPE_CHECKING:
    from bprefine.model import ModelConfig, RefinementModel
    from bprefine.training.config import TrainConfig


def init_net(config: "TrainConfig") -> tuple["RefinementModel", str]:
    """A fresh network for ``config`` (seeded) and a note on its initialisation.

    With ``init_from`` (a bundled model name or a model path) the whole network starts from that model,
    whose network fields (preset, mask input, normalisation) must equal ``config.model``'s; the patch
    geometry (``patch_size``, ``input_size``, ``padding``) may change, and the note says from what. Otherwise, with
    ``imagenet_init`` the MobileNetV2 encoder starts from ImageNet weights (shipped with the package;
    ``bprefine.training.imagenet``); when they cannot be found, training starts from random weights and
    a warning says so.
    """
    from bprefine.model import RefinementModel
    from bprefine.nets.mobilenet import load_imagenet_mobilenet_v2

    torch.manual_seed(config.seed)
    if config.init_from is not None:
        return _from_model(config)
    model = RefinementModel.untrained(config.model)
    if not (config.imagenet_init and "mobilenet_v2" in (config.model.preset, GROWS_FROM.get(config.model.preset))):
        return model, "random"
    state = imagenet.imagenet_mobilenet_v2()
    if state is None:
        warnings.warn(f"ImageNet initialisation was asked for (imagenet_init: true) but {imagenet.BUNDLED} is "
                      "missing; training starts from a RANDOM encoder. Reinstall bprefine, point "
                      f"${imagenet.ENV} at torchvision's {imagenet.CHECKPOINT}, or set imagenet_init=false.",
                      UserWarning, stacklevel=2)
        return model, "random (ImageNet weights not found)"
    return model, f"imagenet mobilenet_v2 ({load_imagenet_mobilenet_v2(model.net, state)} tensors)"


GEOMETRY = ("patch_size", "input_size", "padding")  # fields a fine-tune may change: the weights do not depend on them
INFERENCE = ("min_move", "min_confidence", "max_change", "min_mask_confidence", "consensus", "provenance")  # settings that travel with a model but say nothing about its weights
GROWS_FROM = {"mobilenet_v2_fine": "mobilenet_v2"}  # preset -> the preset whose weights it starts from, adding zero-init layers


def _network_fields(model_config: "ModelConfig") -> dict[str, Any]:
    return {k: v for k, v in model_config.to_json().items() if k not in INFERENCE and k not in GEOMETRY}


def _from_model(config: "TrainConfig") -> tuple["RefinementModel", str]:
    """The model named by ``config.init_from``, checked against ``config.model``, in training mode."""
    from bprefine.model import RefinementModel, load_model, weights_sha256

    source = load_model(config.init_from)
    want, have = _network_fields(config.model), _network_fields(source.config)
    grown = GROWS_FROM.get(want["preset"]) == have["preset"]
    diff = {k: (want[k], have[k]) for k in want if want[k] != have[k] and not (k == "preset" and grown)}
    if diff:
        detail = ", ".join(f"{k}: config {a!r} vs model {b!r}" for k, (a, b) in diff.items())
        raise ValueError(f"init_from {config.init_from!r} does not match the model section ({detail})")
    net = _grow(source.net, config.model) if grown else source.net
    net.train()
    note = f"fine-tuned from {config.init_from} (weights sha256 {weights_sha256(config.init_from)[:16]})"
    if grown:
        note += f", grown {have['preset']} -> {want['preset']}"
    moved = [f"{k} {getattr(source.config, k)} -> {getattr(config.model, k)}" for k in GEOMETRY
             if getattr(source.config, k) != getattr(config.model, k)]
    return RefinementModel(config.model, net), note + (f", {', '.join(moved)}" if moved else "")


def _grow(source: torch.nn.Module, model_config: "ModelConfig") -> torch.nn.Module:
    """A fresh ``model_config.preset`` network holding every weight of ``source`` (a network of the preset it
    grows from); its added layers keep their zero-initialised outputs, so it computes what ``source`` does."""
    from bprefine.nets import build_net

    net = build_net(model_config.preset, use_mask=model_config.use_mask)
    missing, unexpected = net.load_state_dict(source.state_dict(), strict=False)
    if unexpected or not missing:
        raise ValueError(f"cannot grow a {model_config.preset} network from these weights "
                         f"(unexpected {unexpected[:3]}, missing {missing[:3]})")
    return net
