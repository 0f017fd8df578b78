"""Write the "Do no harm" section of docs/results.md: one model with the guard off and on.

    python scripts/make_results.py --model M --out docs/results/M.md --headlines docs/results/M.json
    python scripts/make_results.py --model M --move-limit 0.1 --min-confidence 1.0 \
        --out docs/results/M_guard.md --headlines docs/results/M_guard.json
    python scripts/guard_table.py --off docs/results/M.json --on docs/results/M_guard.json >> docs/results.md

Both JSONs are the headline figures scripts/make_results.py writes (same data and seeds). A guard keeps
the share of the gain (after - coarse) that it still delivers; "n/a" where refinement without the guard
lost accuracy.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from model_matrix import merged_headlines

GAINS = [  # (row label, headline key, figure)
    ("CCP selfie, mean boundary IoU", "ccp coarse_selfie", "mBIoU"),
    ("CCP selfie, BF1", "ccp coarse_selfie", "BF1"),
    ("CCP pose, mean boundary IoU", "ccp coarse_pose", "mBIoU"),
    ("DSB fluorescence, mask AP", "dsb fluorescence", "AP"),
    ("DSB stained tissue, mask AP", "dsb stained tissue", "AP"),
    ("DSB brightfield, mask AP", "dsb brightfield", "AP"),
    ("DSB all, mask AP", "dsb all", "AP"),
    ("CamVid, mIoU", "camvid", "mIoU"),
    ("CamVid, boundary F", "camvid", "BF"),
    ("DSB panoptic, PQ", "panoptic dsb", "PQ"),
]
HARM = [  # (row label, headline key)
    ("CCP selfie (photos; stability: mIoU of refined ground truth)", "ccp coarse_selfie"),
    ("DSB fluorescence (nuclei; stability: mean IoU)", "dsb fluorescence"),
    ("DSB stained tissue (nuclei; stability: mean IoU)", "dsb stained tissue"),
    ("DSB brightfield (nuclei; stability: mean IoU)", "dsb brightfield"),
    ("DSB all (nuclei; stability: mean IoU)", "dsb all"),
    ("CamVid ((frame, class) segments; stability: mIoU)", "camvid"),
]


def _pair(h: dict, key: str, figure: str) -> tuple[float, float]:
    entry = h[key]
    if key.startswith("ccp"):
        return entry["before"][figure], entry["after"][figure]
    return tuple(entry[figure])


def _worse_and_stability(h: dict, key: str) -> tuple[float, float]:
    if key.startswith("ccp"):
        return h[key]["after"]["worse"], h["ccp gt"]["after"]["mIoU"]
    return h[key]["worse"], h[key]["stability"]


def table(off: dict, on: dict) -> list[str]:
    lines = ["| domain, metric | coarse | refined, guard off | refined, guard on | gain kept |", "|---|---|---|---|---|"]
    for label, key, figure in GAINS:
        if key not in off or key not in on:
            continue
        (b, a), (_, g) = _pair(off, key, figure), _pair(on, key, figure)
        kept = "n/a" if a <= b else f"{100 * (g - b) / (a - b):.0f}%" + (" (gains more)" if g > a else "")
        lines.append(f"| {label} | {100 * b:.2f} | {100 * a:.2f} | {100 * g:.2f} | {kept} |")
    lines += ["", "| domain | worse, off | worse, on | stability, off | stability, on |", "|---|---|---|---|---|"]
    for label, key in HARM:
        if key not in off or key not in on:
            continue
        (w0, s0), (w1, s1) = _worse_and_stability(off, key), _worse_and_stability(on, key)
        lines.append(f"| {label} | {100 * w0:.2f} | {100 * w1:.2f} | {100 * s0:.2f} | {100 * s1:.2f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--off", required=True, help="headlines without the guard (a.json or a.json+b.json)")
    ap.add_argument("--on", required=True, help="headlines with the guard (a.json or a.json+b.json)")
    ap.add_argument("--title", default="Do no harm: the guard, off and on")
    args = ap.parse_args()
    (_, off), (_, on) = merged_headlines(args.off), merged_headlines(args.on)
    off_cmd, on_cmd = (_commands(spec) for spec in (args.off, args.on))
    print("\n".join([f"## {args.title}", "",
                     f"Guard off: {off_cmd}; guard on: {on_cmd} (tables: `python scripts/guard_table.py "
                     f"--off {args.off} --on {args.on}`).", ""]
                    + table(off, on)))


def _commands(spec: str) -> str:
    """The make_results commands (in backticks, joined by "then") inside the "Produced by `...`" lines of
    the headline JSONs of ``spec``."""
    found = []
    for path in spec.split("+"):
        line = json.loads(Path(path).read_text())["command"]
        match = re.search(r"`(python scripts/make_results\.py[^`]*)`", line)
        found.append(f"`{match.group(1) if match else line}`")
    return " then ".join(found)


if __name__ == "__main__":
    main()
