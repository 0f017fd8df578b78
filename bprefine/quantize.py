"""int8 static quantization of a refinement network through ONNX Runtime (AVX512-VNNI / AVX2 kernels).

Activations are calibrated on real patches: the boundary patches of the bundled sample photos, each
also seen under colour changes (inverted, grayscale, hue-rotated, darkened) so that the ranges cover
microscopy, street and indoor images too. Weights are quantized per channel (int8), activations per
tensor (uint8, ranges at the 99.999th percentile, which kept boundary IoU closer to fp32 than min/max or
entropy calibration did on the sample photos), in QDQ format.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from bprefine.model import ModelConfig
from bprefine.patches import crop_patches, extract_boxes
from bprefine.tensors import patches_to_tensors

SAMPLES = Path(__file__).parent / "samples" / "photos"


def _variants(images: np.ndarray) -> list[np.ndarray]:
    """(K, h, w, 3) uint8 patches under the colour changes the calibration covers."""
    x = images.astype(np.float32)
    gray = np.repeat(x.mean(axis=3, keepdims=True), 3, axis=3)
    rotated = x[..., [2, 0, 1]]  # a 120-degree hue rotation
    return [images, (255 - images), gray.astype(np.uint8), rotated.astype(np.uint8), (x * 0.35).astype(np.uint8)]


def sample_pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(image H x W x 3 uint8, coarse mask H x W bool) of the bundled sample photos: the default calibration."""
    from bprefine.data.images import read_image, read_mask

    for image_path in sorted((SAMPLES / "images").glob("*.jpg")):
        yield read_image(image_path), read_mask(SAMPLES / "coarse" / f"{image_path.stem}.png")


def calibration_batches(config: ModelConfig, *, batch: int = 32, limit: int = 320,
                        pairs: Iterable[tuple[np.ndarray, np.ndarray]] | None = None) -> list[dict[str, np.ndarray]]:
    """ONNX feeds {"image", "mask"} of real boundary patches (at most ``limit`` at a 128-px input, fewer
    at larger inputs so that the calibrator's stored activations stay the same size), normalised as the
    network sees them. ``pairs``: the (image H x W x 3 uint8, mask H x W bool) the patches come from, one
    mask per object (default: the bundled sample photos, ``sample_pairs``); a specialist calibrates best
    on images of its own domain (``scripts/quantize_bundled.py --calibration``)."""
    limit = max(int(limit * (128 / config.input_size) ** 2), 5)

    imgs, msks = [], []
    for image, mask in pairs if pairs is not None else sample_pairs():
        boxes = extract_boxes(mask, patch_size=config.patch_size, nms_threshold=0.25)
        if len(boxes):
            ci, cm = crop_patches(image, mask, boxes, padding=config.padding)
            imgs.append(ci)
            msks.append(cm)
    if not imgs:
        raise ValueError("no boundary patches to calibrate on: every calibration mask is empty or full")
    images, masks = np.concatenate(imgs), np.concatenate(msks)
    pick = np.random.default_rng(0).permutation(len(images))[: max(limit // 5, 1)]
    images, masks = images[pick], masks[pick]
    all_images = np.concatenate(_variants(images))
    all_masks = np.concatenate([masks] * 5)
    order = np.random.default_rng(1).permutation(len(all_images))
    feeds = []
    if len(order) >= batch:  # whole batches only: the calibrator stacks them
        order = order[: len(order) // batch * batch]
    for start in range(0, len(order), batch):
        sel = order[start : start + batch]
        x, m = patches_to_tensors(all_images[sel], all_masks[sel], config=config)
        feeds.append({"image": x.contiguous().numpy(), "mask": m.contiguous().numpy()})
    return feeds


def quantize_int8(onnx_model: bytes, feeds: list[dict[str, np.ndarray]], *, exclude: Sequence[str] = (),
                  minmax: bool = False, seven_bit: bool = False) -> bytes:
    """The int8 (QDQ) version of an fp32 ONNX model, calibrated on ``feeds``. ``exclude``: names of nodes left
    in float; ``minmax``: min/max activation ranges instead of the 99.999th percentile; ``seven_bit``: weights
    in 7 bits (ONNX Runtime's ``reduce_range``), which x86 CPUs without VNNI multiply exactly on their fast
    kernels (all three for studies such as ``benchmarks/int8_agreement.py``; the shipped networks use none)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it: Iterator[dict[str, np.ndarray]] = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    with tempfile.TemporaryDirectory(prefix="bprefine-int8-") as tmp:
        fp32, pre, q = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        fp32.write_bytes(onnx_model)
        with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints its progress
            quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), str(q), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax if minmax else CalibrationMethod.Percentile,
                            nodes_to_exclude=list(exclude), reduce_range=seven_bit)
        return q.read_bytes()
