"""How well does a cheap score pick the boxes the network would barely change? (``bprefine.selection``)

    python benchmarks/patch_skipping.py [--data ../shared/data] [--nms-threshold 0.1] [--fractions 0.1,0.2,0.35]

On the 104 held-out CCP photos with their real selfie masks, each photo's boxes are ranked three ways and
the top fraction is skipped (refined again without them, so overlaps are averaged exactly as in use):

- edge: the edge-alignment score (boundary already on the strongest nearby edge: skipped first);
- random: a seeded random order (the floor);
- fewest changed: the boxes in which full refinement changed the fewest pixels (an oracle that needs the
  network's answer; what a perfect "unchanged" predictor would skip).

Prints mean boundary IoU (percent) for each, the full refinement and the coarse input, and the Spearman
correlation between the edge score and the changed-pixel fraction. Accuracy only: no timing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bprefine import Refiner
from bprefine.data.images import read_image, read_mask
from bprefine.metrics import boundary_iou
from bprefine.pipeline import Job
from bprefine.selection import edge_alignment, gradient_magnitude


def _refine_with(refiner: Refiner, image: np.ndarray, coarse: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    acc = refiner._run([image], [Job(0, coarse)], boxes_for=lambda _: boxes)[0]
    out = coarse.copy()
    refiner._write(acc, out)
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--model", default="default")
    ap.add_argument("--nms-threshold", type=float, default=0.1)
    ap.add_argument("--fractions", default="0.1,0.2,0.35")
    args = ap.parse_args()
    ccp = args.data / "ccp"
    if not ccp.is_dir():
        raise SystemExit(f"{ccp}: the CCP photos are needed (see ../shared/data/README.md)")
    refiner = Refiner(args.model, nms_threshold=args.nms_threshold)
    photos = []
    for k in range(701, 805):
        image, coarse = read_image(ccp / "images" / f"{k:04d}.jpg"), read_mask(ccp / "coarse_selfie" / f"{k:04d}.png")
        gt, boxes = read_mask(ccp / "masks" / f"{k:04d}.png"), refiner.boxes_for(coarse)
        full = _refine_with(refiner, image, coarse, boxes)
        changed = np.array([(full[y0:y1, x0:x1] != coarse[y0:y1, x0:x1]).mean() for x0, y0, x1, y1 in boxes])
        edge = edge_alignment(gradient_magnitude(image), coarse, boxes)
        photos.append((image, coarse, gt, boxes, edge, changed, full))
    edges = np.concatenate([p[4] for p in photos])
    changes = np.concatenate([p[5] for p in photos])
    report = {"nms_threshold": args.nms_threshold, "patches_per_photo": round(len(edges) / len(photos), 1),
              "spearman_edge_vs_changed": round(_spearman(edges, changes), 3),
              "mBIoU_coarse": round(100 * float(np.mean([boundary_iou(p[1], p[2]) for p in photos])), 2),
              "mBIoU_full": round(100 * float(np.mean([boundary_iou(p[6], p[2]) for p in photos])), 2), "skipped": {}}
    rng = np.random.default_rng(0)
    for frac in (float(f) for f in args.fractions.split(",")):
        row = {}
        for name in ("edge", "random", "fewest changed"):
            scores = []
            for image, coarse, gt, boxes, edge, changed, _ in photos:
                rank = {"edge": edge, "random": rng.random(len(boxes)), "fewest changed": -changed}[name]
                keep = np.sort(np.argsort(-rank)[int(round(frac * len(boxes))):])
                scores.append(boundary_iou(_refine_with(refiner, image, coarse, boxes[keep]), gt))
            row[name] = round(100 * float(np.mean(scores)), 2)
        report["skipped"][str(frac)] = row
        print(json.dumps({str(frac): row}), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
