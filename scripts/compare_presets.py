"""Compare network presets at an equal training budget, to choose the default by measurement.

    python scripts/compare_presets.py --data ../shared/data --iterations 400 --out docs/presets.md

Each preset trains on CCP 0001-0700 (real MediaPipe selfie masks as coarse input; configs/ccp.yaml) for
the same number of iterations and batch size, seed 0, then refines CCP 0701-0760 (60 held-out photos).
mobilenet_v2 is run with and without its ImageNet initialisation (the other presets have none here).
Throughput is patches/s of the network alone at input 128, batch 16, median of 5, this machine.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch

from bprefine import Refiner
from bprefine.bench import preset_patches_per_s
from bprefine.data.images import read_image, read_mask
from bprefine.metrics.evaluate import MASK_METRICS, mask_scores, mean_scores
from bprefine.training import load_train_config, train

RUNS = (("mobilenet_v2", True), ("mobilenet_v2", False), ("hrnet_w18_small", False), ("fcn_resnet18", False))


def evaluate(model_path: Path, data: Path) -> dict[str, float]:
    refiner = Refiner(model_path, nms_threshold=0.55)
    rows = []
    for i in range(701, 761):
        name = f"{i:04d}"
        image = read_image(data / "ccp" / "images" / f"{name}.jpg")
        gt = read_mask(data / "ccp" / "masks" / f"{name}.png")
        coarse = read_mask(data / "ccp" / "coarse_selfie" / f"{name}.png")
        rows.append(mask_scores(refiner.refine(image, coarse), gt))
    return mean_scores(rows)


def baseline(data: Path) -> dict[str, float]:
    rows = []
    for i in range(701, 761):
        name = f"{i:04d}"
        rows.append(mask_scores(read_mask(data / "ccp" / "coarse_selfie" / f"{name}.png"),
                                read_mask(data / "ccp" / "masks" / f"{name}.png")))
    return mean_scores(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--runs", type=Path, default=Path("runs/presets"))
    ap.add_argument("--out", type=Path, default=Path("docs/presets.md"))
    args = ap.parse_args()
    base = load_train_config(Path(__file__).parents[1] / "configs" / "ccp.yaml",
                             [f"iterations={args.iterations}", "batch_size=16", "checkpoint_every=100000"])
    root = str(args.data.resolve())
    sources = tuple(replace(s, images=s.images.replace("../shared/data", root), gt=s.gt.replace("../shared/data", root),
                            coarse=s.coarse.replace("../shared/data", root)) for s in base.sources)
    b = baseline(args.data)
    lines = ["# Network presets at an equal training budget", "",
             f"Produced by `python scripts/compare_presets.py --data ../shared/data --iterations {args.iterations}` "
             f"(seed 0, batch 16, torch {torch.__version__}, {torch.get_num_threads()} threads). Training: CCP "
             "0001-0700 with real selfie masks; evaluation: CCP 0701-0760 (60 photos), NMS 0.55. Percent.", "",
             "| preset | init | train s | patches/s @128 | " + " | ".join(MASK_METRICS) + " |",
             "|---|---|---|---|" + "---|" * len(MASK_METRICS),
             "| (coarse input) | | | | " + " | ".join(f"{100 * b[k]:.2f}" for k in MASK_METRICS) + " |"]
    for preset, imagenet in RUNS:
        tag = f"{preset}{'_imagenet' if imagenet else ''}"
        config = replace(base, sources=sources, imagenet_init=imagenet, model=replace(base.model, preset=preset))
        t = time.time()
        train(config, args.runs / tag, progress=False)
        seconds = time.time() - t
        scores = evaluate(args.runs / tag / "final.safetensors", args.data)
        speed = preset_patches_per_s(preset, 128, 5)
        lines.append(f"| {preset} | {'ImageNet' if imagenet else 'random'} | {seconds:.0f} | {speed:.0f} | "
                     + " | ".join(f"{100 * scores[k]:.2f}" for k in MASK_METRICS) + " |")
        print(lines[-1], flush=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
