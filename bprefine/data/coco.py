"""COCO instance results: reading, mask decoding (RLE or polygons), and writing refined entries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from bprefine.data.images import atomic_path


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
        try:
            info = ImageInfo(int(im["id"]), str(im["file_name"]), int(im["height"]), int(im["width"]))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path}: images[{k}] needs id, file_name, height and width") from None
        out[info.id] = info
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
            if not seg or not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in seg):
                raise ValueError("polygons must be lists of at least 3 x,y pairs")
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
        elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
            if [int(v) for v in seg["size"]] != [height, width]:
                raise ValueError(f"RLE size {seg['size']} differs from the image's {[height, width]}")
            counts = seg["counts"]
            if isinstance(counts, list):
                rle = mask_utils.frPyObjects(seg, height, width)
                if sum(counts) != height * width:
                    raise ValueError("uncompressed RLE counts do not add up to height x width")
            else:
                raw = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
                if sum(_rle_string_counts(raw)) != height * width:
                    raise ValueError("RLE counts do not add up to height x width")
                rle = {"size": [height, width], "counts": raw}
        else:
            raise ValueError("expected an RLE dict with 'size' and 'counts', or a list of polygons")
        mask = mask_utils.decode(rle)
    except (TypeError, OverflowError, UnicodeEncodeError) as err:
        raise ValueError(f"malformed segmentation ({err})") from None
    if mask.shape != (height, width):
        raise ValueError(f"malformed segmentation: decoded to {mask.shape}, expected {(height, width)}")
    return mask.astype(bool)


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
