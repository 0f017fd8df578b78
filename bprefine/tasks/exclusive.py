"""Disjoint masks refined together: each pixel ends with exactly one owner.

Where several masks' refined patches claim a pixel (mean logit > 0) the claim of the highest priority
wins, and among claims of equal priority the most confident; where none does, the coarse owner stays
(or, when asked, gives up a pixel its own refinement rejects); ``fixed`` pixels (void, ignore) never change.
Under the refiner's ``consensus`` rule a pixel its coarse owner's refinement still claims is not taken by
a claim of equal priority, however confident: a pixel changes hands only where both refinements agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bprefine.patches import mask_bbox

if TYPE_CHECKING:
    from bprefine.refine import Refiner


HOLD = np.float32(np.finfo(np.float32).max)  # the value of an owner's claim on its own pixel under consensus


def coarse_owner(masks: np.ndarray) -> np.ndarray:
    """(H, W) int32 index of the last mask of the (K, H, W) stack covering each pixel, -1 where none does."""
    owner = np.full(masks.shape[1:], -1, np.int32)
    for k, m in enumerate(masks):
        owner[m] = k
    return owner


def refine_exclusive(refiner: "Refiner", image: np.ndarray, masks: np.ndarray, *, fixed: np.ndarray | None = None,
                     channels: np.ndarray | None = None, priority: np.ndarray | None = None,
                     release: bool = False) -> np.ndarray:
    """Refine K disjoint (K, H, W) masks of an H x W x 3 uint8 image and return the (H, W) int32 owner
    index into ``masks`` (-1 where no mask owns the pixel).

    ``fixed`` (H, W) bool pixels keep their coarse owner; ``channels`` (K, H, W) uint8 feed the network's
    mask channel (see ``Refiner.accumulate``); ``priority`` (K,) int ranks the masks (default: all equal):
    a higher-ranked claim wins, and a claim never takes a pixel whose coarse owner outranks the claimant.
    With ``release``, a pixel that no mask claims but whose coarse owner's refinement rejects goes to a
    mask of the lowest rank: the one that covered it with the highest logit, else the nearest across the
    boundary (the coarse owner keeps it where there is none). With ``refiner.consensus``, an owner's claim
    on its own pixel beats every other claim of its rank. A mask the refiner ``holds`` (``max_change``)
    keeps its coarse pixels whole: it claims nothing and no other mask takes its pixels.
    """
    masks = np.asarray(masks).astype(bool, copy=False)
    rank = np.zeros(len(masks), np.int32) if priority is None else np.asarray(priority, np.int32)
    if rank.shape != (len(masks),):
        raise ValueError(f"priority must hold one value per mask ({len(masks)}), got shape {rank.shape}")
    owner = coarse_owner(masks)
    floor = int(rank.min()) if len(rank) else 0
    owner_rank = np.append(rank, floor)[owner]  # owner -1 (no mask) ranks lowest
    claims, heirs = _Claims(owner.shape), _Claims(owner.shape)
    rejected = np.zeros(owner.shape, bool)
    held = np.zeros(owner.shape, bool)  # the coarse pixels of masks the refiner's max_change keeps whole
    for k, acc in enumerate(refiner.accumulate(image, masks, channels=channels)):
        if acc is None:
            continue
        allowed = refiner.pixel_guard(acc, masks[k])
        if refiner.holds(acc, masks[k], allowed):
            held |= masks[k]
            continue
        mean, covered = acc.mean_logits()
        if allowed is not None:
            covered = covered & allowed
        own = acc.region(owner) == k
        value = np.where(own, HOLD, mean) if refiner.consensus else mean
        claims.offer(acc, k, rank[k], value, covered & (mean > 0) & (acc.region(owner_rank) <= rank[k]))
        if release:
            acc.region(rejected)[covered & own & (mean <= 0)] = True
            if rank[k] == floor:
                heirs.offer(acc, k, floor, mean, covered & ~own)
    out = np.where(claims.taken(), claims.owner, owner)
    if release:
        out = _release(out, rejected & ~claims.taken(), heirs, rank == floor)
    if fixed is not None:
        held |= fixed
    out[held] = owner[held]
    return out


def _release(owner: np.ndarray, rejected: np.ndarray, heirs: "_Claims", lowest: np.ndarray) -> np.ndarray:
    """``owner`` with the ``rejected`` pixels handed to the lowest-ranked masks (``lowest``: (K,) bool):
    the heir that covered each pixel, else the nearest such owner across the boundary."""
    out = owner.copy()
    covered = rejected & heirs.taken()
    out[covered] = heirs.owner[covered]
    return hand_across(out, rejected & ~covered, lowest)


def hand_across(owner: np.ndarray, pixels: np.ndarray, heirs: np.ndarray, steps: int = 64) -> np.ndarray:
    """(H, W) owner map with each of the ``pixels`` (H, W bool) given to the nearest other owner across
    its boundary among the ``heirs`` ((K,) bool over owner indices): grown from the pixels' 4-neighbours,
    one pixel per step, up to ``steps``; pixels with no such owner within reach keep theirs."""
    out = owner.copy()
    box = mask_bbox(pixels)
    if box is None:
        return out
    x0, y0, x1, y1 = box
    y0, x0 = max(y0 - steps, 0), max(x0 - steps, 0)
    y1, x1 = min(y1 + steps, owner.shape[0]), min(x1 + steps, owner.shape[1])
    out[y0:y1, x0:x1] = _grow_into(owner[y0:y1, x0:x1], pixels[y0:y1, x0:x1], np.append(heirs, False), steps)
    return out


def _grow_into(owner: np.ndarray, pixels: np.ndarray, heir: np.ndarray, steps: int) -> np.ndarray:
    """``hand_across`` on a crop; ``heir`` (K + 1,) bool, its last entry for owner -1 (no mask)."""
    out, todo = owner.copy(), pixels.copy()
    for _ in range(steps):
        src = np.where(todo, -1, out)  # pixels still waiting pass nothing on
        got = np.full(out.shape, -1, np.int32)
        padded = np.pad(src, 1, constant_values=-1)
        for nb in (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]):
            take = todo & (got < 0) & (nb >= 0) & (nb != owner) & heir[nb]
            got[take] = nb[take]
        done = got >= 0
        if not done.any():
            break
        out[done] = got[done]
        todo &= ~done
    return out


class _Claims:
    """Per pixel, the best offer so far: highest rank, then highest mean logit."""

    def __init__(self, shape: tuple[int, int]):
        self.best = np.full(shape, -np.inf, np.float32)  # one image-sized buffer for all masks
        self.rank = np.full(shape, np.iinfo(np.int32).min, np.int32)
        self.owner = np.full(shape, -1, np.int32)

    def offer(self, acc, k: int, rank: int, mean: np.ndarray, where: np.ndarray) -> None:
        """Mask ``k`` offers ``mean`` (h, w) logits at the ``where`` pixels of ``acc``'s buffer."""
        best, ranks, owner = acc.region(self.best), acc.region(self.rank), acc.region(self.owner)
        wins = where & ((rank > ranks) | ((rank == ranks) & (mean > best)))
        best[wins] = mean[wins]
        ranks[wins] = rank
        owner[wins] = k

    def taken(self) -> np.ndarray:
        """(H, W) bool: pixels with an offer."""
        return np.isfinite(self.best)
