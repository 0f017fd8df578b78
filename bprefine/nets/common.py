"""Building blocks shared by the refinement networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Float32Conv2d(nn.Conv2d):
    """A Conv2d that computes in float32 under CPU autocast (and returns the input's dtype, as autocast
    would), and exactly as ``nn.Conv2d`` otherwise.

    Used for depthwise convolutions: on CPUs with AVX512-bf16, oneDNN's bf16 backward of a depthwise
    convolution is several times slower than the float32 one (stride 2, 96 channels at 64 x 64, batch 32:
    165 ms against 45 ms on one thread; ``benchmarks/train_speed.py`` measures the whole step; keeping
    the result in float32 measured slower, since the casts then move to the wider tensors). Its
    parameters and state-dict keys are those of ``nn.Conv2d``, so weights move freely between the two.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float()).to(x.dtype)
        return super().forward(x)


def conv_bn_relu(
    cin: int, cout: int, *, kernel: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1,
    relu6: bool = False,
) -> nn.Sequential:
    """Conv2d + BatchNorm + ReLU, as a Sequential so state-dict keys read ``<name>.0`` / ``<name>.1``.

    A depthwise convolution (``groups == cin == cout``) is a ``Float32Conv2d``.
    """
    pad = dilation * (kernel - 1) // 2
    depthwise = groups > 1 and groups == cin == cout
    conv_class = Float32Conv2d if depthwise else nn.Conv2d
    conv = conv_class(cin, cout, kernel, stride, pad, dilation=dilation, groups=groups, bias=False)
    act = nn.ReLU6(inplace=True) if relu6 else nn.ReLU(inplace=True)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), act)


def upsample_to(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class RefineNet(nn.Module):
    """Base of every preset: ``forward(image, mask) -> logits`` at the input size.

    ``image`` is (B, 3, S, S) normalised RGB, ``mask`` is (B, 1, S, S) normalised coarse mask; the
    result is (B, 1, S, S) foreground logits. With ``use_mask=False`` the mask is ignored (the
    paper's Table 2 ablation) and the first layer sees only the 3 image channels.
    """

    def __init__(self, *, use_mask: bool = True) -> None:
        super().__init__()
        self.use_mask = use_mask
        self.in_channels = 4 if use_mask else 3

    def stack_inputs(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.cat([image, mask], dim=1) if self.use_mask else image
