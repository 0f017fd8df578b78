"""Refinement on a local Ray instance: the same files as the single-process path, and resumable."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bprefine.cli import main

ray = pytest.importorskip("ray", reason="Ray not installed (pip install 'bprefine[ray]')")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _folder(root, n=10):
    rng = np.random.default_rng(0)
    images, masks = root / "im", root / "mk"
    images.mkdir(), masks.mkdir()
    for k in range(n):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(images / f"{k:02d}.png")
        m = np.zeros((48, 64), np.uint8)
        m[8 + k : 36, 10 : 40 + k] = 255
        Image.fromarray(m).save(masks / f"{k:02d}.png")
    return images, masks


def test_ray_output_equals_single_process_and_resumes(tmp_path, local_ray):
    from bprefine.cluster import MARKERS, refine_masks_ray

    images, masks = _folder(tmp_path)
    single = CliRunner().invoke(main, ["refine", "masks", "--images", str(images), "--masks", str(masks),
                                       "--out", str(tmp_path / "single")])
    assert single.exit_code == 0, single.output
    stats = refine_masks_ray(images, masks, tmp_path / "ray", workers=2, shard_size=3)
    assert stats["shards"] == 4 and stats["skipped"] == 0 and stats["images"] == 10
    for f in sorted((tmp_path / "single").iterdir()):
        assert (tmp_path / "ray" / f.name).read_bytes() == f.read_bytes()
    # a killed job: one shard's marker and output missing; the rerun redoes that shard only
    marker = tmp_path / "ray" / MARKERS / "00001.json"
    lost = json.loads(marker.read_text())["files"]
    marker.unlink()
    for name in lost:
        (tmp_path / "ray" / name).unlink()
    again = refine_masks_ray(images, masks, tmp_path / "ray", workers=2, shard_size=3)
    assert again["skipped"] == 3 and again["images"] == len(lost)
    for name in lost:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "single" / name).read_bytes()


def test_ray_cli_flag(tmp_path, local_ray):
    images, masks = _folder(tmp_path, n=4)
    res = CliRunner().invoke(main, ["refine", "masks", "--images", str(images), "--masks", str(masks),
                                    "--out", str(tmp_path / "o"), "--ray", "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert "on Ray" in res.output and len(list((tmp_path / "o").glob("*.png"))) == 4


def test_ray_instances_equal_single_process_and_resume(tmp_path, local_ray):
    from bprefine.cluster import refine_instances_ray
    from bprefine.data.coco import encode_mask

    rng = np.random.default_rng(1)
    images = tmp_path / "im"
    images.mkdir()
    infos, results = [], []
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(images / f"{i}.png")
        infos.append({"id": i, "file_name": f"{i}.png", "height": 40, "width": 56})
        for j in range(2):
            m = np.zeros((40, 56), bool)
            m[5 + 3 * j : 30, 8 + i : 40] = True
            results.append({"image_id": i, "category_id": 1, "score": 0.5 + j / 10, "segmentation": encode_mask(m)})
    (tmp_path / "info.json").write_text(json.dumps({"images": infos}))
    (tmp_path / "pred.json").write_text(json.dumps(results))
    single = CliRunner().invoke(main, ["refine", "instances", "--images", str(images), "--pred", str(tmp_path / "pred.json"),
                                       "--image-info", str(tmp_path / "info.json"), "--out", str(tmp_path / "single.json")])
    assert single.exit_code == 0, single.output
    expected = json.loads((tmp_path / "single.json").read_text())
    stats = refine_instances_ray(images, tmp_path / "pred.json", tmp_path / "info.json", tmp_path / "ray",
                                 workers=2, shard_images=2)
    assert stats["shards"] == 3 and stats["results"] == 10
    merged = [e for f in sorted((tmp_path / "ray").glob("*.json")) for e in json.loads(f.read_text())]
    assert merged == expected
    (tmp_path / "ray" / "00001.json").unlink()  # a killed job: one shard missing
    again = refine_instances_ray(images, tmp_path / "pred.json", tmp_path / "info.json", tmp_path / "ray",
                                 workers=2, shard_images=2)
    assert again["skipped"] == 2 and again["results"] == 4
    assert [e for f in sorted((tmp_path / "ray").glob("*.json")) for e in json.loads(f.read_text())] == expected
    res = CliRunner().invoke(main, ["refine", "instances", "--images", str(images), "--pred", str(tmp_path / "pred.json"),
                                    "--image-info", str(tmp_path / "info.json"), "--out", str(tmp_path / "r.json"),
                                    "--ray", "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "r.json").read_text()) == expected
