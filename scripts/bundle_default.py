"""Copy a finished training run's final model into the package as the bundled ``default`` model.

    python scripts/bundle_default.py --run runs/default --config configs/default.yaml

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
from bprefine.training.provenance import provenance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--config", type=Path, required=True)
    args = ap.parse_args()
    model = load_model(args.run / "final.safetensors")
    meta = json.loads((args.run / "train_config.json").read_text())
    log = [json.loads(line) for line in (args.run / "log.jsonl").read_text().splitlines()]
    config = load_train_config(args.config)
    prov = provenance(config, meta["init"], meta["world_size"]) | {
        "recipe": f"bprefine train --config {args.config.as_posix()} --out {args.run.as_posix()}",
        "train_wall_s": max(r.get("elapsed_s", 0) for r in log),
        "last_validation": next((r for r in reversed(log) if "biou_after" in r), {}),
    }
    bundled = replace(model.config, provenance=prov)
    path = save_model(type(model)(bundled, model.net), WEIGHTS_DIR / "default")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(json.dumps(prov, indent=2))


if __name__ == "__main__":
    main()
