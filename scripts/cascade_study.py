"""Refinement in passes: the output of one refiner as the coarse input of the next, on held-out person photos.

    python scripts/cascade_study.py --data ../shared/data --passes people:0.1,default:0.1
    python scripts/cascade_study.py --data ../shared/data --passes people:0.1,default:0.1:min_move=0.5

Each pass is ``MODEL:NMS[:SETTING=VALUE...]`` (a bundled name or a model path, its inference NMS threshold,
and any numeric ``Refiner`` setting such as ``min_move``, ``move_limit`` or ``min_confidence``), run with the
engine ``engine="auto"`` picks. On CCP 0701-0804 it prints mean IoU, boundary IoU and boundary F at 1 / 3 px
(percent) after the last pass for the real MediaPipe selfie masks and for the ground truth itself
(stability), and the share of photos whose IoU fell by more than 2 points: whether a second, finer pass
(e.g. `default`'s 64-px boxes after `people`'s 128-px ones) buys boundary accuracy, and what it costs masks
that were already right. Deterministic; no data is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from bprefine import Refiner
from bprefine.metrics.evaluate import mask_scores, mean_scores
from make_results import ccp_items, parse_settings, worse_fraction


def parse_pass(text: str) -> Refiner:
    """A ``Refiner`` from ``MODEL:NMS[:SETTING=VALUE...]``; raises ValueError naming the bad part."""
    model, *rest = text.split(":")
    if not model or not rest:
        raise ValueError(f"a pass is MODEL:NMS[:SETTING=VALUE...], got {text!r}")
    settings = parse_settings(rest[1:], f"pass {text!r}")
    return Refiner(model, nms_threshold=float(rest[0]), **settings)


def run_passes(refiners: list[Refiner], image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W) bool mask after every refiner in turn, starting from the (H, W) bool ``mask``."""
    for refiner in refiners:
        mask = refiner.refine(image, mask)
    return mask


def evaluate(refiners: list[Refiner], data: Path, coarse_dir: str | None) -> tuple[dict, float]:
    """(mean scores after the passes, share of photos worse by > 2 IoU points) on CCP 0701-0804."""
    before, after = [], []
    for _, image, gt, coarse in ccp_items(data, coarse_dir):
        before.append(mask_scores(coarse, gt))
        after.append(mask_scores(run_passes(refiners, image, coarse), gt))
    worse = worse_fraction([r["mIoU"] for r in before], [r["mIoU"] for r in after])
    return mean_scores(after), worse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--passes", required=True, help="comma-separated MODEL:NMS[:SETTING=VALUE...]")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if not (args.data / "ccp" / "images").is_dir():
        sys.exit(f"cascade_study: {args.data / 'ccp' / 'images'}: no such directory")
    torch.set_num_threads(args.threads)
    try:
        refiners = [parse_pass(p) for p in args.passes.split(",")]
    except (ValueError, TypeError, FileNotFoundError) as err:
        sys.exit(f"cascade_study: --passes {args.passes!r}: {err}")
    for label, coarse_dir in (("selfie", "coarse_selfie"), ("ground truth", None)):
        scores, worse = evaluate(refiners, args.data, coarse_dir)
        figures = " / ".join(f"{k} {100 * v:.2f}" for k, v in scores.items())
        print(f"{args.passes} | {label}: {figures} | worse {100 * worse:.2f}%", flush=True)


if __name__ == "__main__":
    main()
