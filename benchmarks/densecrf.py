"""bprefine against DenseCRF, image by image, alternating in one process (decode excluded).

    python benchmarks/densecrf.py [--data ../shared/data] [--limit 20] [--engine auto] [--json]

Person photos: CCP 0701-0804 with their real MediaPipe selfie masks (the bundled sample photos when the
shared data is absent). Street frames: CamVid val with simulated output-stride-8 coarse labels (11 classes;
skipped without the shared data). DenseCRF: ``bprefine.densecrf`` (pip install "bprefine[crf]").
Reported: median seconds each, the ratio of medians, and accuracy before/after (boundary IoU for photos,
mIoU for frames) so that speed is read beside what it buys. ``bprefine bench`` runs the same comparison
on the bundled photos and a synthetic street frame.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bprefine import Refiner, densecrf
from bprefine.bench import peers, scenes
from bprefine.data.images import read_image, read_label_map, read_mask
from bprefine.simulate import rng_for, semantic_low_res


def photos(data: Path | None, limit: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    if data is not None and (data / "ccp").is_dir():
        root = data / "ccp"
        stems = [f"{k:04d}" for k in range(701, 805)][:limit]
        return [(read_image(root / "images" / f"{s}.jpg"), read_mask(root / "coarse_selfie" / f"{s}.png"),
                 read_mask(root / "masks" / f"{s}.png")) for s in stems]
    return scenes.sample_photos()


def frames(data: Path | None, limit: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    if data is None or not (data / "camvid").is_dir():
        return []
    root = data / "camvid" / "val"
    out = []
    for p in sorted((root / "images").iterdir())[:limit]:
        gt = read_label_map(root / "labels" / f"{p.stem}.png")
        coarse = semantic_low_res(gt, num_classes=11, rng=rng_for(0, p.name), ignore_index=11)
        out.append((read_image(p), coarse, gt))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--model", default="default")
    ap.add_argument("--nms-threshold", type=float, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not densecrf.available():
        raise SystemExit(densecrf.MISSING)
    data = args.data if args.data.is_dir() else None
    kw = {} if args.nms_threshold is None else {"nms_threshold": args.nms_threshold}
    refiner = Refiner(args.model, engine=args.engine, **kw)
    report = {"engine": refiner.engine.name, "nms_threshold": refiner.nms_threshold,
              "photos": peers.compare_photos(refiner, photos(data, args.limit))}
    street = frames(data, args.limit)
    if street:
        report["camvid_frames"] = peers.compare_frames(refiner, street, 11, 11)
    if args.json:
        print(json.dumps(report))
        return
    print(f"engine {report['engine']}, nms {report['nms_threshold']}")
    for name in ("photos", "camvid_frames"):
        if name in report:
            print(name, json.dumps(report[name]))


if __name__ == "__main__":
    main()
