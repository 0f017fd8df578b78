"""bprefine: Boundary Patch Refinement (BPR) for instance, semantic and panoptic segmentation masks."""

from bprefine.model import (
    ModelConfig,
    RefinementModel,
    bundled_models,
    load_model,
    save_model,
)
from bprefine.nets import PRESETS, build_net
from bprefine.patches import (
    PatchAccumulator,
    boundary_map,
    boundary_points,
    boxes_around,
    crop_masks,
    crop_patches,
    extract_boxes,
    grid_boxes,
    instance_box,
    nms,
    propose_boxes,
)
from bprefine.refine import Refiner
from bprefine.tensors import logits_to_patches, patches_to_tensors

__version__ = "0.1.0"

__all__ = [
    "ModelConfig",
    "PRESETS",
    "PatchAccumulator",
    "RefinementModel",
    "Refiner",
    "boundary_map",
    "boundary_points",
    "boxes_around",
    "build_net",
    "bundled_models",
    "crop_masks",
    "crop_patches",
    "extract_boxes",
    "grid_boxes",
    "instance_box",
    "load_model",
    "logits_to_patches",
    "nms",
    "patches_to_tensors",
    "propose_boxes",
    "save_model",
]
