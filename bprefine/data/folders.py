"""Folders of inputs and outputs: images matched to their masks by stem, and outputs checked before any work.

``mask_pairs`` is the one matching rule of every folder command (and of the Ray and report paths): stems
compared exactly, extensions case-insensitively, duplicates and orphans are errors. The ``check_*``
functions refuse outputs that would overwrite inputs or cannot be written, naming the path.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bprefine.data.images import list_images


def _by_stem(paths: list[Path], folder: Path) -> dict[str, Path]:
    """Files keyed by stem; two files with one stem (a.png and a.jpg) are an error naming both."""
    out: dict[str, Path] = {}
    for p in paths:
        if p.stem in out:
            raise ValueError(f"{folder}: {out[p.stem].name} and {p.name} share the stem {p.stem!r}; keep one")
        out[p.stem] = p
    return out


def png_files(folder: Path) -> list[Path]:
    """The PNG files of a folder, extension matched case-insensitively, sorted by name."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: directory not found")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".png")


def mask_pairs(images_dir: Path, masks_dir: Path) -> list[tuple[Path, Path]]:
    """(image, mask PNG) pairs matched by file stem: every image needs its mask and every mask its image."""
    images = _by_stem(list_images(images_dir), images_dir)
    if not images:
        raise ValueError(f"{images_dir}: no images found")
    masks = _by_stem(png_files(masks_dir), masks_dir)
    missing = [stem for stem in images if stem not in masks]
    if missing:
        raise FileNotFoundError(f"{masks_dir / (missing[0] + '.png')}: no mask for image {images[missing[0]].name}"
                                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    orphans = [stem for stem in masks if stem not in images]
    if orphans:
        raise ValueError(f"{masks[orphans[0]]}: no image named {orphans[0]}.* in {images_dir}"
                         + (f" (and {len(orphans) - 1} more masks without images)" if len(orphans) > 1 else ""))
    return [(images[stem], masks[stem]) for stem in images]


def check_out_dir(out: Path, *inputs: Path) -> None:
    """Refuse an output folder that is one of the input folders (outputs would overwrite inputs), and
    one that cannot be written, before any work is done."""
    for folder in inputs:
        if folder.exists() and out.exists() and out.resolve() == folder.resolve():
            raise ValueError(f"{out}: the output folder is the input folder {folder}; choose another --out")
    check_writable(out)


def check_out_file(out: Path, *inputs: Path) -> None:
    """Refuse an output file that is one of the inputs, and one that cannot be written, before any work."""
    for f in inputs:
        if f.exists() and out.exists() and out.resolve() == f.resolve():
            raise ValueError(f"{out}: the output file is the input {f}; choose another --out")
    if out.is_dir():
        raise ValueError(f"{out}: is a folder; --out names a file")
    check_writable(out.parent if not out.exists() else out)


def check_writable(path: Path) -> None:
    """Fail early when ``path`` (a file or folder to be created) cannot be written: its nearest existing
    ancestor must be a writable folder."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    if probe == path and probe.is_file():
        probe = probe.parent  # an existing file is replaced by renaming into its folder
    if not probe.is_dir():
        raise ValueError(f"{path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{path}: cannot write into {probe} (permission denied)")


def check_same_size(image: np.ndarray, mask: np.ndarray, image_path: Path, mask_path: Path) -> None:
    if mask.shape != image.shape[:2]:
        raise ValueError(f"{mask_path}: map is {mask.shape[0]}x{mask.shape[1]} but image {image_path.name} is "
                         f"{image.shape[0]}x{image.shape[1]} (HxW)")
