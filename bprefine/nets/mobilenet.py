"""A light CPU-first refinement net: MobileNetV2 encoder (to stride 16) with a U-shaped head.

The encoder's module names match torchvision's ``mobilenet_v2().features`` so that its ImageNet
weights load by name (``load_imagenet_mobilenet_v2``). The head fuses strides 16, 8, 4 and 2 and
predicts at stride 2, which is the patch's native resolution at the default 2x upsampling
(64-pixel patch, 128-pixel input).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bprefine.nets.common import RefineNet, conv_bn_relu, upsample_to

# (expansion t, channels c, repeats n, stride s) of MobileNetV2 up to stride 16.
_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1)]
_TAPS = {1: "s2", 3: "s4", 6: "s8", 13: "s16"}  # feature index -> stride it ends


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, *, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_relu(cin, hidden, kernel=1, relu6=True))
        layers += [
            conv_bn_relu(hidden, hidden, stride=stride, groups=hidden, relu6=True),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


def _encoder(in_channels: int) -> nn.Sequential:
    blocks: list[nn.Module] = [conv_bn_relu(in_channels, 32, stride=2, relu6=True)]
    cin = 32
    for t, c, n, s in _SETTINGS:
        for i in range(n):
            blocks.append(InvertedResidual(cin, c, stride=s if i == 0 else 1, expand=t))
            cin = c
    return nn.Sequential(*blocks)


class MobileNetV2RefineNet(RefineNet):
    def __init__(self, *, use_mask: bool = True) -> None:
        super().__init__(use_mask=use_mask)
        self.features = _encoder(self.in_channels)
        self.lat16 = conv_bn_relu(96, 64, kernel=1)
        self.fuse8 = conv_bn_relu(64 + 32, 48)
        self.fuse4 = conv_bn_relu(48 + 24, 32)
        self.fuse2 = conv_bn_relu(32 + 16, 24)
        self.classifier = nn.Conv2d(24, 1, 1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.stack_inputs(image, mask)
        return upsample_to(self.head(x, self.decode(x)), image.shape[-2:])

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) stacked inputs -> (B, 24, S/2, S/2) decoder features at stride 2."""
        taps: dict[str, torch.Tensor] = {}
        for i, block in enumerate(self.features):
            x = block(x)
            if i in _TAPS:
                taps[_TAPS[i]] = x
        y = self.lat16(taps["s16"])
        for fuse, key in ((self.fuse8, "s8"), (self.fuse4, "s4"), (self.fuse2, "s2")):
            skip = taps[key]
            y = fuse(torch.cat([upsample_to(y, skip.shape[-2:]), skip], dim=1))
        return y

    def head(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Stride-2 logits (B, 1, S/2, S/2) from the stacked inputs ``x`` and the decoder features ``y``."""
        return self.classifier(y)


class MobileNetV2FineNet(MobileNetV2RefineNet):
    """``mobilenet_v2`` plus a residual head at stride 2 that sees the inputs again, at the resolution it
    predicts (a patch's own pixels at the usual 2x upsampling): depthwise-separable, about 5% more
    multiply-adds at any input size.

    Its last convolution starts at zero, so a fresh ``mobilenet_v2_fine`` computes exactly what the
    ``mobilenet_v2`` network whose weights it was given computes (``GROWS_FROM`` in ``bprefine.training.init``): fine-tuning starts
    from that network's accuracy and can only add to what the head learns.
    """

    def __init__(self, *, use_mask: bool = True) -> None:
        super().__init__(use_mask=use_mask)
        self.fine = nn.Sequential(
            conv_bn_relu(24 + self.in_channels, 24, kernel=1),
            conv_bn_relu(24, 24, groups=24),
            conv_bn_relu(24, 24, kernel=1),
            conv_bn_relu(24, 24, groups=24),
            nn.Conv2d(24, 1, 1),
        )
        nn.init.zeros_(self.fine[-1].weight)
        nn.init.zeros_(self.fine[-1].bias)

    def head(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen = F.avg_pool2d(x, 2) if x.shape[-1] != y.shape[-1] else x
        return self.classifier(y) + self.fine(torch.cat([y, upsample_to(seen, y.shape[-2:])], dim=1))


def mobilenet_v2(*, use_mask: bool = True) -> MobileNetV2RefineNet:
    return MobileNetV2RefineNet(use_mask=use_mask)


def mobilenet_v2_fine(*, use_mask: bool = True) -> MobileNetV2FineNet:
    return MobileNetV2FineNet(use_mask=use_mask)


def load_imagenet_mobilenet_v2(net: MobileNetV2RefineNet, state: dict[str, torch.Tensor]) -> int:
    """Copy torchvision ImageNet MobileNetV2 weights into the encoder; returns tensors copied.

    The first convolution's RGB filters are copied; the extra mask filter keeps a small random init.
    """
    own = net.state_dict()
    copied = 0
    with torch.no_grad():
        for key, value in state.items():
            if key not in own:
                continue
            target = own[key]
            if key == "features.0.0.weight" and target.shape[1] != value.shape[1]:
                target[:, :3] = value
            elif target.shape == value.shape:
                target.copy_(value)
            else:
                continue
            copied += 1
    return copied
