"""Train the bundled default model on the shared real data.

Data mix (patches at NMS 0.25, patch 64, input 128):
- CCP 0001-0700 with the real MediaPipe selfie masks as coarse input (0701-0804 are held out);
- CCP 0001-0700 with simulated low-resolution coarse masks (strides 2-16, so near-perfect inputs too);
- DSB2018 train (first 200 images) and CamVid train (first 200 frames, one mask per class, border
  rule of section 3.3) with simulated coarse masks.

    python scripts/train_default.py --data ../shared/data --out runs/default --iterations 3000
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from bprefine.data.images import read_image, read_label_map, read_mask
from bprefine.model import ModelConfig
from bprefine.simulate import low_res_mask
from bprefine.train import PatchSet, TrainConfig, patches_from_triple, train

STRIDES = (2, 4, 8, 16)


def ccp_sets(root: Path, rng: np.random.Generator, ids: range) -> tuple[PatchSet, PatchSet]:
    real, sim = [], []
    for i in ids:
        name = f"{i:04d}"
        image = read_image(root / "images" / f"{name}.jpg")
        gt = read_mask(root / "masks" / f"{name}.png")
        coarse = read_mask(root / "coarse_selfie" / f"{name}.png")
        real.append(patches_from_triple(image, gt, coarse))
        sim_coarse = low_res_mask(gt, rng=rng, stride=int(rng.choice(STRIDES)))
        sim.append(patches_from_triple(image, gt, sim_coarse))
    return PatchSet.concat(real), PatchSet.concat(sim)


def dsb_set(root: Path, rng: np.random.Generator, limit: int) -> PatchSet:
    out = []
    for entry in json.loads((root / "index.json").read_text())[:limit]:
        image = read_image(root / "images" / f"{entry['id']}.png")
        ids = read_label_map(root / "instances" / f"{entry['id']}.png")
        for k in np.unique(ids)[1:]:
            gt = ids == k
            coarse = low_res_mask(gt, rng=rng, stride=int(rng.choice((2, 4))), shift=0.3)
            out.append(patches_from_triple(image, gt, coarse))
    return PatchSet.concat(out)


def camvid_set(root: Path, rng: np.random.Generator, limit: int) -> PatchSet:
    out = []
    for path in sorted((root / "images").glob("*.jpg"))[:limit]:
        image = read_image(path)
        labels = read_label_map(root / "labels" / f"{path.stem}.png")
        for c in range(11):
            gt = labels == c
            if gt.sum() < 16:
                continue
            coarse = low_res_mask(gt, rng=rng, stride=int(rng.choice((4, 8))))
            out.append(patches_from_triple(image, gt, coarse, drop_border_full=True))
    return PatchSet.concat(out)


def subsample(ps: PatchSet, n: int, rng: np.random.Generator) -> PatchSet:
    idx = rng.choice(len(ps), size=min(n, len(ps)), replace=False)
    return PatchSet(ps.images[idx], ps.coarse[idx], ps.gt[idx])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("runs/default"))
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    real, sim = ccp_sets(args.data / "ccp", rng, range(1, 701))
    dsb = dsb_set(args.data / "dsb2018" / "train", rng, 200)
    cam = camvid_set(args.data / "camvid" / "train", rng, 200)
    # Real coarse masks dominate; the simulated sets teach other domains and near-perfect inputs.
    n = len(real)
    parts = [real, subsample(sim, n // 2, rng), subsample(dsb, n // 4, rng), subsample(cam, n // 4, rng)]
    print("patches:", {k: len(p) for k, p in zip(("ccp_real", "ccp_sim", "dsb", "camvid"), parts)})
    patches = PatchSet.concat(parts)
    model = ModelConfig(provenance={
        "data": "ccp 0001-0700 (selfie coarse + simulated), dsb2018/train[:200], camvid/train[:200] (simulated)",
        "recipe": f"scripts/train_default.py --iterations {args.iterations} --seed {args.seed}",
    })
    config = replace(TrainConfig(), model=model, iterations=args.iterations, seed=args.seed)
    train(patches, config, args.out)


if __name__ == "__main__":
    main()
