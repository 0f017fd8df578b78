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
            raise click.ClickException(str(err).splitlines()[0] if str(err) else repr(err)) from None


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


def progress(items, unit: str):
    """A progress bar on stderr, shown only on a terminal."""
    return tqdm(list(items), unit=f" {unit}", desc="refining", disable=None, file=sys.stderr)


def mask_pairs(images_dir: Path, masks_dir: Path) -> list[tuple[Path, Path]]:
    """(image, mask PNG) pairs matched by file stem; every image needs its mask."""
    images = list_images(images_dir)
    if not images:
        raise ValueError(f"{images_dir}: no images found")
    if not masks_dir.is_dir():
        raise FileNotFoundError(f"{masks_dir}: directory not found")
    pairs = []
    for image in images:
        mask = masks_dir / f"{image.stem}.png"
        if not mask.is_file():
            raise FileNotFoundError(f"{mask}: no mask for image {image.name}")
        pairs.append((image, mask))
    return pairs


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


