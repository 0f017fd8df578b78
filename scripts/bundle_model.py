"""Copy a finished training run's final model into the package as a bundled model of the zoo.

    python scripts/bundle_model.py --run runs/default --config configs/default.yaml --name default \
        --card "the general model: people, nuclei and street scenes"

The provenance written beside the weights comes from the run itself: its train_config.json (data
sources, iterations, initialisation) and log.jsonl (wall time, last validation figures).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from bprefine import load_model, save_model
from bprefine.model import WEIGHTS_DIR
from bprefine.training import load_train_config
from bprefine.training.init import INFERENCE
from bprefine.training.provenance import provenance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--name", default="default", help="Bundled name (Refiner(NAME), --model NAME).")
    ap.add_argument("--card", required=True, help="One line for `bprefine models`: what the model is for.")
    args = ap.parse_args()
    model = load_model(args.run / "final.safetensors")
    meta = json.loads((args.run / "train_config.json").read_text())
    log = [json.loads(line) for line in (args.run / "log.jsonl").read_text().splitlines()]
    config = load_train_config(args.config)
    prov = provenance(config, meta["init"], meta["world_size"]) | {
        "recipe": f"bprefine train --config {args.config.as_posix()} --out {args.run.as_posix()}",
        "train_wall_s": max(r.get("elapsed_s", 0) for r in log),
        "last_validation": next((r for r in reversed(log) if "biou_after" in r or "patch_iou" in r), {}),
        "precision": meta.get("precision", config.precision),  # what the run resolved "auto" to
        "card": args.card,
    }
    # settings that say nothing about the weights (min_move, consensus) come from the recipe, which may set
    # them after training, once measured
    settings = {k: getattr(config.model, k) for k in INFERENCE if k != "provenance"}
    bundled = replace(model.config, **settings, provenance=prov)
    path = save_model(type(model)(bundled, model.net), WEIGHTS_DIR / args.name)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(json.dumps(prov, indent=2))


if __name__ == "__main__":
    main()
