"""Refinement networks. Every preset builds a module with ``forward(image, mask) -> logits``."""

from __future__ import annotations

from typing import Callable

from bprefine.nets.common import RefineNet
from bprefine.nets.hrnet import hrnet_w18_small
from bprefine.nets.mobilenet import mobilenet_v2, mobilenet_v2_fine
from bprefine.nets.resnet import fcn_resnet18, fcn_resnet50

PRESETS: dict[str, Callable[..., RefineNet]] = {
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v2_fine": mobilenet_v2_fine,
    "hrnet_w18_small": hrnet_w18_small,
    "fcn_resnet18": fcn_resnet18,
    "fcn_resnet50": fcn_resnet50,
}


def build_net(preset: str, *, use_mask: bool = True) -> RefineNet:
    """Build an untrained network by preset name (see ``PRESETS``)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown network preset {preset!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[preset](use_mask=use_mask)


__all__ = ["PRESETS", "RefineNet", "build_net"]
