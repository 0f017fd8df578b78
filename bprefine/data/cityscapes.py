"""Cityscapes label conventions: labelIds (0-33, -1) <-> trainIds (0-18, 255 = ignore)."""

from __future__ import annotations

import numpy as np

IGNORE_TRAIN_ID = 255
# labelId -> trainId for the 19 evaluated classes; every other labelId maps to 255.
LABEL_TO_TRAIN = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                  26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
TRAIN_NAMES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
               "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
               "bicycle")


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    lut = np.full(256, IGNORE_TRAIN_ID, np.uint8)
    for label, train in LABEL_TO_TRAIN.items():
        lut[label] = train
    return lut[np.clip(label_ids, 0, 255).astype(np.int64)]


def train_ids_to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """The inverse for the 19 classes; ignore (255) becomes labelId 0 ("unlabeled")."""
    lut = np.zeros(256, np.uint8)
    for label, train in LABEL_TO_TRAIN.items():
        lut[train] = label
    return lut[np.clip(train_ids, 0, 255).astype(np.int64)]
