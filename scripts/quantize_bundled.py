"""Ship the int8 network beside a bundled model: ``bprefine/weights/NAME.int8.onnx`` + ``NAME.int8.json``.

    python scripts/quantize_bundled.py --name default
    python scripts/quantize_bundled.py --name nuclei --calibration configs/levers/nuclei_identity35.yaml

``engine="auto"`` uses it on the CPU (no quantization at start-up) while the hash in ``NAME.int8.json``
matches the shipped weights; rerun this after re-bundling a model. Measure its accuracy first
(``python scripts/make_results.py --model NAME --engine onnx-int8``).

Activation ranges come from the bundled sample photos unless ``--calibration`` names a training config:
then from ``--calibration-images`` of each of its sources' training images (spread evenly over the
source; never its held-out images, which the config's sources leave out), each object with the coarse
mask the source gives it, so that a specialist is calibrated on its own domain.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Iterator

import numpy as np

from bprefine.engine import export_onnx
from bprefine.model import WEIGHTS_DIR, load_model
from bprefine.quantize import calibration_batches, quantize_int8
from bprefine.training import load_train_config
from bprefine.training.sources import list_items, load_sample


def config_pairs(config_path: Path, per_source: int, *, held_out: bool = False
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(image H x W x 3 uint8, coarse mask H x W bool) of every object in ``per_source`` images of each
    source of a training config (``held_out``: of each of its validation sources); sources that feed ground
    truth as its own coarse input are skipped."""
    config = load_train_config(config_path)
    for source in config.val_sources if held_out else config.sources:
        if source.simulate == "identity":
            continue
        names = list_items(source)
        for k in np.linspace(0, len(names) - 1, min(per_source, len(names))).round().astype(int):
            sample = load_sample(source, names[k], config.seed)
            for _, coarse in sample.pairs:
                yield sample.image, coarse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="default")
    ap.add_argument("--calibration", type=Path, default=None,
                    help="a training config whose sources' training images calibrate the activations")
    ap.add_argument("--calibration-images", type=int, default=40, help="images per source (with --calibration)")
    args = ap.parse_args()
    model = load_model(args.name)
    pairs = config_pairs(args.calibration, args.calibration_images) if args.calibration else None
    data = quantize_int8(export_onnx(model.net, model.config.input_size), calibration_batches(model.config, pairs=pairs))
    (WEIGHTS_DIR / f"{args.name}.int8.onnx").write_bytes(data)
    sha = hashlib.sha256((WEIGHTS_DIR / f"{args.name}.safetensors").read_bytes()).hexdigest()
    source = (f"bprefine.quantize on {args.calibration_images} images per source of {args.calibration.as_posix()}"
              if args.calibration else "bprefine.quantize")
    (WEIGHTS_DIR / f"{args.name}.int8.json").write_text(json.dumps({"weights_sha256": sha, "format": "QDQ int8",
                                                                   "calibration": source}, indent=2) + "\n")
    print(f"wrote {WEIGHTS_DIR / (args.name + '.int8.onnx')} ({len(data) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
