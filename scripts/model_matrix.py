"""Write the model matrix: every model on every held-out domain, before/after.

    python scripts/make_results.py --model NAME --out docs/results/NAME.md --headlines docs/results/NAME.json
    python scripts/model_matrix.py --rows docs/results/default.json,docs/results/people.json --out docs/model_matrix.md

Builds one row per ``--headlines`` JSON that scripts/make_results.py wrote (same data, seeds and
definitions), or runs the sections itself for ``--models``. The headline figures: CCP selfie/pose boundary IoU and BF1, mask IoU and the do-no-harm share,
DSB2018 mask AP per image type, CamVid mIoU and boundary F, DSB panoptic PQ, and each domain's
stability (refining the ground truth itself).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_results as mr  # noqa: E402  (the sibling script)



def _ba(pair: tuple[float, float]) -> str:
    b, a = pair
    return f"{100 * b:.1f} → **{100 * a:.1f}**"


def row(model: str, h: dict) -> str:
    """One table row; a domain the run did not measure shows as a dash."""
    def get(fn):
        try:
            return fn()
        except KeyError:
            return "-"

    sel = lambda k: _ba((h["ccp coarse_selfie"]["before"][k], h["ccp coarse_selfie"]["after"][k]))  # noqa: E731
    cells = [model, get(lambda: sel("mBIoU")), get(lambda: sel("BF1")), get(lambda: sel("mIoU")),
             get(lambda: f"{100 * h['ccp coarse_selfie']['after']['worse']:.1f}"),
             get(lambda: _ba((h["ccp coarse_pose"]["before"]["mBIoU"], h["ccp coarse_pose"]["after"]["mBIoU"]))),
             get(lambda: f"{100 * h['ccp gt']['after']['mIoU']:.1f}")]
    for t in ("fluorescence", "stained tissue", "brightfield", "all"):
        cells.append(get(lambda: _ba(h[f"dsb {t}"]["AP"])))
    cells += [get(lambda: f"{100 * h['dsb all']['worse']:.1f}"), get(lambda: f"{100 * h['dsb all']['stability']:.1f}")]
    cells += [get(lambda: _ba(h["camvid"]["mIoU"])), get(lambda: _ba(h["camvid"]["BF"])),
              get(lambda: f"{100 * h['camvid']['worse']:.1f}"), get(lambda: f"{100 * h['camvid']['stability']:.1f}")]
    cells += [get(lambda: _ba(h["panoptic dsb"]["PQ"])), get(lambda: _ba(h["panoptic dsb"]["PQb"])),
              get(lambda: _ba(h["panoptic dsb things"]["PQ"])), get(lambda: _ba(h["panoptic dsb things"]["PQb"]))]
    return "| " + " | ".join(cells) + " |"


def merged_headlines(spec: str) -> tuple[str, dict]:
    """A row's model and headline figures from ``a.json`` or ``a.json+b.json`` (runs of one model on
    different sections, merged; a domain in both must have the same figures in both, else an error)."""
    merged: dict = {}
    model = ""
    for path in spec.split("+"):
        data = json.loads(Path(path).read_text())
        model = model or data["model"]
        for key, v in data["headlines"].items():
            figures = {kk: tuple(vv) if isinstance(vv, list) else vv for kk, vv in v.items()}
            if merged.get(key, figures) != figures:
                raise SystemExit(f"{path}: domain {key!r} differs from an earlier file of {spec!r}")
            merged[key] = figures
    return model, merged


HEADER = ("| model | CCP selfie mBIoU | BF1 | mIoU | worse % | CCP pose mBIoU | CCP GT stability mIoU | "
          "DSB AP fluorescence | DSB AP stained | DSB AP brightfield | DSB AP all | DSB worse % | "
          "DSB stability IoU | CamVid mIoU | CamVid BF | CamVid worse % | CamVid stability mIoU | "
          "panoptic PQ | panoptic PQb | panoptic PQ, things over stuff | PQb, things over stuff |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--models", default="", help="run make_results' sections for these models")
    ap.add_argument("--rows", default="", help="comma-separated headline JSONs written by make_results --headlines; "
                    "a.json+b.json merges runs of one model on different sections")
    ap.add_argument("--labels", default="", help="comma-separated row labels for --rows [each JSON's model]")
    ap.add_argument("--out", type=Path, default=Path("docs/model_matrix.md"))
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--move-limit", type=float, default=None)
    ap.add_argument("--min-confidence", type=float, default=None, help="the guard's logit margin [each model's]")
    ap.add_argument("--min-move", type=float, default=None, help="the guard's min_move [each model's]")
    ap.add_argument("--max-change", type=float, default=None, help="the guard's max_change [each model's]")
    ap.add_argument("--min-mask-confidence", type=float, default=None,
                    help="the guard's min_mask_confidence [each model's]")
    args = ap.parse_args()
    mr.SETTINGS.update(engine=args.engine, move_limit=args.move_limit, min_confidence=args.min_confidence,
                       min_move=args.min_move, max_change=args.max_change,
                       min_mask_confidence=args.min_mask_confidence)
    rows = []
    labels = args.labels.split(",") if args.labels else []
    for k, spec in enumerate(p for p in args.rows.split(",") if p):
        model, headlines = merged_headlines(spec)
        rows.append(row(labels[k] if k < len(labels) else model, headlines))
    for model in (m for m in args.models.split(",") if m):
        mr.HEADLINES.clear()
        t = time.time()
        for section in mr.SECTIONS.values():
            section(model, args.data)
        rows.append(row(model, dict(mr.HEADLINES)))
        print(rows[-1], f"({time.time() - t:.0f} s)", flush=True)
    command = shlex.join(["python", "scripts/model_matrix.py"] + sys.argv[1:])  # quoted: labels hold spaces
    lines = ["# Model matrix", "", f"Produced by `{command}` (held-out data, simulated inputs seeded with 0; "
             "definitions as in docs/results.md). Percent; before → **after**. worse: share of photos / nuclei / "
             "(frame, class) segments whose IoU fell by more than 2 points. Stability: the figure after refining "
             "the ground truth itself (100 = untouched).", "", HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
    lines += rows + [""]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
