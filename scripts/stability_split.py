"""Where refining ground truth loses IoU: next to the true boundary (jitter) or far from it (large moves).

    python scripts/stability_split.py --data ../shared/data --model default --engine onnx-int8 --nms-threshold 0.1

Refines the held-out ground-truth masks of docs/results.md's stability rows (CCP 0701-0804 person masks,
DSB2018 positions 200-299 nuclei) and splits every changed pixel by its distance to the ground-truth
boundary. For each distance d it prints the stability (mean IoU of refined ground truth, percent) with
only the changes within d px kept (the rest reverted) and with only the changes beyond d px kept: the
first shows what sub-pixel to few-pixel jitter costs, the second what whole regions redrawn cost (a bag
or an umbrella the annotators left out of the person, a nucleus split), and the pixel counts whether the
model grows or erodes what it is given. Deterministic; no data is written.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bprefine.metrics.masks import mask_iou
from make_results import NMS, ccp_items, dsb_instances, dsb_items, make_refiner, study_parser


def boundary_distance(gt: np.ndarray) -> np.ndarray:
    """(H, W) float32 distance of each pixel to the other side of the (H, W) bool mask ``gt``: for a pixel
    inside, the distance to the nearest pixel outside, and the reverse (1 next to the boundary)."""
    g = gt.astype(np.uint8)
    inside = cv2.distanceTransform(g, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform(1 - g, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.where(gt, inside, outside)


def split_ious(refined: np.ndarray, gt: np.ndarray, distances: list[float]) -> list[tuple[float, ...]]:
    """For each distance d: (IoU of ``refined``, IoU with only the changes within d px of the ground-truth
    boundary kept, IoU with only the changes beyond d px kept, pixels added, pixels removed), masks
    (H, W) bool."""
    changed = refined != gt
    dist = boundary_distance(gt)
    added, removed = float((refined & ~gt).sum()), float((gt & ~refined).sum())
    out = []
    for d in distances:
        far = changed & (dist > d)
        out.append((mask_iou(refined, gt), mask_iou(np.where(far, gt, refined), gt),
                    mask_iou(np.where(changed & ~far, gt, refined), gt), added, removed))
    return out


def ccp_rows(refiner, data: Path, distances: list[float]) -> np.ndarray:
    """(photos, distances, 5) ``split_ious`` of the refined CCP 0701-0804 ground-truth masks."""
    return np.asarray([split_ious(refiner.refine(image, gt), gt, distances)
                       for _, image, gt, _ in ccp_items(data, None)])


def dsb_rows(refiner, data: Path, distances: list[float]) -> np.ndarray:
    """(nuclei, distances, 5) ``split_ious`` of the refined DSB2018 200-299 ground-truth nuclei."""
    rows = []
    for entry in dsb_items(data, 200, 300):
        image, gts = dsb_instances(data, entry)
        refined = refiner.refine_instances(image, gts)
        rows += [split_ious(r, g, distances) for r, g in zip(refined, gts)]
    return np.asarray(rows)


def main() -> None:
    ap = study_parser(__doc__)
    ap.add_argument("--distances", default="1,3", help="comma-separated distances in px")
    ap.add_argument("--domains", default="ccp,dsb", help="comma-separated subset of ccp,dsb")
    args = ap.parse_args()
    distances = [float(d) for d in args.distances.split(",")]
    NMS["threshold"] = args.nms_threshold
    refiner = make_refiner(args.model, engine=args.engine)
    print(f"model {args.model}, engine {args.engine}, NMS {args.nms_threshold}; stability in percent")
    print("| domain | stability | " + " | ".join(f"changes within {d:g} px only | beyond {d:g} px only"
                                                  for d in distances) + " | pixels added | pixels removed |")
    print("|---|---|" + "---|---|" * len(distances) + "---|---|")
    for domain in args.domains.split(","):
        rows = {"ccp": ccp_rows, "dsb": dsb_rows}[domain](refiner, args.data, distances)
        mean = 100 * rows[..., :3].mean(axis=0)  # (distances, 3)
        added, removed = rows[:, 0, 3:].sum(axis=0)
        print(f"| {domain} | {mean[0, 0]:.2f} | "
              + " | ".join(f"{mean[i, 1]:.2f} | {mean[i, 2]:.2f}" for i in range(len(distances)))
              + f" | {added:,.0f} | {removed:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
