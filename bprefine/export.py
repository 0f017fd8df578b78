"""Models people can carry elsewhere: the Hugging Face folder layout, and optionally ONNX.

``export_model(model, out, onnx=..., int8=...)`` writes into ``out``:

- ``config.json``: the model config (the same JSON as a bundled model's; ``Refiner(out)`` loads the folder);
- ``model.safetensors``: the weights;
- ``README.md``: a model card with YAML metadata (library, licence, tags, provenance);
- with ``onnx``: ``model.onnx`` (inputs ``image`` (B,3,S,S), ``mask`` (B,1,S,S); output ``logits``
  (B,1,S,S)) and ``preprocessing.json``, the pre/post-processing written down; with ``int8`` also
  ``model.int8.onnx``, statically quantized (see ``bprefine.quantize``).
Every file is written under a temporary name and renamed; nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

from bprefine.data.images import atomic_path
from bprefine.model import RefinementModel

LICENCE_NOTE = ("Weights trained by bprefine on CCP (Apache-2.0), DSB2018 (CC0) and CamVid "
                "(research / non-commercial) data; check the provenance before commercial use.")


INT8_RUNTIME = ("model.int8.onnx: in ONNX Runtime set the session option session.x64quantprecision=1 "
                "(SessionOptions.add_session_config_entry) as bprefine does; on x86 CPUs without VNNI its int8 "
                "kernels otherwise saturate and decide several percent of patch pixels unlike model.onnx")


def preprocessing(model: RefinementModel) -> dict:
    """The pre- and post-processing around the network, as data."""
    c = model.config
    return {
        "patch": {"side_px": c.patch_size, "context_padding_px": c.padding,
                  "boxes": "square boxes centred on boundary pixels (both sides of the contour), greedy NMS on box IoU"},
        "image": {"layout": "RGB uint8 crop -> float", "scale": 1 / 255, "mean": list(c.image_mean),
                  "std": list(c.image_std), "resize": f"bilinear (align_corners=False) to {c.input_size}x{c.input_size}"},
        "mask": {"values": "coarse mask crop in {0, 1} (or probabilities in [0, 1])", "mean": c.mask_mean,
                 "std": c.mask_std, "resize": f"bilinear to {c.input_size}x{c.input_size}", "used": c.use_mask},
        "output": {"logits": "(B, 1, S, S) foreground logits", "postprocess": "bilinear resize back to the padded "
                   "crop, drop the padding, average logits over overlapping patches, foreground where mean > 0; "
                   "pixels no patch covers keep the coarse value"},
    }


def _card(model: RefinementModel, name: str) -> str:
    c = model.config
    prov = c.provenance
    meta = ["---", "library_name: bprefine", "license: other", "pipeline_tag: image-segmentation",
            "tags:", "- boundary-refinement", "- segmentation", "- bpr", "---", ""]
    body = [f"# {name}: a bprefine boundary refinement model", "",
            prov.get("card", "Boundary Patch Refinement (BPR) network."), "",
            f"- network: `{c.preset}`, input {c.input_size} x {c.input_size}, patches {c.patch_size} px",
            f"- training: {prov.get('recipe', 'not recorded')}",
            f"- data: {prov.get('data', 'not recorded')}", "", LICENCE_NOTE, "",
            "```python", "from bprefine import Refiner", f'refiner = Refiner("{name}")  # this folder',
            "refined = refiner.refine(image, mask)", "```", ""]
    return "\n".join(meta + body)


def _write(path: Path, data: bytes | str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data) if isinstance(data, bytes) else tmp.write_text(data)


def export_model(model: RefinementModel, out: str | Path, *, name: str = "model", onnx: bool = False,
                 int8: bool = False) -> list[Path]:
    """Write ``model`` into the folder ``out`` (see the module docstring); returns the files written."""
    from safetensors.torch import save_file

    from bprefine.engine import export_onnx

    out = Path(out)
    written = []
    state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    written.append(out / "model.safetensors")
    for fname, text in (("config.json", json.dumps(model.config.to_json(), indent=2) + "\n"),
                        ("README.md", _card(model, name))):
        _write(out / fname, text)
        written.append(out / fname)
    if onnx or int8:
        fp32 = export_onnx(model.net, model.config.input_size)
        _write(out / "model.onnx", fp32)
        steps = preprocessing(model) | ({"int8_runtime": INT8_RUNTIME} if int8 else {})
        _write(out / "preprocessing.json", json.dumps(steps, indent=2) + "\n")
        written += [out / "model.onnx", out / "preprocessing.json"]
        if int8:
            from bprefine.quantize import calibration_batches, quantize_int8

            _write(out / "model.int8.onnx", quantize_int8(fp32, calibration_batches(model.config)))
            written.append(out / "model.int8.onnx")
    return written
