"""Inference backends behind one call: ``engine(image, mask) -> logits`` on torch tensors.

- ``torch``: eager PyTorch on any device.
- ``onnx``: the network exported to ONNX in memory and run by ONNX Runtime on the CPU, which is
  2.3-4.5x faster than eager PyTorch for the default preset (see docs/benchmarks.md).
``auto`` picks ``onnx`` for a preset network on the CPU when onnxruntime is installed.
"""

from __future__ import annotations

import copy
import io
import warnings
from typing import Callable, Protocol

import torch

from bprefine.nets import RefineNet

ENGINES = ("auto", "torch", "onnx", "onnx-int8")


class Engine(Protocol):
    name: str

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor: ...


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device that this build of torch can use, or a ValueError naming it."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use e.g. 'cpu', 'cuda' or 'cuda:1'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but this torch build sees no CUDA GPU")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} asked for, but MPS is not available here")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {device!r}; use 'cpu', 'cuda' or 'mps'")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def inference_copy(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``net`` on ``device`` in eval mode, as a copy whenever that needs a change: the caller's
    module is never moved or switched out of training mode."""
    on_device = all(t.device == device for t in [*net.parameters(), *net.buffers()])
    modes_ok = not any(m.training for m in net.modules())
    if on_device and modes_ok:
        return net
    return copy.deepcopy(net).to(device).eval()


class TorchEngine:
    name = "torch"

    def __init__(self, net: torch.nn.Module, device: torch.device) -> None:
        self.net = inference_copy(net, device)
        self.device = device

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(image.to(self.device), mask.to(self.device))


def session_options(threads: int, *, exact_int8: bool = True) -> "onnxruntime.SessionOptions":
    """ONNX Runtime options for a refinement network on ``threads`` CPU threads.

    ``session.x64quantprecision``: on x86 CPUs without VNNI (AVX2-only: AMD Zen 1-3, Intel before Ice Lake /
    Cascade Lake) ONNX Runtime's fast u8 x s8 int8 kernels saturate 16-bit intermediate sums; this option
    makes it compute those products exactly (u8 x u8) where the weights need it. Without it the int8 networks
    decided 5.6% of patch pixels unlike fp32 on such a CPU instead of 0.26% (docs/benchmarks.md, "int8 on
    CPUs without VNNI"); ONNX Runtime applies it only on x86 CPUs without VNNI, and never to float networks.
    ``exact_int8=False`` leaves it out (for ``benchmarks/int8_agreement.py``, which measures what it costs)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # no warnings on stderr
    if exact_int8:
        options.add_session_config_entry("session.x64quantprecision", "1")
    return options


class OnnxEngine:
    """The network exported to ONNX and run by ONNX Runtime on the CPU; ``int8`` quantizes it first
    (``bprefine.quantize``: static, calibrated on real patches). ``threads`` defaults to torch's
    thread count, so one setting (``torch.set_num_threads`` / OMP_NUM_THREADS) governs both engines."""

    def __init__(self, net: torch.nn.Module, input_size: int, *, int8: bool = False,
                 calibration: "Callable[[], list[dict]] | None" = None, threads: int | None = None,
                 prebuilt: bytes | None = None) -> None:
        import onnxruntime as ort  # a core dependency; the check in make_engine covers a broken install

        model = prebuilt if prebuilt is not None else export_onnx(net, input_size)
        if int8 and prebuilt is None:
            from bprefine.quantize import quantize_int8

            if calibration is None:
                raise ValueError("the onnx-int8 engine needs calibration patches")
            model = quantize_int8(model, calibration())
        self.name = "onnx-int8" if int8 else "onnx"
        self.session = ort.InferenceSession(model, session_options(threads or torch.get_num_threads()),
                                            providers=["CPUExecutionProvider"])

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        feeds = {"image": image.contiguous().numpy(), "mask": mask.contiguous().numpy()}
        return torch.from_numpy(self.session.run(None, feeds)[0])


class FlipEngine:
    """Test-time flip around another engine: each batch also runs mirrored left to right, in the same
    call (one batch of 2B), and the mirrored logits are flipped back and averaged with the plain ones.
    Twice the network work per patch; boxes, crops and pasting are unchanged."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = f"{engine.name}+flip"

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b = image.shape[0]
        out = self.engine(torch.cat([image, image.flip(-1)]), torch.cat([mask, mask.flip(-1)]))
        return (out[:b] + out[b:].flip(-1)) / 2


def export_onnx(net: torch.nn.Module, input_size: int) -> bytes:
    """``net`` as an ONNX model (opset 17): inputs ``image`` (B,3,S,S) and ``mask`` (B,1,S,S), output
    ``logits`` (B,1,S,S), batch dimension dynamic. The caller's module is not changed."""
    net = inference_copy(net, torch.device("cpu"))
    s = input_size
    buf = io.BytesIO()
    batch = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(2, 3, s, s), torch.zeros(2, 1, s, s)), buf,
                          input_names=["image", "mask"], output_names=["logits"], opset_version=17,
                          dynamic_axes={"image": batch, "mask": batch, "logits": batch}, dynamo=False)
    return buf.getvalue()


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def make_engine(net: torch.nn.Module, *, kind: str, device: torch.device, input_size: int,
                calibration: "Callable[[], list[dict]] | None" = None, int8_model: bytes | None = None) -> Engine:
    """The engine ``kind`` (see ``ENGINES``) for ``net``. ``auto`` picks, on the CPU, the int8 network when
    ``int8_model`` (a quantized ONNX model whose accuracy was measured, shipped beside a bundled model) is
    given, else ONNX Runtime for a preset network; PyTorch elsewhere. ``calibration`` feeds the quantizer."""
    if kind not in ENGINES:
        raise ValueError(f"unknown engine {kind!r}; choose one of {ENGINES}")
    if kind == "auto":
        use_onnx = device.type == "cpu" and isinstance(net, RefineNet) and onnx_available()
        kind = ("onnx-int8" if int8_model is not None else "onnx") if use_onnx else "torch"
    if kind in ("onnx", "onnx-int8"):
        if device.type != "cpu":
            raise ValueError(f"the {kind} engine runs on the CPU only, not on {device}")
        if not onnx_available():
            raise ValueError(f"the {kind} engine needs onnx and onnxruntime (core dependencies): "
                             "pip install onnx onnxruntime")
        int8 = kind == "onnx-int8"
        return OnnxEngine(net, input_size, int8=int8, calibration=calibration, prebuilt=int8_model if int8 else None)
    return TorchEngine(net, device)
