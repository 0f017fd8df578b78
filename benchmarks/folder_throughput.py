"""Images/s when refining a folder of photos: one process with one or all cores, and Ray with 1..N workers.

``bprefine bench`` runs the one-core / all-cores pair on the bundled photos (``bprefine.bench.folder``);
this script adds the shared photos, one process with all threads, and Ray.

    python benchmarks/folder_throughput.py [--data ../shared/data] [--images 104] [--json]

The folder: CCP photos 0701-0804 with their real MediaPipe selfie masks (repeated for more than 104) (the bundled sample photos, repeated,
without the shared data). Each configuration runs in a fresh process; wall time includes model loading,
decoding and writing, as a user sees it. The single-core run is pinned to one CPU (``taskset``) with one
thread, so "1 core" means one core.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bprefine.bench import folder


def _pairs(data: Path | None) -> list[tuple[Path, Path]]:
    if data is not None and (data / "ccp").is_dir():
        ccp = data / "ccp"
        return [(ccp / "images" / f"{s:04d}.jpg", ccp / "coarse_selfie" / f"{s:04d}.png") for s in range(701, 805)]
    return folder.sample_pairs()


def _run(args: list[str], env: dict[str, str], pin: str | None) -> float:
    cmd = ([shutil.which("taskset") or "taskset", "-c", pin] if pin else []) + [sys.executable, "-m", "bprefine.cli", *args]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--images", type=int, default=104)
    ap.add_argument("--ray-workers", default="1,2")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    report: dict = {"images": args.images, "cores": cores}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images, masks = folder.fill_folder(root, _pairs(args.data if args.data.is_dir() else None), args.images)
        base = ["refine", "masks", "--images", str(images), "--masks", str(masks)]
        one = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        report["1 core"] = _run(base + ["--out", str(root / "a")], one, "0")
        report[f"{cores} cores"] = _run(base + ["--out", str(root / "b")], dict(os.environ), None)
        report[f"{cores} processes (--jobs {cores})"] = _run(base + ["--out", str(root / "c"), "--jobs", str(cores)],
                                                             dict(os.environ), None)
        try:
            import ray  # noqa: F401

            for w in (int(v) for v in args.ray_workers.split(",")):
                report[f"ray {w} workers"] = _run(base + ["--out", str(root / f"r{w}"), "--ray", "--workers", str(w)],
                                                  one, None)
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
