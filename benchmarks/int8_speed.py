"""Network throughput (patches/s) of a bundled model's float ONNX network against its shipped int8 one.

    python benchmarks/int8_speed.py [--model default] [--threads 1] [--repeats 9] [--batch 32] [--7bit] [--json]

Real boundary patches (the bundled sample photos', as int8 calibration takes them), one batch run again and
again through ONNX Runtime: ``fp32`` (the exported float network), ``int8`` (the shipped int8 network with the
exact products ``bprefine.engine.session_options`` asks for: what ``engine="auto"`` runs) and
``int8-saturating`` (the same without them: what ONNX Runtime does by default); with ``--7bit`` also the
network quantized again with 7-bit weights (``bprefine.quantize.quantize_int8(seven_bit=True)``, calibrated as
the shipped one), which CPUs without VNNI multiply exactly on their fast kernels. They alternate run by run;
medians. The CPU's features are printed with the figures: the exact-product option changes nothing on CPUs
with VNNI and matters on x86 CPUs without it (docs/benchmarks.md, "int8 on CPUs without VNNI").
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from bprefine.engine import export_onnx, session_options
from bprefine.hardware import cpu_features, describe_cpu
from bprefine.model import WEIGHTS_DIR, load_model
from bprefine.quantize import calibration_batches, quantize_int8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--7bit", dest="seven_bit", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    int8_path = WEIGHTS_DIR / f"{args.model}.int8.onnx"
    if not int8_path.is_file():
        raise SystemExit(f"int8_speed: {int8_path} not found: only bundled models with a shipped int8 network")
    calibration = calibration_batches(model.config, batch=args.batch)
    feeds = calibration[0]
    fp32 = export_onnx(model.net, model.config.input_size)
    sessions = {
        "fp32": ort.InferenceSession(fp32, session_options(args.threads)),
        "int8": ort.InferenceSession(str(int8_path), session_options(args.threads)),
        "int8-saturating": ort.InferenceSession(str(int8_path), session_options(args.threads, exact_int8=False)),
    }
    if args.seven_bit:
        int8_7 = quantize_int8(fp32, calibration_batches(model.config), seven_bit=True)
        sessions["int8-7bit"] = ort.InferenceSession(int8_7, session_options(args.threads))
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for k, s in sessions.items():  # warm-up
        s.run(None, feeds)
    for _ in range(args.repeats):
        for k, s in sessions.items():
            t = time.perf_counter()
            s.run(None, feeds)
            times[k].append(time.perf_counter() - t)
    n = len(feeds["mask"])
    rows = {k: round(n / statistics.median(v), 1) for k, v in times.items()}
    report = {"model": args.model, "threads": args.threads, "batch": n, "cpu": cpu_features(), "patches_per_s": rows,
              "int8_over_fp32": round(rows["int8"] / rows["fp32"], 2)}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.model}, batch {n}, {args.threads} thread(s), CPU {describe_cpu(report['cpu'])}")
        for k, v in rows.items():
            print(f"{k:16s} {v:8.1f} patches/s")
        print(f"int8 / fp32: {report['int8_over_fp32']}x")


if __name__ == "__main__":
    main()
