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


def patch_loss(logits: torch.Tensor, target: torch.Tensor, coarse: torch.Tensor, *,
               mismatch_weight: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Binary cross-entropy on (B,1,S,S) logits; pixels where the coarse mask (normalised: > 0 is
    foreground) disagrees with the target weigh ``mismatch_weight`` (one number, or (B,) one per patch),
    the others 1 (mean over weights)."""
    if not isinstance(mismatch_weight, torch.Tensor):
        if mismatch_weight == 1.0:
            return F.binary_cross_entropy_with_logits(logits, target)
        mismatch_weight = torch.tensor(float(mismatch_weight))
    wrong = ((coarse > 0).float() != target).float()
    weight = 1.0 + (mismatch_weight.to(wrong).reshape(-1, 1, 1, 1) - 1.0) * wrong
    return (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).sum() / weight.sum()


def sample_batch(sets: list[PatchSet], weights: np.ndarray, n: int, rng: np.random.Generator
                 ) -> tuple[PatchSet, np.ndarray]:
    """``n`` patches, each from source ``s`` with probability ``weights[s]`` (weights sum to 1), and (n,)
    the source index of each patch, in batch order."""
    which = rng.choice(len(sets), size=n, p=weights)
    counts = [int((which == s).sum()) for s in range(len(sets))]
    parts = [sets[s].subset(rng.integers(0, len(sets[s]), size=counts[s])) for s in range(len(sets))]
    return PatchSet.concat(parts, sets[0].images.shape[1]), np.repeat(np.arange(len(sets)), counts)
