"""Images/s of ``bprefine refine masks`` over a folder, as a user runs it: one core against all cores.

Each run is a fresh process, so wall time includes start-up, model loading, decoding and writing. The
single-core run is pinned to one CPU (``taskset`` where it exists) with one thread; the all-core run is
``--jobs N`` worker processes, N = the CPUs this process may use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

Pair = tuple[Path, Path]  # (image file, coarse mask file)


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity where the OS reports it)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return list(range(os.cpu_count() or 1))


def sample_pairs() -> list[Pair]:
    """The bundled person photos and their real coarse masks."""
    from bprefine.demo import SAMPLES

    return [(p, SAMPLES / "coarse" / f"{p.stem}.png") for p in sorted((SAMPLES / "images").glob("*.jpg"))]


def fill_folder(root: Path, pairs: Sequence[Pair], n: int) -> tuple[Path, Path]:
    """``root/images`` and ``root/masks`` holding ``n`` pairs, cycling through ``pairs`` under new names."""
    images, masks = root / "images", root / "masks"
    images.mkdir()
    masks.mkdir()
    for k in range(n):
        image, mask = pairs[k % len(pairs)]
        shutil.copy(image, images / f"{k:05d}{image.suffix.lower()}")
        shutil.copy(mask, masks / f"{k:05d}.png")
    return images, masks


def time_cli(args: list[str], *, one_thread: bool = False, pin: int | None = None) -> float:
    """Wall seconds of ``bprefine ARGS`` in a fresh process; ``one_thread`` limits its math libraries to one
    thread, ``pin`` binds it to that CPU (``taskset``, where it exists)."""
    env = dict(os.environ)
    if one_thread:
        env |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    prefix = ["taskset", "-c", str(pin)] if pin is not None and shutil.which("taskset") else []
    t = time.perf_counter()
    res = subprocess.run(prefix + [sys.executable, "-m", "bprefine.cli", *args], capture_output=True, text=True,
                         env=env)
    if res.returncode != 0:
        raise RuntimeError(f"bprefine {' '.join(args)} failed: {res.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - t


def folder_throughput(pairs: Sequence[Pair], n: int, *, model: str = "default", engine: str = "auto") -> dict:
    """Seconds and images/s for ``n`` images on one core and with ``--jobs`` = all usable CPUs."""
    cpus = usable_cpus()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images, masks = fill_folder(root, pairs, n)
        base = ["refine", "masks", "--images", str(images), "--masks", str(masks), "--model", model, "--engine", engine]
        runs = {"1 core": time_cli(base + ["--out", str(root / "one")], one_thread=True, pin=cpus[0]),
                f"{len(cpus)} cores (--jobs {len(cpus)})": time_cli(
                    base + ["--out", str(root / "all"), "--jobs", str(len(cpus))])}
    rows = {k: {"seconds": round(v, 2), "images_per_s": round(n / v, 2)} for k, v in runs.items()}
    single = rows["1 core"]["images_per_s"]
    return {"images": n, "cpus": len(cpus), "runs": rows,
            "speedup_over_1_core": {k: round(v["images_per_s"] / single, 2) for k, v in rows.items()}}
