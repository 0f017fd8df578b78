"""Training: patch datasets built with the inference code, and a resumable (optionally DDP) SGD loop."""

from bprefine.training.config import SourceConfig, TrainConfig, load_train_config
from bprefine.training.loop import train
from bprefine.training.patchset import PatchSet, patches_from_triple
from bprefine.training.sources import build_patches, match_to_ground_truth

__all__ = [
    "PatchSet",
    "SourceConfig",
    "TrainConfig",
    "build_patches",
    "load_train_config",
    "match_to_ground_truth",
    "patches_from_triple",
    "train",
]
