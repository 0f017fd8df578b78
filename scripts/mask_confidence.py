"""How sure each nucleus's refinement is as a whole, and what holding the unsure ones would do: the sweep
behind ``min_mask_confidence`` (docs/results.md, "Do no harm: how sure a mask's refinement is as a whole").

    python scripts/mask_confidence.py --data ../shared/data --model default --engine onnx-int8 --nms-threshold 0.1

For each held-out DSB2018 nucleus (positions 200-299, the simulated coarse masks of docs/results.md) and for
its ground truth refined as its own coarse mask, refines it once under the model's per-pixel guards
(``Refiner.pixel_guard``, ``min_mask_confidence`` off) and records the share of its area flipped and the mean |logit| over the flipped
pixels (``PatchAccumulator.confidence``). Then, for each threshold of ``--thresholds``, with the model's
``max_change`` applied too, prints what the mask-level guards would give: mean IoU, mean recall over IoU
thresholds 0.50:0.95 (a cheap stand-in for mask AP, which ``scripts/make_results.py`` measures), the share of
nuclei made worse (IoU down by more than 2 points; brightfield apart), the mean IoU of refined ground truth,
and the shares of masks held. Deterministic (simulated inputs use seed 0); writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bprefine.metrics.masks import mask_iou
from bprefine.refine import Refiner
from bprefine.simulate import mask_head, rng_for
from make_results import NMS, dsb_instances, dsb_items, dsb_type, make_refiner, study_parser

IOU_THRESHOLDS = np.arange(0.5, 0.96, 0.05)


def change_records(refiner: Refiner, image: np.ndarray, masks: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For (N, H, W) bool ``masks`` of an H x W x 3 uint8 image: the (N,) share of each mask's area that
    refinement flips under the per-pixel guards, the (N,) mean |logit| over those pixels (0 where none
    flips), and the (N, H, W) masks so refined (no mask-level guard applied)."""
    refined = masks.copy()
    shares, confidence = np.zeros(len(masks)), np.zeros(len(masks))
    for k, acc in enumerate(refiner.accumulate(image, masks)):
        if acc is None:
            continue
        allowed = refiner.pixel_guard(acc, masks[k])
        flipped = acc.flips(masks[k], allowed)
        acc.write_into(refined[k], allowed)
        shares[k] = np.count_nonzero(flipped) / max(np.count_nonzero(masks[k]), 1)
        confidence[k] = acc.confidence(flipped)
    return shares, confidence, refined


def dsb_records(refiner: Refiner, data: Path) -> dict[str, dict[str, np.ndarray]]:
    """Per held-out nucleus, for the simulated coarse input ("coarse") and the ground truth ("ground
    truth"): IoU before and after refinement, flip share, change confidence, and the image type."""
    out: dict[str, dict[str, list]] = {k: {"before": [], "after": [], "share": [], "confidence": [], "type": []}
                                       for k in ("coarse", "ground truth")}
    for entry in dsb_items(data, 200, 300):
        image, gts = dsb_instances(data, entry)
        kind = dsb_type(image)
        coarse = np.stack([mask_head(g, rng=rng_for(0, f"{entry['id']}/{j}")) for j, g in enumerate(gts)])
        for name, stack in (("coarse", coarse), ("ground truth", gts)):
            shares, confidence, refined = change_records(refiner, image, stack)
            rec = out[name]
            rec["before"] += [mask_iou(m, g) for m, g in zip(stack, gts)]
            rec["after"] += [mask_iou(r, g) for r, g in zip(refined, gts)]
            rec["share"] += list(shares)
            rec["confidence"] += list(confidence)
            rec["type"] += [kind] * len(gts)
    return {name: {k: np.asarray(v) for k, v in rec.items()} for name, rec in out.items()}


def held(rec: dict[str, np.ndarray], max_change: float, threshold: float) -> np.ndarray:
    """(N,) bool: the masks left unchanged by ``min_mask_confidence`` at ``threshold`` or by ``max_change``,
    as the Refiner decides (``pixel_guard``, then ``holds``)."""
    flips = rec["share"] > 0
    over = (rec["share"] > max_change) if max_change > 0 else np.zeros(len(flips), bool)
    return flips & (over | (rec["confidence"] < threshold))


def sweep_row(records: dict[str, dict[str, np.ndarray]], max_change: float, threshold: float) -> str:
    """One markdown row of figures, in percent, with the mask-level guards at ``threshold``."""
    c, g = records["coarse"], records["ground truth"]
    hc, hg = held(c, max_change, threshold), held(g, max_change, threshold)
    after = np.where(hc, c["before"], c["after"])
    worse = after < c["before"] - 0.02
    bright = c["type"] == "brightfield"
    recall = np.mean([(after > t).mean() for t in IOU_THRESHOLDS])
    gt_after = np.where(hg, g["before"], g["after"])
    return (f"| {threshold:g} | {100 * after.mean():.2f} | {100 * recall:.2f} | {100 * worse.mean():.2f}% | "
            f"{100 * worse[bright].mean():.1f}% | {100 * gt_after.mean():.2f} | {100 * hc.mean():.1f}% | "
            f"{100 * hg.mean():.1f}% |")


def main() -> None:
    ap = study_parser(__doc__)
    ap.add_argument("--thresholds", default="0,0.3,0.4,0.5,0.6,0.7,0.8,1.0",
                    help="comma-separated min_mask_confidence values to sweep")
    args = ap.parse_args()
    NMS["threshold"] = args.nms_threshold
    refiner = make_refiner(args.model, engine=args.engine, min_mask_confidence=0)  # swept below instead
    records = dsb_records(refiner, args.data)
    c = records["coarse"]
    recall = np.mean([(c["before"] > t).mean() for t in IOU_THRESHOLDS])
    print(f"model {args.model}, engine {args.engine}, NMS {args.nms_threshold}, min_confidence "
          f"{refiner.min_confidence}, max_change {refiner.max_change}; {len(c['before']):,} nuclei; coarse: "
          f"mean IoU {100 * c['before'].mean():.2f}, mean recall 0.50:0.95 {100 * recall:.2f}")
    print("| min_mask_confidence | mean IoU | mean recall 0.50:0.95 | worse | worse, brightfield | "
          "refined ground truth | nuclei held | ground-truth nuclei held |")
    print("|---|---|---|---|---|---|---|---|")
    for t in (float(x) for x in args.thresholds.split(",")):
        print(sweep_row(records, refiner.max_change, t), flush=True)


if __name__ == "__main__":
    main()
