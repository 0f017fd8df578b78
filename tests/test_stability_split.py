"""scripts/stability_split.py: the split of a refined ground-truth mask's changes by distance to the true boundary."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pycocotools")  # make_results, which the script reuses, needs it
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from bprefine.metrics.masks import mask_iou as iou  # noqa: E402
from stability_split import boundary_distance, split_ious  # noqa: E402


def _square() -> np.ndarray:
    gt = np.zeros((40, 40), bool)
    gt[10:30, 10:30] = True
    return gt


def test_boundary_distance_is_one_on_both_sides_of_the_boundary():
    dist = boundary_distance(_square())
    assert dist[10, 20] == 1 and dist[9, 20] == 1  # first pixel inside, first outside
    assert dist[20, 20] == 10 and dist[0, 20] == 10


def test_split_separates_a_one_pixel_move_from_a_far_blob():
    gt = _square()
    grown = gt.copy()
    grown[9, 10:30] = True  # the top edge moved out by 1 px (no corners: those lie sqrt(2) px away)
    refined = grown.copy()
    refined[0:3, 0:3] = True  # a region 7+ px from the boundary
    (whole, near_only, far_only, added, removed), = split_ious(refined, gt, [1.0])
    assert whole == pytest.approx(iou(refined, gt))
    assert near_only == pytest.approx(iou(grown, gt))  # the blob reverted
    far = gt.copy()
    far[0:3, 0:3] = True
    assert far_only == pytest.approx(iou(far, gt))  # the growth reverted
    assert (added, removed) == (20 + 9, 0)


def test_split_of_an_unchanged_mask_is_perfect():
    gt = _square()
    assert split_ious(gt.copy(), gt, [1.0, 3.0]) == [(1.0, 1.0, 1.0, 0.0, 0.0)] * 2
