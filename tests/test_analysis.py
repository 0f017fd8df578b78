from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bprefine.analysis import best_match, oracle_mask, scatter_plot
from bprefine.cli import main


def _square(n, y0, x0, y1, x1):
    m = np.zeros((n, n), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_oracle_fixes_errors_within_the_band_only():
    gt = _square(40, 10, 10, 30, 30)
    pred = _square(40, 10, 10, 30, 33)  # 3 columns too wide on the right
    assert np.array_equal(oracle_mask(pred, gt, math.inf), gt)
    # Predicted contour columns: x = 9 / 10 (left), 32 / 33 (right). Within 1 px of x=32..33 lie
    # x = 31..34: columns 31 and 32 (wrongly on) are fixed, column 30 (wrongly on) stays.
    fixed1 = oracle_mask(pred, gt, 1)
    assert not fixed1[15, 31] and not fixed1[15, 32] and fixed1[15, 30]
    fixed3 = oracle_mask(pred, gt, 3)
    assert np.array_equal(fixed3[12:28], gt[12:28])
    assert not oracle_mask(np.zeros((5, 5), bool), np.ones((5, 5), bool), 2).any()  # empty stays empty


def test_best_match():
    gts = np.stack([_square(20, 0, 0, 5, 5), _square(20, 10, 10, 20, 20)])
    assert best_match(_square(20, 9, 9, 19, 19), gts) == 1
    assert best_match(_square(20, 0, 15, 3, 18), gts) is None


def test_scatter_plot_writes_a_png(tmp_path):
    scatter_plot(np.array([0.5, 0.8, 0.9]), np.array([0.7, 0.8, 0.85]), tmp_path / "s.png")
    im = np.asarray(Image.open(tmp_path / "s.png"))
    assert im.shape == (576, 576, 3)
    assert (im[..., 1] == 150).any() and (im[..., 0] == 220).any()  # one green (better), one red (worse)


def test_oracle_command(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir(), pred.mkdir()
    Image.fromarray(_square(40, 10, 10, 30, 30).astype(np.uint8) * 255).save(gt / "a.png")
    Image.fromarray(_square(40, 10, 10, 30, 33).astype(np.uint8) * 255).save(pred / "a.png")
    res = CliRunner().invoke(main, ["analyze", "oracle", "--gt", str(gt), "--pred", str(pred), "--json"])
    assert res.exit_code == 0, res.output
    table = json.loads(res.output)
    assert table["d=inf"]["mIoU"] == 1.0
    assert table["pred"]["mIoU"] < table["d=1"]["mIoU"] < table["d=3"]["mIoU"] == 1.0


def test_panels_and_scatter_commands(tmp_path):
    dirs = {k: tmp_path / k for k in ("img", "gt", "before", "after")}
    for d in dirs.values():
        d.mkdir()
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(dirs["img"] / "a.jpg")
    for k, m in (("gt", _square(40, 10, 10, 30, 30)), ("before", _square(40, 8, 10, 30, 34)),
                 ("after", _square(40, 10, 10, 30, 31))):
        Image.fromarray(m.astype(np.uint8) * 255).save(dirs[k] / "a.png")
    res = CliRunner().invoke(main, ["analyze", "panels", "--images", str(dirs["img"]), "--gt", str(dirs["gt"]),
                                    "--before", str(dirs["before"]), "--after", str(dirs["after"]),
                                    "--out", str(tmp_path / "panels")])
    assert res.exit_code == 0, res.output
    panel = np.asarray(Image.open(tmp_path / "panels" / "a_panel.png"))
    assert panel.shape == (40, 88, 3)  # two 40-px overlays and an 8-px gap
    res = CliRunner().invoke(main, ["analyze", "scatter", "--gt", str(dirs["gt"]), "--before", str(dirs["before"]),
                                    "--after", str(dirs["after"]), "--out", str(tmp_path / "s.png")])
    assert res.exit_code == 0 and "1 of 1 masks improved" in res.output


def test_oracle_instances_command(tmp_path):
    from bprefine.data.coco import encode_mask

    gt_mask = _square(40, 10, 10, 30, 30)
    data = {"images": [{"id": 1, "file_name": "a.png", "height": 40, "width": 40}],
            "categories": [{"id": 1, "name": "x"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": encode_mask(gt_mask),
                             "area": 400.0, "bbox": [10, 10, 20, 20], "iscrowd": 0}]}
    (tmp_path / "gt.json").write_text(json.dumps(data))
    pred = [{"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": encode_mask(_square(40, 10, 10, 30, 33))}]
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    res = CliRunner().invoke(main, ["analyze", "oracle-instances", "--gt", str(tmp_path / "gt.json"),
                                    "--pred", str(tmp_path / "pred.json"), "--json"])
    assert res.exit_code == 0, res.output
    table = json.loads(res.output)
    # mask IoU 400/460 = 0.87 -> AP 0.8 (thresholds 0.50..0.85); repaired within 3 px -> exact -> AP 1
    assert table["pred"]["AP"] == pytest.approx(0.8)
    assert table["d=3"]["AP"] == pytest.approx(1.0) and table["d=inf"]["AF"] == pytest.approx(1.0)
