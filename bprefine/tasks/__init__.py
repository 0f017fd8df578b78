"""Refinement per task, each built on a ``Refiner`` (mirroring ``bprefine.metrics``).

- ``exclusive``: several disjoint masks refined together, one owner per pixel.
- ``semantic``: H x W label maps (optionally with per-class probabilities).
- ``panoptic``: COCO panoptic segment-id maps and their ``segments_info``.
- ``files``: mask PNGs and COCO results on disk (the command line, its worker processes and Ray share it).
Instance and class-agnostic masks are the ``Refiner``'s own job (``refine_instances``).
"""

from bprefine.tasks.exclusive import refine_exclusive
from bprefine.tasks.panoptic import refine_panoptic
from bprefine.tasks.semantic import refine_semantic

__all__ = ["refine_exclusive", "refine_panoptic", "refine_semantic"]
