"""COCO instance results: reading, mask decoding (RLE or polygons), and writing refined entries."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from bprefine.data.images import atomic_path, safe_name


@dataclass(frozen=True)
class ImageInfo:
    id: int
    file_name: str
    height: int
    width: int


def load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: malformed JSON ({err})") from None


def load_image_info(path: str | Path) -> dict[int, ImageInfo]:
    """``images`` of any COCO JSON (ground truth or images only), keyed by id."""
    data = load_json(path)
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise ValueError(f"{path}: expected a COCO JSON object with an 'images' list")
    out: dict[int, ImageInfo] = {}
    for k, im in enumerate(images):
        where = f"{path}: images[{k}]"
        ok = isinstance(im, dict) and _is_int(im.get("id")) and all(
            _is_int(im.get(key)) and im[key] > 0 for key in ("height", "width"))
        if not ok:
            raise ValueError(f"{where} needs an integer id, a file_name and positive integer height and width")
        if im["id"] in out:
            raise ValueError(f"{where}: image id {im['id']} appears twice")
        out[im["id"]] = ImageInfo(im["id"], safe_name(im.get("file_name"), where), im["height"], im["width"])
    return out


def load_results(path: str | Path) -> list[dict[str, Any]]:
    """A COCO results list: dicts with at least ``image_id`` and ``segmentation``."""
    data = load_json(path)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of COCO results")
    for k, entry in enumerate(data):
        if not isinstance(entry, dict) or "image_id" not in entry or "segmentation" not in entry:
            raise ValueError(f"{path}: entry {k} needs 'image_id' and 'segmentation'")
    return data


def decode_segmentation(seg: Any, height: int, width: int) -> np.ndarray:
    """RLE (compressed or not) or polygon ``segmentation`` as an H x W bool mask."""
    try:
        if isinstance(seg, list):  # polygons
            check_polygons(seg, height, width)
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
        elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
            size = seg["size"]
            if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
                raise ValueError(f"RLE size must be [height, width] integers, got {size!r}")
            if list(size) != [height, width]:
                raise ValueError(f"RLE size {seg['size']} differs from the image's {[height, width]}")
            counts = seg["counts"]
            if isinstance(counts, list):
                if not all(_is_int(c) and c >= 0 for c in counts):
                    raise ValueError("uncompressed RLE counts must be non-negative integers")
                if sum(counts) != height * width:
                    raise ValueError("uncompressed RLE counts do not add up to height x width")
                rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
            elif isinstance(counts, (str, bytes)):
                raw = counts.encode("ascii") if isinstance(counts, str) else counts
                if sum(_rle_string_counts(raw)) != height * width:
                    raise ValueError("RLE counts do not add up to height x width")
                rle = {"size": [height, width], "counts": raw}
            else:
                raise ValueError(f"RLE counts must be a string or a list of integers, got {type(counts).__name__}")
        else:
            raise ValueError("expected an RLE dict with 'size' and 'counts', or a list of polygons")
        mask = mask_utils.decode(rle)
    except (TypeError, OverflowError, UnicodeEncodeError, IndexError, KeyError, AttributeError) as err:
        raise ValueError(f"malformed segmentation ({err})") from None
    if mask.shape != (height, width):
        raise ValueError(f"malformed segmentation: decoded to {mask.shape}, expected {(height, width)}")
    return mask.astype(bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_polygons(seg: list, height: int, width: int) -> None:
    """Polygons as COCO stores them: lists of at least 3 finite (x, y) pairs, vertices near the image.

    Vertices may lie outside the image (they are clipped) but not absurdly far: pycocotools rasterises
    every edge at 5x resolution in C, so coordinates like 1e9 would exhaust memory or crash it.
    """
    if not seg or not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in seg):
        raise ValueError("polygons must be lists of at least 3 x,y pairs")
    bound = 4 * max(height, width, 1) + 64
    for p in seg:
        if not all(_is_number(v) and -bound <= v <= bound for v in p):
            raise ValueError(f"polygon coordinates must be finite numbers within {bound} px of the image")


def _rle_string_counts(raw: bytes) -> list[int]:
    """Run lengths of COCO's compressed RLE string, checked before pycocotools' unchecked C decoder."""
    counts: list[int] = []
    p = 0
    while p < len(raw):
        x, k, more = 0, 0, True
        while more:
            if p >= len(raw) or not 48 <= raw[p] < 48 + 64:
                raise ValueError("corrupt compressed RLE string")
            c = raw[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        if x < 0:
            raise ValueError("corrupt compressed RLE string (negative run)")
        counts.append(x)
    return counts


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """Compressed RLE with ``counts`` as a str, as COCO results carry it."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def refined_entry(entry: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    """``entry`` with its segmentation replaced by ``mask`` and ``bbox``/``area`` recomputed."""
    rle = encode_mask(mask)
    raw = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    out = dict(entry)
    out["segmentation"] = rle
    out["bbox"] = [float(v) for v in mask_utils.toBbox(raw)]
    out["area"] = float(mask_utils.area(raw))
    return out


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data))


def image_id_of(entry: dict, where: str, known: dict[int, Any]) -> int:
    """An entry's ``image_id``: an integer that ``known`` lists, else a ValueError naming ``where``."""
    image_id = entry.get("image_id")
    if not _is_int(image_id):
        raise ValueError(f"{where}: image_id must be an integer, got {image_id!r}")
    if image_id not in known:
        raise ValueError(f"{where}: image_id {image_id} is not in the image list")
    return image_id


def _category_ids(data: dict, path: Path) -> set[int]:
    cats = data.get("categories")
    if not isinstance(cats, list) or not cats:
        raise ValueError(f"{path}: ground truth needs a non-empty 'categories' list")
    ids = set()
    for k, c in enumerate(cats):
        if not isinstance(c, dict) or not _is_int(c.get("id")):
            raise ValueError(f"{path}: categories[{k}] needs an integer 'id'")
        ids.add(c["id"])
    return ids


def load_ground_truth(path: str | Path) -> dict[str, Any]:
    """A COCO instance ground-truth JSON, checked so that pycocotools never sees malformed input.

    Images need integer ids, file names and sizes; categories integer ids; annotations an integer id,
    a known image and category, and a valid segmentation (polygons or RLE of the image's size).
    """
    path = Path(path)
    infos = load_image_info(path)
    data = load_json(path)
    cats = _category_ids(data, path)
    anns = data.get("annotations", [])
    if not isinstance(anns, list):
        raise ValueError(f"{path}: 'annotations' must be a list")
    ids: set[int] = set()
    for k, a in enumerate(anns):
        where = f"{path}: annotations[{k}]"
        if not isinstance(a, dict) or not _is_int(a.get("id")) or a["id"] in ids:
            raise ValueError(f"{where} needs a unique integer 'id'")
        ids.add(a["id"])
        info = infos[image_id_of(a, where, infos)]
        if a.get("category_id") not in cats:
            raise ValueError(f"{where}: category_id {a.get('category_id')!r} is not in 'categories'")
        try:
            mask = decode_segmentation(a.get("segmentation"), info.height, info.width)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        if "area" not in a:
            a["area"] = float(mask.sum())
        if not _is_number(a.get("area")):
            raise ValueError(f"{where}: area must be a number, got {a.get('area')!r}")
    return data


def checked_results(results: list[dict], infos: dict[int, ImageInfo], path: str | Path) -> list[dict[str, Any]]:
    """COCO results ready for pycocotools: image ids known, scores finite, segmentations as valid RLE
    (polygons and uncompressed RLE are decoded and re-encoded; bbox and area recomputed)."""
    out = []
    for k, entry in enumerate(results):
        where = f"{path}: entry {k}"
        info = infos[image_id_of(entry, where, infos)]
        if not _is_int(entry.get("category_id")):
            raise ValueError(f"{where}: category_id must be an integer, got {entry.get('category_id')!r}")
        if not _is_number(entry.get("score", 1.0)):
            raise ValueError(f"{where}: score must be a finite number, got {entry.get('score')!r}")
        try:
            mask = decode_segmentation(entry["segmentation"], info.height, info.width)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        out.append(refined_entry(dict(entry, score=float(entry.get("score", 1.0))), mask))
    return out
