"""``bprefine demo``: refine the bundled sample photos and show what changed."""

from __future__ import annotations

from pathlib import Path

import click
import cv2
import numpy as np
from PIL import Image

from bprefine.data.images import atomic_path, read_image, read_mask
from bprefine.metrics import boundary_f, boundary_iou, mask_iou
from bprefine.refine import Refiner

SAMPLES = Path(__file__).parent / "samples" / "photos"
METRICS = {"IoU": mask_iou, "BIoU": boundary_iou,
           "BF@1px": lambda p, g: boundary_f(p, g, tolerance=1),
           "BF@3px": lambda p, g: boundary_f(p, g, tolerance=3)}


def overlay(image: np.ndarray, mask: np.ndarray, gt: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """The image with ``mask`` tinted in ``colour`` and the ground-truth contour drawn in red."""
    out = image.astype(np.float32)
    out[mask] = 0.55 * out[mask] + 0.45 * np.asarray(colour, np.float32)
    out = out.astype(np.uint8)
    contours, _ = cv2.findContours(gt.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, (255, 0, 0), 1)
    return out


def before_after_panel(image: np.ndarray, coarse: np.ndarray, refined: np.ndarray, gt: np.ndarray) -> np.ndarray:
    gap = np.full((image.shape[0], 8, 3), 255, np.uint8)
    return np.concatenate([overlay(image, coarse, gt, (0, 90, 255)), gap, overlay(image, refined, gt, (0, 200, 80))],
                          axis=1)


def run_demo(out: Path, *, model: str = "default") -> dict[str, dict[str, float]]:
    refiner = Refiner(model)
    prov = refiner.config.provenance
    click.echo(f"model: {model} ({refiner.config.preset}, input {refiner.config.input_size}, "
               f"patch {refiner.config.patch_size}); trained on: {prov.get('data', 'unknown')}")
    click.echo("data: 4 CCP photos (not used in training) with real MediaPipe selfie masks as coarse input")
    out.mkdir(parents=True, exist_ok=True)
    scores: dict[str, list[tuple[float, float]]] = {k: [] for k in METRICS}
    click.echo(f"{'image':<8}" + "".join(f"{k:>16}" for k in METRICS))
    for path in sorted((SAMPLES / "images").glob("*.jpg")):
        image = read_image(path)
        coarse, gt = read_mask(SAMPLES / "coarse" / f"{path.stem}.png"), read_mask(SAMPLES / "gt" / f"{path.stem}.png")
        refined = refiner.refine(image, coarse)
        row = f"{path.stem:<8}"
        for name, fn in METRICS.items():
            before, after = fn(coarse, gt), fn(refined, gt)
            scores[name].append((before, after))
            row += f"{before:>8.3f}{after:>8.3f}"
        click.echo(row)
        with atomic_path(out / f"{path.stem}_before_after.png") as tmp:
            Image.fromarray(before_after_panel(image, coarse, refined, gt)).save(tmp, format="PNG")
    summary = {k: {"before": float(np.mean([b for b, _ in v])), "after": float(np.mean([a for _, a in v]))}
               for k, v in scores.items()}
    click.echo(f"{'mean':<8}" + "".join(f"{s['before']:>8.3f}{s['after']:>8.3f}" for s in summary.values()))
    click.echo("(each metric: before, after refinement; BIoU band = 2% of the image diagonal)")
    click.echo(f"overlays (left: coarse in blue, right: refined in green, ground truth contour in red): {out.resolve()}")
    return summary
