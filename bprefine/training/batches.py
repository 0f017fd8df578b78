"""Training batches: patches drawn from weighted sources, turned into network inputs and targets."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bprefine.model import ModelConfig
from bprefine.tensors import patches_to_tensors
from bprefine.training.augment import augment
from bprefine.training.patchset import PatchSet


def make_batch(patches: PatchSet, rng: np.random.Generator | None, *, config: ModelConfig,
               augmentation: str = "basic", mask_noise: float = 0.0
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Network inputs (B,3,S,S), (B,1,S,S) and targets (B,1,S,S) in {0,1}; augmented when ``rng`` is given
    (see ``bprefine.training.augment``)."""
    if rng is not None:
        patches = augment(patches, rng, kind=augmentation, mask_noise=mask_noise)
    x, m = patches_to_tensors(patches.images, patches.coarse, config=config)
    t = torch.from_numpy(np.ascontiguousarray(patches.gt)).unsqueeze(1).float()
    t = F.interpolate(t, size=x.shape[-2:], mode="bilinear", align_corners=False) > 0.5
    return x.contiguous(), m.contiguous(), t.float()


def boundary_band(target: torch.Tensor, px: int) -> torch.Tensor:
    """(B,1,S,S) float mask of the pixels within ``px`` pixels (Chebyshev distance) of the boundary of the
    (B,1,S,S) {0,1} ``target``: those whose (2 px + 1)^2 neighbourhood holds both classes."""
    k = 2 * px + 1
    grown = F.max_pool2d(target, k, stride=1, padding=px)
    shrunk = -F.max_pool2d(-target, k, stride=1, padding=px)
    return (grown != shrunk).float()


def patch_loss(logits: torch.Tensor, target: torch.Tensor, coarse: torch.Tensor, *,
               mismatch_weight: float | torch.Tensor = 1.0, boundary_weight: float = 1.0,
               boundary_px: int = 2) -> torch.Tensor:
    """Binary cross-entropy on (B,1,S,S) logits, a weighted mean over pixels. Pixels where the coarse mask
    (normalised: > 0 is foreground) disagrees with the target weigh ``mismatch_weight`` (one number, or (B,)
    one per patch); pixels within ``boundary_px`` input pixels of the target's boundary weigh
    ``boundary_weight`` (``boundary_band``); a pixel that is both weighs the product, the others 1."""
    plain = not isinstance(mismatch_weight, torch.Tensor) and mismatch_weight == 1.0
    if plain and boundary_weight == 1.0:
        return F.binary_cross_entropy_with_logits(logits, target)
    weight = torch.ones_like(target)
    if not plain:
        factor = torch.as_tensor(mismatch_weight, dtype=target.dtype, device=target.device).reshape(-1, 1, 1, 1)
        wrong = ((coarse > 0).float() != target).float()
        weight = weight + (factor - 1.0) * wrong
    if boundary_weight != 1.0:
        weight = weight * (1.0 + (boundary_weight - 1.0) * boundary_band(target, boundary_px))
    return (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).sum() / weight.sum()


def sample_batch(sets: list[PatchSet], weights: np.ndarray, n: int, rng: np.random.Generator
                 ) -> tuple[PatchSet, np.ndarray]:
    """``n`` patches, each from source ``s`` with probability ``weights[s]`` (weights sum to 1), and (n,)
    the source index of each patch, in batch order."""
    which = rng.choice(len(sets), size=n, p=weights)
    counts = [int((which == s).sum()) for s in range(len(sets))]
    parts = [sets[s].subset(rng.integers(0, len(sets[s]), size=counts[s])) for s in range(len(sets))]
    return PatchSet.concat(parts, sets[0].images.shape[1]), np.repeat(np.arange(len(sets)), counts)
