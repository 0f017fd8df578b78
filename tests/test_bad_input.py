"""Bad input, command by command: exit 1, exactly one 'Error:' line naming the file, no traceback,
nothing left behind. Cases follow what users actually hand us (corrupt JSON fields, hostile names)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bprefine.cli import main
from bprefine.data.coco import encode_mask

H, W = 30, 40


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _clean_error(res, *needles: str) -> None:
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "Traceback" not in res.output
    for needle in needles:
        assert needle in lines[0], res.output


@pytest.fixture
def coco(tmp_path):
    """images/, gt.json (one image, one square nucleus) and a valid results entry."""
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)).save(images / "a.png")
    m = np.zeros((H, W), bool)
    m[5:20, 8:30] = True
    gt = {"images": [{"id": 1, "file_name": "a.png", "height": H, "width": W}],
          "categories": [{"id": 1, "name": "thing"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": encode_mask(m),
                           "area": float(m.sum()), "bbox": [8, 5, 22, 15], "iscrowd": 0}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    entry = {"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": encode_mask(m)}
    return tmp_path, gt, entry


BAD_ENTRIES = {
    "huge polygon": {"segmentation": [[1e30, 0, 0, 1e30, 5, 5]]},
    "1e9 polygon": {"segmentation": [[1e9, 0, 0, 1e9, 5, 5]]},
    "nan polygon": {"segmentation": [[float("nan"), 0, 0, 4, 5, 5]]},
    "truncated RLE": {"segmentation": {"size": [H, W], "counts": "SZ=f5c7000"}},
    "float RLE counts": {"segmentation": {"size": [H, W], "counts": [0.5, 1199.5]}},
    "wrong RLE size": {"segmentation": {"size": [H + 1, W], "counts": [H * W + W]}},
    "integer segmentation": {"segmentation": 5},
    "string image id": {"image_id": "1"},
    "float image id": {"image_id": 1.5},
    "null image id": {"image_id": None},
    "unknown image id": {"image_id": 99},
    "string category": {"category_id": "x"},
    "infinite score": {"score": float("inf")},
}


@pytest.mark.parametrize("case", sorted(BAD_ENTRIES))
@pytest.mark.parametrize("command", ["refine", "eval", "oracle", "simulate"])
def test_instance_commands_reject_bad_entries(coco, case, command):
    root, gt, entry = coco
    bad = dict(entry) | BAD_ENTRIES[case]
    pred = root / "pred.json"
    pred.write_text(json.dumps([entry, bad]))
    out = root / "out.json"
    if command == "refine":
        res = _run("refine", "instances", "--images", root / "images", "--pred", pred, "--image-info",
                   root / "gt.json", "--out", out, "--model", "default")
    elif command == "eval":
        res = _run("eval", "instances", "--gt", root / "gt.json", "--pred", pred)
    elif command == "oracle":
        res = _run("analyze", "oracle-instances", "--gt", root / "gt.json", "--pred", pred)
    else:  # the same damage in a ground-truth file
        if case in ("string category", "infinite score"):
            pytest.skip("results-only fields")
        gt["annotations"][0] |= {k: v for k, v in BAD_ENTRIES[case].items()}
        (root / "gt.json").write_text(json.dumps(gt))
        res = _run("simulate", "instances", "--gt", root / "gt.json", "--out", out)
    if command == "refine" and case in ("string category", "infinite score"):
        assert res.exit_code == 0, res.output  # refining does not read these fields: they pass through
        return
    _clean_error(res, "json")
    assert not out.exists()


def test_eval_accepts_an_empty_prediction_list(coco):
    root, _, _ = coco
    (root / "pred.json").write_text("[]")
    res = _run("eval", "instances", "--gt", root / "gt.json", "--pred", root / "pred.json", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["AP"] == 0.0


def test_eval_accepts_polygons_without_bbox(coco):
    root, _, entry = coco
    poly = dict(entry, segmentation=[[8, 5, 30, 5, 30, 20, 8, 20]])
    (root / "pred.json").write_text(json.dumps([poly]))
    res = _run("eval", "instances", "--gt", root / "gt.json", "--pred", root / "pred.json", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["AP50"] == pytest.approx(1.0)


@pytest.mark.parametrize("damage, needle", [
    (lambda gt: gt.pop("categories"), "categories"),
    (lambda gt: gt["images"][0].update(id="1"), "integer id"),
    (lambda gt: gt["images"][0].update(file_name="../../etc/passwd"), "leaves its folder"),
    (lambda gt: gt["annotations"][0].update(id=None), "unique integer 'id'"),
    (lambda gt: gt["annotations"][0].update(category_id=7), "category_id 7"),
    (lambda gt: gt.update(annotations={"a": 1}), "annotations"),
])
def test_eval_rejects_malformed_ground_truth(coco, damage, needle):
    root, gt, entry = coco
    damage(gt)
    (root / "gt.json").write_text(json.dumps(gt))
    (root / "pred.json").write_text(json.dumps([entry]))
    _clean_error(_run("eval", "instances", "--gt", root / "gt.json", "--pred", root / "pred.json"), "gt.json", needle)


def _panoptic(root: Path, segments, name="a.png"):
    pan = root / "pan"
    pan.mkdir(exist_ok=True)
    ids = np.zeros((H, W, 3), np.uint8)
    ids[5:20, 8:30, 0] = 3
    Image.fromarray(ids).save(pan / "a.png")
    ann = {"image_id": 1, "file_name": name}
    if segments is not ...:
        ann["segments_info"] = segments
    data = {"annotations": [ann], "images": [{"id": 1, "file_name": "a.png"}],
            "categories": [{"id": 1, "isthing": 1}]}
    (root / "p.json").write_text(json.dumps(data))
    return pan


@pytest.mark.parametrize("segments, needle", [
    ({"id": 3}, "segments_info must be a list"),
    ([3], "segments_info[0]"),
    ([{"category_id": 1}], "segments_info[0]"),
    ([{"id": "3", "category_id": 1}], "segments_info[0]"),
    (..., "needs file_name and segments_info"),
    ([], "not in segments_info"),
])
@pytest.mark.parametrize("command", ["refine", "eval"])
def test_panoptic_commands_share_one_rule(coco, segments, needle, command):
    root, _, _ = coco
    pan = _panoptic(root, segments)
    if command == "refine":
        res = _run("refine", "panoptic", "--images", root / "images", "--pred-json", root / "p.json",
                   "--pred-dir", pan, "--out-json", root / "o.json", "--out-dir", root / "o")
    else:
        good = _panoptic(root / "g" if (root / "g").mkdir() is None else root, [{"id": 3, "category_id": 1}])
        res = _run("eval", "panoptic", "--gt-json", root / "g" / "p.json", "--gt-dir", good,
                   "--pred-json", root / "p.json", "--pred-dir", pan)
    _clean_error(res, needle)
    assert not (root / "o").exists() and not (root / "o.json").exists()
