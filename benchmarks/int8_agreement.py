"""How far a model's int8 network departs from its float one, patch by patch, and whether leaving some
nodes in float brings it back.

    python benchmarks/int8_agreement.py --model people [--data ../shared/data] [--every 3]
        [--variants int8,int8-saturating,7bit,no-classifier,no-first-conv,no-decoder,no-depthwise,
                    no-resize-concat,minmax]

The boundary patches of the held-out CCP photos (0701-0804, every ``--every``-th, real selfie masks, boxes at
the inference default NMS 0.1) go through the float ONNX network and through int8 networks quantized as
``bprefine.quantize`` does (same calibration patches), each variant leaving a group of nodes unquantized
(``no-...``) or calibrating with min/max instead of percentiles (``minmax``); ``int8-saturating`` runs
the plain int8 network without the exact products that ``bprefine.engine.session_options`` asks for (which
matters on x86 CPUs without VNNI only); ``7bit`` quantizes the weights to 7 bits, which those CPUs' fast
kernels multiply exactly. For each it prints the
share of patch pixels whose decision differs from float (``flip``), and the pixel error and mean patch IoU
against ground truth, so that an int8 loss seen on whole images can be told apart from one made in the
network. One thread; nothing else should run beside it for the seconds to mean anything.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bprefine.engine import export_onnx, session_options
from bprefine.model import ModelConfig, load_model
from bprefine.patches import crop_masks, crop_patches, extract_boxes
from bprefine.quantize import calibration_batches, quantize_int8
from bprefine.tensors import logits_to_patches, patches_to_tensors

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_results import ccp_items  # noqa: E402  (the held-out split, read one way)

VARIANTS = ("int8", "int8-saturating", "7bit", "no-classifier", "no-first-conv", "no-decoder", "no-depthwise",
            "no-resize-concat", "minmax")


def held_out_patches(data: Path, config: ModelConfig, every: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Network feeds {"image" (K,3,S,S), "mask" (K,1,S,S)} and ground truth (K, p, p) bool of the boundary
    patches of every ``every``-th held-out CCP photo."""
    images, masks, truths = [], [], []
    for i, (_, image, gt, coarse) in enumerate(ccp_items(data, "coarse_selfie")):
        if i % every:
            continue
        boxes = extract_boxes(coarse, patch_size=config.patch_size, nms_threshold=0.1)
        if len(boxes) == 0:
            continue
        crops, crop_m = crop_patches(image, coarse, boxes, padding=config.padding)
        images.append(crops)
        masks.append(crop_m)
        truths.append(crop_masks(gt, boxes) > 0.5)
    x, m = patches_to_tensors(np.concatenate(images), np.concatenate(masks), config=config)
    return {"image": x.contiguous().numpy(), "mask": m.contiguous().numpy()}, np.concatenate(truths)


def decisions(model_bytes: bytes, feeds: dict[str, np.ndarray], config: ModelConfig, *,
              exact_int8: bool = True) -> np.ndarray:
    """(K, p, p) foreground decisions of an ONNX network on ``feeds``, at the patch's native size;
    ``exact_int8=False``: without the engine's exact int8 products on x86 CPUs lacking VNNI."""
    import onnxruntime as ort

    options = session_options(1, exact_int8=exact_int8)
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    out = [session.run(None, {k: v[i : i + 32] for k, v in feeds.items()})[0] for i in range(0, len(feeds["mask"]), 32)]
    p = config.patch_size
    return logits_to_patches(torch.from_numpy(np.concatenate(out)), box_hw=(p, p), padding=config.padding) > 0


def excluded(variant: str, fp32: bytes) -> list[str]:
    """Names of the nodes ``variant`` leaves in float (the exported names survive the quantizer's pre-processing)."""
    import onnx

    graph = onnx.load_from_string(fp32).graph
    convs = [n for n in graph.node if n.op_type == "Conv"]
    if variant == "no-classifier":
        return [convs[-1].name]
    if variant == "no-first-conv":
        return [convs[0].name]
    if variant == "no-decoder":
        return [n.name for n in graph.node if any(k in n.name for k in ("lat16", "fuse", "classifier"))]
    if variant == "no-depthwise":
        return [n.name for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]
    if variant == "no-resize-concat":
        return [n.name for n in graph.node if n.op_type in ("Resize", "Concat")]
    return []


def scores(pred: np.ndarray, ref: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """flip: % of pixels deciding unlike float; error: % of pixels unlike ground truth; patch IoU (%)."""
    inter, union = (pred & truth).sum((1, 2)), (pred | truth).sum((1, 2))
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return {"flip": 100 * float((pred != ref).mean()), "error": 100 * float((pred != truth).mean()),
            "patch_iou": 100 * float(iou.mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="people")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--every", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        sys.exit(f"int8_agreement: unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if args.every < 1:
        sys.exit(f"int8_agreement: --every must be at least 1, got {args.every}")
    torch.set_num_threads(1)
    model = load_model(args.model)
    feeds, truth = held_out_patches(args.data, model.config, args.every)
    fp32 = export_onnx(model.net, model.config.input_size)
    ref = decisions(fp32, feeds, model.config)
    print(f"{args.model}: {len(truth)} held-out CCP patches")
    print(f"{'float':18s} " + " ".join(f"{k} {v:.3f}" for k, v in scores(ref, ref, truth).items()))
    calibration = calibration_batches(model.config)
    for variant in variants:
        t = time.perf_counter()
        int8 = quantize_int8(fp32, calibration, exclude=excluded(variant, fp32), minmax=variant == "minmax",
                             seven_bit=variant == "7bit")
        pred = decisions(int8, feeds, model.config, exact_int8=variant != "int8-saturating")
        line = " ".join(f"{k} {v:.3f}" for k, v in scores(pred, ref, truth).items())
        print(f"{variant:18s} {line} ({time.perf_counter() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
