from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from bprefine import Refiner
from bprefine.data.cityscapes import label_ids_to_train_ids, train_ids_to_label_ids
from bprefine.data.panoptic import id_to_rgb, rgb_to_id
from bpr_helpers import (
    SHARED_DATA,
    ConstantNet,
    IdentityNet,
    model_with,
    needs_shared_data,
)


class MaskPlusNet(IdentityNet):
    """Identity logits plus a constant: refined masks grow by one logit unit's worth of confidence."""

    def forward(self, image, mask):
        return mask * 2 + 1  # coarse fg -> 3, coarse bg -> -1 (after normalisation to +-1)


def _labels(rng, h=90, w=120, n=4):
    lab = np.zeros((h, w), np.int64)
    lab[:, w // 3 :] = 1
    lab[h // 2 :, : w // 2] = 2
    lab[20:40, 70:100] = 3
    return lab


def test_identity_network_leaves_labels_unchanged(rng):
    labels = _labels(rng)
    labels[0:5, 0:5] = 255
    image = rng.integers(0, 256, (*labels.shape, 3), dtype=np.uint8)
    out = Refiner(model_with(IdentityNet()), patch_size=16).refine_semantic(image, labels, 4, ignore_index=255)
    assert np.array_equal(out, labels) and out.dtype == labels.dtype


def test_every_pixel_one_label_and_ignore_untouched(rng):
    labels = _labels(rng)
    labels[40:60, 10:30] = 255
    image = rng.integers(0, 256, (*labels.shape, 3), dtype=np.uint8)
    # Every class claims its whole patches with the same confidence: conflicts must resolve to one label.
    out = Refiner(model_with(ConstantNet(4.0)), patch_size=16).refine_semantic(image, labels, 4, ignore_index=255)
    assert out.shape == labels.shape
    assert np.array_equal(out == 255, labels == 255)  # ignore neither invented nor lost
    assert set(np.unique(out)) <= {0, 1, 2, 3, 255}
    assert not np.array_equal(out, labels)


def test_most_confident_claim_wins(rng):
    labels = np.zeros((64, 64), np.int64)
    labels[:, 32:] = 1
    image = np.zeros((64, 64, 3), np.uint8)
    out = Refiner(model_with(MaskPlusNet()), patch_size=16).refine_semantic(image, labels, 2)
    # Each class's own pixels get mean logit 3 from its own patches and -1 from the other's:
    # every pixel is claimed most confidently by its coarse class, so nothing changes.
    assert np.array_equal(out, labels)


def test_bad_labels_raise(rng):
    image = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="outside 0..2"):
        Refiner(model_with(IdentityNet())).refine_semantic(image, np.full((10, 10), 7), 3)
    with pytest.raises(ValueError, match="matching the image"):
        Refiner(model_with(IdentityNet())).refine_semantic(image, np.zeros((9, 10), np.int64), 3)


def _panoptic_case():
    ids = np.zeros((80, 100), np.int64)
    ids[:, :50] = 5  # stuff
    ids[:, 50:] = 9  # stuff
    ids[20:50, 30:70] = 1000  # thing
    ids[60:70, 5:15] = 0  # void
    segs = [{"id": 5, "category_id": 184, "iscrowd": 0, "area": 0, "bbox": [0, 0, 0, 0]},
            {"id": 9, "category_id": 185, "iscrowd": 0},
            {"id": 1000, "category_id": 1, "iscrowd": 0}]
    return ids, segs


def test_panoptic_identity_and_segments_info(rng):
    ids, segs = _panoptic_case()
    image = rng.integers(0, 256, (*ids.shape, 3), dtype=np.uint8)
    out, info = Refiner(model_with(IdentityNet()), patch_size=16).refine_panoptic(image, ids, segs)
    assert np.array_equal(out, ids)
    assert [s["id"] for s in info] == [5, 9, 1000] and [s["category_id"] for s in info] == [184, 185, 1]
    for s in info:
        m = out == s["id"]
        ys, xs = np.nonzero(m)
        assert s["area"] == int(m.sum())
        assert s["bbox"] == [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def test_panoptic_uniqueness_void_and_dropped_segments(rng):
    ids, segs = _panoptic_case()
    image = rng.integers(0, 256, (*ids.shape, 3), dtype=np.uint8)
    out, info = Refiner(model_with(ConstantNet(-3.0)), patch_size=16).refine_panoptic(image, ids, segs)
    assert np.array_equal(out, ids)  # nobody claims anything: coarse ids stay
    out, info = Refiner(model_with(ConstantNet(3.0)), patch_size=16).refine_panoptic(image, ids, segs)
    assert np.array_equal(out == 0, ids == 0)  # void stays void, nothing becomes void
    assert set(np.unique(out)) <= {0, 5, 9, 1000}
    assert sum(s["area"] for s in info) == int((out != 0).sum())
    with pytest.raises(ValueError, match="not in segments_info"):
        Refiner(model_with(IdentityNet())).refine_panoptic(image, ids, segs[:2])


def test_cityscapes_id_round_trip():
    train = np.arange(19, dtype=np.uint8)
    assert np.array_equal(label_ids_to_train_ids(train_ids_to_label_ids(train)), train)
    assert label_ids_to_train_ids(np.array([0, 7, 26, 33, 4]))[[0, 4]].tolist() == [255, 255]


@needs_shared_data("samples/cityscapes_mmseg_pseudo")
def test_cityscapes_sample_label_and_train_ids_agree():
    root = SHARED_DATA / "samples" / "cityscapes_mmseg_pseudo" / "gtFine" / "val" / "frankfurt"
    label = np.asarray(Image.open(root / "frankfurt_000000_000294_gtFine_labelIds.png"))
    train = np.asarray(Image.open(root / "frankfurt_000000_000294_gtFine_labelTrainIds.png"))
    # The sample's two maps were downscaled to 256x128 separately, so a few edge pixels disagree
    # (0.23%); the mapping must explain all the rest.
    assert (label_ids_to_train_ids(label) == train).mean() > 0.995


@needs_shared_data("samples/coco_panoptic_panopticapi")
def test_panoptic_round_trip_on_shared_sample():
    root = SHARED_DATA / "samples" / "coco_panoptic_panopticapi"
    data = json.loads((root / "panoptic_examples.json").read_text())
    ann = data["annotations"][0]
    ids = rgb_to_id(np.asarray(Image.open(root / "panoptic_examples" / ann["file_name"]).convert("RGB")))
    image = np.asarray(Image.open(root / "input_images" / ann["file_name"].replace(".png", ".jpg")).convert("RGB"))
    out, info = Refiner(model_with(IdentityNet())).refine_panoptic(image, ids, ann["segments_info"])
    assert np.array_equal(out, ids)
    assert np.array_equal(rgb_to_id(id_to_rgb(out)), ids)
    assert {s["id"]: s["area"] for s in info} == {s["id"]: s["area"] for s in ann["segments_info"]}


class RecordingNet(IdentityNet):
    """Identity logits; remembers the mask channels it was fed."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, image, mask):
        self.seen.append(mask.clone())
        return mask.clone()


def test_probability_maps_feed_the_mask_channel(rng):
    labels = np.zeros((64, 64), np.int64)
    labels[:, 32:] = 1
    probs = np.stack([np.where(labels == 0, 0.8, 0.2), np.where(labels == 1, 0.8, 0.2)]).astype(np.float32)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    net = RecordingNet().eval()  # in eval mode the engine runs this very module (no copy)
    refiner = Refiner(model_with(net, input_size=64), patch_size=16)
    out = refiner.refine_semantic(image, None, 2, probs=probs)  # labels from argmax
    assert np.array_equal(out, labels)
    values = torch.cat(net.seen).unique()
    # normalised probabilities (p - 0.5) / 0.5: 0.8 -> 0.6 and 0.2 -> -0.6, not the binary +-1
    assert torch.allclose(values.abs().max(), torch.tensor(0.6), atol=0.01)
    with pytest.raises(ValueError, match="num_classes x H x W"):
        refiner.refine_semantic(image, labels, 3, probs=probs)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        refiner.refine_semantic(image, labels, 2, probs=probs * 2)


def test_one_hot_probabilities_equal_binary_masks(rng):
    labels = _labels(rng)
    image = rng.integers(0, 256, (*labels.shape, 3), dtype=np.uint8)
    probs = np.stack([(labels == c).astype(np.float32) for c in range(4)])
    refiner = Refiner(model_with(IdentityNet()), patch_size=16)
    assert np.array_equal(refiner.refine_semantic(image, labels, 4, probs=probs),
                          refiner.refine_semantic(image, labels, 4))


class BrightNet(torch.nn.Module):
    """Ignores the mask: foreground wherever the image is bright, whatever segment it is asked about."""

    def forward(self, image, mask):
        return torch.where(image[:, :1] > 0, 4.0, -4.0)


def _thing_on_stuff():
    """A bright square (the true thing) under a coarse thing mask 3 px too large, on one stuff segment."""
    image = np.zeros((64, 64, 3), np.uint8)
    image[20:40, 20:40] = 255
    ids = np.full((64, 64), 1, np.int64)
    ids[17:43, 17:43] = 2
    ids[0:3, :] = 0  # void
    segs = [{"id": 1, "category_id": 10}, {"id": 2, "category_id": 20}]
    return image, ids, segs


def test_things_over_stuff_is_instance_refinement():
    image, ids, segs = _thing_on_stuff()
    refiner = Refiner(model_with(BrightNet()), patch_size=16)
    out, info = refiner.refine_panoptic(image, ids, segs, things={20})
    alone = refiner.refine(image, ids == 2)
    assert np.array_equal(out == 2, alone & (ids != 0))
    assert np.array_equal(out == 2, image[..., 0] > 0)  # the thing's rejected rim went to the stuff
    assert np.array_equal(out == 0, ids == 0) and set(np.unique(out)) == {0, 1, 2}
    # All segments equal: the stuff, refined as an object, claims the bright square as confidently as
    # the thing does and takes part of it, while the thing keeps its coarse rim, which nobody claims.
    equal, _ = refiner.refine_panoptic(image, ids, segs)
    bright = image[..., 0] > 0
    assert np.all(equal[(ids == 2) & ~bright] == 2) and np.any(equal[bright] == 1)


def test_stuff_never_takes_a_things_pixel(rng):
    ids, segs = _panoptic_case()
    image = rng.integers(0, 256, (*ids.shape, 3), dtype=np.uint8)
    out, _ = Refiner(model_with(ConstantNet(3.0)), patch_size=16).refine_panoptic(image, ids, segs, things={1})
    assert np.all(out[ids == 1000] == 1000)  # every claim is equally sure: the thing keeps its pixels
    assert (out == 1000).sum() > (ids == 1000).sum()  # and takes the stuff its patches cover
    assert np.array_equal(out == 0, ids == 0)
    out, _ = Refiner(model_with(IdentityNet()), patch_size=16).refine_panoptic(image, ids, segs, things={1})
    assert np.array_equal(out, ids)


def test_hand_across_gives_pixels_to_the_nearest_heir():
    from bprefine.tasks.exclusive import hand_across

    owner = np.zeros((5, 9), np.int32)
    owner[:, 3:6] = 1
    owner[:, 6:] = 2
    pixels = np.zeros_like(owner, bool)
    pixels[:, 3:6] = True  # all of owner 1 rejected
    out = hand_across(owner, pixels, np.array([True, False, True]))
    assert np.array_equal(out[:, 3], [0] * 5) and np.array_equal(out[:, 5], [2] * 5)
    assert set(np.unique(out[:, 4])) <= {0, 2}
    out = hand_across(owner, pixels, np.array([False, False, False]))  # no heir: nothing moves
    assert np.array_equal(out, owner)
    owner[:, :3] = -1  # no mask there: never an heir
    out = hand_across(owner, pixels, np.array([True, False, True]))
    assert np.all(out[:, 3:6] == 2)


def test_priority_needs_one_value_per_mask(rng):
    masks = np.zeros((2, 20, 20), bool)
    masks[0, :10], masks[1, 10:] = True, True
    image = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="one value per mask"):
        Refiner(model_with(IdentityNet())).refine_exclusive(image, masks, priority=np.array([1, 0, 0]))


def test_categories_from_a_categories_json(tmp_path):
    from bprefine.data.panoptic import check_categories_known, load_categories

    cats = [{"id": 1, "isthing": 1}, {"id": 7, "isthing": 0}, {"id": 9, "isthing": 1}]
    (tmp_path / "c.json").write_text(json.dumps(cats))
    (tmp_path / "gt.json").write_text(json.dumps({"annotations": [], "categories": cats}))
    assert load_categories(tmp_path / "c.json") == load_categories(tmp_path / "gt.json") == {1: True, 7: False, 9: True}
    check_categories_known([{"id": 3, "category_id": 7}], {7: False}, "x.png")
    with pytest.raises(ValueError, match=r"x.png: category ids \[8\]"):
        check_categories_known([{"id": 3, "category_id": 8}], {7: False}, "x.png")
    for bad, needle in (([{"id": 1}], "categories\\[0\\]"), ({"x": 1}, "non-empty list"),
                        ([{"id": "1", "isthing": 1}], "categories\\[0\\]"), ([{"id": 1, "isthing": 2}], "isthing")):
        (tmp_path / "b.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=needle):
            load_categories(tmp_path / "b.json")


class ShiftNet(torch.nn.Module):
    """Every mask's refinement is its coarse mask moved 16 input px right: 2 image px for 16-px patches
    at the default 128-px input."""

    def forward(self, image, mask):
        shifted = torch.cat([mask[..., :1].expand(*mask.shape[:-1], 16), mask[..., :-16]], dim=-1)
        return shifted * 4


def test_consensus_keeps_pixels_their_owner_still_claims():
    labels = np.zeros((48, 64), np.int64)
    labels[:, 32:] = 1
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, 28:36] = 255
    plain = Refiner(model_with(BrightNet()), patch_size=16)
    agreed = Refiner(model_with(BrightNet()), patch_size=16, consensus=True)
    assert not plain.consensus and agreed.consensus
    shipped_on = model_with(BrightNet(), consensus=True)  # a model that ships with the rule on
    assert Refiner(shipped_on).consensus and not Refiner(shipped_on, consensus=False).consensus
    # Both classes claim the bright band equally sure; without consensus the first offer wins the tie
    # and class 0 takes class 1's bright pixels; with it class 1 keeps what its own refinement claims.
    changed = plain.refine_semantic(image, labels, 2) != labels
    assert np.array_equal(changed.any(axis=0), np.arange(64) // 4 == 8)  # columns 32-35
    assert np.array_equal(agreed.refine_semantic(image, labels, 2), labels)


def test_consensus_still_moves_pixels_both_refinements_agree_on():
    labels = np.zeros((48, 64), np.int64)
    labels[:, 32:] = 1
    image = np.zeros((48, 64, 3), np.uint8)
    out = Refiner(model_with(ShiftNet()), patch_size=16, consensus=True).refine_semantic(image, labels, 2)
    # class 0 claims and class 1 gives up the two columns right of the boundary
    expected = labels.copy()
    expected[:, 32:34] = 0
    assert np.array_equal(out, expected)


def test_consensus_panoptic_keeps_the_things_claimed_pixels():
    image, ids, segs = _thing_on_stuff()
    out, _ = Refiner(model_with(BrightNet()), patch_size=16, consensus=True).refine_panoptic(image, ids, segs)
    plain, _ = Refiner(model_with(BrightNet()), patch_size=16).refine_panoptic(image, ids, segs)
    # The stuff claims the bright square as surely as the thing (see above); under consensus it gets only
    # the square's middle, which none of the thing's boundary patches covers.
    moved, moved_plain = out != ids, plain != ids
    assert not np.any(moved & ~moved_plain) and 0 < moved.sum() < moved_plain.sum() // 4
    assert np.array_equal(moved, (out == 1) & (ids == 2)) and not moved[17:24].any() and not moved[35:43].any()
