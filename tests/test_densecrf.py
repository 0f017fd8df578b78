"""DenseCRF, the benchmark's peer (optional: bprefine[crf])."""

from __future__ import annotations

import numpy as np
import pytest

from bprefine import densecrf

pytestmark = pytest.mark.skipif(not densecrf.available(), reason=densecrf.MISSING)


def test_densecrf_moves_a_shifted_boundary_onto_the_colour_edge():
    image = np.zeros((64, 96, 3), np.uint8)
    image[:, 48:] = 255  # a vertical edge at x = 48
    coarse = np.zeros((64, 96), np.int64)
    coarse[:, 44:] = 1  # the coarse boundary 4 px off the edge
    out = densecrf.densecrf(image, coarse, 2)
    assert out.shape == coarse.shape and out.dtype == np.int64
    truth = np.zeros_like(coarse)
    truth[:, 48:] = 1
    assert np.count_nonzero(out != truth) < np.count_nonzero(coarse != truth)


def test_densecrf_keeps_labels_within_range_for_many_classes():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(11), 10)[None, :].repeat(20, 0)  # 20 x 110, 11 vertical stripes
    image = rng.integers(0, 256, (*labels.shape, 3), dtype=np.uint8)
    out = densecrf.densecrf(image, labels, 11)
    assert out.min() >= 0 and out.max() < 11
