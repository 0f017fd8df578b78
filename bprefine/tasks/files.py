"""Refinement of files on disk, shared by the command line, its worker processes and the Ray actors.

- ``refine_mask_file``: one image and its mask PNG in, the refined 0/255 PNG out (atomically).
- ``refine_coco_results``: COCO instance results of a folder of images in, refined results out.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from bprefine.data.coco import ImageInfo, decode_segmentation, image_id_of, refined_entry
from bprefine.data.folders import check_same_size
from bprefine.data.images import read_image, read_mask, write_mask

if TYPE_CHECKING:
    from bprefine.refine import Refiner


def read_pair(image_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An image (H x W x 3 uint8) and its mask (H x W bool), which must have the image's size."""
    image, mask = read_image(image_path), read_mask(mask_path)
    check_same_size(image, mask, image_path, mask_path)
    return image, mask


def refine_mask_file(refiner: "Refiner", image_path: Path, mask_path: Path, out_path: Path) -> None:
    """Refine one mask PNG of one image and write the result to ``out_path`` (0/255 PNG, atomically)."""
    image, mask = read_pair(Path(image_path), Path(mask_path))
    write_mask(out_path, refiner.refine(image, mask))


def refine_coco_results(refiner: "Refiner", images_dir: Path, results: list[dict], infos: dict[int, ImageInfo],
                        pred: Path, progress: Callable[[Iterable, str], Iterable] | None = None) -> list[dict[str, Any]]:
    """COCO results refined image by image and returned in their order, segmentation, bbox and area
    recomputed; ``pred`` names the results in errors. Each image's instances are refined as crops around
    their boxes, so memory follows the boxes, not instances x height x width."""
    by_image: dict[int, list[int]] = {}
    for k, entry in enumerate(results):
        by_image.setdefault(image_id_of(entry, f"{pred}: entry {k}", infos), []).append(k)
    refined: list[dict[str, Any] | None] = [None] * len(results)
    items = progress(by_image.items(), "images") if progress else by_image.items()
    for image_id, idx in items:
        info = infos[image_id]
        image = _load_image(images_dir / info.file_name, info)
        crops = _decode_crops(results, idx, info, pred, refiner)  # memory: the crops, not N full masks
        for k, crop, new in zip(idx, crops, refiner.refine_crops(image, crops)):
            refined[k] = refined_entry(results[k], _paste(new, crop[1], (info.height, info.width)))
    return refined


def _load_image(path: Path, info: ImageInfo) -> np.ndarray:
    image = read_image(path)
    if image.shape[:2] != (info.height, info.width):
        raise ValueError(f"{path}: image is {image.shape[0]}x{image.shape[1]} (HxW) but the image info says "
                         f"{info.height}x{info.width}")
    return image


def _decode_crops(results: list[dict], idx: list[int], info: ImageInfo, pred: Path, refiner: "Refiner"
                  ) -> list[tuple[np.ndarray, tuple[int, int]]]:
    crops = []
    for k in idx:
        try:
            mask = decode_segmentation(results[k]["segmentation"], info.height, info.width)
        except ValueError as err:
            raise ValueError(f"{pred}: entry {k} (image {info.id}): {err}") from None
        crops.append(refiner.crop_around(mask))
    return crops


def _paste(crop: np.ndarray, origin: tuple[int, int], hw: tuple[int, int]) -> np.ndarray:
    """A full-size H x W bool mask holding ``crop`` at ``origin`` (x0, y0)."""
    full = np.zeros(hw, bool)
    x0, y0 = origin
    full[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
    return full
