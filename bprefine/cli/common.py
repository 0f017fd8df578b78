"""Shared pieces of the command line: error handling, progress, refiner options, reporting."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import numpy as np
from tqdm import tqdm

from bprefine.data.images import list_images


class Group(click.Group):
    """Turns the library's input errors into ``Error: <message>`` and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ValueError, FileNotFoundError, OSError) as err:
            raise click.ClickException(_one_line(err)) from None


def _one_line(err: Exception) -> str:
    """The first line of an error, led by the file it concerns when the OS names one."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    text = str(err)
    return text.splitlines()[0] if text else repr(err)


def refiner_options(f):
    """Options shared by every refine command; choices and defaults come from the library."""
    from bprefine.engine import ENGINES
    from bprefine.patches import SCHEMES
    from bprefine.refine import DEFAULT_BATCH_SIZE, DEFAULT_NMS_THRESHOLD, DEFAULT_SCHEME

    options = [
        click.option("--model", default="default", show_default=True,
                     help="A bundled model's name or a model file (.safetensors beside its .json)."),
        click.option("--nms-threshold", "--nms-thr", "nms_threshold", type=click.FloatRange(0, 1),
                     default=DEFAULT_NMS_THRESHOLD, show_default=True,
                     help="NMS IoU threshold for boundary patches (higher: more patches, better, slower)."),
        click.option("--patch-size", type=click.IntRange(4), default=None, help="Boundary patch side in pixels [model's]."),
        click.option("--scheme", type=click.Choice(SCHEMES), default=DEFAULT_SCHEME, show_default=True,
                     help="How boundary boxes are chosen: dense (boxes + NMS), grid, or the whole instance."),
        click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH_SIZE, show_default=True),
        click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda."),
        click.option("--engine", type=click.Choice(ENGINES), default="auto", show_default=True,
                     help="Inference backend; auto = ONNX Runtime on the CPU when installed."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def make_refiner(model: str, nms_threshold: float, patch_size: int | None, scheme: str, batch_size: int,
                 device: str, engine: str):
    """A Refiner from the options of ``refiner_options``."""
    from bprefine.refine import Refiner

    return Refiner(model, device=device, batch_size=batch_size, nms_threshold=nms_threshold,
                   patch_size=patch_size, scheme=scheme, engine=engine)


def read_ahead(load, items: list, *, depth: int = 2):
    """``load(item)`` for each item, in order, computed up to ``depth`` items ahead on a helper thread
    (decoding releases the GIL), so reading the next image overlaps refining this one."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bprefine-read") as pool:
        pending: deque = deque()
        it = iter(items)
        for item in it:
            pending.append(pool.submit(load, item))
            if len(pending) > depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class BackgroundWriter:
    """Runs ``write`` calls on a helper thread (PNG encoding overlaps the next refinement); ``close``
    waits for all of them and re-raises the first error."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bprefine-write")
        self._futures: list = []

    def submit(self, fn, *args) -> None:
        self._futures.append(self._pool.submit(fn, *args))
        done = [f for f in self._futures if f.done()]
        for f in done:
            f.result()
            self._futures.remove(f)

    def __enter__(self) -> "BackgroundWriter":
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                for f in self._futures:
                    f.result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def progress(items, unit: str):
    """A progress bar on stderr, shown only on a terminal."""
    return tqdm(list(items), unit=f" {unit}", desc="refining", disable=None, file=sys.stderr)


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
    import os

    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        if probe == path and probe.is_file():
            probe = probe.parent  # an existing file is replaced by renaming into its folder
        else:
            raise ValueError(f"{path}: {probe} is a file, not a folder")
    if not probe.is_dir():
        raise ValueError(f"{path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{path}: cannot write into {probe} (permission denied)")


def check_same_size(image: np.ndarray, mask: np.ndarray, image_path: Path, mask_path: Path) -> None:
    if mask.shape != image.shape[:2]:
        raise ValueError(f"{mask_path}: map is {mask.shape[0]}x{mask.shape[1]} but image {image_path.name} is "
                         f"{image.shape[0]}x{image.shape[1]} (HxW)")


def report(scores: dict, before: dict | None, keys: tuple[str, ...], as_json: bool, note: str) -> None:
    """One JSON object, or a table with a before/after column when a baseline was given."""
    import json

    if as_json:
        click.echo(json.dumps(scores | ({"baseline": before} if before else {})))
        return
    click.echo(f"{'metric':<8}{'baseline':>10}{'pred':>10}{'delta':>10}" if before else f"{'metric':<8}{'pred':>10}")
    for k in keys:
        if before:
            click.echo(f"{k:<8}{before[k]:>10.4f}{scores[k]:>10.4f}{scores[k] - before[k]:>+10.4f}")
        else:
            click.echo(f"{k:<8}{scores[k]:>10.4f}")
    click.echo(note)


json_flag = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")


