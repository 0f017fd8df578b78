"""How much of a model's panoptic gain each int8 variant of its network keeps, on DSB nuclei as panoptic segments.

    python scripts/int8_panoptic.py --data ../shared/data --model nuclei \
        --calibration configs/levers/nuclei_ema35_long.yaml --variants shipped,fp32,minmax,no-first-conv

DSB2018 positions 200-219 as nuclei (things) on one background (stuff), each nucleus through the mask-head
simulator, as in docs/results.md's panoptic section (NMS 0.55). For every variant it prints the coarse PQ /
boundary PQ and the gain under both rules of ``Refiner.refine_panoptic`` (all segments equal; things over
stuff). Variants: ``fp32`` (the float network), ``shipped`` (the bundled ``NAME.int8.onnx``), and networks
quantized here with the calibration of ``scripts/quantize_bundled.py --calibration CONFIG``: ``int8`` (as
shipped), ``minmax`` (min/max activation ranges), or any node group of ``benchmarks/int8_agreement.py`` left
in float (``no-first-conv``, ``no-classifier``, ``no-decoder``, ...); ``@N`` calibrates on N images per source
instead of 40 (``int8@120``). One thread; deterministic.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import make_results as mr  # noqa: E402  (a sibling script)
from int8_agreement import excluded  # noqa: E402
from quantize_bundled import config_pairs  # noqa: E402

from bprefine import Refiner  # noqa: E402
from bprefine.engine import OnnxEngine, export_onnx  # noqa: E402
from bprefine.model import WEIGHTS_DIR  # noqa: E402
from bprefine.quantize import calibration_batches, quantize_int8  # noqa: E402

CATEGORIES = {1: {"id": 1, "isthing": 1}, 2: {"id": 2, "isthing": 0}}


def variant_network(variant: str, refiner: Refiner, name: str, calibration: Path | None) -> bytes:
    """The ONNX network of ``variant`` (see the module docstring) for the refiner's model."""
    fp32 = export_onnx(refiner.model.net, refiner.model.config.input_size)
    if variant == "fp32":
        return fp32
    if variant == "shipped":
        path = WEIGHTS_DIR / f"{name}.int8.onnx"
        if not path.is_file():
            raise ValueError(f"{path}: no shipped int8 network for {name!r}")
        return path.read_bytes()
    group, _, images = variant.partition("@")
    pairs = config_pairs(calibration, int(images or 40)) if calibration else None
    feeds = calibration_batches(refiner.model.config, pairs=pairs)
    return quantize_int8(fp32, feeds, exclude=excluded(group, fp32), minmax=group == "minmax")


def gains(refiner: Refiner, data: Path) -> dict[str, float]:
    """Coarse PQ / PQb and their changes (percent points) under both rules on DSB 200-219."""
    before, equal = mr._panoptic_rows(refiner, CATEGORIES, mr._dsb_panoptic_items(data), None)
    _, things = mr._panoptic_rows(refiner, CATEGORIES, mr._dsb_panoptic_items(data), {1})
    out = {"PQ": 100 * before["PQ"], "PQb": 100 * before["PQb"]}
    for rule, after in (("all equal", equal), ("things over stuff", things)):
        for key in ("PQ", "PQb"):
            out[f"{rule} {key}"] = 100 * (after[key] - before[key])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--model", default="nuclei")
    ap.add_argument("--calibration", type=Path, default=None, help="a training config (quantize_bundled.py)")
    ap.add_argument("--variants", default="shipped,fp32,int8")
    args = ap.parse_args()
    if not (args.data / "dsb2018").is_dir():
        sys.exit(f"int8_panoptic: {args.data / 'dsb2018'}: no such directory")
    if args.calibration is not None and not args.calibration.is_file():
        sys.exit(f"int8_panoptic: --calibration {args.calibration}: no such file")
    torch.set_num_threads(1)
    refiner = Refiner(args.model, nms_threshold=0.55, engine="onnx")
    for variant in args.variants.split(","):
        start = time.perf_counter()
        try:
            network = variant_network(variant, refiner, args.model, args.calibration)
        except ValueError as err:
            sys.exit(f"int8_panoptic: variant {variant!r}: {err}")
        refiner.engine = OnnxEngine(refiner.model.net, refiner.model.config.input_size, prebuilt=network)
        g = gains(refiner, args.data)
        print(f"{variant:16s} coarse PQ {g['PQ']:.2f} PQb {g['PQb']:.2f} | all equal PQ {g['all equal PQ']:+.2f} "
              f"PQb {g['all equal PQb']:+.2f} | things over stuff PQ {g['things over stuff PQ']:+.2f} "
              f"PQb {g['things over stuff PQb']:+.2f} ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
