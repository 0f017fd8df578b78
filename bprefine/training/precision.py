"""The numeric precision of the training forward pass (``TrainConfig.precision``: fp32, bf16 or auto).

bfloat16 autocast roughly halves the time of an SGD step where the hardware computes bf16 itself (CPUs with
AVX512-bf16 or AMX, most GPUs since Ampere) and multiplies it several times where it is emulated (AVX2-only
CPUs such as AMD Zen 1-3 and most laptops: 7x slower than fp32 on a 2-core AMD EPYC, docs/training.md).
``auto`` takes bf16 only where it is native; ``bf16`` asked for explicitly on a CPU without it is kept but
warned about, once, in one line. Accuracy is the same either way (docs/training.md, "Throughput").
"""

from __future__ import annotations

import warnings

import torch

from bprefine.hardware import cpu_features

PRECISIONS = ("fp32", "bf16", "auto")


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 matrix products in hardware (not emulated)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = cpu_features()
        return bool(cpu["avx512_bf16"] or cpu["amx"])
    return False


def resolve_precision(asked: str, device: torch.device) -> str:
    """The precision a run uses, "fp32" or "bf16", for the ``asked`` one of ``PRECISIONS`` on ``device``."""
    if asked not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {asked!r}")
    if asked == "fp32":
        return "fp32"
    native = bf16_native(device)
    if asked == "auto":
        return "bf16" if native else "fp32"
    if not native:
        warnings.warn(f"precision: bf16 was asked for, but this {device.type.upper()} has no native bfloat16 "
                      "(no AVX512-bf16 / AMX): training will run several times slower than in fp32. "
                      "Set precision: auto (or fp32) to train at full speed here.", UserWarning, stacklevel=2)
    return "bf16"
