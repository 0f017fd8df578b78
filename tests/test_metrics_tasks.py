"""Instance, semantic and panoptic metrics against answers worked out by hand and against pycocotools."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from bprefine.data.coco import encode_mask
from bprefine.metrics.instances import evaluate_instances
from bprefine.data.panoptic import id_to_rgb, rgb_to_id
from bprefine.metrics.panoptic import PanopticAccumulator
from bprefine.metrics.semantic import SemanticAccumulator
from bpr_helpers import SHARED_DATA, needs_shared_data


def _square(h, w, y0, x0, y1, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def _gt_file(tmp_path, masks, hw=(40, 40)):
    anns = [{"id": i + 1, "image_id": 1, "category_id": 1, "segmentation": encode_mask(m), "area": float(m.sum()),
             "bbox": [0, 0, 1, 1], "iscrowd": 0} for i, m in enumerate(masks)]
    data = {"images": [{"id": 1, "file_name": "a.png", "height": hw[0], "width": hw[1]}],
            "categories": [{"id": 1, "name": "x"}], "annotations": anns}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_instance_metrics_by_hand(tmp_path):
    # 40x40 image: band width d = round(0.02 * 56.6) = 1. Ground truth: a 20x20 square.
    # Detection: 20 x 21, one column wider. Mask IoU = 400 / 420 = 0.952.
    # Bands: gt ring 76 px, detection ring 78 px, shared 58 px -> boundary IoU 58 / 96 = 0.604.
    # min = 0.604 passes IoU thresholds 0.50, 0.55, 0.60 only -> APb = 0.3; mask AP = 1.0 (0.952 >= 0.95).
    # Every contour pixel lies within 1 px of the other contour -> AF = 1.0.
    gt = _gt_file(tmp_path, [_square(40, 40, 10, 10, 30, 30)])
    det = [{"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": encode_mask(_square(40, 40, 10, 10, 30, 31))}]
    out = evaluate_instances(gt, det)
    assert out["AP"] == pytest.approx(1.0) and out["AP90"] == pytest.approx(1.0)
    assert out["APb"] == pytest.approx(0.3)
    assert out["AF"] == pytest.approx(1.0)
    assert out["APs"] == pytest.approx(1.0) and out["APm"] == -1.0  # area 400 < 32^2 is "small"


def test_ground_truth_as_prediction_scores_one(tmp_path):
    masks = [_square(60, 80, 5, 5, 30, 40), _square(60, 80, 20, 45, 55, 75)]
    gt = _gt_file(tmp_path, masks, hw=(60, 80))
    det = [{"image_id": 1, "category_id": 1, "score": 1.0, "segmentation": encode_mask(m)} for m in masks]
    out = evaluate_instances(gt, det)
    assert out["AP"] == out["APb"] == out["AF"] == pytest.approx(1.0)


@needs_shared_data("coco128")
def test_mask_ap_equals_pycocotools_on_coco128():
    import cv2

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(SHARED_DATA / "coco128" / "instances_coco128_seg.json"))
    rng = np.random.default_rng(0)
    results = []
    for ann in list(gt.anns.values())[:300]:
        m = gt.annToMask(ann)
        op = cv2.erode if rng.random() < 0.5 else cv2.dilate
        m = op(m, np.ones((3, 3), np.uint8), iterations=int(rng.integers(1, 4)))
        results.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                        "score": float(rng.random()), "segmentation": encode_mask(m.astype(bool))})
    ours = evaluate_instances(gt, results)
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(results), iouType="segm")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    for k, i in (("AP", 0), ("AP50", 1), ("AP75", 2), ("APs", 3), ("APm", 4), ("APl", 5)):
        assert ours[k] == pytest.approx(ev.stats[i], abs=1e-12)
    assert 0 < ours["APb"] < ours["AP"] and 0 < ours["AF"] < 1


def test_semantic_miou_and_ignore_by_hand():
    gt = np.tile([0, 0, 1, 1], (4, 1))
    pred = np.tile([0, 0, 0, 1], (4, 1))
    acc = SemanticAccumulator(2)
    acc.add(pred, gt)
    # class 0: 8 / 12, class 1: 4 / 8
    assert acc.result()["mIoU"] == pytest.approx((8 / 12 + 4 / 8) / 2)
    gt_ignore = gt.copy()
    gt_ignore[:, 3] = 255
    acc = SemanticAccumulator(2, ignore_index=255)
    acc.add(pred, gt_ignore)
    res = acc.result()
    # class 0: gt cols 0-1, pred cols 0-2 -> 8 / 12; class 1: gt col 2, pred (valid) none -> 0 / 4
    assert res["mIoU"] == pytest.approx((8 / 12 + 0) / 2)
    assert res["per_class"]["1"]["IoU"] == 0.0


def test_semantic_boundary_f_by_hand():
    gt = np.zeros((20, 20), np.int64)
    gt[:, 10:] = 1
    shifted = np.zeros((20, 20), np.int64)
    shifted[:, 11:] = 1
    acc = SemanticAccumulator(2, tolerance=1)
    acc.add(shifted, gt)
    assert acc.result()["BF"] == pytest.approx(1.0)  # every contour moved by exactly 1 px
    acc = SemanticAccumulator(2, tolerance=1)
    far = np.zeros((20, 20), np.int64)
    far[:, 14:] = 1
    acc.add(far, gt)
    # 1-px inner contours (image frame included): class 0's contour is the frame ring of its
    # region; the moved column (x=9 -> x=13) and (x=10 -> x=14) fall outside 1 px, the frame rows match.
    assert 0.0 < acc.result()["BF"] < 1.0


def _panoptic_case():
    gt = np.zeros((10, 10), np.int64)
    gt[0:4] = 1  # thing, category 1
    gt[4] = 3  # crowd, category 1
    gt[5:9] = 2  # stuff, category 2; row 9 stays void (0)
    gt_segs = [{"id": 1, "category_id": 1, "iscrowd": 0}, {"id": 3, "category_id": 1, "iscrowd": 1},
               {"id": 2, "category_id": 2, "iscrowd": 0}]
    pred = np.zeros((10, 10), np.int64)
    pred[0:3] = 11  # category 1: IoU 30 / 40 = 0.75 with segment 1
    pred[3:5] = 12  # category 1: half on segment 1, half on the crowd: 10/20 = 0.5, not > 0.5 -> FP
    pred[5:10] = 13  # category 2: covers segment 2 and the void row; void leaves the union -> IoU 1.0
    pred_segs = [{"id": 11, "category_id": 1}, {"id": 12, "category_id": 1}, {"id": 13, "category_id": 2}]
    cats = {1: {"id": 1, "isthing": 1}, 2: {"id": 2, "isthing": 0}}
    return gt, gt_segs, pred, pred_segs, cats


def test_panoptic_quality_by_hand():
    gt, gt_segs, pred, pred_segs, cats = _panoptic_case()
    acc = PanopticAccumulator(cats)
    acc.add(gt, gt_segs, pred, pred_segs)
    out = acc.result()
    # category 1: TP 1 (IoU 0.75), FP 1, FN 0 -> PQ 0.75 / 1.5 = 0.5, SQ 0.75, RQ 2/3
    # category 2: TP 1 (IoU 1.0) -> PQ = SQ = RQ = 1
    assert out["PQ"] == pytest.approx(0.75)
    assert out["SQ"] == pytest.approx(0.875)
    assert out["RQ"] == pytest.approx((2 / 3 + 1) / 2)
    assert out["PQ_th"] == pytest.approx(0.5) and out["PQ_st"] == pytest.approx(1.0)
    # Boundary IoU (band 1 px, frame counts as contour): segment 1's band is 24 px, prediction 11's
    # is 22 px, 14 shared -> 14 / 32 = 0.44 < 0.5: no match, so category 1 has TP 0, FP 2, FN 1 -> 0.
    # Prediction 13 without the void row equals segment 2: boundary IoU 1 -> PQb = (0 + 1) / 2.
    assert out["PQb"] == pytest.approx(0.5)


def test_panoptic_crowd_majority_is_not_a_false_positive():
    gt, gt_segs, pred, pred_segs, cats = _panoptic_case()
    pred[3] = 13  # prediction 12 now lies only on the crowd row (10 px, all crowd) -> ignored
    pred[4] = 12
    pred_segs = [s for s in pred_segs]
    acc = PanopticAccumulator(cats)
    acc.add(gt, gt_segs, pred, pred_segs)
    st = acc.stats[1]
    assert (st.tp, st.fp, st.fn) == (1, 0, 0)


def test_rgb_id_round_trip():
    ids = np.array([[0, 1, 255], [256, 65536, 4_000_000]])
    assert np.array_equal(rgb_to_id(id_to_rgb(ids)), ids)


@needs_shared_data("samples/coco_panoptic_panopticapi")
def test_panoptic_on_shared_coco_samples():
    root = SHARED_DATA / "samples" / "coco_panoptic_panopticapi"
    data = json.loads((root / "panoptic_examples.json").read_text())
    cats = {c["id"]: c for c in json.loads((root / "panoptic_coco_categories.json").read_text())}
    same, shifted = PanopticAccumulator(cats), PanopticAccumulator(cats)
    for ann in data["annotations"]:
        ids = rgb_to_id(np.asarray(Image.open(root / "panoptic_examples" / ann["file_name"]).convert("RGB")))
        same.add(ids, ann["segments_info"], ids, ann["segments_info"])
        shifted.add(ids, ann["segments_info"], np.roll(ids, 6, axis=1), ann["segments_info"])
    assert same.result() == {"PQ": 1.0, "SQ": 1.0, "RQ": 1.0, "PQ_th": 1.0, "PQ_st": 1.0, "PQb": 1.0}
    out = shifted.result()
    # pinned (a 6-pixel shift of every segment); the algorithm itself is checked by hand above
    assert out["PQ"] == pytest.approx(PINNED_SHIFT6["PQ"], abs=1e-6)
    assert out["PQb"] == pytest.approx(PINNED_SHIFT6["PQb"], abs=1e-6)
    assert out["PQb"] < out["PQ"] < 1.0


PINNED_SHIFT6 = {"PQ": 0.5825259235575698, "PQb": 0.5234185426853892}


@needs_shared_data("samples/cityscapes_mmseg_pseudo")
def test_cityscapes_ap_of_ground_truth_is_one(tmp_path):
    pytest.importorskip("cityscapesscripts")
    from bprefine.metrics.cityscapes import (
        evaluate_cityscapes_instances,
        write_cityscapes_predictions,
    )

    gt_dir = SHARED_DATA / "samples" / "cityscapes_mmseg_pseudo" / "gtFine"
    ids = np.asarray(Image.open(next(gt_dir.rglob("*_gtFine_instanceIds.png"))))
    instances = [v for v in np.unique(ids) if v >= 1000]
    masks = np.stack([ids == v for v in instances])
    write_cityscapes_predictions(tmp_path, "frankfurt_000000_000294", masks, [v // 1000 for v in instances],
                                 [1.0] * len(instances))
    assert evaluate_cityscapes_instances(gt_dir, tmp_path) == {"AP": 1.0, "AP50": 1.0}
    # dropping half the instances halves recall
    (tmp_path / "frankfurt_000000_000294_pred.txt").unlink()
    keep = len(instances) // 2
    write_cityscapes_predictions(tmp_path, "frankfurt_000000_000294", masks[:keep], [v // 1000 for v in instances[:keep]],
                                 [1.0] * keep)
    assert evaluate_cityscapes_instances(gt_dir, tmp_path)["AP"] < 1.0


def test_cached_crops_do_not_hold_the_full_mask():
    from bprefine.metrics.instances import _CroppedMask

    crop = _CroppedMask(encode_mask(_square(1000, 1000, 10, 10, 20, 20)), margin=3)
    assert crop.mask.shape == (16, 16)
    assert crop.mask.base is None  # owns its 256 bytes, not a view into a 1000 x 1000 decode


def test_out_of_range_predictions_count_as_wrong():
    from bprefine.metrics.semantic import SemanticAccumulator

    gt = np.zeros((10, 10), np.int64)
    gt[:, 5:] = 1
    pred = gt.copy()
    pred[:5, :5] = 20  # 25 pixels of class 0 predicted as a label that does not exist
    acc = SemanticAccumulator(2)
    acc.add(pred, gt)
    iou = acc.result()["per_class"]
    assert iou["0"]["IoU"] == pytest.approx(25 / 50) and iou["1"]["IoU"] == 1.0
