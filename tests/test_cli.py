from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from bprefine import ModelConfig, RefinementModel, save_model
from bprefine.cli import main
from bprefine.data.coco import encode_mask
from bprefine.engine import FlipEngine


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    import torch

    torch.manual_seed(0)
    return save_model(RefinementModel.untrained(ModelConfig(input_size=64)), tmp_path_factory.mktemp("m") / "tiny")


def _write_image(path: Path, hw=(48, 64), mode="RGB") -> None:
    rng = np.random.default_rng(0)
    if mode == "I;16":
        Image.fromarray(rng.integers(0, 65535, hw, dtype=np.uint16)).save(path)
    else:
        Image.fromarray(rng.integers(0, 255, (*hw, 3), dtype=np.uint8)).convert(mode).save(path)


def _coco_fixture(root: Path, *, polygon: bool = False) -> tuple[Path, Path, Path]:
    images = root / "images"
    images.mkdir()
    _write_image(images / "a.png")
    _write_image(images / "b.png", hw=(30, 20))
    info = {"images": [{"id": 1, "file_name": "a.png", "height": 48, "width": 64},
                       {"id": 7, "file_name": "b.png", "height": 30, "width": 20}],
            "categories": [{"id": 3, "name": "thing"}], "annotations": []}
    m1 = np.zeros((48, 64), bool)
    m1[10:30, 12:40] = True
    m2 = np.zeros((30, 20), bool)
    m2[5:20, 2:12] = True
    seg1 = [[12, 10, 40, 10, 40, 30, 12, 30]] if polygon else encode_mask(m1)
    results = [
        {"image_id": 1, "category_id": 3, "score": 0.9, "segmentation": seg1, "extra": "kept"},
        {"image_id": 7, "category_id": 3, "score": 0.8, "segmentation": encode_mask(m2)},
        {"image_id": 1, "category_id": 3, "score": 0.5, "segmentation": encode_mask(np.zeros((48, 64), bool))},
    ]
    (root / "info.json").write_text(json.dumps(info))
    (root / "pred.json").write_text(json.dumps(results))
    return images, root / "info.json", root / "pred.json"


def _run(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("polygon", [False, True])
def test_refine_instances_round_trip(tmp_path, model_path, polygon):
    images, info, pred = _coco_fixture(tmp_path, polygon=polygon)
    out = tmp_path / "out.json"
    res = _run("refine", "instances", "--images", images, "--pred", pred, "--image-info", info, "--out", out,
               "--model", model_path, "--patch-size", 16)
    assert res.exit_code == 0, res.output
    refined = json.loads(out.read_text())
    original = json.loads(pred.read_text())
    assert [r["image_id"] for r in refined] == [1, 7, 1] and refined[0]["extra"] == "kept"
    assert [r["score"] for r in refined] == [r["score"] for r in original]
    for r in refined:
        rle = {"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode()}
        assert r["area"] == float(mask_utils.area(rle))
        assert r["bbox"] == [float(v) for v in mask_utils.toBbox(rle)]
    assert refined[2]["area"] == 0.0  # the empty mask stays empty
    gt = COCO(str(info))
    loaded = gt.loadRes(str(out))
    assert len(loaded.anns) == 3


def test_refine_masks_round_trip(tmp_path, model_path):
    images, masks = tmp_path / "img", tmp_path / "msk"
    images.mkdir(), masks.mkdir()
    _write_image(images / "x.jpg", hw=(40, 50))
    _write_image(images / "y.png", hw=(70, 33), mode="L")  # grayscale image: converted
    _write_image(images / "z.png", hw=(20, 20), mode="I;16")  # 16-bit image: converted
    m = np.zeros((40, 50), np.uint8)
    m[5:30, 10:40] = 255
    Image.fromarray(m).save(masks / "x.png")
    Image.fromarray((np.arange(70 * 33).reshape(70, 33) % 2).astype(np.uint8)).save(masks / "y.png")  # 0/1
    Image.fromarray(np.ones((20, 20), bool)).convert("1").save(masks / "z.png")  # 1-bit
    out = tmp_path / "out"
    res = _run("refine", "masks", "--images", images, "--masks", masks, "--out", out, "--model", model_path)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["x.png", "y.png", "z.png"]
    for name, hw in (("x.png", (40, 50)), ("y.png", (70, 33)), ("z.png", (20, 20))):
        arr = np.asarray(Image.open(out / name))
        assert arr.shape == hw and set(np.unique(arr)) <= {0, 255}


def _assert_clean_error(res, *needles: str) -> None:
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    for needle in needles:
        assert needle in lines[0], res.output
    assert "Traceback" not in res.output


def test_instances_bad_inputs(tmp_path, model_path):
    images, info, pred = _coco_fixture(tmp_path)
    out = tmp_path / "out.json"

    def run(pred_path=pred, info_path=info, images_dir=images):
        return _run("refine", "instances", "--images", images_dir, "--pred", pred_path, "--image-info", info_path,
                    "--out", out, "--model", model_path)

    bad = tmp_path / "bad.json"
    bad.write_text("[{not json")
    _assert_clean_error(run(pred_path=bad), "bad.json", "malformed JSON")
    _assert_clean_error(run(info_path=bad), "bad.json")
    _assert_clean_error(run(pred_path=tmp_path / "missing.json"), "missing.json", "not found")

    results = json.loads(pred.read_text())
    bad.write_text(json.dumps(results + [{"image_id": 99, "segmentation": results[0]["segmentation"]}]))
    _assert_clean_error(run(pred_path=bad), "image_id 99")

    broken = dict(results[0], segmentation={"size": [48, 64], "counts": "garbage!!"})
    bad.write_text(json.dumps([broken]))
    _assert_clean_error(run(pred_path=bad), "entry 0", "RLE")

    wrong_size = dict(results[0], segmentation=encode_mask(np.zeros((10, 10), bool)))
    bad.write_text(json.dumps([wrong_size]))
    _assert_clean_error(run(pred_path=bad), "entry 0", "RLE size")

    (images / "b.png").unlink()
    _assert_clean_error(run(), "b.png", "not found")
    (images / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    _assert_clean_error(run(), "b.png", "cannot read image")
    _write_image(images / "b.png", hw=(31, 20))
    _assert_clean_error(run(), "b.png", "31x20")
    assert not out.exists()
    assert not list(tmp_path.glob(".out.json*"))  # no temporary leftovers


def test_masks_bad_inputs(tmp_path, model_path):
    images, masks = tmp_path / "img", tmp_path / "msk"
    images.mkdir(), masks.mkdir()
    _write_image(images / "a.png", hw=(40, 50))
    _write_image(images / "b.png", hw=(40, 50))
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(masks / "a.png")
    out = tmp_path / "out"

    def run():
        return _run("refine", "masks", "--images", images, "--masks", masks, "--out", out, "--model", model_path)

    _assert_clean_error(run(), "b.png", "no mask")
    Image.fromarray(np.zeros((41, 50), np.uint8)).save(masks / "b.png")
    _assert_clean_error(run(), "b.png", "41x50")
    (masks / "b.png").write_bytes(b"corrupt")
    _assert_clean_error(run(), "b.png", "cannot read image")
    assert not out.exists()  # nothing half-written, not even a.png
    _assert_clean_error(_run("refine", "masks", "--images", tmp_path / "nope", "--masks", masks, "--out", out,
                             "--model", model_path), "nope")


def test_missing_model_file(tmp_path):
    res = _run("refine", "masks", "--images", tmp_path, "--masks", tmp_path, "--out", tmp_path / "o",
               "--model", tmp_path / "none.safetensors")
    _assert_clean_error(res)


def test_help_everywhere():
    for args in ([], ["refine"], ["refine", "instances"], ["refine", "masks"], ["demo"], ["bench"]):
        res = _run(*args, "--help")
        assert res.exit_code == 0 and "Usage:" in res.output


def test_eval_masks_json_and_table(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir(), pred.mkdir()
    m = np.zeros((30, 30), np.uint8)
    m[5:25, 5:25] = 255
    Image.fromarray(m).save(gt / "a.png")
    Image.fromarray(m).save(pred / "a.png")
    res = _run("eval", "masks", "--gt", gt, "--pred", pred, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"mIoU": 1.0, "mBIoU": 1.0, "BF1": 1.0, "BF3": 1.0, "n": 1}
    res = _run("eval", "masks", "--gt", gt, "--pred", pred, "--baseline", pred)
    assert res.exit_code == 0 and "+0.0000" in res.output
    _assert_clean_error(_run("eval", "masks", "--gt", gt, "--pred", tmp_path / "none"), "none")


def test_refine_semantic_round_trip_and_errors(tmp_path, model_path):
    images, labels = tmp_path / "img", tmp_path / "lab"
    images.mkdir(), labels.mkdir()
    _write_image(images / "a.png", hw=(40, 50))
    lab = np.zeros((40, 50), np.uint8)
    lab[:, 25:] = 1
    lab[0:3, 0:3] = 255
    Image.fromarray(lab).save(labels / "a.png")
    out = tmp_path / "out"
    args = ["refine", "semantic", "--images", images, "--labels", labels, "--out", out, "--num-classes", 2,
            "--model", model_path]
    res = _run(*args, "--ignore-index", 255)
    assert res.exit_code == 0, res.output
    refined = np.asarray(Image.open(out / "a.png"))
    assert refined.shape == (40, 50) and np.array_equal(refined == 255, lab == 255)
    assert set(np.unique(refined)) <= {0, 1, 255}
    _assert_clean_error(_run(*args[:-2], "--out", tmp_path / "out2", "--model", model_path), "a.png", "outside 0..1")
    assert not (tmp_path / "out2").exists()


def test_refine_panoptic_round_trip(tmp_path, model_path):
    from bprefine.data.panoptic import id_to_rgb, rgb_to_id

    images, pan = tmp_path / "img", tmp_path / "pan"
    images.mkdir(), pan.mkdir()
    _write_image(images / "x.jpg", hw=(40, 50))
    ids = np.full((40, 50), 7, np.int64)
    ids[10:30, 10:30] = 300
    ids[0:2, :] = 0
    Image.fromarray(id_to_rgb(ids)).save(pan / "x.png")
    segs = [{"id": 7, "category_id": 100, "iscrowd": 0}, {"id": 300, "category_id": 1, "iscrowd": 0}]
    (tmp_path / "p.json").write_text(json.dumps({"annotations": [{"image_id": 1, "file_name": "x.png",
                                                                  "segments_info": segs}],
                                                 "images": [{"id": 1, "file_name": "x.jpg"}]}))
    res = _run("refine", "panoptic", "--images", images, "--pred-json", tmp_path / "p.json", "--pred-dir", pan,
               "--out-json", tmp_path / "o.json", "--out-dir", tmp_path / "o", "--model", model_path)
    assert res.exit_code == 0, res.output
    out_ids = rgb_to_id(np.asarray(Image.open(tmp_path / "o" / "x.png").convert("RGB")))
    info = json.loads((tmp_path / "o.json").read_text())["annotations"][0]["segments_info"]
    assert np.array_equal(out_ids == 0, ids == 0)
    assert {s["id"]: s["area"] for s in info} == {v: int((out_ids == v).sum()) for v in (7, 300) if (out_ids == v).any()}
    # things over stuff, from a categories file
    (tmp_path / "c.json").write_text(json.dumps([{"id": 1, "isthing": 1}, {"id": 100, "isthing": 0}]))
    res = _run("refine", "panoptic", "--images", images, "--pred-json", tmp_path / "p.json", "--pred-dir", pan,
               "--out-json", tmp_path / "t.json", "--out-dir", tmp_path / "t", "--model", model_path,
               "--categories", tmp_path / "c.json")
    assert res.exit_code == 0, res.output
    assert np.array_equal(rgb_to_id(np.asarray(Image.open(tmp_path / "t" / "x.png").convert("RGB"))) == 0, ids == 0)
    (tmp_path / "c.json").write_text(json.dumps([{"id": 1, "isthing": 1}]))  # category 100 missing
    res = _run("refine", "panoptic", "--images", images, "--pred-json", tmp_path / "p.json", "--pred-dir", pan,
               "--out-json", tmp_path / "u.json", "--out-dir", tmp_path / "u", "--model", model_path,
               "--categories", tmp_path / "c.json")
    _assert_clean_error(res, "x.png", "[100]", "not in the categories file")
    (tmp_path / "c.json").write_text(json.dumps([{"id": 1}]))
    res = _run("refine", "panoptic", "--images", images, "--pred-json", tmp_path / "p.json", "--pred-dir", pan,
               "--out-json", tmp_path / "u.json", "--out-dir", tmp_path / "u", "--model", model_path,
               "--categories", tmp_path / "c.json")
    _assert_clean_error(res, "c.json", "isthing")
    assert not (tmp_path / "u").exists() and not (tmp_path / "u.json").exists()


def test_eval_panoptic_with_baseline(tmp_path):
    from bprefine.data.panoptic import id_to_rgb

    gt = np.full((30, 30), 1, np.int64)
    gt[5:20, 5:20] = 2
    shifted = np.full((30, 30), 1, np.int64)
    shifted[5:20, 8:23] = 2
    for name, ids in (("gt", gt), ("pred", gt), ("base", shifted)):
        (tmp_path / name).mkdir()
        Image.fromarray(id_to_rgb(ids)).save(tmp_path / name / "a.png")
    segs = [{"id": 1, "category_id": 10, "iscrowd": 0}, {"id": 2, "category_id": 20, "iscrowd": 0}]
    doc = {"annotations": [{"file_name": "a.png", "image_id": 1, "segments_info": segs}],
           "categories": [{"id": 10, "isthing": 0}, {"id": 20, "isthing": 1}]}
    for name in ("gt", "pred", "base"):
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
    res = _run("eval", "panoptic", "--gt-json", tmp_path / "gt.json", "--gt-dir", tmp_path / "gt",
               "--pred-json", tmp_path / "pred.json", "--pred-dir", tmp_path / "pred",
               "--baseline-json", tmp_path / "base.json", "--baseline-dir", tmp_path / "base", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["PQ"] == 1.0 and out["baseline"]["PQ"] < 1.0


def test_refine_semantic_with_probabilities(tmp_path, model_path):
    images, labels, probs = tmp_path / "img", tmp_path / "lab", tmp_path / "probs"
    for d in (images, labels, probs):
        d.mkdir()
    _write_image(images / "a.png", hw=(40, 50))
    lab = np.zeros((40, 50), np.uint8)
    lab[:, 25:] = 1
    Image.fromarray(lab).save(labels / "a.png")
    p1 = np.where(lab == 1, 0.9, 0.1).astype(np.float32)
    np.save(probs / "a.npy", np.stack([1 - p1, p1]))
    args = ["refine", "semantic", "--images", images, "--labels", labels, "--num-classes", 2, "--model", model_path,
            "--probs", probs]
    res = _run(*args, "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert set(np.unique(np.asarray(Image.open(tmp_path / "out" / "a.png")))) <= {0, 1}
    np.save(probs / "a.npy", np.stack([1 - p1, p1, p1]))
    _assert_clean_error(_run(*args, "--out", tmp_path / "out2"), "a.npy", "num_classes x H x W")
    (probs / "a.npy").write_bytes(b"not numpy")
    _assert_clean_error(_run(*args, "--out", tmp_path / "out2"), "a.npy", "cannot read probabilities")
    assert not (tmp_path / "out2").exists()


def _one_pair(root: Path, hw: tuple[int, int], name: str = "x.png") -> tuple[Path, Path, np.ndarray]:
    """Folders ``root/img`` and ``root/msk`` with one image and a 0/255 mask of a rectangle in its middle."""
    images, masks = root / "img", root / "msk"
    images.mkdir(), masks.mkdir()
    _write_image(images / name, hw=hw)
    m = np.zeros(hw, np.uint8)
    m[hw[0] // 8:hw[0] * 7 // 8, hw[1] // 5:hw[1] * 4 // 5] = 255
    Image.fromarray(m).save(masks / "x.png")
    return images, masks, m


@pytest.mark.parametrize("flag", ["--nms-threshold", "--nms-thr"])
def test_nms_threshold_option_and_its_alias(tmp_path, model_path, flag):
    images, masks, _ = _one_pair(tmp_path, (40, 50))
    res = _run("refine", "masks", "--images", images, "--masks", masks, "--out", tmp_path / "o",
               "--model", model_path, flag, 0.3, "--scheme", "grid")
    assert res.exit_code == 0, res.output
    _assert_clean_error(_run("refine", "masks", "--images", images, "--masks", masks, "--out", tmp_path / "p",
                             "--model", model_path, "--device", "bogus"), "bogus")
    assert not (tmp_path / "p").exists()


def test_nms_threshold_defaults_to_the_model_s(tmp_path, monkeypatch):
    import bprefine.refine

    dense = save_model(RefinementModel.untrained(ModelConfig(input_size=64, nms_threshold=0.55)), tmp_path / "dense")
    images, masks, _ = _one_pair(tmp_path, (40, 50))
    seen = []

    def spy(mask, **kw):
        seen.append(kw["nms_threshold"])
        return real(mask, **kw)

    real = bprefine.refine.extract_boxes
    monkeypatch.setattr("bprefine.refine.extract_boxes", spy)
    for out, extra, expected in (("a", (), 0.55), ("b", ("--nms-threshold", 0.3), 0.3)):
        seen.clear()
        res = _run("refine", "masks", "--images", images, "--masks", masks, "--out", tmp_path / out,
                   "--model", dense, *extra)
        assert res.exit_code == 0, res.output
        assert seen and set(seen) == {expected}


@pytest.mark.parametrize("name", ["../x.png", "../../png/x.png", "/etc/x.png", "a/../../x.png", 7, ""])
def test_refine_panoptic_refuses_names_that_leave_their_folder(tmp_path, model_path, name):
    images, pan = tmp_path / "img", tmp_path / "pan"
    images.mkdir(), pan.mkdir()
    _write_image(images / "x.jpg", hw=(20, 20))
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(pan / "x.png")
    (tmp_path / "p.json").write_text(json.dumps({"annotations": [{"image_id": 1, "file_name": name,
                                                                  "segments_info": []}]}))
    res = _run("refine", "panoptic", "--images", images, "--pred-json", tmp_path / "p.json", "--pred-dir", pan,
               "--out-json", tmp_path / "o.json", "--out-dir", tmp_path / "o", "--model", model_path)
    _assert_clean_error(res, "p.json", "file_name")
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.json").exists()


def test_label_map_writer_picks_the_bit_depth(tmp_path):
    from bprefine.data.images import read_label_map, write_label_map

    for labels, mode in ((np.array([[0, 255]]), "L"), (np.array([[0, 300]]), "I;16")):
        write_label_map(tmp_path / "l.png", labels)
        assert Image.open(tmp_path / "l.png").mode == mode
        assert np.array_equal(read_label_map(tmp_path / "l.png"), labels)
    with pytest.raises(ValueError, match="l.png"):
        write_label_map(tmp_path / "l.png", np.array([[-1]]))


def test_bench_json_reports_engine_and_breakdown():
    from bprefine import densecrf

    res = _run("bench", "--quick", "--repeats", 1, "--presets", "mobilenet_v2", "--folder-images", 4, "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    if densecrf.available():
        photos, frame = report["densecrf"]["photos"], report["densecrf"]["street_frame_480x360"]
        assert photos["images"] == 4 and photos["densecrf_median_s"] > 0 and frame["images"] == 1
        assert photos["time_ratio"] == pytest.approx(photos["bprefine_median_s"] / photos["densecrf_median_s"], abs=0.02)
        assert photos["mBIoU_bprefine"] > photos["mBIoU_coarse"] and 0 < frame["mIoU_densecrf"] <= 100
    else:
        assert "not installed" in report["densecrf"]["skipped"]
    folder = report["folder"]
    assert folder["images"] == 4 and len(folder["runs"]) == 2 and folder["speedup_over_1_core"]["1 core"] == 1.0
    assert report["engine"] in ("onnx-int8", "onnx", "torch")
    assert set(report["cpu"]) == {"machine", "avx2", "avx512", "vnni", "avx512_bf16", "amx"}  # what the figures ran on
    city = report["cityscapes_1024x2048"]
    assert city["patches"] >= 100 and set(city["breakdown_ms"]) == {"extraction", "network", "reassembly"}
    assert report["sample_photos"]["images"] == 4 and report["torch_patches_per_s_batch16"]["mobilenet_v2"]["128"] > 0
    assert report["street_frame_480x360"]["classes"] >= 8 and report["street_frame_480x360"]["median_s"] > 0


def test_models_lists_every_bundled_model_with_its_card():
    from bprefine.model import bundled_models

    res = _run("models", "--json")
    assert res.exit_code == 0, res.output
    cards = json.loads(res.output)
    assert [c["name"] for c in cards] == bundled_models() and "default" in bundled_models()
    assert all(c["card"] for c in cards)
    assert {c["name"]: c["min_move"] for c in cards}["people"] == 0.5  # people ships with its guard on
    assert "people     mobilenet_v2, input 256, patch 128, NMS 0.1, guard min_move 0.5 + min_confidence 0.1: " in _run("models").output
    nms = {c["name"]: c["nms_threshold"] for c in cards}
    assert set(nms.values()) == {0.1}  # every bundled model boxes at the library's default (docs/benchmarks.md)
    consensus = {c["name"]: c["consensus"] for c in cards}
    assert consensus["street"] and not consensus["default"]  # street ships with the consensus rule on
    margins = {c["name"]: c["min_confidence"] for c in cards}
    assert margins["street"] == 0.25 and margins["people"] == margins["default"] == margins["nuclei"] == 0.1
    assert "street     mobilenet_v2, input 128, patch 64, NMS 0.1, guard min_confidence 0.25, consensus: " in _run("models").output


def test_refine_masks_in_two_processes_writes_the_same_files(tmp_path, model_path):
    images, masks = tmp_path / "img", tmp_path / "msk"
    images.mkdir(), masks.mkdir()
    for k in range(6):
        _write_image(images / f"{k}.png", hw=(40, 50))
        m = np.zeros((40, 50), np.uint8)
        m[5 + k : 30, 10 : 40 - k] = 255
        Image.fromarray(m).save(masks / f"{k}.png")
    base = ["refine", "masks", "--images", images, "--masks", masks, "--model", model_path]
    one, two = _run(*base, "--out", tmp_path / "one"), _run(*base, "--out", tmp_path / "two", "--jobs", 2)
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    for f in sorted((tmp_path / "one").iterdir()):
        assert (tmp_path / "two" / f.name).read_bytes() == f.read_bytes()


def test_refine_options_reach_the_refiner(tmp_path, model_path, monkeypatch):
    images, masks, m = _one_pair(tmp_path, (80, 96), "x.jpg")
    base = ("refine", "masks", "--images", images, "--masks", masks, "--model", model_path)
    assert _run(*base, "--out", tmp_path / "plain").exit_code == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "plain" / "x.png")), m)  # the net changes pixels
    res = _run(*base, "--out", tmp_path / "sure", "--min-confidence", 1000)  # no logit is that sure: unchanged
    assert res.exit_code == 0, res.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "sure" / "x.png")), m)
    res = _run(*base, "--out", tmp_path / "still", "--min-move", 1000)  # no box moves that far: unchanged
    assert res.exit_code == 0, res.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "still" / "x.png")), m)
    res = _run(*base, "--out", tmp_path / "held", "--max-change", 1e-9)  # any change is too much: unchanged
    assert res.exit_code == 0, res.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "held" / "x.png")), m)
    assert _run(*base, "--out", tmp_path / "neg", "--max-change", -1).exit_code == 2
    res = _run(*base, "--out", tmp_path / "unsure", "--min-mask-confidence", 1000)  # never that sure: unchanged
    assert res.exit_code == 0, res.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "unsure" / "x.png")), m)
    assert _run(*base, "--out", tmp_path / "neg2", "--min-mask-confidence", -1).exit_code == 2
    res = _run(*base, "--out", tmp_path / "all", "--move-limit", 0.05, "--edge-skip", 0.5, "--nms-threshold", 0.3)
    assert res.exit_code == 0, res.output
    assert _run(*base, "--out", tmp_path / "bad", "--edge-skip", 0).exit_code == 2  # outside (0, 1]
    calls = []

    class SpyFlip(FlipEngine):
        def __call__(self, image, mask):
            calls.append(image.shape[0])
            return super().__call__(image, mask)

    monkeypatch.setattr("bprefine.refine.FlipEngine", SpyFlip)
    res = _run(*base, "--out", tmp_path / "flip", "--flip")
    assert res.exit_code == 0, res.output
    assert calls and (tmp_path / "flip" / "x.png").is_file()
