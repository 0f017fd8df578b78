"""Shared pieces of the command line: error handling, progress, refiner options, reporting."""

from __future__ import annotations

import sys
from typing import Any

import click
from tqdm import tqdm



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
    from bprefine.refine import DEFAULT_BATCH_SIZE, DEFAULT_SCHEME

    options = [
        click.option("--model", default="default", show_default=True,
                     help="A bundled model's name or a model file (.safetensors beside its .json)."),
        click.option("--nms-threshold", "--nms-thr", "nms_threshold", type=click.FloatRange(0, 1),
                     default=None,
                     help="NMS IoU threshold for boundary patches (higher: more patches, better, slower) "
                          "[the model's: 0.1 for every bundled model]."),
        click.option("--patch-size", type=click.IntRange(4), default=None, help="Boundary patch side in pixels [model's]."),
        click.option("--scheme", type=click.Choice(SCHEMES), default=DEFAULT_SCHEME, show_default=True,
                     help="How boundary boxes are chosen: dense (boxes + NMS), grid, or the whole instance."),
        click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH_SIZE, show_default=True),
        click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda."),
        click.option("--engine", type=click.Choice(ENGINES), default="auto", show_default=True,
                     help="Inference backend; auto = ONNX Runtime on the CPU when installed."),
        click.option("--move-limit", type=click.FloatRange(0, min_open=True), default=None,
                     help="Do-no-harm guard: pixels change only within max(2, LIMIT * sqrt(mask area)) px of the "
                          "coarse boundary [off]."),
        click.option("--min-confidence", type=click.FloatRange(0), default=None,
                     help="Do-no-harm guard: a pixel changes only where the mean patch logit is this far from 0; "
                          "0: off [the model's: 0.25 for street, 0.1 for the others]."),
        click.option("--min-move", type=click.FloatRange(0), default=None,
                     help="Do-no-harm guard: keep a box's changes only where they move its coarse boundary by at "
                          "least this many px on average; 0: off [the model's: 0.5 for people, else off]."),
        click.option("--max-change", type=click.FloatRange(0), default=None,
                     help="Do-no-harm guard: a mask whose refinement would change more than this share of its "
                          "area keeps its coarse mask; 0: off [the model's]."),
        click.option("--min-mask-confidence", type=click.FloatRange(0), default=None,
                     help="Do-no-harm guard: a mask whose changed pixels have a mean |logit| below this keeps its "
                          "coarse mask; 0: off [the model's]."),
        click.option("--edge-skip", type=click.FloatRange(0, 1, min_open=True), default=None,
                     help="Skip boxes whose coarse boundary already follows the image's strongest edge "
                          "(alignment >= this, e.g. 0.5) [off: refine every box]."),
        click.option("--flip/--no-flip", default=False, show_default=True,
                     help="Test-time flip: also run every patch mirrored and average the logits (2x network time)."),
        click.option("--consensus/--no-consensus", default=None,
                     help="Semantic / panoptic: a pixel changes class or segment only where its own refinement "
                          "gives it up and another claims it [the model's: on for street, else off]."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def make_refiner(**opts):
    """A Refiner from the options of ``refiner_options`` (named as the Refiner's arguments)."""
    from bprefine.refine import Refiner

    return Refiner(**opts)


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


