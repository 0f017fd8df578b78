"""Time `evaluate_instances` (mask AP + boundary AP + AF) on synthetic Cityscapes-sized data.

    python benchmarks/eval_speed.py --images 500

Each 1024 x 2048 image has 20 ground-truth instances (random polygons, 40-400 px) and 20 predictions
(the instances dilated or eroded by 1-3 px, with random scores).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import cv2
import numpy as np
from pycocotools.coco import COCO

from bprefine.bench import synthetic_scene
from bprefine.data.coco import encode_mask
from bprefine.metrics.instances import evaluate_instances


def build(n_images: int) -> tuple[COCO, list[dict]]:
    rng = np.random.default_rng(0)
    images, anns, results = [], [], []
    for i in range(n_images):
        _, masks = synthetic_scene(seed=i)
        images.append({"id": i, "file_name": f"{i}.png", "height": 1024, "width": 2048})
        for m in masks:
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "segmentation": encode_mask(m),
                         "area": float(m.sum()), "bbox": [0, 0, 1, 1], "iscrowd": 0})
            op = cv2.erode if rng.random() < 0.5 else cv2.dilate
            p = op(m.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=int(rng.integers(1, 4))).astype(bool)
            results.append({"image_id": i, "category_id": 1, "score": float(rng.random()), "segmentation": encode_mask(p)})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=500)
    args = ap.parse_args()
    t = time.perf_counter()
    gt, results = build(args.images)
    print(f"built {args.images} images, {len(results)} predictions in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    scores = evaluate_instances(gt, results)
    dt = time.perf_counter() - t
    print({k: round(v, 4) for k, v in scores.items()})
    print(f"evaluate_instances: {dt:.1f} s for {args.images} images ({1000 * dt / args.images:.0f} ms / image)")


if __name__ == "__main__":
    main()
