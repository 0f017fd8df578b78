"""What this machine's CPU computes natively, for choices that depend on it and for benchmark reports.

The flags come from torch's own probes (``torch.cpu._is_*_supported``, x86 only); a build without a probe
reports False. VNNI decides whether ONNX Runtime's int8 kernels need its exact-product option
(``bprefine.engine.session_options``) to be exact, AVX512-bf16 / AMX whether bf16 training is fast
(``bprefine.training.precision``).
"""

from __future__ import annotations

import platform

import torch

_PROBES = {"avx2": "_is_avx2_supported", "avx512": "_is_avx512_supported", "vnni": "_is_vnni_supported",
           "avx512_bf16": "_is_avx512_bf16_supported", "amx": "_is_amx_tile_supported"}


def _probe(name: str) -> bool:
    fn = getattr(torch.cpu, name, None)
    try:
        return bool(fn()) if fn is not None else False
    except (RuntimeError, AttributeError):
        return False


def cpu_features() -> dict[str, bool | str]:
    """{"machine": e.g. "x86_64", "avx2": ..., "avx512": ..., "vnni": ..., "avx512_bf16": ..., "amx": ...}."""
    return {"machine": platform.machine()} | {k: _probe(v) for k, v in _PROBES.items()}


def describe_cpu(features: dict[str, bool | str] | None = None) -> str:
    """One line for a report, e.g. "x86_64 (avx2)", of ``features`` (default: this machine's)."""
    cpu = cpu_features() if features is None else features
    return f"{cpu['machine']} ({', '.join(k for k, v in cpu.items() if v is True) or 'no AVX2'})"
