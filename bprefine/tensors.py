"""The numpy <-> torch boundary for patches, shared by training and inference.

- ``patches_to_tensors``: native crops (K, h, w, 3) uint8 + (K, h, w) masks -> normalised network inputs
  (K, 3, S, S) and (K, 1, S, S) float32 at the model's input size S.
- ``logits_to_patches``: (K, 1, S, S) logits -> (K, h, w) float32 logits at the crop's native size.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from bprefine.model import ModelConfig


def patches_to_tensors(
    image_patches: np.ndarray, mask_patches: np.ndarray, *, config: ModelConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize native crops to the network input and normalise them.

    ``image_patches`` (K, h, w, 3) uint8 and ``mask_patches`` (K, h, w) in [0, 1] become
    (K, 3, S, S) and (K, 1, S, S) float32 tensors, resized bilinearly. Bilinear weights sum to one,
    so normalising before resizing gives the same values on 4x fewer pixels.
    """
    k, h, w = mask_patches.shape
    std = torch.tensor(config.image_std, dtype=torch.float32)
    img = torch.from_numpy(np.ascontiguousarray(image_patches)).float()  # (K, h, w, 3)
    img.mul_(1.0 / (255.0 * std)).sub_(torch.tensor(config.image_mean, dtype=torch.float32) / std)
    msk = torch.from_numpy(np.ascontiguousarray(mask_patches)).float()
    msk.sub_(config.mask_mean).div_(config.mask_std)
    both = torch.cat([img, msk.unsqueeze(-1)], dim=-1).numpy()  # (K, h, w, 4), channels last
    s = config.input_size
    if (h, w) != (s, s):  # cv2 matches torch's align_corners=False bilinear and is ~8x faster here
        resized = np.empty((k, s, s, 4), np.float32)
        for src, dst in zip(both, resized):
            cv2.resize(src, (s, s), dst=dst, interpolation=cv2.INTER_LINEAR)
        both = resized
    t = torch.from_numpy(both).permute(0, 3, 1, 2)  # (K, 4, S, S) view of channels-last memory
    return t[:, :3], t[:, 3:]


def logits_to_patches(logits: torch.Tensor, *, box_hw: tuple[int, int], padding: int) -> np.ndarray:
    """Resize (K, 1, S, S) logits back to the padded crop and drop the context border: (K, h, w)."""
    h, w = box_hw
    out = F.interpolate(logits.float(), size=(h + 2 * padding, w + 2 * padding), mode="bilinear",
                        align_corners=False)
    return out[:, 0, padding : padding + h, padding : padding + w].cpu().numpy()
