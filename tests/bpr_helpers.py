"""Helpers shared by the tests (imported as ``bpr_helpers``; pytest puts tests/ on the path, see pyproject)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bprefine.model import ModelConfig, RefinementModel

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def needs_shared_data(sub: str = "") -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not (SHARED_DATA / sub).exists(), reason=f"shared data not found at {SHARED_DATA / sub}"
    )


class IdentityNet(nn.Module):
    """logit = normalised mask: refinement must give back the coarse mask."""

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask.clone()


class ConstantNet(nn.Module):
    """Every pixel gets the same logit (positive: all foreground)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.full_like(mask, self.value)


def model_with(net: nn.Module, **config) -> RefinementModel:
    return RefinementModel(ModelConfig(**config), net)


def random_blobs(rng: np.random.Generator, h: int, w: int, n: int) -> np.ndarray:
    """N x H x W bool masks: unions of random ellipses, possibly overlapping each other."""
    import cv2

    masks = np.zeros((n, h, w), np.uint8)
    for k in range(n):
        for _ in range(int(rng.integers(1, 4))):
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(2, max(w // 3, 3))), int(rng.integers(2, max(h // 3, 3))))
            cv2.ellipse(masks[k], c, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return masks.astype(bool)


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
