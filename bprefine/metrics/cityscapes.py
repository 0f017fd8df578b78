"""Cityscapes-style instance AP through the optional ``cityscapesscripts`` package.

``pip install "bprefine[cityscapes]"``. Predictions use Cityscapes' own format: per image a text file
``<city>_<seq>_<frame>_pred.txt`` with one line per instance, ``<mask png> <labelID> <confidence>``,
the mask PNG being nonzero on the instance. ``write_cityscapes_predictions`` writes that format.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image


@contextmanager
def _inside(folder: str) -> Iterator[None]:
    """The reference code writes matches.json into the working directory: keep it out of the user's."""
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def _write_json(data, file_name: str) -> None:
    def default(o):
        return o.item() if isinstance(o, np.generic) else o.__dict__

    with open(file_name, "w") as f:
        json.dump(data, f, default=default)


@contextmanager
def _numpy_compat(cs) -> Iterator[None]:
    """cityscapesscripts 2.x predates NumPy 2: it calls np.in1d (removed; np.isin is the same function)
    and its JSON writer cannot serialise NumPy scalars. Both are patched for the call only."""
    added = not hasattr(np, "in1d")
    if added:
        np.in1d = np.isin
    writer = cs.writeDict2JSON
    cs.writeDict2JSON = _write_json
    try:
        yield
    finally:
        cs.writeDict2JSON = writer
        if added:
            del np.in1d


def write_cityscapes_predictions(out_dir: str | Path, stem: str, masks: np.ndarray, label_ids: list[int],
                                 scores: list[float]) -> Path:
    """One image's instances in Cityscapes' result format; returns the text file's path."""
    out = Path(out_dir)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    lines = []
    for k, (m, label, score) in enumerate(zip(masks, label_ids, scores)):
        name = f"masks/{stem}_{k:04d}.png"
        Image.fromarray(m.astype(np.uint8) * 255).save(out / name)
        lines.append(f"{name} {int(label)} {float(score):.6f}")
    txt = out / f"{stem}_pred.txt"
    txt.write_text("\n".join(lines) + ("\n" if lines else ""))
    return txt


def evaluate_cityscapes_instances(gt_dir: str | Path, pred_dir: str | Path) -> dict[str, float]:
    """Cityscapes AP and AP50 over every ``*_gtFine_instanceIds.png`` under ``gt_dir``."""
    try:
        from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as cs
    except ImportError:
        raise ValueError("Cityscapes AP needs the cityscapes extra: pip install 'bprefine[cityscapes]'") from None
    gts = sorted(str(p) for p in Path(gt_dir).rglob("*_gtFine_instanceIds.png"))
    if not gts:
        raise FileNotFoundError(f"{gt_dir}: no *_gtFine_instanceIds.png files found")
    pred_dir = Path(pred_dir).resolve()
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"{pred_dir}: directory not found")
    with tempfile.TemporaryDirectory() as tmp, _inside(tmp), _numpy_compat(cs):
        args = cs.args
        args.predictionPath, args.predictionWalk = str(pred_dir), None
        args.gtInstancesFile = os.path.join(tmp, "gtInstances.json")
        args.exportFile = os.path.join(tmp, "result.json")
        args.quiet, args.JSONOutput, args.colorized, args.csv = True, False, False, False
        try:
            preds = [cs.getPrediction(g, args) for g in gts]
            result = cs.evaluateImgLists(preds, [os.path.abspath(g) for g in gts], args)
        except SystemExit:
            raise ValueError(f"{pred_dir}: cityscapesscripts could not evaluate these predictions") from None
    return {"AP": float(result["averages"]["allAp"]), "AP50": float(result["averages"]["allAp50%"])}
