from __future__ import annotations

import numpy as np
import torch
import pytest

from bprefine import Refiner
from bprefine.patches import boundary_map
from bpr_helpers import ConstantNet, IdentityNet, model_with, random_blobs


def _image(rng, h, w):
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# Exact when the network input is at least as large as the (padded) crop: resizing up and back down
# never flips the sign of a +-1 mask. A smaller input (64 for a 74-pixel padded crop) loses detail.
@pytest.mark.parametrize("input_size,padding", [(64, 0), (128, 0), (128, 5), (256, 0), (256, 10)])
@pytest.mark.parametrize("nms", [0.25, 0.55])
def test_identity_network_returns_coarse_masks_exactly(rng, input_size, padding, nms):
    masks = random_blobs(rng, 150, 190, 5)  # overlapping instances
    refiner = Refiner(model_with(IdentityNet(), input_size=input_size, padding=padding), nms_threshold=nms,
                      batch_size=7)
    out = refiner.refine_instances(_image(rng, 150, 190), masks)
    assert out.dtype == bool and out.shape == masks.shape
    assert np.array_equal(out, masks)


def test_identity_with_grid_scheme(rng):
    masks = random_blobs(rng, 100, 130, 3)
    refiner = Refiner(model_with(IdentityNet()), scheme="grid", patch_size=32)
    assert np.array_equal(refiner.refine_instances(_image(rng, 100, 130), masks), masks)


@pytest.mark.parametrize("hw", [(20, 30), (1, 1), (64, 5), (70, 40)])
def test_images_smaller_than_a_patch(rng, hw):
    mask = np.zeros(hw, bool)
    mask[: max(hw[0] // 2, 1), : max(hw[1] // 2, 1)] = True
    if hw == (1, 1):
        mask[:] = True
    out = Refiner(model_with(IdentityNet())).refine(_image(rng, *hw), mask)
    assert np.array_equal(out, mask)


def test_all_foreground_network_grows_only_inside_patches(rng):
    masks = random_blobs(rng, 160, 200, 3)
    refiner = Refiner(model_with(ConstantNet(10.0)), nms_threshold=0.25, patch_size=32)
    out = refiner.refine_instances(_image(rng, 160, 200), masks)
    for coarse, refined in zip(masks, out):
        covered = np.zeros(coarse.shape, bool)
        for x0, y0, x1, y1 in refiner.boxes_for(coarse):
            covered[y0:y1, x0:x1] = True
        assert np.array_equal(refined, coarse | covered)
        assert (refined & ~coarse).any()


def test_all_background_network_clears_only_boundary_patches(rng):
    mask = np.zeros((300, 300), bool)
    mask[50:250, 50:250] = True
    out = Refiner(model_with(ConstantNet(-10.0)), patch_size=32).refine(_image(rng, 300, 300), mask)
    assert out[150, 150]  # the interior is far from every boundary patch and stays
    assert not (out & boundary_map(mask)).any()


def test_empty_and_one_pixel_masks(rng):
    image = _image(rng, 50, 60)
    masks = np.zeros((2, 50, 60), bool)
    masks[1, 20, 30] = True
    refiner = Refiner(model_with(IdentityNet()))
    assert np.array_equal(refiner.refine_instances(image, masks), masks)
    refiner = Refiner(model_with(ConstantNet(5.0)), patch_size=8)
    grown = refiner.refine_instances(image, masks)
    assert not grown[0].any()  # an empty mask passes through unchanged
    assert np.array_equal(grown[1], masks[1])  # below min_area: too small to carry a boundary, unchanged
    refiner = Refiner(model_with(ConstantNet(5.0)), patch_size=8, min_area=0)
    grown = refiner.refine_instances(image, masks)
    expected = np.zeros((50, 60), bool)
    for x0, y0, x1, y1 in refiner.boxes_for(masks[1]):
        expected[y0:y1, x0:x1] = True
    assert np.array_equal(grown[1], expected) and expected[19:22, 29:32].all()


@pytest.mark.parametrize("area, changed", [(15, False), (16, True)])
def test_min_area_is_the_smallest_refined_mask(rng, area, changed):
    mask = np.zeros((40, 40), bool)
    mask.flat[np.arange(area) + 40 * 20 + 10] = True  # a short run of pixels
    out = Refiner(model_with(ConstantNet(5.0)), patch_size=8).refine(_image(rng, 40, 40), mask)
    assert (not np.array_equal(out, mask)) == changed


def test_move_limit_bounds_how_far_the_boundary_moves(rng):
    mask = np.zeros((80, 80), bool)
    mask[30:50, 30:50] = True  # area 400: limit max(2, 0.1 * 20) = 2 px
    image = _image(rng, 80, 80)
    grown = Refiner(model_with(ConstantNet(5.0)), patch_size=16, move_limit=0.1).refine(image, mask)
    ys, xs = np.nonzero(grown)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (28, 51, 28, 51)  # 2 px out on every side, no further
    assert grown[28:52, 30:50].all() and grown[30:50, 28:52].all()
    shrunk = Refiner(model_with(ConstantNet(-5.0)), patch_size=16, move_limit=0.1).refine(image, mask)
    assert shrunk[32:48, 32:48].all() and not shrunk[30:32].any()


def test_min_confidence_keeps_the_coarse_mask_where_the_network_is_unsure(rng):
    masks = random_blobs(rng, 60, 60, 2)
    image = _image(rng, 60, 60)
    unsure = Refiner(model_with(ConstantNet(0.5)), patch_size=16, min_confidence=1.0)
    assert np.array_equal(unsure.refine_instances(image, masks), masks)
    sure = Refiner(model_with(ConstantNet(2.0)), patch_size=16, min_confidence=1.0)
    assert not np.array_equal(sure.refine_instances(image, masks), masks)


def test_a_model_that_ships_with_a_confidence_margin_applies_it_unless_told_otherwise(rng):
    masks = random_blobs(rng, 60, 60, 2)
    image = _image(rng, 60, 60)
    guarded = model_with(ConstantNet(0.5), patch_size=16, min_confidence=1.0)
    assert Refiner(guarded).min_confidence == 1.0
    assert np.array_equal(Refiner(guarded).refine_instances(image, masks), masks)
    free = Refiner(model_with(ConstantNet(0.5), patch_size=16)).refine_instances(image, masks)
    assert not np.array_equal(free, masks)
    assert np.array_equal(Refiner(guarded, min_confidence=0).refine_instances(image, masks), free)
    with pytest.raises(ValueError, match="min_confidence"):
        model_with(ConstantNet(0.5), min_confidence=-1.0)


class GrowNet(torch.nn.Module):
    """Grows the coarse mask by ``px`` input pixels (max pooling): every boundary moves out evenly."""

    def __init__(self, px: int) -> None:
        super().__init__()
        self.px = px

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.max_pool2d(mask, 2 * self.px + 1, stride=1, padding=self.px)


def test_min_move_keeps_only_boxes_whose_boundary_really_moves(rng):
    image = _image(rng, 80, 80)
    mask = np.zeros((80, 80), bool)
    mask[25:55, 20:60] = True
    grow_one_px = model_with(GrowNet(8), patch_size=16)  # 16-px boxes at input 128: 8 input px = 1 image px
    free = Refiner(grow_one_px).refine(image, mask)
    kept = Refiner(grow_one_px, min_move=0.5).refine(image, mask)
    dropped = Refiner(grow_one_px, min_move=2.0).refine(image, mask)
    assert np.array_equal(kept, free) and free.sum() > mask.sum() and (free >= mask).all()
    assert np.array_equal(dropped, mask)
    guarded_model = model_with(GrowNet(8), patch_size=16, min_move=2.0)  # a model that ships with the guard on
    assert Refiner(guarded_model).min_move == 2.0 and np.array_equal(Refiner(guarded_model).refine(image, mask), mask)
    assert np.array_equal(Refiner(guarded_model, min_move=0).refine(image, mask), free)


def _square_and_speck() -> np.ndarray:
    """(2, 80, 80) masks: a 30 x 40 rectangle (area 1,200) and a 4 x 4 speck far from it."""
    masks = np.zeros((2, 80, 80), bool)
    masks[0, 10:40, 10:50] = True
    masks[1, 60:64, 60:64] = True
    return masks


def test_max_change_keeps_a_mask_whose_refinement_would_redraw_too_much_of_it(rng):
    image, masks = _image(rng, 80, 80), _square_and_speck()
    grow_one_px = model_with(GrowNet(8), patch_size=16)  # every boundary moves out 1 image px
    free = Refiner(grow_one_px).refine_instances(image, masks)
    share = (free.sum((1, 2)) - masks.sum((1, 2))) / masks.sum((1, 2))  # (2,) changed pixels per coarse pixel
    assert 0.1 < share[0] < 0.2 and share[1] > 1  # the rectangle gains a thin ring, the speck more than doubles
    guarded = Refiner(grow_one_px, max_change=0.5).refine_instances(image, masks)
    assert np.array_equal(guarded[0], free[0]) and np.array_equal(guarded[1], masks[1])
    assert np.array_equal(Refiner(grow_one_px, max_change=share[0] * 1.01).refine_instances(image, masks)[0], free[0])
    assert np.array_equal(Refiner(grow_one_px, max_change=share[0] * 0.99).refine_instances(image, masks)[0], masks[0])
    assert np.array_equal(Refiner(grow_one_px, max_change=0).refine_instances(image, masks), free)  # 0: off


def test_max_change_counts_only_what_the_other_guards_let_through(rng):
    image, masks = _image(rng, 80, 80), _square_and_speck()
    grow_one_px = model_with(GrowNet(8), patch_size=16)  # logits +-1 (the normalised mask, max-pooled)
    both = Refiner(grow_one_px, max_change=0.5, min_confidence=2.0)  # the margin already stops every change
    assert np.array_equal(both.refine_instances(image, masks), masks)
    free = Refiner(grow_one_px).refine_instances(image, masks)
    assert np.array_equal(Refiner(grow_one_px, max_change=0.5, min_confidence=0.5).refine_instances(image, masks),
                          np.stack([free[0], masks[1]]))


def test_max_change_drops_a_segment_s_claims_in_disjoint_refinement(rng):
    from bprefine.tasks import refine_exclusive

    image, masks = _image(rng, 80, 80), _square_and_speck()
    grow_one_px = model_with(GrowNet(8), patch_size=16)
    free = refine_exclusive(Refiner(grow_one_px), image, masks)
    guarded = refine_exclusive(Refiner(grow_one_px, max_change=0.5), image, masks)
    assert (free == 1).sum() > 16 and (guarded == 1).sum() == 16  # the speck's claims are dropped
    assert np.array_equal(guarded == 0, free == 0)  # the rectangle's are kept
    touching = masks.copy()
    touching[1] = False
    touching[1, 40:44, 20:24] = True  # right below the rectangle, which grows into its top row
    held = refine_exclusive(Refiner(grow_one_px, max_change=0.5), image, touching)
    assert (held == 1).sum() == 16 and (held[40:44, 20:24] == 1).all()  # kept whole: nothing taken
    assert (held == 0).sum() > touching[0].sum()  # while the rectangle still grows elsewhere


class SureWhereBrightNet(GrowNet):
    """``GrowNet``, with logits 4x as large where the image is bright: sure there, unsure in the dark."""

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return super().forward(image, mask) * (1 + 3 * (image[:, :1] > 0).float())


def _bright_left() -> np.ndarray:
    """An 80 x 80 image, white left of column 56 (the rectangle of ``_square_and_speck``), black right of it."""
    image = np.zeros((80, 80, 3), np.uint8)
    image[:, :56] = 255
    return image


def test_accumulator_confidence_is_the_mean_absolute_logit_where_asked():
    from bprefine.patches import PatchAccumulator

    acc = PatchAccumulator.for_boxes(np.array([[0, 0, 4, 4], [2, 0, 6, 4]]), (4, 6))
    acc.add(np.array([0, 0, 4, 4]), np.full((4, 4), -2.0, np.float32))
    acc.add(np.array([2, 0, 6, 4]), np.full((4, 4), 3.0, np.float32))
    where = np.zeros((4, 6), bool)
    where[0, [0, 2, 5]] = True  # mean logits -2, 0.5 (overlap), 3
    assert acc.confidence(where) == pytest.approx((2 + 0.5 + 3) / 3)
    assert acc.confidence(np.zeros((4, 6), bool)) == 0.0
    coarse = np.zeros((4, 6), bool)
    coarse[:, :3] = True  # columns 0-1 (mean logit -2) leave it, columns 3-5 (+3) join it
    flips = acc.flips(coarse)
    assert flips[:, :2].all() and not flips[:, 2].any() and flips[:, 3:].all()  # 0.5 > 0 keeps column 2 inside
    allowed = np.zeros((4, 6), bool)
    allowed[0] = True
    assert np.array_equal(acc.flips(coarse, allowed), flips & allowed)


def test_min_mask_confidence_keeps_a_mask_whose_changes_are_unsure_as_a_whole():
    image, masks = _bright_left(), _square_and_speck()
    net = model_with(SureWhereBrightNet(8), patch_size=16)  # the rectangle grows at |logit| 4, the speck at 1
    free = Refiner(net).refine_instances(image, masks)
    assert (free[0].sum() > masks[0].sum()) and (free[1].sum() > masks[1].sum())
    guarded = Refiner(net, min_mask_confidence=2.0).refine_instances(image, masks)
    assert np.array_equal(guarded[0], free[0]) and np.array_equal(guarded[1], masks[1])
    assert np.array_equal(Refiner(net, min_mask_confidence=5.0).refine_instances(image, masks), masks)
    assert np.array_equal(Refiner(net, min_mask_confidence=0).refine_instances(image, masks), free)  # 0: off
    # what the per-pixel margin already stopped does not count: the speck has no change left to judge
    margin = Refiner(net, min_confidence=2.0).refine_instances(image, masks)
    assert np.array_equal(Refiner(net, min_confidence=2.0, min_mask_confidence=2.0).refine_instances(image, masks),
                          margin)


@pytest.mark.parametrize("guard, value, net", [("max_change", 0.5, GrowNet), ("min_mask_confidence", 2.0, SureWhereBrightNet)])
def test_a_model_that_ships_with_a_mask_guard_applies_it_unless_told_otherwise(rng, guard, value, net):
    image, masks = (_image(rng, 80, 80) if net is GrowNet else _bright_left()), _square_and_speck()
    shipped = model_with(net(8), patch_size=16, **{guard: value})
    assert getattr(Refiner(shipped), guard) == value
    assert np.array_equal(Refiner(shipped).refine_instances(image, masks)[1], masks[1])
    assert not np.array_equal(Refiner(shipped, **{guard: 0}).refine_instances(image, masks)[1], masks[1])
    with pytest.raises(ValueError, match=guard):
        model_with(GrowNet(8), **{guard: -0.1})
    with pytest.raises(ValueError, match=guard):
        Refiner(shipped, **{guard: -1})


def test_a_model_that_ships_with_an_nms_threshold_boxes_at_it_unless_told_otherwise(rng):
    mask = random_blobs(rng, 160, 200, 1)[0]
    dense = model_with(IdentityNet(), patch_size=32, nms_threshold=0.55)
    assert Refiner(dense).nms_threshold == 0.55 and Refiner(model_with(IdentityNet())).nms_threshold == 0.1
    shipped, plain = Refiner(dense).boxes_for(mask), Refiner(dense, nms_threshold=0.1).boxes_for(mask)
    assert len(shipped) > len(plain) > 0
    assert np.array_equal(plain, Refiner(model_with(IdentityNet(), patch_size=32)).boxes_for(mask))
    with pytest.raises(ValueError, match="nms_threshold"):
        model_with(IdentityNet(), nms_threshold=1.5)
    with pytest.raises(ValueError, match="nms_threshold"):
        Refiner(dense, nms_threshold=-0.1)


def test_min_mask_confidence_drops_a_segment_s_claims_in_disjoint_refinement():
    from bprefine.tasks import refine_exclusive
    from bprefine.tasks.exclusive import coarse_owner

    image, masks = _bright_left(), _square_and_speck()
    net = model_with(SureWhereBrightNet(8), patch_size=16)
    free = refine_exclusive(Refiner(net), image, masks)
    guarded = refine_exclusive(Refiner(net, min_mask_confidence=2.0), image, masks)
    assert (free == 1).sum() > 16 and (guarded == 1).sum() == 16  # the unsure speck's claims are dropped
    assert np.array_equal(guarded == 0, free == 0)  # the sure rectangle's are kept
    touching = masks.copy()
    touching[1] = False
    touching[1, 40:44, 20:24] = True  # on white, right below the rectangle, which grows into its top row
    sure = refine_exclusive(Refiner(net, min_mask_confidence=2.0), image, touching)
    assert np.array_equal(sure, refine_exclusive(Refiner(net), image, touching))  # both sure: as without the guard
    unsure = refine_exclusive(Refiner(net, min_mask_confidence=5.0), image, touching)  # neither is sure enough
    assert np.array_equal(unsure, coarse_owner(touching))
    image[38:47, 17:27] = 0  # the speck now lies on black: unsure of itself, while the rectangle stays sure
    guarded = refine_exclusive(Refiner(net, min_mask_confidence=2.0), image, touching)
    assert (guarded[40, 20:24] == 0).all()  # the sure rectangle takes the unsure speck's top row
    assert ((guarded == 1) == (touching[1] & (np.arange(80)[:, None] > 40))).all()  # the speck claims nothing
    held = refine_exclusive(Refiner(net, max_change=0.5), image, touching)  # max_change holds the speck whole
    assert (held == 1).sum() == 16


@pytest.mark.parametrize("patch, hw, expected", [(64, (40, 300), 40), (64, (10, 300), 16), (1000, (275, 418), 275),
                                                 (64, (100, 100), 64)])
def test_patches_larger_than_the_image_shrink(patch, hw, expected):
    refiner = Refiner(model_with(IdentityNet()), patch_size=patch)
    assert refiner.patch_for(hw) == expected
    mask = np.zeros(hw, bool)
    mask[hw[0] // 4 : 3 * hw[0] // 4, hw[1] // 4 : 3 * hw[1] // 4] = True
    boxes = refiner.boxes_for(mask)
    assert len(boxes) and (boxes[:, 2] - boxes[:, 0] == expected).all()


def test_no_instances(rng):
    out = Refiner(model_with(IdentityNet())).refine_instances(_image(rng, 10, 10), np.zeros((0, 10, 10), bool))
    assert out.shape == (0, 10, 10)


def test_refine_accepts_0_255_masks(rng):
    mask = np.zeros((80, 80), np.uint8)
    mask[20:60, 10:50] = 255
    out = Refiner(model_with(IdentityNet())).refine(_image(rng, 80, 80), mask)
    assert np.array_equal(out, mask > 0)


def test_batch_across_images_equals_one_by_one(rng):
    from bprefine.model import ModelConfig, RefinementModel

    model = RefinementModel.untrained(ModelConfig(input_size=64)).net.eval()
    refiner = Refiner(model_with(model, input_size=64), batch_size=5)
    images = [_image(rng, 90, 120), _image(rng, 70, 70)]
    masks = [random_blobs(rng, 90, 120, 2), random_blobs(rng, 70, 70, 1)]
    together = refiner.refine_batch(images, masks)
    for image, m, t in zip(images, masks, together):
        assert np.array_equal(refiner.refine_instances(image, m), t)


def test_bad_shapes_raise_value_error(rng):
    refiner = Refiner(model_with(IdentityNet()))
    with pytest.raises(ValueError, match="matching the image"):
        refiner.refine_instances(_image(rng, 10, 10), np.zeros((1, 10, 11), bool))
    with pytest.raises(ValueError, match="uint8 RGB"):
        refiner.refine(np.zeros((10, 10), np.uint8), np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="scheme"):
        Refiner(model_with(IdentityNet()), scheme="sliding")


@pytest.mark.parametrize("padding", [0, 4])
def test_refine_crops_equals_refining_full_size_masks(rng, padding):
    from bprefine.model import ModelConfig, RefinementModel

    torch.manual_seed(0)
    model = RefinementModel.untrained(ModelConfig(input_size=64, patch_size=24, padding=padding))
    refiner = Refiner(model, engine="torch", nms_threshold=0.4)
    image = _image(rng, 120, 150)
    masks = random_blobs(rng, 120, 150, 5)
    masks[0] = False  # an empty mask
    full = refiner.refine_instances(image, masks)
    crops = [refiner.crop_around(m) for m in masks]
    refined = refiner.refine_crops(image, crops)
    for m, r, (c, (x0, y0)) in zip(full, refined, crops):
        placed = np.zeros_like(m)
        placed[y0 : y0 + c.shape[0], x0 : x0 + c.shape[1]] = r
        assert np.array_equal(placed, m)
    with pytest.raises(ValueError, match="leaves"):
        refiner.refine_crops(image, [(np.ones((10, 10), bool), (145, 0))])
