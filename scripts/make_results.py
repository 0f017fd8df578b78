"""Write docs/results.md: the bundled model's accuracy before/after refinement on held-out real data.

    python scripts/make_results.py --data ../shared/data --model default --out docs/results.md

CCP 0701-0804 (104 photos never used in training), ground truth = person masks:
- coarse = real MediaPipe selfie masks (the coarse source the model trained on, other photos);
- coarse = real MediaPipe pose masks (a coarse source the model never saw: transfer, paper Table 8);
- coarse = the ground truth itself (stability: refinement must not damage good masks);
and the effect of the inference NMS threshold (paper Table 7) on the selfie masks.
Everything is deterministic (no sampling); timings are medians on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from bprefine import Refiner
from bprefine.data.images import read_image, read_mask
from bprefine.metrics.evaluate import MASK_METRICS, mask_scores, mean_scores

VAL_IDS = range(701, 805)


def evaluate(refiner: Refiner, data: Path, coarse_dir: str | None) -> tuple[dict, dict, float, float]:
    """(before, after, mean patches per image, median seconds per image)."""
    before, after, patches, seconds = [], [], [], []
    for i in VAL_IDS:
        name = f"{i:04d}"
        image = read_image(data / "ccp" / "images" / f"{name}.jpg")
        gt = read_mask(data / "ccp" / "masks" / f"{name}.png")
        coarse = gt if coarse_dir is None else read_mask(data / "ccp" / coarse_dir / f"{name}.png")
        t = time.perf_counter()
        refined = refiner.refine(image, coarse)
        seconds.append(time.perf_counter() - t)
        patches.append(len(refiner.boxes_for(coarse)))
        before.append(mask_scores(coarse, gt))
        after.append(mask_scores(refined, gt))
    return mean_scores(before), mean_scores(after), float(np.mean(patches)), statistics.median(seconds)


def table(rows: list[tuple[str, dict, dict]]) -> list[str]:
    head = "| coarse input | " + " | ".join(f"{k} before | {k} after" for k in MASK_METRICS) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(MASK_METRICS))]
    for name, b, a in rows:
        cells = " | ".join(f"{100 * b[k]:.2f} | **{100 * a[k]:.2f}**" for k in MASK_METRICS)
        lines.append(f"| {name} | {cells} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", type=Path, default=Path("docs/results.md"))
    args = ap.parse_args()
    refiner = Refiner(args.model, nms_threshold=0.55)
    rows, nms_rows = [], []
    for label, coarse in (("MediaPipe selfie (real)", "coarse_selfie"), ("MediaPipe pose (real, transfer)", "coarse_pose"),
                          ("ground truth (stability)", None)):
        before, after, _, _ = evaluate(refiner, args.data, coarse)
        rows.append((label, before, after))
        print(label, {k: round(after[k] - before[k], 4) for k in MASK_METRICS})
    for thr in (0.25, 0.55):
        r = Refiner(args.model, nms_threshold=thr)
        _, after, n, sec = evaluate(r, args.data, "coarse_selfie")
        nms_rows.append((thr, after, n, sec))
    cfg = refiner.config
    lines = [
        "# Results",
        "",
        "Produced by `python scripts/make_results.py --data ../shared/data --model default` (deterministic; "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, engine `{refiner.engine.name}`).",
        f"Model: bundled `default` ({cfg.preset}, input {cfg.input_size}, patch {cfg.patch_size}); see "
        "docs/model_card.md. Inference NMS threshold 0.55 unless stated.",
        "",
        "## CCP person masks, 104 held-out photos (0701-0804)",
        "",
        "Figures in percent. mIoU: mean mask IoU; mBIoU: mean boundary IoU (band = 2% of the image diagonal, "
        "about 20 px here); BF1 / BF3: mean boundary F-score at 1 px / 3 px tolerance.",
        "",
        *table(rows),
        "",
        "## Inference NMS threshold (selfie masks)",
        "",
        "| NMS threshold | patches / image | median s / image | mIoU | mBIoU | BF1 | BF3 |",
        "|---|---|---|---|---|---|---|",
        *[f"| {t} | {n:.0f} | {s:.2f} | " + " | ".join(f"{100 * a[k]:.2f}" for k in MASK_METRICS) + " |"
          for t, a, n, s in nms_rows],
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
