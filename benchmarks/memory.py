"""Peak memory of the command line on an 8000 x 8000 image (``ru_maxrss`` of the child process).

    python benchmarks/memory.py [--size 8000] [--instances 40] [--json]

Two runs on one synthetic photo-like image: ``refine instances`` with ``--instances`` COCO masks (sizes
from 100 px to a third of the image), and ``refine masks`` with one large mask (half the image).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from bprefine.data.coco import encode_mask


def _scene(size: int, n: int, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
    image = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    masks = []
    for _ in range(n):
        m = np.zeros((size, size), np.uint8)
        r = int(rng.uniform(50, size / 6))
        c = rng.integers(r, size - r, 2)
        cv2.ellipse(m, (int(c[0]), int(c[1])), (r, int(r * rng.uniform(0.5, 1))), float(rng.uniform(0, 180)),
                    0, 360, 1, -1)
        masks.append(m.astype(bool))
    return image, masks


# VmHWM (the peak resident set of this address space) starts afresh at exec, unlike ru_maxrss, which a
# child inherits from the parent it was forked from.
_MEASURED = ("import sys\n"
             "from bprefine.cli import main\n"
             "try:\n    main(sys.argv[1:], standalone_mode=False)\n"
             "finally:\n    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
             "    print('PEAK_KB', hwm.split()[1], file=sys.stderr)\n")


def _peak_mb(args: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of ``bprefine ARGS`` in a fresh process that reports its own peak."""
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MEASURED, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    kb = int(done.stderr.split("PEAK_KB")[-1].split()[0])
    return kb / 1024.0, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=8000)
    ap.add_argument("--instances", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        (root / "masks").mkdir()
        image, masks = _scene(args.size, args.instances)
        Image.fromarray(image).save(root / "images" / "big.jpg", quality=90)
        info = {"images": [{"id": 1, "file_name": "big.jpg", "height": args.size, "width": args.size}]}
        (root / "info.json").write_text(json.dumps(info))
        pred = [{"image_id": 1, "category_id": 1, "score": 1.0, "segmentation": encode_mask(m)} for m in masks]
        (root / "pred.json").write_text(json.dumps(pred))
        large = np.zeros((args.size, args.size), np.uint8)
        q = args.size // 4
        cv2.circle(large, (2 * q, 2 * q), q + q // 2, 255, -1)
        Image.fromarray(large).save(root / "masks" / "big.png")
        del image, masks, pred, large
        rows["instances"] = _peak_mb(["refine", "instances", "--images", str(root / "images"), "--pred",
                                      str(root / "pred.json"), "--image-info", str(root / "info.json"),
                                      "--out", str(root / "out.json")])
        rows["masks (one large mask)"] = _peak_mb(["refine", "masks", "--images", str(root / "images"), "--masks",
                                                   str(root / "masks"), "--out", str(root / "out")])
    out = {k: {"peak_mb": round(v[0]), "wall_s": round(v[1], 1)} for k, v in rows.items()}
    out["image_side"], out["instance_count"] = args.size, args.instances
    print(json.dumps(out) if args.json else
          "\n".join(f"refine {k}: peak {v['peak_mb']} MB, {v['wall_s']} s" for k, v in out.items() if isinstance(v, dict)))


if __name__ == "__main__":
    main()
