"""bprefine against DenseCRF, image by image, alternating in one process (decode excluded).

    python benchmarks/densecrf.py [--data ../shared/data] [--limit 20] [--engine auto] [--json]

Person photos: CCP 0701-0804 with their real MediaPipe selfie masks (the bundled sample photos when the
shared data is absent). Street frames: CamVid val with simulated output-stride-8 coarse labels (11 classes;
skipped without the shared data). DenseCRF (pydensecrf / pydensecrf2): unary from the coarse labels
(probability 0.7), Gaussian (sxy 3, compat 3) and bilateral (sxy 80, srgb 13, compat 10) kernels,
5 mean-field iterations. Reported: median seconds each, the ratio of medians, and accuracy before/after
(boundary IoU for photos, mIoU for frames) so that speed is read beside what it buys.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from bprefine import Refiner
from bprefine.data.images import read_image, read_label_map, read_mask
from bprefine.metrics import boundary_iou
from bprefine.metrics.semantic import SemanticAccumulator
from bprefine.simulate import rng_for, semantic_low_res


def densecrf(image: np.ndarray, labels: np.ndarray, n_labels: int, iterations: int = 5) -> np.ndarray:
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_labels

    h, w = labels.shape
    crf = dcrf.DenseCRF2D(w, h, n_labels)
    crf.setUnaryEnergy(unary_from_labels(labels.astype(np.int64), n_labels, gt_prob=0.7, zero_unsure=False))
    crf.addPairwiseGaussian(sxy=3, compat=3)
    crf.addPairwiseBilateral(sxy=80, srgb=13, rgbim=np.array(image, order="C", copy=True), compat=10)
    return np.argmax(crf.inference(iterations), axis=0).reshape(h, w)


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def photos(data: Path | None, limit: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    if data is not None and (data / "ccp").is_dir():
        root = data / "ccp"
        stems = [f"{k:04d}" for k in range(701, 805)][:limit]
        return [(read_image(root / "images" / f"{s}.jpg"), read_mask(root / "coarse_selfie" / f"{s}.png"),
                 read_mask(root / "masks" / f"{s}.png")) for s in stems]
    from bprefine.demo import SAMPLES

    return [(read_image(p), read_mask(SAMPLES / "coarse" / f"{p.stem}.png"), read_mask(SAMPLES / "gt" / f"{p.stem}.png"))
            for p in sorted((SAMPLES / "images").glob("*.jpg"))]


def frames(data: Path | None, limit: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    if data is None or not (data / "camvid").is_dir():
        return []
    root = data / "camvid" / "val"
    out = []
    for p in sorted((root / "images").iterdir())[:limit]:
        gt = read_label_map(root / "labels" / f"{p.stem}.png")
        coarse = semantic_low_res(gt, num_classes=11, rng=rng_for(0, p.name), ignore_index=11)
        out.append((read_image(p), coarse, gt))
    return out


def compare_photos(refiner: Refiner, items) -> dict:
    t_bpr, t_crf, before, after_bpr, after_crf = [], [], [], [], []
    for image, coarse, gt in items:  # alternating, image by image
        refined, dt = _timed(lambda: refiner.refine(image, coarse))
        t_bpr.append(dt)
        crf, dt = _timed(lambda: densecrf(image, coarse.astype(np.int64), 2).astype(bool))
        t_crf.append(dt)
        before.append(boundary_iou(coarse, gt))
        after_bpr.append(boundary_iou(refined, gt))
        after_crf.append(boundary_iou(crf, gt))
    return _summary(t_bpr, t_crf) | {"mBIoU_coarse": _mean(before), "mBIoU_bprefine": _mean(after_bpr),
                                     "mBIoU_densecrf": _mean(after_crf)}


def compare_frames(refiner: Refiner, items) -> dict:
    t_bpr, t_crf = [], []
    accs = {k: SemanticAccumulator(11, ignore_index=11) for k in ("coarse", "bprefine", "densecrf")}
    for image, coarse, gt in items:
        refined, dt = _timed(lambda: refiner.refine_semantic(image, coarse, 11, 11))
        t_bpr.append(dt)
        crf_in = np.where(coarse == 11, 0, coarse)
        crf, dt = _timed(lambda: densecrf(image, crf_in, 11))
        t_crf.append(dt)
        crf = np.where(coarse == 11, 11, crf)
        for k, pred in (("coarse", coarse), ("bprefine", refined), ("densecrf", crf)):
            accs[k].add(pred, gt)
    return _summary(t_bpr, t_crf) | {f"mIoU_{k}": round(100 * a.result()["mIoU"], 2) for k, a in accs.items()}


def _mean(v: list[float]) -> float:
    return round(100 * float(np.mean(v)), 2)


def _summary(t_bpr: list[float], t_crf: list[float]) -> dict:
    b, c = statistics.median(t_bpr), statistics.median(t_crf)
    return {"images": len(t_bpr), "bprefine_median_s": round(b, 3), "densecrf_median_s": round(c, 3),
            "time_ratio": round(b / c, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--model", default="default")
    ap.add_argument("--nms-threshold", type=float, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    data = args.data if args.data.is_dir() else None
    kw = {} if args.nms_threshold is None else {"nms_threshold": args.nms_threshold}
    refiner = Refiner(args.model, engine=args.engine, **kw)
    report = {"engine": refiner.engine.name, "nms_threshold": refiner.nms_threshold,
              "photos": compare_photos(refiner, photos(data, args.limit))}
    street = frames(data, args.limit)
    if street:
        report["camvid_frames"] = compare_frames(refiner, street)
    if args.json:
        print(json.dumps(report))
        return
    print(f"engine {report['engine']}, nms {report['nms_threshold']}")
    for name in ("photos", "camvid_frames"):
        if name in report:
            print(name, json.dumps(report[name]))


if __name__ == "__main__":
    main()
