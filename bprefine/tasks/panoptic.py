"""Panoptic refinement: every segment of a COCO panoptic id map, thing or stuff, refined as an instance."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

import numpy as np

from bprefine.data.panoptic import check_ids_listed
from bprefine.patches import mask_bbox
from bprefine.tasks.exclusive import refine_exclusive

if TYPE_CHECKING:
    from bprefine.refine import Refiner


def updated_segments(segment_ids: np.ndarray, segments_info: list[dict]) -> list[dict]:
    """``segments_info`` in its order with area and bbox (x, y, w, h) recomputed; empty segments dropped."""
    out = []
    for s in segments_info:
        m = segment_ids == int(s["id"])
        box = mask_bbox(m)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        out.append(dict(s, area=int(m.sum()), bbox=[x0, y0, x1 - x0, y1 - y0]))
    return out


def thing_flags(segments_info: list[dict], ids: list[int], things: Collection[int]) -> np.ndarray:
    """(K,) bool: is each listed segment id's ``category_id`` one of the ``things``?"""
    category = {int(s["id"]): int(s.get("category_id", -1)) for s in segments_info}
    return np.asarray([category[v] in things for v in ids], bool)


def refine_panoptic(refiner: "Refiner", image: np.ndarray, segment_ids: np.ndarray, segments_info: list[dict],
                    things: Collection[int] | None = None) -> tuple[np.ndarray, list[dict]]:
    """Refine an H x W segment-id map (0 = void) of an H x W x 3 uint8 image and its ``segments_info``.

    Without ``things``, every segment is refined as an instance and each pixel goes to the most confident
    claim (refined mask logit > 0); unclaimed pixels keep their segment, so a segment loses a pixel only
    when another claims it. With ``things`` (the thing category ids), things are refined as instances
    over the stuff: a thing's claim beats any stuff's, a stuff segment's claim never takes a thing's
    pixel, and a pixel its thing rejects goes to the stuff (the stuff segment whose refinement covered
    it with the highest logit, else the nearest across the boundary). With one thing on one stuff
    segment this is exactly instance refinement; docs/results.md measures both rules. Void stays void.
    Ids and categories are kept; ``area`` and ``bbox`` are recomputed; a segment refined away is
    dropped from the returned ``segments_info``.
    """
    segment_ids = np.asarray(segment_ids)
    if segment_ids.shape != image.shape[:2]:
        raise ValueError(f"segment map must be H x W matching the image {image.shape[:2]}, got {segment_ids.shape}")
    ids = check_ids_listed(segment_ids, segments_info)
    masks = np.stack([segment_ids == v for v in ids]) if ids else np.zeros((0, *segment_ids.shape), bool)
    priority = None if things is None else thing_flags(segments_info, ids, things).astype(np.int32)
    owner = refine_exclusive(refiner, image, masks, fixed=segment_ids == 0, priority=priority,
                             release=things is not None)
    lookup = np.asarray(ids + [0], segment_ids.dtype)  # owner -1 indexes the trailing 0 (never used: void is fixed)
    out = np.where(owner >= 0, lookup[owner], segment_ids).astype(segment_ids.dtype)
    return out, updated_segments(out, segments_info)
