"""How often a bundled model's int8 network decides a pixel differently from its float network, on the
held-out images of a training config, and how closely quantization-aware training's simulation of the
rounding (``bprefine.training.quantsim``) tracks the real int8 network.

    python benchmarks/int8_vs_float.py --models nuclei,MODEL2 --config configs/levers/nuclei_qat.yaml

Patches: the boundary patches of ``--images`` images of each of the config's validation sources (held-out
images, their simulated coarse masks), picked as ``bprefine.quantize.calibration_batches`` picks them (the
same colour variants included). For each model it prints the share of patch pixels whose decision (logit > 0)
differs between the float network and the shipped int8 one (``NAME.int8.onnx``), the mean absolute logit
difference, and the same for the simulation against float and against int8. One thread.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from bprefine.model import WEIGHTS_DIR, load_model
from bprefine.quantize import calibration_batches
from bprefine.training import load_train_config
from bprefine.training.quantsim import QuantSim

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from quantize_bundled import config_pairs  # noqa: E402  (the sibling script's calibration images, read one way)


def held_out_pairs(config_path: Path, per_source: int):
    """(image, coarse mask) of every object in ``per_source`` images of each validation source."""
    if not load_train_config(config_path).val_sources:
        sys.exit(f"{config_path}: the config has no val_sources (held-out images) to measure on")
    yield from config_pairs(config_path, per_source, held_out=True)


def disagreement(a: torch.Tensor, b: torch.Tensor) -> str:
    flips = ((a > 0) != (b > 0)).float().mean().item()
    return f"{100 * flips:6.3f}% flipped, mean |logit difference| {(a - b).abs().mean().item():.3f}"


def measure(name: str, config_path: Path, per_source: int) -> None:
    import onnxruntime as ort

    from bprefine.engine import session_options

    model = load_model(name)
    int8_path = WEIGHTS_DIR / f"{name}.int8.onnx"
    if not int8_path.is_file():
        sys.exit(f"{int8_path}: no int8 network beside model {name!r} (scripts/quantize_bundled.py makes it)")
    net = model.net.eval()
    feeds = calibration_batches(model.config, limit=640, pairs=held_out_pairs(config_path, per_source))
    session = ort.InferenceSession(str(int8_path), session_options(1), providers=["CPUExecutionProvider"])
    batches = [(torch.from_numpy(f["image"]), torch.from_numpy(f["mask"])) for f in feeds]
    sim = QuantSim()
    sim.calibrate(net, batches)
    fp32, rounded = sim.compare(net, batches)
    int8 = torch.cat([torch.from_numpy(session.run(None, f)[0]) for f in feeds])
    print(f"{name} ({fp32.numel() // fp32[0].numel()} patches)")
    print(f"  int8 against float:       {disagreement(int8, fp32)}")
    print(f"  simulation against float: {disagreement(rounded, fp32)}")
    print(f"  simulation against int8:  {disagreement(rounded, int8)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True, help="bundled model names, comma-separated")
    ap.add_argument("--config", type=Path, required=True, help="a training config whose val_sources are held out")
    ap.add_argument("--images", type=int, default=40, help="images per validation source")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.models.split(","):
        measure(name, args.config, args.images)


if __name__ == "__main__":
    main()
