from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bprefine.patches import (
    PatchAccumulator,
    boundary_map,
    boundary_points,
    box_iou,
    boxes_around,
    crop_patches,
    extract_boxes,
    grid_boxes,
    instance_box,
    nms,
    nms_squares,
    propose_boxes,
)
from bpr_helpers import random_blobs


def test_boundary_map_marks_both_sides_of_a_square():
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    expected = np.zeros((8, 8), bool)
    expected[1:7, 1:7] = True
    expected[3:5, 3:5] = False  # interior, two pixels from the contour
    assert np.array_equal(boundary_map(mask), expected)


def test_image_border_is_not_a_contour():
    mask = np.zeros((6, 6), bool)
    mask[:, :3] = True  # touches the left, top and bottom borders
    ys, xs = np.nonzero(boundary_map(mask))
    assert set(xs.tolist()) == {2, 3}
    assert set(ys.tolist()) == set(range(6))


def test_boundary_scores_prefer_evenly_mixed_neighbourhoods():
    mask = np.zeros((9, 9), bool)
    mask[:, :4] = True
    points, scores = boundary_points(mask)
    # a straight vertical edge: columns 3 (inside, f=2/3) and 4 (outside, f=1/3), both score 2/3
    assert set(points[:, 0].tolist()) == {3, 4}
    assert np.allclose(scores, 2 / 3)


def test_empty_mask_gives_no_boxes():
    empty = np.zeros((50, 60), bool)
    for scheme in ("dense", "grid", "instance"):
        assert extract_boxes(empty, scheme=scheme).shape == (0, 4)


def test_box_at_right_edge_ends_at_the_last_column():
    boxes = boxes_around(np.array([[99, 99], [0, 0], [50, 3]]), patch_size=64, image_hw=(100, 100))
    assert boxes.tolist() == [[36, 36, 100, 100], [0, 0, 64, 64], [18, 0, 82, 64]]


def _brute_force_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    def iou(a, b):
        iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union

    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    keep: list[int] = []
    for i in order:
        if all(iou(boxes[i], boxes[k]) <= thr for k in keep):
            keep.append(i)
    return keep


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60), thr=st.sampled_from([0.0, 0.25, 0.5, 0.55, 0.9]))
def test_nms_equals_brute_force_reference(seed: int, n: int, thr: float):
    rng = np.random.default_rng(seed)
    xy = rng.integers(0, 100, size=(n, 2))
    wh = rng.integers(1, 40, size=(n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.integers(0, 5, size=n).astype(np.float32)  # many ties
    assert nms(boxes, scores, thr).tolist() == _brute_force_nms(boxes, scores, thr)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 80), side=st.integers(1, 40),
       thr=st.sampled_from([0.0, 0.1, 0.25, 1 / 3, 0.55, 0.9]))
def test_square_nms_equals_generic_nms(seed: int, n: int, side: int, thr: float):
    rng = np.random.default_rng(seed)
    xy = rng.integers(0, 60, size=(n, 2))
    boxes = np.concatenate([xy, xy + side], axis=1)
    scores = rng.integers(0, 4, size=n).astype(np.float32)
    assert nms_squares(boxes, scores, thr).tolist() == nms(boxes, scores, thr).tolist()


def test_box_iou_of_half_overlapping_squares():
    assert box_iou(np.array([0, 0, 10, 10]), np.array([[5, 0, 15, 10]]))[0] == pytest.approx(50 / 150)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    hw=st.tuples(st.integers(64, 200), st.integers(64, 200)),
    thr=st.sampled_from([0.1, 0.25, 0.55, 0.8]),
    patch=st.sampled_from([16, 32, 64]),
)
def test_boxes_inside_image_and_cover_every_boundary_pixel(seed, hw, thr, patch):
    rng = np.random.default_rng(seed)
    mask = random_blobs(rng, *hw, 1)[0]
    boxes = propose_boxes(mask, patch_size=patch, nms_threshold=thr)
    h, w = hw
    assert ((boxes[:, 0] >= 0) & (boxes[:, 1] >= 0) & (boxes[:, 2] <= w) & (boxes[:, 3] <= h)).all()
    assert ((boxes[:, 2] - boxes[:, 0]) == patch).all() and ((boxes[:, 3] - boxes[:, 1]) == patch).all()
    covered = np.zeros(hw, bool)
    for x0, y0, x1, y1 in boxes:
        covered[y0:y1, x0:x1] = True
    assert not (boundary_map(mask) & ~covered).any()


def test_higher_nms_threshold_keeps_more_boxes(rng):
    mask = random_blobs(rng, 300, 300, 1)[0]
    counts = [len(propose_boxes(mask, nms_threshold=t)) for t in (0.1, 0.25, 0.55, 0.8)]
    assert counts == sorted(counts) and counts[0] < counts[-1]


def test_grid_boxes_are_inside_cells_with_boundary(rng):
    mask = random_blobs(rng, 130, 150, 1)[0]
    boxes = grid_boxes(mask, patch_size=32)
    bmap = boundary_map(mask)
    assert (boxes[:, 2] <= 150).all() and (boxes[:, 3] <= 130).all() and (boxes[:, :2] >= 0).all()
    assert all(bmap[y0:y1, x0:x1].any() for x0, y0, x1, y1 in boxes)
    covered = np.zeros(bmap.shape, bool)
    for x0, y0, x1, y1 in boxes:
        covered[y0:y1, x0:x1] = True
    assert not (bmap & ~covered).any()


def test_instance_box_adds_context_and_stays_inside():
    mask = np.zeros((100, 100), bool)
    mask[10:30, 50:100] = True
    assert instance_box(mask, context=0.1).tolist() == [[45, 8, 100, 32]]


def test_crop_patches_pads_outside_with_edge_pixels():
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    mask = np.zeros((4, 5), bool)
    mask[:, -1] = True
    imgs, msks = crop_patches(image, mask, np.array([[2, 0, 6, 4]]), padding=1)
    assert imgs.shape == (1, 6, 6, 3) and msks.shape == (1, 6, 6)
    assert (imgs[0, 1:5, 0:4] == image[:, 1:5]).all()  # crop column j is image column 1 + j
    assert (imgs[0, :, 4] == imgs[0, :, 3]).all() and (imgs[0, :, 5] == imgs[0, :, 3]).all()
    assert (imgs[0, 0] == imgs[0, 1]).all()  # row -1 repeats row 0
    assert msks[0].tolist()[2] == [0, 0, 0, 1, 1, 1]


def test_accumulator_averages_logits_and_keeps_uncovered_pixels():
    coarse = np.zeros((6, 6), bool)
    coarse[0, 0] = True
    boxes = np.array([[1, 1, 4, 4], [2, 2, 5, 5]])
    acc = PatchAccumulator.for_boxes(boxes, (6, 6))
    acc.add(boxes[0], np.full((3, 3), 3.0, np.float32))
    acc.add(boxes[1], np.full((3, 3), -5.0, np.float32))
    out = acc.apply(coarse)
    assert out[0, 0]  # uncovered: coarse value
    assert out[1, 1] and out[3, 1]  # only the +3 patch
    assert not out[2, 2] and not out[3, 3]  # mean (3 - 5) / 2 < 0
    assert not out[4, 4]
    assert acc.logit_sum.shape == (4, 4)  # local to the boxes, not the image


def test_crop_masks_matches_the_mask_part_of_crop_patches(rng):
    from bprefine.patches import crop_masks

    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    mask = random_blobs(rng, 30, 40, 1)[0]
    boxes = np.array([[0, 0, 16, 16], [30, 20, 46, 36], [-4, -4, 12, 12]])
    for padding in (0, 3):
        imgs, msks = crop_patches(image, mask, boxes, padding=padding)
        assert np.array_equal(crop_masks(mask, boxes, padding=padding), msks)
        assert imgs.shape == (3, 16 + 2 * padding, 16 + 2 * padding, 3)
    with pytest.raises(ValueError, match="one size"):
        crop_masks(mask, np.array([[0, 0, 4, 4], [0, 0, 5, 5]]))
