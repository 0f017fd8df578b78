"""Segmentation metrics: mask IoU, boundary IoU and boundary F-score."""

from bprefine.metrics.masks import (
    band_width,
    boundary_band,
    boundary_f,
    boundary_iou,
    mask_iou,
)

__all__ = ["band_width", "boundary_band", "boundary_f", "boundary_iou", "mask_iou"]
