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
        (root / "g").mkdir()
        good = _panoptic(root / "g", [{"id": 3, "category_id": 1}])
        res = _run("eval", "panoptic", "--gt-json", root / "g" / "p.json", "--gt-dir", good,
                   "--pred-json", root / "p.json", "--pred-dir", pan)
    _clean_error(res, needle)
    assert not (root / "o").exists() and not (root / "o.json").exists()


def _mask_folder(root: Path, names: dict[str, str]) -> tuple[Path, Path]:
    """images/ and masks/ with one file per (image name, mask name) pair."""
    images, masks = root / "im", root / "mk"
    images.mkdir(exist_ok=True), masks.mkdir(exist_ok=True)
    m = np.zeros((H, W), np.uint8)
    m[5:20, 8:30] = 255
    for image_name, mask_name in names.items():
        if image_name:
            Image.fromarray(np.full((H, W, 3), 128, np.uint8)).save(images / image_name)
        if mask_name:
            Image.fromarray(m).save(masks / mask_name, format="PNG")
    return images, masks


def test_duplicate_image_stems_are_an_error(tmp_path):
    images, masks = _mask_folder(tmp_path, {"a.png": "a.png", "a.jpg": ""})
    _clean_error(_run("refine", "masks", "--images", images, "--masks", masks, "--out", tmp_path / "o"),
                 "a.jpg", "a.png", "stem")
    assert not (tmp_path / "o").exists()


def test_mask_extensions_match_case_insensitively(tmp_path):
    images, masks = _mask_folder(tmp_path, {"a.PNG": "a.PNG"})
    res = _run("refine", "masks", "--images", images, "--masks", masks, "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["a.PNG"]


def test_a_mask_without_an_image_is_an_error(tmp_path):
    images, masks = _mask_folder(tmp_path, {"a.png": "a.png", "": "b.png"})
    _clean_error(_run("refine", "masks", "--images", images, "--masks", masks, "--out", tmp_path / "o"), "b.png")


def test_out_equal_to_the_input_folder_is_refused(tmp_path):
    images, masks = _mask_folder(tmp_path, {"a.png": "a.png"})
    before = (masks / "a.png").read_bytes()
    _clean_error(_run("refine", "masks", "--images", images, "--masks", masks, "--out", masks), "input folder")
    assert (masks / "a.png").read_bytes() == before


def test_an_unwritable_out_is_found_before_any_work(tmp_path):
    images, masks = _mask_folder(tmp_path, {"a.png": "a.png"})
    (tmp_path / "file").write_text("x")
    _clean_error(_run("refine", "masks", "--images", images, "--masks", masks, "--out", tmp_path / "file" / "o"),
                 "not a folder")


def test_failed_runs_remove_the_parent_folders_they_created(tmp_path):
    images, masks = _mask_folder(tmp_path, {"a.png": "a.png", "b.png": "b.png"})
    Image.fromarray(np.zeros((H + 1, W), np.uint8)).save(masks / "b.png")  # wrong size: fails on the second
    _clean_error(_run("refine", "masks", "--images", images, "--masks", masks, "--out", tmp_path / "x" / "y" / "o"),
                 "b.png")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("values, expected", [((0, 1), "ok"), ((0, 255), "ok"), ((0, 100), "ok"),
                                              ((0, 1, 2), "error"), ((0, 100, 200), "ok")])
def test_one_mask_rule_for_files_and_arrays(tmp_path, values, expected):
    from bprefine.data.images import binarize_mask, read_mask

    arr = np.zeros((4, 6), np.uint8)
    for k, v in enumerate(values):
        arr[:, k] = v
    Image.fromarray(arr).save(tmp_path / "m.png")
    if expected == "error":
        with pytest.raises(ValueError, match="m.png.*label map"):
            read_mask(tmp_path / "m.png")
        with pytest.raises(ValueError, match="label map"):
            binarize_mask(arr)
        return
    fg = arr >= 128 if len(values) > 2 else arr == max(values)
    assert np.array_equal(read_mask(tmp_path / "m.png"), fg) and np.array_equal(binarize_mask(arr), fg)


def test_exif_orientation_is_applied(tmp_path):
    from bprefine.data.images import read_image

    pixels = np.zeros((10, 20, 3), np.uint8)
    pixels[:, :5] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    Image.fromarray(pixels).save(tmp_path / "p.jpg", exif=exif, quality=100)
    shown = read_image(tmp_path / "p.jpg")
    assert shown.shape == (20, 10, 3)
    assert shown[:5].mean() > 200 and shown[-5:].mean() < 50  # the bright left strip is now on top


def test_probability_errors_name_the_npy_file(tmp_path):
    images, labels = _mask_folder(tmp_path, {"a.png": "a.png"})
    Image.fromarray(np.zeros((H, W), np.uint8)).save(labels / "a.png")
    probs = tmp_path / "probs"
    probs.mkdir()
    np.save(probs / "a.npy", np.zeros((3, H, W), np.float32))
    res = _run("refine", "semantic", "--images", images, "--labels", labels, "--out", tmp_path / "o",
               "--num-classes", 2, "--probs", probs)
    _clean_error(res, "a.npy", "num_classes x H x W")


def test_scatter_writes_the_format_its_name_says(tmp_path):
    _, masks = _mask_folder(tmp_path, {"a.png": "a.png"})
    res = _run("analyze", "scatter", "--gt", masks, "--before", masks, "--after", masks, "--out", tmp_path / "s.jpg")
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "s.jpg").format == "JPEG"
    _clean_error(_run("analyze", "scatter", "--gt", masks, "--before", masks, "--after", masks,
                      "--out", tmp_path / "s.xyz"), "s.xyz")


def test_scatter_size_mismatch_names_the_file(tmp_path):
    _, masks = _mask_folder(tmp_path, {"a.png": "a.png"})
    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(np.zeros((H + 2, W), np.uint8)).save(other / "a.png")
    _clean_error(_run("analyze", "scatter", "--gt", masks, "--before", other, "--after", masks,
                      "--out", tmp_path / "s.png"), str(other / "a.png"))


@pytest.mark.parametrize("args, needle", [
    (["--resume"], "no checkpoint to resume"),
    (["iterations=abc"], "iterations must be int"),
    (["iterations=-5"], "iterations must be at least 1"),
    (["sources=[{kind: bogus, images: a}]"], "source kind must be one of"),
])
def test_train_rejects_bad_settings_before_any_work(tmp_path, args, needle):
    res = _run("train", "--out", tmp_path / "run", *args)
    _clean_error(res, needle)
    assert not (tmp_path / "run").exists()


def test_simulate_instances_on_a_panoptic_json(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"annotations": [{"file_name": "a.png", "segments_info": []}],
                                                 "images": [{"id": 1, "file_name": "a.png", "height": 4, "width": 4}],
                                                 "categories": [{"id": 1}]}))
    _clean_error(_run("simulate", "instances", "--gt", tmp_path / "p.json", "--out", tmp_path / "o.json"), "p.json")


def test_sigterm_leaves_nothing_behind(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    images, masks = _mask_folder(tmp_path, {f"{k:03d}.png": f"{k:03d}.png" for k in range(400)})
    out = tmp_path / "deep" / "o"
    proc = subprocess.Popen([sys.executable, "-m", "bprefine.cli", "refine", "masks", "--images", str(images),
                             "--masks", str(masks), "--out", str(out), "--engine", "torch"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob(".bprefine-staging-*/*.png")):
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert not (tmp_path / "deep").exists()


def test_os_errors_name_the_file(tmp_path):
    (tmp_path / "run").write_text("a file where the run folder should be")
    res = _run("train", "--out", tmp_path / "run", "sources=[{kind: masks, images: a, gt: b, simulate: low_res}]")
    _clean_error(res, str(tmp_path / "run"))
