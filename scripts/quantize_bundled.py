"""Ship the int8 network beside a bundled model: ``bprefine/weights/NAME.int8.onnx`` + ``NAME.int8.json``.

    python scripts/quantize_bundled.py --name default

``engine="auto"`` uses it on the CPU (no quantization at start-up) while the hash in ``NAME.int8.json``
matches the shipped weights; rerun this after re-bundling a model. Measure its accuracy first
(``python scripts/make_results.py --model NAME --engine onnx-int8``).
"""

from __future__ import annotations

import argparse
import hashlib
import json

from bprefine.engine import export_onnx
from bprefine.model import WEIGHTS_DIR, load_model
from bprefine.quantize import calibration_batches, quantize_int8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="default")
    args = ap.parse_args()
    model = load_model(args.name)
    data = quantize_int8(export_onnx(model.net, model.config.input_size), calibration_batches(model.config))
    (WEIGHTS_DIR / f"{args.name}.int8.onnx").write_bytes(data)
    sha = hashlib.sha256((WEIGHTS_DIR / f"{args.name}.safetensors").read_bytes()).hexdigest()
    (WEIGHTS_DIR / f"{args.name}.int8.json").write_text(json.dumps({"weights_sha256": sha, "format": "QDQ int8",
                                                                   "calibration": "bprefine.quantize"}, indent=2) + "\n")
    print(f"wrote {WEIGHTS_DIR / (args.name + '.int8.onnx')} ({len(data) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
