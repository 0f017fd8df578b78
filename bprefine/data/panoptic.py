"""COCO panoptic predictions and ground truth: the JSON (one loader, one rule) and the id PNGs.

A panoptic JSON is an object with an ``annotations`` list; each annotation has a ``file_name`` (a
relative PNG name that must stay inside its folder) and a ``segments_info`` list of objects with an
integer ``id`` and ``category_id``. PNGs encode ids as R + 256 G + 256^2 B.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bprefine.data.coco import load_json
from bprefine.data.images import atomic_path, read_image, safe_name


def _check_segments(segments: Any, where: str) -> list[dict]:
    if not isinstance(segments, list):
        raise ValueError(f"{where}: segments_info must be a list, got {type(segments).__name__}")
    for j, s in enumerate(segments):
        ok = isinstance(s, dict) and all(isinstance(s.get(k), int) and not isinstance(s.get(k), bool)
                                         for k in ("id", "category_id"))
        if not ok:
            raise ValueError(f"{where}: segments_info[{j}] needs integer 'id' and 'category_id', got {s!r}")
    return segments


def check_ids_listed(segment_ids: np.ndarray, segments_info: list[dict]) -> list[int]:
    """The non-void ids of an H x W id map, all of which ``segments_info`` must list (else a ValueError)."""
    listed = {int(s["id"]) for s in segments_info}
    present = [int(v) for v in np.unique(segment_ids) if v != 0]
    unknown = [v for v in present if v not in listed]
    if unknown:
        raise ValueError(f"segment ids {unknown[:5]} are in the map but not in segments_info")
    return present


def load_panoptic_json(path: str | Path) -> tuple[dict, list[dict]]:
    """The whole JSON object and its checked ``annotations`` (file names safe, segments well formed)."""
    path = Path(path)
    data = load_json(path)
    anns = data.get("annotations") if isinstance(data, dict) else None
    if not isinstance(anns, list):
        raise ValueError(f"{path}: expected a COCO panoptic JSON with an 'annotations' list")
    seen: set[str] = set()
    for k, ann in enumerate(anns):
        where = f"{path}: annotation {k}"
        if not isinstance(ann, dict) or "file_name" not in ann or "segments_info" not in ann:
            raise ValueError(f"{where} needs file_name and segments_info")
        name = safe_name(ann["file_name"], where)
        if name in seen:
            raise ValueError(f"{where}: file_name {name!r} appears twice")
        seen.add(name)
        _check_segments(ann["segments_info"], where)
    return data, anns


def load_categories(path: str | Path) -> dict[int, bool]:
    """Category id -> isthing, from a COCO categories JSON: a list of categories, or an object with a
    ``categories`` list (a panoptic ground-truth JSON), each with an integer ``id`` and ``isthing`` 0/1."""
    path = Path(path)
    data = load_json(path)
    cats = data.get("categories") if isinstance(data, dict) else data
    if not isinstance(cats, list) or not cats:
        raise ValueError(f"{path}: expected a non-empty list of categories (or an object with 'categories')")
    out: dict[int, bool] = {}
    for k, c in enumerate(cats):
        ok = isinstance(c, dict) and isinstance(c.get("id"), int) and not isinstance(c.get("id"), bool)
        if not ok or c.get("isthing") not in (0, 1):
            raise ValueError(f"{path}: categories[{k}] needs an integer 'id' and 'isthing' 0 or 1, got {c!r}")
        out[c["id"]] = bool(c["isthing"])
    return out


def check_categories_known(segments_info: list[dict], categories: dict[int, bool], where: str) -> None:
    """Every segment's ``category_id`` must be one of the ``categories`` (a ValueError naming ``where``)."""
    unknown = sorted({s["category_id"] for s in segments_info} - set(categories))
    if unknown:
        raise ValueError(f"{where}: category ids {unknown[:5]} are not in the categories file")


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """COCO panoptic PNG (H x W x 3) to segment ids: R + 256 G + 256^2 B."""
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Segment ids (H x W int, < 256^3) to a COCO panoptic RGB image (H x W x 3 uint8)."""
    ids = ids.astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)


def read_panoptic_png(path: str | Path) -> np.ndarray:
    """Segment ids (H x W int64) of a COCO panoptic PNG (RGB-encoded ids)."""
    return rgb_to_id(read_image(path))


def write_panoptic_png(path: str | Path, ids: np.ndarray) -> None:
    """Write segment ids as a COCO panoptic RGB PNG, atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(id_to_rgb(ids)).save(tmp, format="PNG")
