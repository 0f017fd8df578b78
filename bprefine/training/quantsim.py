"""Quantization-aware training: the int8 network's rounding simulated in the training forward pass
(``TrainConfig.quantization_aware``).

The int8 networks ``bprefine.quantize`` builds round every convolution's weights to int8 per output channel
(symmetric: scale = max |w| / 127) and every convolution's input to uint8 per tensor (asymmetric, over a
calibrated range that includes 0). A network trained in float loses part of its gain to that rounding, spread
over all its layers (docs/training.md). With the simulation on, every training forward pass rounds the same
way: weights on the fly, inputs over ranges that follow the activations (a moving average of each batch's
minimum and maximum), and gradients pass the rounding straight through (zero outside the range), so that
training moves the weights to where rounding costs least. The weights stay float: a run's model is quantized
like any other (``scripts/quantize_bundled.py``). Per-channel symmetric rounding commutes with the per-channel
scale that folding a BatchNorm into its convolution applies, so rounding the unfolded weights in training is
what the folded int8 network does.

Convention: ranges are keyed by the convolution's qualified module name (``net.named_modules()``), so that the
same ranges apply to the trained network and to its moving average. Under ``torchrun`` each process follows the
ranges of its own batches (the weights stay in step through the averaged gradients); the main process's are
checkpointed, and every process resumes from them.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from bprefine.data.images import atomic_path

RANGES_FILE = "last_quant_ranges.json"


def fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    """(O, I, kh, kw) weights rounded to int8 per output channel, symmetric, returned in float."""
    scale = w.detach().abs().amax(dim=(1, 2, 3)).float().clamp_min(1e-8) / 127.0
    zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
    return torch.fake_quantize_per_channel_affine(w.float(), scale, zero, 0, -127, 127).to(w.dtype)


def fake_quant_activation(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """``x`` rounded to uint8 over [low, high] (widened to include 0), returned in ``x``'s dtype."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = max((high - low) / 255.0, 1e-8)
    zero = int(round(-low / scale))
    return torch.fake_quantize_per_tensor_affine(x.float(), scale, zero, 0, 255).to(x.dtype)


class QuantSim:
    """Activation ranges of a network's convolution inputs, and the context that rounds as int8 does."""

    def __init__(self, momentum: float = 0.01) -> None:
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum must lie in (0, 1], got {momentum}")
        self.momentum = momentum
        self.ranges: dict[str, tuple[float, float]] = {}

    def _observe(self, name: str, x: torch.Tensor) -> tuple[float, float]:
        low, high = (float(v) for v in torch.aminmax(x.detach()))
        if name in self.ranges:
            old_low, old_high = self.ranges[name]
            low = old_low + self.momentum * (low - old_low)
            high = old_high + self.momentum * (high - old_high)
        self.ranges[name] = (low, high)
        return low, high

    @contextlib.contextmanager
    def applied(self, net: nn.Module, *, observe: bool) -> Iterator[None]:
        """Within the block, ``net``'s convolutions compute with int8-rounded weights and uint8-rounded
        inputs; ``observe`` moves the ranges toward each batch's (training), else they stay (validation:
        a convolution never observed computes in float). Gradients reach the float weights."""
        convs = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]
        handles = []

        def hook(name: str):
            def pre(_module: nn.Module, args: tuple) -> tuple | None:
                if observe:
                    bounds = self._observe(name, args[0])
                elif name in self.ranges:
                    bounds = self.ranges[name]
                else:
                    return None
                return (fake_quant_activation(args[0], *bounds),) + tuple(args[1:])
            return pre

        originals: list[tuple[nn.Conv2d, nn.Parameter]] = []
        try:
            for name, conv in convs:
                handles.append(conv.register_forward_pre_hook(hook(name)))
                weight = conv.weight
                del conv.weight
                conv.weight = fake_quant_weight(weight)  # a plain tensor: its gradient reaches ``weight``
                originals.append((conv, weight))
            yield
        finally:
            for handle in handles:
                handle.remove()
            for conv, weight in originals:
                del conv.weight
                conv.weight = weight

    @torch.no_grad()
    def calibrate(self, net: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Ranges from one pass of ``net`` over ``batches`` of (image, mask) network inputs (a calibration,
        as ``bprefine.quantize`` calibrates the int8 network), each batch weighted about equally."""
        momentum, self.momentum = self.momentum, 1.0 / max(len(batches), 1)
        try:
            for image, mask in batches:
                with self.applied(net, observe=True):
                    net(image, mask)
        finally:
            self.momentum = momentum

    @torch.no_grad()
    def compare(self, net: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 1, S, S) logits of ``net`` over ``batches`` in float and with the rounding simulated over the
        current ranges, concatenated."""
        plain = torch.cat([net(image, mask) for image, mask in batches])
        with self.applied(net, observe=False):
            rounded = torch.cat([net(image, mask) for image, mask in batches])
        return plain, rounded

    def save(self, out: Path) -> None:
        """The ranges as ``out / RANGES_FILE`` (part of a checkpoint: an exact resume needs them)."""
        with atomic_path(out / RANGES_FILE) as tmp:
            tmp.write_text(json.dumps({k: list(v) for k, v in self.ranges.items()}))

    def load(self, out: Path) -> bool:
        """The ranges of the last checkpoint in ``out``; False (ranges untouched) where it has none."""
        path = out / RANGES_FILE
        if not path.is_file():
            return False
        self.ranges = {k: (float(v[0]), float(v[1])) for k, v in json.loads(path.read_text()).items()}
        return True
