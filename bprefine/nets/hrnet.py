"""FCN-HRNetV2-W18-small: the paper's default refinement network, in plain torch.

Stage layout of HRNetV2-W18-small: a stride-4 stem, one Bottleneck stage (2 blocks, 64 planes),
then stages of 2/3/4 parallel branches with widths (18, 36, 72, 144), 2 BasicBlocks per branch,
and 1/3/2 fusion modules. The FCN head concatenates all branches at stride 4 (270 channels).
"""

from __future__ import annotations

import torch
from torch import nn

from bprefine.nets.common import RefineNet, conv_bn_relu, upsample_to
from bprefine.nets.resnet import BasicBlock, Bottleneck

WIDTHS = (18, 36, 72, 144)
MODULES_PER_STAGE = (1, 3, 2)  # stages with 2, 3 and 4 branches


def _down(cin: int, cout: int, *, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _fuse_path(i: int, j: int, widths: tuple[int, ...]) -> nn.Module:
    """Map branch j to branch i's width and resolution."""
    if i == j:
        return nn.Identity()
    if j > i:  # lower resolution: 1x1 conv now, upsample in forward
        return nn.Sequential(nn.Conv2d(widths[j], widths[i], 1, bias=False), nn.BatchNorm2d(widths[i]))
    steps = [_down(widths[j], widths[j], relu=True) for _ in range(i - j - 1)]
    steps.append(_down(widths[j], widths[i], relu=False))
    return nn.Sequential(*steps)


class HRModule(nn.Module):
    def __init__(self, widths: tuple[int, ...], blocks: int = 2) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(w, w) for _ in range(blocks)]) for w in widths
        )
        n = len(widths)
        self.fuse = nn.ModuleList(
            nn.ModuleList(_fuse_path(i, j, widths) for j in range(n)) for i in range(n)
        )

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, paths in enumerate(self.fuse):
            total = xs[i]
            for j, path in enumerate(paths):
                if j != i:
                    total = total + upsample_to(path(xs[j]), xs[i].shape[-2:])
            out.append(torch.relu(total))
        return out


class HRNetRefineNet(RefineNet):
    def __init__(self, *, use_mask: bool = True) -> None:
        super().__init__(use_mask=use_mask)
        self.stem = nn.Sequential(
            conv_bn_relu(self.in_channels, 64, stride=2), conv_bn_relu(64, 64, stride=2)
        )
        self.layer1 = nn.Sequential(Bottleneck(64, 64), Bottleneck(256, 64))
        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        prev: tuple[int, ...] = (256,)
        for n_branches, n_modules in zip((2, 3, 4), MODULES_PER_STAGE):
            widths = WIDTHS[:n_branches]
            self.transitions.append(self._transition(prev, widths))
            self.stages.append(nn.Sequential(*[HRModule(widths) for _ in range(n_modules)]))
            prev = widths
        total = sum(WIDTHS)
        self.head = conv_bn_relu(total, total, kernel=1)
        self.classifier = nn.Conv2d(total, 1, 1)

    @staticmethod
    def _transition(prev: tuple[int, ...], widths: tuple[int, ...]) -> nn.ModuleList:
        layers = nn.ModuleList()
        for i, w in enumerate(widths):
            if i < len(prev):
                layers.append(nn.Identity() if prev[i] == w else conv_bn_relu(prev[i], w))
            else:
                layers.append(_down(prev[-1], w, relu=True))
        return layers

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        xs = [self.layer1(self.stem(self.stack_inputs(image, mask)))]
        for transition, stage in zip(self.transitions, self.stages):
            xs = [t(xs[min(i, len(xs) - 1)]) for i, t in enumerate(transition)]
            xs = stage(xs)
        size = xs[0].shape[-2:]  # stride 4
        y = torch.cat([xs[0]] + [upsample_to(x, size) for x in xs[1:]], dim=1)
        return upsample_to(self.classifier(self.head(y)), image.shape[-2:])


def hrnet_w18_small(*, use_mask: bool = True) -> HRNetRefineNet:
    return HRNetRefineNet(use_mask=use_mask)
