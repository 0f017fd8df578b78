"""bprefine beside DenseCRF on the same inputs, image by image, alternating, in one process.

Decode is excluded; each image is refined by bprefine, then by DenseCRF, so that both see the same machine
state. Accuracy is reported beside time: boundary IoU for person photos, mIoU for street frames.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence, TypeVar

import numpy as np

from bprefine.densecrf import densecrf
from bprefine.metrics import boundary_iou
from bprefine.metrics.semantic import SemanticAccumulator
from bprefine.refine import Refiner

T = TypeVar("T")
Photo = tuple[np.ndarray, np.ndarray, np.ndarray]  # image, coarse mask, true mask (H x W bool)
Frame = tuple[np.ndarray, np.ndarray, np.ndarray]  # image, coarse labels, true labels (H x W int)


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _summary(t_bpr: list[float], t_crf: list[float]) -> dict:
    b, c = statistics.median(t_bpr), statistics.median(t_crf)
    return {"images": len(t_bpr), "bprefine_median_s": round(b, 3), "densecrf_median_s": round(c, 3),
            "time_ratio": round(b / c, 3)}


def compare_photos(refiner: Refiner, photos: Sequence[Photo]) -> dict:
    """Median seconds of each and their ratio; mean boundary IoU (percent) of coarse, bprefine, DenseCRF."""
    refiner.refine(photos[0][0], photos[0][1])  # warm-up: engine sessions, thread pools
    t_bpr, t_crf, scores = [], [], {"coarse": [], "bprefine": [], "densecrf": []}
    for image, coarse, gt in photos:
        refined, dt = _timed(lambda: refiner.refine(image, coarse))
        t_bpr.append(dt)
        crf, dt = _timed(lambda: densecrf(image, coarse.astype(np.int64), 2).astype(bool))
        t_crf.append(dt)
        for key, pred in (("coarse", coarse), ("bprefine", refined), ("densecrf", crf)):
            scores[key].append(boundary_iou(pred, gt))
    return _summary(t_bpr, t_crf) | {f"mBIoU_{k}": round(100 * float(np.mean(v)), 2) for k, v in scores.items()}


def compare_frames(refiner: Refiner, frames: Sequence[Frame], num_classes: int, ignore_index: int | None) -> dict:
    """Median seconds of each and their ratio; mIoU (percent) of coarse, bprefine, DenseCRF.

    Ignore pixels enter DenseCRF as class 0 and are put back afterwards (they are never scored)."""
    refiner.refine_semantic(frames[0][0], frames[0][1], num_classes, ignore_index)  # warm-up
    t_bpr, t_crf = [], []
    accs = {k: SemanticAccumulator(num_classes, ignore_index=ignore_index) for k in ("coarse", "bprefine", "densecrf")}
    for image, coarse, gt in frames:
        refined, dt = _timed(lambda: refiner.refine_semantic(image, coarse, num_classes, ignore_index))
        t_bpr.append(dt)
        void = coarse == ignore_index if ignore_index is not None else np.zeros(coarse.shape, bool)
        crf, dt = _timed(lambda: densecrf(image, np.where(void, 0, coarse), num_classes))
        t_crf.append(dt)
        crf = np.where(void, coarse, crf)
        for key, pred in (("coarse", coarse), ("bprefine", refined), ("densecrf", crf)):
            accs[key].add(pred, gt)
    return _summary(t_bpr, t_crf) | {f"mIoU_{k}": round(100 * a.result()["mIoU"], 2) for k, a in accs.items()}
