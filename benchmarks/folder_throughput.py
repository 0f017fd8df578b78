"""Images/s when refining a folder of photos: one process with one or all cores, and Ray with 1..N workers.

``bprefine bench`` runs the one-core / all-cores pair on the bundled photos (``bprefine.bench.folder``);
this script adds the shared photos, one process with all threads, and Ray.

    python benchmarks/folder_throughput.py [--data ../shared/data] [--images 104] [--json]

The folder: CCP photos 0701-0804 with their real MediaPipe selfie masks, repeated for more than 104 (the
bundled sample photos, repeated, without the shared data). Each configuration runs in a fresh process; wall
time includes model loading, decoding and writing, as a user sees it. The single-core run is pinned to one CPU (``taskset``) with one
thread, so "1 core" means one core.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bprefine.bench import folder
from bprefine.bench.folder import time_cli


def _pairs(data: Path | None) -> list[tuple[Path, Path]]:
    if data is not None and (data / "ccp").is_dir():
        ccp = data / "ccp"
        return [(ccp / "images" / f"{s:04d}.jpg", ccp / "coarse_selfie" / f"{s:04d}.png") for s in range(701, 805)]
    return folder.sample_pairs()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--images", type=int, default=104)
    ap.add_argument("--ray-workers", default="1,2")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cpus = folder.usable_cpus()
    cores = len(cpus)
    report: dict = {"images": args.images, "cores": cores}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images, masks = folder.fill_folder(root, _pairs(args.data if args.data.is_dir() else None), args.images)
        base = ["refine", "masks", "--images", str(images), "--masks", str(masks)]
        report["1 core"] = time_cli(base + ["--out", str(root / "a")], one_thread=True, pin=cpus[0])
        report[f"{cores} cores"] = time_cli(base + ["--out", str(root / "b")])
        report[f"{cores} processes (--jobs {cores})"] = time_cli(base + ["--out", str(root / "c"),
                                                                         "--jobs", str(cores)])
        try:
            import ray  # noqa: F401

            for w in (int(v) for v in args.ray_workers.split(",")):
                ray_args = ["--out", str(root / f"r{w}"), "--ray", "--workers", str(w)]
                report[f"ray {w} workers"] = time_cli(base + ray_args, one_thread=True)
        except ImportError:
            pass
    rows = {k: {"seconds": round(v, 1), "images_per_s": round(args.images / v, 2)}
            for k, v in report.items() if isinstance(v, float)}
    single = rows["1 core"]["images_per_s"]
    out = {"images": args.images, "cores": cores, "runs": rows,
           "speedup_over_1_core": {k: round(v["images_per_s"] / single, 2) for k, v in rows.items()}}
    if args.json:
        print(json.dumps(out))
        return
    for k, v in rows.items():
        print(f"{k:<16} {v['seconds']:>7.1f} s  {v['images_per_s']:>6.2f} images/s  "
              f"x{out['speedup_over_1_core'][k]:.2f}")


if __name__ == "__main__":
    main()
