"""Training configuration: frozen dataclasses, loaded from YAML with ``key=value`` overrides."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bprefine.model import ModelConfig
from bprefine.strict import from_mapping
from bprefine.training.precision import PRECISIONS

SOURCE_KINDS = ("masks", "instance_png", "coco", "semantic")
MASK_SIMULATORS = ("low_res", "mask_head", "identity")  # per mask: masks, instance_png and coco sources
SEMANTIC_SIMULATORS = ("semantic_low_res", "identity")  # per label map: semantic sources
SIMULATORS = ("low_res", "mask_head", "semantic_low_res", "identity")
AUGMENTATIONS = ("none", "basic", "strong")


@dataclass(frozen=True)
class SourceConfig:
    """One training data source: images, ground truth, and coarse predictions (given or simulated).

    kind:
      masks         PNG folders: ``gt`` and ``coarse`` hold one binary mask per image (same stem)
      instance_png  ``gt`` (and ``coarse``, if given) hold instance-id PNGs (0 = background)
      coco          ``gt`` a COCO ground-truth JSON, ``coarse`` a COCO results JSON
      semantic      ``gt`` (and ``coarse``) hold label PNGs; each class mask is an instance
    A predicted instance trains only if its IoU with a ground-truth mask of the same category is > 0.5.
    Without ``coarse``, ``simulate`` names a simulator (see ``bprefine.simulate``): ``low_res`` or
    ``mask_head`` per mask, ``semantic_low_res`` per label map (semantic sources), or ``identity``: the
    ground truth is its own coarse input, so the network learns to leave good boundaries where they are.
    """

    kind: str
    images: str
    gt: str
    coarse: str | None = None
    simulate: str | None = None
    stems: str | None = None  # "0001-0700": keep files whose stem lies in this inclusive range
    limit: int | None = None  # keep the first ``limit`` images (sorted by name)
    indices: str | None = None  # "0-199,300-": keep these 0-based positions of the sorted list (inclusive)
    weight: float = 1.0  # share of each training batch drawn from this source
    num_classes: int | None = None
    ignore_index: int | None = None
    mismatch_weight: float | None = None  # this source's loss weight where the coarse mask is wrong (None: the config's)

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"source kind must be one of {SOURCE_KINDS}, got {self.kind!r}")
        if (self.coarse is None) == (self.simulate is None):
            raise ValueError(f"source {self.gt}: give exactly one of 'coarse' or 'simulate'")
        if self.simulate is not None and self.simulate not in SIMULATORS:
            raise ValueError(f"simulate must be one of {SIMULATORS}, got {self.simulate!r}")
        fitting = SEMANTIC_SIMULATORS if self.kind == "semantic" else MASK_SIMULATORS
        if self.simulate is not None and self.simulate not in fitting:
            raise ValueError(f"source {self.gt}: simulator {self.simulate!r} does not fit kind {self.kind!r} "
                             f"(it takes {fitting})")
        if self.kind == "semantic" and not self.num_classes:
            raise ValueError(f"semantic source {self.gt} needs num_classes")
        if self.stems is not None and not re.fullmatch(r"[^-]+-[^-]+", self.stems):
            raise ValueError(f"stems must look like 'first-last', got {self.stems!r}")
        if self.indices is not None and not re.fullmatch(r"\d+-\d*(,\d+-\d*)*", self.indices):
            raise ValueError(f"source {self.gt}: indices must look like '0-199,300-', got {self.indices!r}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"source {self.gt}: limit must be at least 1, got {self.limit}")
        if not (self.weight >= 0 and math.isfinite(self.weight)):
            raise ValueError(f"source {self.gt}: weight must be a finite number >= 0, got {self.weight}")
        if self.num_classes is not None and self.num_classes < 1:
            raise ValueError(f"source {self.gt}: num_classes must be at least 1, got {self.num_classes}")
        if self.mismatch_weight is not None and not (self.mismatch_weight > 0 and math.isfinite(self.mismatch_weight)):
            raise ValueError(f"source {self.gt}: mismatch_weight must be a finite number > 0, got {self.mismatch_weight}")


@dataclass(frozen=True)
class TrainConfig:
    """Paper defaults (section 4.1) unless stated: SGD 0.01, momentum 0.9, wd 5e-4, poly 0.9, NMS 0.25."""

    model: ModelConfig = field(default_factory=ModelConfig)
    sources: tuple[SourceConfig, ...] = ()
    val_sources: tuple[SourceConfig, ...] = ()
    nms_threshold: float = 0.25
    border_as_contour: bool = False  # count the image frame as contour (paper's border patches)
    drop_border_full: bool = True  # semantic sources: drop all-foreground border patches (section 3.3)
    iterations: int = 2000
    batch_size: int = 32  # in total, split over DDP processes
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    poly_power: float = 0.9
    seed: int = 0
    checkpoint_every: int = 500
    val_every: int = 500
    val_images: int = 20  # whole images per validation source for boundary IoU before/after
    log_every: int = 20
    imagenet_init: bool = True
    init_from: str | None = None  # fine-tune: a bundled model name or a model path (overrides imagenet_init)
    workers: int = 2  # processes that build patches
    device: str = "cpu"  # "cuda" trains on GPU (one GPU per process under torchrun)
    augmentation: str = "basic"  # "none", "basic" (flip + photometric) or "strong" (+ colour, stain, blur, noise, JPEG)
    mask_noise: float = 0.0  # probability of eroding/dilating/shifting a patch's coarse mask channel
    mismatch_weight: float = 1.0  # loss weight of pixels where the coarse mask is wrong (others: 1)
    boundary_weight: float = 1.0  # loss weight of pixels near the ground truth's boundary (others: 1)
    boundary_px: int = 2  # "near": within this many network-input pixels (Chebyshev distance)
    precision: str = "auto"  # "bf16": bfloat16 autocast for the forward pass; "auto": bf16 where native (``precision``)
    channels_last: bool = False  # NHWC memory format for the network (faster convolutions on CPU)
    ema_decay: float = 0.0  # > 0: validate, checkpoint and ship a moving average of the weights (``average``)
    quantization_aware: bool = False  # simulate the int8 network's rounding in training and validation (``quantsim``)

    def __post_init__(self) -> None:
        positive = ("iterations", "batch_size", "checkpoint_every", "val_every", "log_every", "workers")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("weight_decay", "poly_power", "val_images"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum}")
        if not 0 <= self.nms_threshold <= 1:
            raise ValueError(f"nms_threshold must lie in [0, 1], got {self.nms_threshold}")
        if not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {self.augmentation!r}")
        if not 0 <= self.mask_noise <= 1:
            raise ValueError(f"mask_noise must lie in [0, 1], got {self.mask_noise}")
        if not self.mismatch_weight > 0:
            raise ValueError(f"mismatch_weight must be > 0, got {self.mismatch_weight}")
        if not self.boundary_weight > 0:
            raise ValueError(f"boundary_weight must be > 0, got {self.boundary_weight}")
        if self.boundary_px < 1:
            raise ValueError(f"boundary_px must be at least 1, got {self.boundary_px}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie in [0, 1) (0: off), got {self.ema_decay}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.sources and sum(s.weight for s in self.sources) <= 0:
            raise ValueError(f"source weights must not all be zero: {[s.weight for s in self.sources]}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {key}: {part} is not a section")
    node[parts[-1]] = value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["iterations=100", "model.input_size=64"]`` -> nested dict (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        _set_dotted(out, key.strip(), yaml.safe_load(raw))
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _sources(data: dict[str, Any], key: str, where: str) -> tuple[SourceConfig, ...]:
    items = data.get(key, [])
    if not isinstance(items, list):
        raise ValueError(f"{where}: {key} must be a list of sources")
    for i, s in enumerate(items):
        if isinstance(s, dict) and s.get("kind") not in SOURCE_KINDS:
            raise ValueError(f"{where}: {key}[{i}]: source kind must be one of {SOURCE_KINDS}, got {s.get('kind')!r}")
    return tuple(from_mapping(SourceConfig, s, where=f"{where}: {key}[{i}]") for i, s in enumerate(items))


def train_config_from_dict(data: dict[str, Any], *, where: str = "config") -> TrainConfig:
    """A TrainConfig from its mapping form: unknown keys and ill-typed or out-of-range values are errors."""
    model = ModelConfig.from_json(data.get("model", {}), where=f"{where}: model")
    built = {"model": model, "sources": _sources(data, "sources", where),
             "val_sources": _sources(data, "val_sources", where)}
    return from_mapping(TrainConfig, data, where=where, **built)


def load_train_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    """A TrainConfig from a YAML file (or defaults when ``path`` is None) plus ``key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: malformed YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
    data = _merge(data, parse_overrides(list(overrides)))
    return train_config_from_dict(data, where=str(path or "overrides"))
