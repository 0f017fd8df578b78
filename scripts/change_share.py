"""How much of each nucleus refinement redraws, split by what refinement did to it: the figures behind
``max_change`` (docs/results.md, "Do no harm: a bound on how much of a mask may change").

    python scripts/change_share.py --data ../shared/data --model default --engine onnx-int8 --nms-threshold 0.1

For each held-out DSB2018 nucleus (positions 200-299, the simulated coarse masks of docs/results.md) and for
its ground truth refined as its own coarse mask, counts the pixels refinement flips (as far as the model's
per-pixel guards let it, ``Refiner.pixel_guard``) as a share of the coarse mask's area, and prints the mean
and median share of the nuclei it makes worse (IoU down by more than 2 points), of those it makes better (up
by more than 2), and of the ground-truth masks. Deterministic (simulated inputs use seed 0); writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bprefine.metrics.masks import mask_iou
from bprefine.refine import Refiner
from bprefine.simulate import mask_head, rng_for
from make_results import NMS, dsb_instances, dsb_items, make_refiner, study_parser


def flip_shares(refiner: Refiner, image: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For (N, H, W) bool ``masks`` of an H x W x 3 uint8 image: the (N,) share of each mask's area that
    refinement flips under the per-pixel guards, and the (N, H, W) masks so refined (``max_change`` not
    applied)."""
    refined = masks.copy()
    shares = np.zeros(len(masks))
    for k, acc in enumerate(refiner.accumulate(image, masks)):
        if acc is None:
            continue
        acc.write_into(refined[k], refiner.pixel_guard(acc, masks[k]))
        shares[k] = np.count_nonzero(refined[k] != masks[k]) / max(np.count_nonzero(masks[k]), 1)
    return shares, refined


def dsb_shares(refiner: Refiner, data: Path) -> dict[str, np.ndarray]:
    """Flip shares of the held-out nuclei made worse / better by more than 2 IoU points and of the refined
    ground-truth nuclei (each an array over nuclei)."""
    out: dict[str, list[float]] = {"worse": [], "better": [], "ground truth": []}
    for entry in dsb_items(data, 200, 300):
        image, gts = dsb_instances(data, entry)
        coarse = np.stack([mask_head(g, rng=rng_for(0, f"{entry['id']}/{j}")) for j, g in enumerate(gts)])
        shares, refined = flip_shares(refiner, image, coarse)
        for share, c, r, g in zip(shares, coarse, refined, gts):
            delta = mask_iou(r, g) - mask_iou(c, g)
            if abs(delta) > 0.02:
                out["better" if delta > 0 else "worse"].append(share)
        out["ground truth"] += list(flip_shares(refiner, image, gts)[0])
    return {k: np.asarray(v) for k, v in out.items()}


def main() -> None:
    ap = study_parser(__doc__)
    ap.add_argument("--min-confidence", type=float, default=None, help="the margin (default: the model's)")
    args = ap.parse_args()
    NMS["threshold"] = args.nms_threshold
    refiner = make_refiner(args.model, engine=args.engine, min_confidence=args.min_confidence)
    print(f"model {args.model}, engine {args.engine}, NMS {args.nms_threshold}, min_confidence {refiner.min_confidence}")
    print("| nuclei | count | mean share flipped | median |")
    print("|---|---|---|---|")
    for name, shares in dsb_shares(refiner, args.data).items():
        print(f"| {name} | {len(shares):,} | {shares.mean():.3f} | {np.median(shares):.3f} |", flush=True)


if __name__ == "__main__":
    main()
