"""Reading images and binary masks robustly, and writing outputs atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def max_pixels() -> int | None:
    """The largest image we open: Pillow's decompression-bomb limit (``2 * Image.MAX_IMAGE_PIXELS``, about
    179 million pixels by default), as the host application has set it; None when it switched it off.
    We never change Pillow's setting ourselves."""
    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None else 2 * int(limit)


def safe_name(name: Any, where: str) -> str:
    """``name`` if it is a relative file name that stays inside its folder, else a ValueError naming it."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: file_name must be a non-empty string, got {name!r}")
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or Path(name).is_absolute():
        raise ValueError(f"{where}: file_name {name!r} leaves its folder")
    return name


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's DecompressionBombWarning: the error below is ours
            im = Image.open(path)
            im.load()
    except Image.DecompressionBombError:
        raise ValueError(f"{path}: image exceeds Pillow's decompression-bomb limit of {max_pixels()} pixels "
                         f"(PIL.Image.MAX_IMAGE_PIXELS); raise that limit in your program to read it") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"{path}: cannot read image ({err})") from None
    return im


def _exif_upright(im: Image.Image, path: Path) -> Image.Image:
    """The image turned as its EXIF orientation tag says (phone photos), as viewers show it."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(im)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: cannot read image orientation ({err})") from None


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        top = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
        return np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    top = 65535 if arr.max(initial=0) > 255 else 255
    return (arr.astype(np.float64) * (255.0 / top) + 0.5).astype(np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as H x W x 3 uint8 RGB; grayscale, RGBA, palette and 16-bit images are converted."""
    path = Path(path)
    im = _exif_upright(_open(path), path)
    if im.mode in ("RGB", "L", "RGBA", "P", "LA", "CMYK", "YCbCr", "1"):
        return np.asarray(im.convert("RGB"))
    arr = np.asarray(im)  # 16/32-bit integer or float grey
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(_to_uint8(arr[..., :3]))


def binarize_mask(arr: np.ndarray) -> np.ndarray:
    """The one rule for turning a mask array into H x W bool, shared by files and the Python API.

    - bool: as it is.
    - at most two distinct values (0/1, 0/255, 0/100, 1-bit, ...): the higher value is foreground
      (a single value is foreground when it is nonzero).
    - more values (a soft mask): at least half the range is foreground: 0.5 for floats in [0, 1],
      128 for 8-bit and 32768 for 16-bit values. A soft mask with no value that high (e.g. labels
      0/1/2) is ambiguous: ValueError.
    """
    arr = np.asarray(arr)
    if arr.dtype == bool:
        return arr
    if arr.size == 0:
        return arr.astype(bool)
    lo, hi = arr.min(), arr.max()
    if lo == hi:
        return np.full(arr.shape, bool(hi > 0))
    two_valued = not ((arr != lo) & (arr != hi)).any()
    if two_valued:
        return arr == hi
    half = 0.5 if np.issubdtype(arr.dtype, np.floating) and hi <= 1 else 128 if hi <= 255 else 32768
    if hi < half:
        values = np.unique(arr)
        raise ValueError(f"mask holds {len(values)} values ({', '.join(str(v) for v in values[:4])}"
                         f"{', ...' if len(values) > 4 else ''}) but none reaches {half}: neither a binary "
                         f"mask (two values) nor a soft mask (0-255 or 0-1); is it a label map?")
    return arr >= half


def read_mask(path: str | Path) -> np.ndarray:
    """A mask image as H x W bool by ``binarize_mask``'s rule (binary PNGs of any two values, soft masks)."""
    path = Path(path)
    im = _open(path)
    if im.mode == "1":
        return np.asarray(im).astype(bool)
    if im.mode in ("RGB", "RGBA", "P", "LA"):
        im = im.convert("L")
    arr = np.asarray(im)
    if arr.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel mask, got shape {arr.shape}")
    try:
        return binarize_mask(arr)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def read_label_map(path: str | Path) -> np.ndarray:
    """An integer label or instance-id PNG as H x W int64 (uint8 or uint16 files)."""
    path = Path(path)
    arr = np.asarray(_open(path))
    if arr.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel label map, got shape {arr.shape}")
    return arr.astype(np.int64)


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: directory not found")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write a bool mask as an 8-bit 0/255 PNG, atomically (temporary name, then rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp, format="PNG")


def write_label_map(path: str | Path, labels: np.ndarray) -> None:
    """Write an H x W integer label map as an 8-bit PNG (16-bit when a label exceeds 255), atomically."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > 65535):
        raise ValueError(f"{path}: labels must lie in 0..65535 to be stored as PNG")
    dtype = np.uint8 if labels.max(initial=0) < 256 else np.uint16
    with atomic_path(path) as tmp:
        Image.fromarray(labels.astype(dtype)).save(tmp, format="PNG")


def make_dirs(folder: Path) -> Path | None:
    """``mkdir -p folder``; returns the topmost folder this call created (None if it created none), so a
    failed run can remove exactly what it made."""
    missing = None
    probe = folder
    while not probe.exists():
        missing = probe
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path`` that replaces ``path`` only if the block succeeds; folders
    created for it are removed again when the block fails."""
    path = Path(path)
    created = make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    finally:
        Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def staged_dir(out_dir: str | Path) -> Iterator[Path]:
    """A staging folder inside ``out_dir`` whose files move into ``out_dir`` only if the block succeeds.

    When the block fails (an error, Ctrl-C, SIGTERM through the command line's handler) the staging
    folder goes, and so do ``out_dir`` and any parent folders this call created.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    created = make_dirs(out)
    stage = Path(tempfile.mkdtemp(prefix=".bprefine-staging-", dir=out))
    try:
        yield stage
        for f in sorted(stage.iterdir()):
            os.replace(f, out / f.name)
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
