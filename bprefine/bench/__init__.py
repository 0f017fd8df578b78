"""``bprefine bench``: the numbers behind the speed claims in docs/benchmarks.md, from bundled inputs only.

1. End to end with the chosen model and the engine ``auto`` picks (or ``engine``): a 1024 x 2048 image
   with about 135 boundary patches (the paper's Cityscapes case) split into the paper's three parts
   (``inprocess``), the bundled person photos and a synthetic 480 x 360 street frame with 11 classes.
2. Beside DenseCRF (``peers``), alternating image by image in this process, on the same photos and frame,
   with accuracy; skipped, with the reason, when DenseCRF is not installed.
3. Folder throughput (``folder``): ``refine masks`` over a folder of photos on one core and on all cores.
4. The patch pipeline without the network, and each preset's eager-PyTorch throughput.
"""

from __future__ import annotations

import json

import click
import torch

from bprefine import densecrf
from bprefine.bench import folder, inprocess, peers, scenes
from bprefine.bench.inprocess import pipeline_ms, preset_patches_per_s
from bprefine.bench.scenes import synthetic_scene
from bprefine.hardware import cpu_features, describe_cpu
from bprefine.nets import PRESETS
from bprefine.refine import Refiner

__all__ = ["run_bench", "pipeline_ms", "preset_patches_per_s", "synthetic_scene"]


def _peers(refiner: Refiner) -> dict:
    if not densecrf.available():
        return {"skipped": densecrf.MISSING}
    image, coarse, truth = scenes.street_scene()
    return {"photos": peers.compare_photos(refiner, scenes.sample_photos()),
            "street_frame_480x360": peers.compare_frames(refiner, [(image, coarse, truth)], scenes.STREET_CLASSES, None)}


def _presets(presets: list[str] | None, sizes: tuple[int, ...], repeats: int) -> dict:
    rates = {}
    for preset in presets or sorted(PRESETS):
        if preset not in PRESETS:
            raise ValueError(f"unknown network preset {preset!r}; choose from {sorted(PRESETS)}")
        rates[preset] = {str(s): round(preset_patches_per_s(preset, s, repeats), 1) for s in sizes}
    return rates


def run_bench(*, presets: list[str] | None = None, repeats: int = 5, quick: bool = False, engine: str = "auto",
              model: str = "default", nms_threshold: float | None = None, folder_images: int = 500,
              as_json: bool = False) -> dict:
    """Run every part and print it (``as_json``: one JSON object); ``folder_images=0`` skips the folder run."""
    refiner = Refiner(model, engine=engine, nms_threshold=nms_threshold)
    thr = refiner.nms_threshold
    report: dict = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": cpu_features(),
                    "engine": refiner.engine.name,
                    "model": model, "nms_threshold": thr, "repeats": repeats}
    report["cityscapes_1024x2048"] = inprocess.cityscapes_like(refiner, repeats)
    report["sample_photos"] = inprocess.sample_photos(refiner, repeats)
    report["street_frame_480x360"] = inprocess.street_frame(refiner, repeats)
    report["densecrf"] = _peers(refiner)
    report["folder"] = (folder.folder_throughput(folder.sample_pairs(), folder_images, model=model, engine=engine)
                        if folder_images else {"skipped": "folder_images=0"})
    report["pipeline_without_network_ms"] = {f"nms_{t:.2f}": dict(zip(("ms", "patches"), pipeline_ms(t, repeats)))
                                             for t in (0.25, 0.55)}
    sizes = (128,) if quick else (64, 128, 256)
    report["torch_patches_per_s_batch16"] = _presets(presets, sizes, repeats)
    if as_json:
        click.echo(json.dumps(report))
    else:
        _print(report, sizes)
    return report


def _print(report: dict, sizes: tuple[int, ...]) -> None:
    c, p, f = report["cityscapes_1024x2048"], report["sample_photos"], report["street_frame_480x360"]
    click.echo(f"torch {report['torch']}, {report['threads']} threads, CPU {describe_cpu(report['cpu'])}; "
               f"engine {report['engine']}; "
               f"model {report['model']}; nms {report['nms_threshold']}")
    click.echo(f"1024x2048, {c['patches']} patches ({c['instances']} instances): {c['end_to_end_s']:.3f} s end to end; "
               + ", ".join(f"{k} {v:.1f} ms" for k, v in c["breakdown_ms"].items()))
    click.echo(f"sample photos ({p['images']}, median {p['median_patches']} patches): {p['median_s']:.3f} s per photo")
    click.echo(f"street frame 480x360, {f['classes']} classes (synthetic): {f['median_s']:.3f} s")
    crf = report["densecrf"]
    if "skipped" in crf:
        click.echo(f"beside DenseCRF: skipped ({crf['skipped']})")
    for name, row in ((k, v) for k, v in crf.items() if k != "skipped"):
        acc = ", ".join(f"{k.split('_', 1)[1]} {v:.2f}" for k, v in row.items() if k.startswith(("mBIoU", "mIoU")))
        metric = "boundary IoU" if "mBIoU_coarse" in row else "mIoU"
        click.echo(f"beside DenseCRF, {name} ({row['images']}): bprefine {row['bprefine_median_s']:.3f} s, DenseCRF "
                   f"{row['densecrf_median_s']:.3f} s, ratio {row['time_ratio']:.2f}; {metric}: {acc}")
    fold = report["folder"]
    if "skipped" in fold:
        click.echo(f"folder throughput: skipped ({fold['skipped']})")
    for name, row in fold.get("runs", {}).items():
        click.echo(f"folder of {fold['images']} photos, {name}: {row['images_per_s']:.2f} images/s "
                   f"(x{fold['speedup_over_1_core'][name]:.2f})")
    click.echo("patch pipeline without the network, 1024x2048, 20 instances (median ms):")
    for k, v in report["pipeline_without_network_ms"].items():
        click.echo(f"  {k}: {v['ms']:7.1f} ms  ({v['patches']} patches)")
    click.echo(f"network throughput, eager PyTorch, batch 16 (patches/s, median of {report['repeats']}):")
    click.echo(f"  {'preset':<18}" + "".join(f"{s:>10}" for s in sizes))
    for preset, r in report["torch_patches_per_s_batch16"].items():
        click.echo(f"  {preset:<18}" + "".join(f"{v:>10.1f}" for v in r.values()))
