from __future__ import annotations

import numpy as np
import pytest

from bprefine.metrics import (
    band_width,
    boundary_band,
    boundary_f,
    boundary_iou,
    mask_iou,
)


def _square(n: int, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    m = np.zeros((n, n), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_mask_iou_by_hand():
    a, b = _square(10, 0, 0, 4, 4), _square(10, 0, 2, 4, 6)  # 16 and 16 pixels, 8 shared
    assert mask_iou(a, b) == pytest.approx(8 / 24)
    assert mask_iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0


def test_band_width_is_two_percent_of_the_diagonal():
    assert band_width((300, 400)) == 10  # diagonal 500
    assert band_width((10, 10)) == 1


def test_boundary_band_of_a_square():
    band = boundary_band(_square(20, 5, 5, 15, 15), 2)  # 10x10 square minus its 6x6 core
    assert band.sum() == 100 - 36
    assert not band[7:13, 7:13].any()


def test_boundary_iou_by_hand():
    gt = _square(20, 5, 5, 15, 15)
    pred = _square(20, 5, 5, 15, 16)  # one column wider
    # width 1: gt band = 36 pixels (10x10 ring); pred band = 10x11 ring = 38 pixels.
    # shared: top and bottom rows x = 5..14 (20) + left column rows 6..13 (8) = 28.
    assert boundary_iou(pred, gt, width=1) == pytest.approx(28 / (36 + 38 - 28))
    assert boundary_iou(gt, gt, width=3) == 1.0


def test_boundary_f_tolerance():
    gt = _square(30, 5, 5, 25, 25)
    shifted = _square(30, 5, 6, 25, 26)  # shifted right by one pixel
    assert boundary_f(gt, gt, tolerance=1) == 1.0
    assert boundary_f(shifted, gt, tolerance=1) == 1.0  # every contour pixel within 1 px
    far = _square(30, 5, 8, 25, 28)  # shifted by 3 px
    f1, f3 = boundary_f(far, gt, tolerance=1), boundary_f(far, gt, tolerance=3)
    # contours are 76-pixel rings. Within 1 px of gt: in the top and bottom rows, 17 shared
    # columns plus the next column (distance 1) = 18 each; in the left column of `far` (x = 8),
    # rows 6 and 23 lie 1 px from gt's top and bottom rows. 38 / 76 on both sides.
    assert f1 == pytest.approx(38 / 76)
    assert f3 == 1.0


def test_boundary_f_empty_cases():
    empty, gt = np.zeros((10, 10), bool), _square(10, 2, 2, 6, 6)
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(empty, gt) == 0.0 and boundary_f(gt, empty) == 0.0


def test_evaluate_mask_dirs(tmp_path):
    from PIL import Image

    from bprefine.metrics.evaluate import evaluate_mask_dirs

    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir(), pred_dir.mkdir()
    gt = _square(20, 5, 5, 15, 15)
    Image.fromarray(gt.astype(np.uint8) * 255).save(gt_dir / "a.png")
    Image.fromarray(gt.astype(np.uint8)).save(pred_dir / "a.png")  # 0/1 file, identical mask
    Image.fromarray(gt.astype(np.uint8) * 255).save(gt_dir / "b.png")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(pred_dir / "b.png")  # missed entirely
    scores = evaluate_mask_dirs(gt_dir, pred_dir)
    assert scores == {"mIoU": 0.5, "mBIoU": 0.5, "BF1": 0.5, "BF3": 0.5, "n": 2}
    (pred_dir / "b.png").unlink()
    with pytest.raises(FileNotFoundError, match="b.png"):
        evaluate_mask_dirs(gt_dir, pred_dir)
