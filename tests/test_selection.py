"""Cheap box selection: the edge-alignment score and the Refiner's edge_skip."""

from __future__ import annotations

import numpy as np
import pytest

from bpr_helpers import ConstantNet, model_with
from bprefine import Refiner
from bprefine.selection import edge_alignment, gradient_magnitude, skip_aligned


def _square_scene(offset: int) -> tuple[np.ndarray, np.ndarray]:
    """A bright square on black (edges at 40 and 120) and a mask whose edges lie ``offset`` px outside it."""
    image = np.zeros((160, 160, 3), np.uint8)
    image[40:120, 40:120] = 200
    mask = np.zeros((160, 160), bool)
    mask[40 - offset:120 + offset, 40 - offset:120 + offset] = True
    return image, mask


def test_alignment_is_high_on_the_edge_and_low_beside_it():
    boxes = np.array([[20, 60, 60, 100], [100, 60, 140, 100]])  # across the left and right sides
    on = edge_alignment(gradient_magnitude(_square_scene(0)[0]), _square_scene(0)[1], boxes)
    off = edge_alignment(gradient_magnitude(_square_scene(3)[0]), _square_scene(3)[1], boxes)
    assert on.min() > 0.5 and off.max() < 0.2


def test_boxes_without_boundary_score_zero_and_are_kept():
    image, mask = _square_scene(0)
    boxes = np.array([[60, 60, 100, 100], [0, 0, 20, 20]])  # inside the square, in the background
    assert np.array_equal(edge_alignment(gradient_magnitude(image), mask, boxes), [0.0, 0.0])
    assert len(skip_aligned(gradient_magnitude(image), mask, boxes, 0.5)) == 2
    assert edge_alignment(gradient_magnitude(image), mask, np.zeros((0, 4), np.int64)).shape == (0,)


@pytest.mark.parametrize("offset, changed", [(0, False), (3, True)])
def test_edge_skip_leaves_aligned_boundaries_to_the_coarse_mask(offset, changed):
    image, mask = _square_scene(offset)
    net = model_with(ConstantNet(10.0))  # would turn every refined box to foreground
    skipping = Refiner(net, patch_size=32, edge_skip=0.5).refine(image, mask)
    assert np.array_equal(skipping, mask) is not changed
    assert not np.array_equal(Refiner(net, patch_size=32).refine(image, mask), mask)


def test_edge_skip_is_checked():
    with pytest.raises(ValueError, match="edge_skip"):
        Refiner(model_with(ConstantNet(1.0)), edge_skip=0.0)
