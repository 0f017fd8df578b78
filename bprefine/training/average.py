"""An exponential moving average of the network's weights during training (``TrainConfig.ema_decay``).

After every SGD step each floating-point parameter and buffer (BatchNorm running statistics included)
of the average moves toward the trained network's: ``avg <- d * avg + (1 - d) * w``, with the decay
warmed up as ``d = min(ema_decay, (1 + t) / (10 + t))`` at step ``t`` so that a run from a random or
ImageNet start is not held back by its first weights. Integer buffers are copied. The average is what a
run validates, writes as ``iter_<N>`` and ``final``, and ships; the trained weights stay in ``last`` for
an exact resume, beside ``last_average`` (see ``checkpoint``).
"""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """The moving average of ``net``'s weights: a copy of ``net`` (same class, device, memory format)."""

    def __init__(self, net: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.net = copy.deepcopy(net).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """The decay used after SGD step ``step`` (0-based): warmed up, then ``decay``."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, net: torch.nn.Module, step: int) -> None:
        """Move the average toward ``net`` (the same architecture) after SGD step ``step``."""
        d = self.decay_at(step)
        mine = self.net.state_dict()
        for name, value in net.state_dict().items():
            target = mine[name]
            if target.is_floating_point():
                target.lerp_(value.detach(), 1.0 - d)
            else:
                target.copy_(value)
