"""Training batches: patches drawn from weighted sources, turned into network inputs and targets."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bprefine.model import ModelConfig
from bprefine.tensors import patches_to_tensors
from bprefine.training.augment import augment
from bprefine.training.patchset import PatchSet


def make_batch(patches: PatchSet, rng: np.random.Generator | None, *, config: ModelConfig
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Network inputs (B,3,S,S), (B,1,S,S) and targets (B,1,S,S) in {0,1}; augmented when ``rng`` is given."""
    if rng is not None:
        patches = augment(patches, rng)
    x, m = patches_to_tensors(patches.images, patches.coarse, config=config)
    t = torch.from_numpy(np.ascontiguousarray(patches.gt)).unsqueeze(1).float()
    t = F.interpolate(t, size=x.shape[-2:], mode="bilinear", align_corners=False) > 0.5
    return x.contiguous(), m.contiguous(), t.float()


def sample_batch(sets: list[PatchSet], weights: np.ndarray, n: int, rng: np.random.Generator) -> PatchSet:
    """``n`` patches, each from source ``s`` with probability ``weights[s]`` (weights sum to 1)."""
    which = rng.choice(len(sets), size=n, p=weights)
    parts = [sets[s].subset(rng.integers(0, len(sets[s]), size=int((which == s).sum()))) for s in range(len(sets))]
    return PatchSet.concat(parts, sets[0].images.shape[1])
