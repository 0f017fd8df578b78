"""Model files: safetensors weights plus a JSON config. Nothing is ever unpickled."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from bprefine.data.images import atomic_path
from bprefine.nets import PRESETS, build_net
from bprefine.strict import from_mapping

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_DIR = Path(__file__).parent / "weights"
INPUT_SIZES = (64, 128, 256, 512)
DEFAULT_NMS_THRESHOLD = 0.1  # 38-45% of the patches of 0.55 at its accuracy on every domain (docs/benchmarks.md)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network and feed it patches the way it was trained."""

    preset: str = "mobilenet_v2"
    input_size: int = 128  # patches are resized to input_size x input_size
    patch_size: int = 64  # side of the boundary boxes, in image pixels
    padding: int = 0  # context added around each box (not pasted back)
    use_mask: bool = True
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD
    mask_mean: float = 0.5
    mask_std: float = 0.5
    min_move: float = 0.0  # the do-no-harm guard this model is measured best with (Refiner's min_move default)
    min_confidence: float = 0.0  # the logit margin a pixel needs to change (Refiner's min_confidence default)
    consensus: bool = False  # disjoint masks change hands only where both refinements agree (Refiner's default)
    max_change: float = 0.0  # the largest share of a mask's area its refinement may change, 0: off (Refiner's default)
    min_mask_confidence: float = 0.0  # the mean logit margin a mask's changes need as a whole, 0: off (Refiner's default)
    nms_threshold: float = DEFAULT_NMS_THRESHOLD  # boundary-box NMS IoU the model is measured at (Refiner's default)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown network preset {self.preset!r}; choose one of {sorted(PRESETS)}")
        if self.input_size not in INPUT_SIZES:
            raise ValueError(f"input_size must be one of {INPUT_SIZES}, got {self.input_size}")
        if self.patch_size < 4:
            raise ValueError(f"patch_size must be at least 4, got {self.patch_size}")
        if self.padding < 0:
            raise ValueError(f"padding must be at least 0, got {self.padding}")
        if not self.min_move >= 0:
            raise ValueError(f"min_move must be at least 0, got {self.min_move}")
        if not self.min_confidence >= 0:
            raise ValueError(f"min_confidence must be at least 0, got {self.min_confidence}")
        if not self.max_change >= 0:
            raise ValueError(f"max_change must be at least 0, got {self.max_change}")
        if not self.min_mask_confidence >= 0:
            raise ValueError(f"min_mask_confidence must be at least 0, got {self.min_mask_confidence}")
        if not 0.0 <= self.nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold must lie in [0, 1], got {self.nms_threshold}")
        if self.mask_std <= 0 or min(self.image_std) <= 0:
            raise ValueError(f"image_std and mask_std must be positive, got {self.image_std} / {self.mask_std}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, where: str = "model config") -> "ModelConfig":
        """A config from its JSON form; unknown keys and ill-typed values are errors naming ``where``."""
        return from_mapping(cls, data, where=where)


@dataclass
class RefinementModel:
    """A network together with the config it was trained under."""

    config: ModelConfig
    net: torch.nn.Module

    @classmethod
    def untrained(cls, config: ModelConfig) -> "RefinementModel":
        return cls(config, build_net(config.preset, use_mask=config.use_mask))


def _paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.is_dir():  # the Hugging Face layout written by ``bprefine export``
        return p / "model.safetensors", p / "config.json"
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_model(model: RefinementModel, path: str | Path) -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json``; returns the weights path."""
    weights, config = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp))
    with atomic_path(config) as tmp:
        tmp.write_text(json.dumps(model.config.to_json(), indent=2) + "\n")
    return weights


def bundled_models() -> list[str]:
    """Names of the models shipped with the package (``Refiner(name)``, ``--model name``)."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))


def bundled_int8(name: str) -> bytes | None:
    """The int8 ONNX network shipped beside bundled model ``name`` (``NAME.int8.onnx``), or None when there
    is none or it was made from other weights than the ones shipped (``NAME.int8.json`` records their hash)."""
    onnx_path, meta_path = WEIGHTS_DIR / f"{name}.int8.onnx", WEIGHTS_DIR / f"{name}.int8.json"
    if not (onnx_path.is_file() and meta_path.is_file()):
        return None
    if json.loads(meta_path.read_text()).get("weights_sha256") != weights_sha256(name):
        return None
    return onnx_path.read_bytes()


def model_card(name: str) -> dict[str, Any]:
    """A bundled model's one-line card and headline facts, from its JSON config (nothing is loaded)."""
    config = ModelConfig.from_json(json.loads((WEIGHTS_DIR / f"{name}.json").read_text()),
                                   where=str(WEIGHTS_DIR / f"{name}.json"))
    prov = config.provenance
    return {"name": name, "card": prov.get("card", ""), "preset": config.preset, "input_size": config.input_size,
            "patch_size": config.patch_size, "min_move": config.min_move, "min_confidence": config.min_confidence,
            "consensus": config.consensus, "max_change": config.max_change,
            "min_mask_confidence": config.min_mask_confidence, "nms_threshold": config.nms_threshold,
            "iterations": prov.get("iterations"),
            "recipe": prov.get("recipe", "")}


def model_files(name_or_path: str | Path) -> tuple[Path, Path]:
    """The (weights, config) files of a bundled model's name, a model file or a Hugging Face folder;
    FileNotFoundError naming the file when one is missing."""
    if isinstance(name_or_path, str) and name_or_path in bundled_models():
        weights, config_path = _paths(WEIGHTS_DIR / name_or_path)
    elif isinstance(name_or_path, str) and name_or_path == "default":
        raise FileNotFoundError(f"no bundled default model in {WEIGHTS_DIR}; pass a model file instead")
    else:
        weights, config_path = _paths(name_or_path)
    for p in (weights, config_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: model file not found")
    return weights, config_path


def weights_sha256(name_or_path: str | Path) -> str:
    """SHA-256 (hex) of a model's weights file: which weights a name or path meant at a given time."""
    import hashlib

    return hashlib.sha256(model_files(name_or_path)[0].read_bytes()).hexdigest()


def load_model(name_or_path: str | Path = "default", *, device: str | torch.device = "cpu") -> RefinementModel:
    """Load a bundled model by name (``"default"``), a model file (``.safetensors`` beside ``.json``), or a
    folder in the Hugging Face layout (``model.safetensors`` + ``config.json``, see ``bprefine export``)."""
    weights, config_path = model_files(name_or_path)
    try:
        data = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{config_path}: not a valid model config ({err})") from None
    config = ModelConfig.from_json(data, where=str(config_path))
    net = build_net(config.preset, use_mask=config.use_mask)
    try:
        state = load_file(str(weights))
        net.load_state_dict(state)
    except (SafetensorError, RuntimeError, OSError) as err:
        first = str(err).strip().splitlines()[0]
        raise ValueError(f"{weights}: weights do not match preset {config.preset!r} ({first})") from None
    return RefinementModel(config, net.to(device).eval())
