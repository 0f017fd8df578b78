"""Panoptic refinement: every segment of a COCO panoptic id map, thing or stuff, refined as an instance."""

from __future__ import annotations

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


def refine_panoptic(refiner: "Refiner", image: np.ndarray, segment_ids: np.ndarray, segments_info: list[dict]
                    ) -> tuple[np.ndarray, list[dict]]:
    """Refine an H x W segment-id map (0 = void) of an H x W x 3 uint8 image and its ``segments_info``.

    Each pixel gets one segment (most confident claim wins, unclaimed pixels keep theirs). Void stays
    void. Ids and categories are kept; ``area`` and ``bbox`` are recomputed; a segment refined away is
    dropped from the returned ``segments_info``.
    """
    segment_ids = np.asarray(segment_ids)
    if segment_ids.shape != image.shape[:2]:
        raise ValueError(f"segment map must be H x W matching the image {image.shape[:2]}, got {segment_ids.shape}")
    ids = check_ids_listed(segment_ids, segments_info)
    masks = np.stack([segment_ids == v for v in ids]) if ids else np.zeros((0, *segment_ids.shape), bool)
    owner = refine_exclusive(refiner, image, masks, fixed=segment_ids == 0)
    lookup = np.asarray(ids + [0], segment_ids.dtype)  # owner -1 indexes the trailing 0 (never used: void is fixed)
    out = np.where(owner >= 0, lookup[owner], segment_ids).astype(segment_ids.dtype)
    return out, updated_segments(out, segments_info)
