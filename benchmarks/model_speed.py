"""Seconds per image of several models on held-out images, alternating model by model.

    python benchmarks/model_speed.py --models nuclei,default [--domain dsb|ccp] [--data ../shared/data]
        [--limit 20] [--engine auto]

A model is named as ``Refiner`` takes it, optionally with settings: ``NAME[+flip][@NMS][%GUARD=VALUE...]``,
e.g. ``people,people+flip,people@0.25,default%max_change=0`` (test-time flip; another NMS threshold than the
default; a numeric guard setting of ``Refiner`` other than the model's: ``min_confidence``, ``min_move``,
``max_change``).

dsb: each model refines the ground-truth instances of the same held-out DSB2018 images (positions 200-299;
the time depends on the boxes, not on how good the masks are); ccp: the real selfie masks of the held-out
CCP photos (0701-0804). Medians over the images, the models taking turns on every image so that they share
the machine's state. Prints boxes per image too, since a model's patch size decides how many boxes an
image needs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from itertools import islice
from pathlib import Path

import numpy as np

from bprefine import Refiner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_results import ccp_items, dsb_instances, dsb_items, parse_settings  # noqa: E402  (the held-out splits, read one way)


def held_out_images(data: Path, limit: int, domain: str = "dsb") -> list[tuple[np.ndarray, np.ndarray]]:
    """(image H x W x 3 uint8, instances K x H x W bool) of the first ``limit`` held-out images of the
    domain, read as scripts/make_results.py reads them."""
    if domain == "ccp":
        return [(image, coarse[None]) for _, image, _, coarse in islice(ccp_items(data, "coarse_selfie"), limit)]
    return [dsb_instances(data, entry) for entry in dsb_items(data, 200, 300)[:limit]]


GUARDS = ("min_confidence", "min_move", "max_change", "min_mask_confidence")  # the numeric guard settings a spec may override


def make_refiner(spec: str, engine: str) -> Refiner:
    """A Refiner from ``NAME[+flip][@NMS][%GUARD=VALUE...]`` (see the module docstring)."""
    spec, *guards = spec.split("%")
    settings = parse_settings(guards, f"model spec {spec!r}", name="GUARD", keys=GUARDS)
    spec, _, nms = spec.partition("@")
    name, flip = (spec[: -len("+flip")], True) if spec.endswith("+flip") else (spec, False)
    if nms:
        settings["nms_threshold"] = float(nms)
    return Refiner(name, engine=engine, flip=flip, **settings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="nuclei,default")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--domain", choices=("dsb", "ccp"), default="dsb")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--engine", default="auto")
    args = ap.parse_args()
    names = args.models.split(",")
    try:
        refiners = {n: make_refiner(n, args.engine) for n in names}
    except ValueError as err:  # a malformed spec: one line, not a traceback
        ap.error(str(err))
    images = held_out_images(args.data, args.limit, args.domain)
    times: dict[str, list[float]] = {n: [] for n in names}
    boxes: dict[str, list[int]] = {n: [] for n in names}
    for image, masks in images:
        for n, r in refiners.items():
            t = time.perf_counter()
            r.refine_instances(image, masks)
            times[n].append(time.perf_counter() - t)
            boxes[n].append(sum(len(r.boxes_for(m)) for m in masks))
    for n, r in refiners.items():
        print(f"{n}: engine {r.engine.name}, patch {r.patch_size}, {statistics.mean(boxes[n]):.1f} boxes/image, "
              f"median {statistics.median(times[n]):.3f} s/image over {len(images)} images")


if __name__ == "__main__":
    main()
