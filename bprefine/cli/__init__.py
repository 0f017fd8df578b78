"""The ``bprefine`` command line: thin over the library. Bad input ends in one line and exit 1."""

from __future__ import annotations

from pathlib import Path

import click

from bprefine.cli.analyze import analyze
from bprefine.cli.common import Group
from bprefine.cli.evaluate import eval_group
from bprefine.cli.refine import refine
from bprefine.cli.train import patches, simulate, train
from bprefine.engine import ENGINES


CLI_MAX_PIXELS = 400_000_000


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bprefine")
def main() -> None:
    """bprefine: make segmentation mask boundaries precise with Boundary Patch Refinement."""
    from PIL import Image

    # The command line is its own program: it reads images up to 400 million pixels (about 20000 x
    # 20000). The library itself never changes Pillow's limit for the program that imports it.
    if Image.MAX_IMAGE_PIXELS is not None:
        Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS, CLI_MAX_PIXELS // 2)
    _exit_cleanly_on_sigterm()


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM (``kill``, a batch scheduler's time limit) unwinds like Ctrl-C, so staging folders and
    half-written outputs are removed on the way out (exit status 143)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("bprefine_demo"), show_default=True,
              help="Folder for the before/after overlay PNGs.")
@click.option("--model", default="default", show_default=True)
def demo(out: Path, model: str) -> None:
    """Refine the bundled sample photos and print IoU / boundary IoU / boundary F before and after."""
    from bprefine.demo import run_demo

    run_demo(out, model=model)


@main.command()
@click.option("--images", "images_dir", type=click.Path(path_type=Path), required=True, help="Image folder.")
@click.option("--before", "before_dir", type=click.Path(path_type=Path), required=True, help="Coarse mask PNGs.")
@click.option("--after", "after_dir", type=click.Path(path_type=Path), required=True, help="Refined mask PNGs.")
@click.option("--gt", "gt_dir", type=click.Path(path_type=Path), default=None, help="Ground-truth mask PNGs.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The HTML file to write.")
def report(images_dir: Path, before_dir: Path, after_dir: Path, gt_dir: Path | None, out: Path) -> None:
    """One self-contained HTML page: a sortable table of images and a before/after view of each."""
    from bprefine.data.folders import check_out_file
    from bprefine.report import write_report

    check_out_file(out)
    n = write_report(images_dir, before_dir, after_dir, out, gt_dir)
    click.echo(f"wrote {out} ({n} images)")


@main.command()
@click.option("--model", default="default", show_default=True, help="A bundled model's name or a model file.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write.")
@click.option("--onnx", is_flag=True, help="Also write model.onnx and preprocessing.json.")
@click.option("--int8", is_flag=True, help="Also write model.int8.onnx (implies --onnx).")
def export(model: str, out: Path, onnx: bool, int8: bool) -> None:
    """Write a model in the Hugging Face layout (config.json, model.safetensors, README.md card)."""
    from bprefine.data.folders import check_writable
    from bprefine.export import export_model
    from bprefine.model import load_model

    check_writable(out)
    loaded = load_model(model)
    name = Path(model).stem if Path(model).suffix else model
    files = export_model(loaded, out, name=name, onnx=onnx, int8=int8)
    click.echo(f"wrote {', '.join(f.name for f in files)} to {out}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list.")
def models(as_json: bool) -> None:
    """List the bundled models with their one-line cards (docs/model_card.md has the full matrix)."""
    import json

    from bprefine.model import bundled_models, model_card

    cards = [model_card(name) for name in bundled_models()]
    if as_json:
        click.echo(json.dumps(cards))
        return
    for c in cards:
        guards = [f"{k} {c[k]}" for k in ("min_move", "min_confidence", "max_change", "min_mask_confidence") if c[k]]
        guard = ", guard " + " + ".join(guards) if guards else ""
        guard += ", consensus" if c["consensus"] else ""
        click.echo(f"{c['name']:<10} {c['preset']}, input {c['input_size']}, patch {c['patch_size']}, "
                   f"NMS {c['nms_threshold']}{guard}: {c['card']}")


@main.command()
@click.option("--presets", default=None, help="Comma-separated presets to time [all].")
@click.option("--repeats", type=click.IntRange(1), default=5, show_default=True)
@click.option("--quick", is_flag=True, help="Fewer sizes, for a smoke run.")
@click.option("--engine", type=click.Choice(ENGINES), default="auto", show_default=True)
@click.option("--model", default="default", show_default=True)
@click.option("--nms-threshold", "--nms-thr", "nms_threshold", type=click.FloatRange(0, 1), default=None,
              help="NMS threshold for the end-to-end figures [the Refiner's default].")
@click.option("--folder-images", type=click.IntRange(0), default=500, show_default=True,
              help="Photos in the folder-throughput run (one core against all cores); 0 skips it.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench(presets: str | None, repeats: int, quick: bool, engine: str, model: str, nms_threshold: float | None,
          folder_images: int, as_json: bool) -> None:
    """Time refinement end to end (with the paper's breakdown) and beside DenseCRF, a folder on one core
    and on all cores, the pipeline alone, and each preset."""
    from bprefine.bench import run_bench

    run_bench(presets=presets.split(",") if presets else None, repeats=repeats, quick=quick, engine=engine,
              model=model, nms_threshold=nms_threshold, folder_images=folder_images, as_json=as_json)


for command in (refine, eval_group, analyze, train, patches, simulate):
    main.add_command(command)
