"""Bundle the weighted average of fine-tunes of one network (a "model soup", ``bprefine.training.soup``).

    python scripts/soup_models.py --models people runs/levers/people_boundary3/final.safetensors \
        --weights 1 1 --name people --card "person photos ..."

Each ``--models`` entry is a bundled name or a model file; the first names the config the soup runs with
(input and patch size, guards). The provenance records every ingredient with its weights' hash and share,
and the command. Then ship its int8 network with ``scripts/quantize_bundled.py --name NAME`` and measure it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bprefine import RefinementModel, load_model, save_model
from bprefine.model import WEIGHTS_DIR, weights_sha256
from bprefine.training.soup import average_models, normalised_shares


def make_soup(models: Sequence[str], weights: Sequence[float] | None, card: str, command: str) -> RefinementModel:
    """The soup of ``models`` (bundled names or files) with its provenance: each ingredient's hash, share,
    recipe and start, the command that made it, and ``card``. ValueError / FileNotFoundError name the file."""
    loaded = [load_model(m) for m in models]
    soup = average_models(loaded, weights, names=models)
    prov = {
        "soup": [{"model": str(m), "weights_sha256": weights_sha256(m)[:16], "share": round(s, 4),
                  "recipe": model.config.provenance.get("recipe", ""), "init": model.config.provenance.get("init", "")}
                 for m, s, model in zip(models, normalised_shares(weights, len(models)), loaded)],
        "recipe": command,
        "data": loaded[0].config.provenance.get("data", ""),
        "card": card,
    }
    return RefinementModel(replace(soup.config, provenance=prov), soup.net)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True, help="Bundled names or model files (the first sets the config).")
    ap.add_argument("--weights", nargs="+", type=float, default=None, help="One share per model (default: equal).")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--name", help="Bundled name to write (Refiner(NAME), --model NAME).")
    where.add_argument("--out", type=Path, help="Or a model file to write (OUT.safetensors + OUT.json).")
    ap.add_argument("--card", required=True, help="One line for `bprefine models`: what the model is for.")
    args = ap.parse_args()
    command = "python scripts/soup_models.py " + shlex.join(sys.argv[1:])
    try:
        soup = make_soup(args.models, args.weights, args.card, command)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    path = save_model(soup, WEIGHTS_DIR / args.name if args.name else args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(json.dumps(soup.config.provenance, indent=2))


if __name__ == "__main__":
    main()
