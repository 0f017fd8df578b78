"""FCN on a dilated ResNet-18 / ResNet-50 (output stride 8), as the paper's FCN-ResNet presets."""

from __future__ import annotations

import torch
from torch import nn

from bprefine.nets.common import RefineNet, conv_bn_relu, upsample_to


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, *, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu(cin, planes, stride=stride, dilation=dilation),
            nn.Conv2d(planes, planes, 3, 1, dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(planes),
        )
        self.shortcut = _shortcut(cin, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, *, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu(cin, planes, kernel=1),
            conv_bn_relu(planes, planes, stride=stride, dilation=dilation),
            nn.Conv2d(planes, planes * 4, 1, bias=False),
            nn.BatchNorm2d(planes * 4),
        )
        self.shortcut = _shortcut(cin, planes * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


def _stage(block: type, cin: int, planes: int, n: int, *, stride: int, dilation: int) -> nn.Sequential:
    layers = [block(cin, planes, stride=stride, dilation=dilation)]
    layers += [block(planes * block.expansion, planes, dilation=dilation) for _ in range(n - 1)]
    return nn.Sequential(*layers)


class FCNResNetRefineNet(RefineNet):
    """ResNet with strides (1, 2, 1, 1) and dilations (1, 1, 2, 4) in its stages, plus an FCN head."""

    def __init__(self, *, block: type, depths: tuple[int, ...], head_channels: int, use_mask: bool = True):
        super().__init__(use_mask=use_mask)
        self.stem = nn.Sequential(
            conv_bn_relu(self.in_channels, 64, kernel=7, stride=2), nn.MaxPool2d(3, 2, 1)
        )
        cin, stages = 64, []
        for planes, n, stride, dil in zip((64, 128, 256, 512), depths, (1, 2, 1, 1), (1, 1, 2, 4)):
            stages.append(_stage(block, cin, planes, n, stride=stride, dilation=dil))
            cin = planes * block.expansion
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(
            conv_bn_relu(cin, head_channels), conv_bn_relu(head_channels, head_channels)
        )
        self.fuse = conv_bn_relu(cin + head_channels, head_channels)  # FCN "concat_input"
        self.classifier = nn.Conv2d(head_channels, 1, 1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        feats = self.stages(self.stem(self.stack_inputs(image, mask)))  # (B, C, S/8, S/8)
        y = self.fuse(torch.cat([feats, self.head(feats)], dim=1))
        return upsample_to(self.classifier(y), image.shape[-2:])


def fcn_resnet18(*, use_mask: bool = True) -> FCNResNetRefineNet:
    return FCNResNetRefineNet(block=BasicBlock, depths=(2, 2, 2, 2), head_channels=256, use_mask=use_mask)


def fcn_resnet50(*, use_mask: bool = True) -> FCNResNetRefineNet:
    return FCNResNetRefineNet(block=Bottleneck, depths=(3, 4, 6, 3), head_channels=512, use_mask=use_mask)
