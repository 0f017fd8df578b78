"""Boundary-patch geometry in numpy: boundary maps, box proposals, NMS, cropping and reassembly.

Conventions used throughout:
- ``image``: H x W x 3 uint8 RGB; ``mask``: H x W bool; ``masks``: N x H x W bool.
- ``boxes_xyxy``: K x 4 int64, half-open pixel boxes ``[x0, y0, x1, y1)``, so a box covers columns
  ``x0 .. x1 - 1``. Boxes produced here always lie inside the image when the image is at least as
  large as the patch; when it is smaller, the box starts at 0 and the missing part is padded at crop time.
- ``points_xy``: K x 2 int64 pixel coordinates ``(x, y)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

_KERNEL_3x3 = np.ones((3, 3), np.uint8)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight half-open box ``(x0, y0, x1, y1)`` of a bool mask, or None when the mask is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def boundary_map(mask: np.ndarray, *, border_as_contour: bool = False) -> np.ndarray:
    """Pixels on both sides of the contour: ``dilate(mask) & ~erode(mask)`` with a 3x3 kernel.

    By default the image border is not a contour (a mask touching it has no boundary there). With
    ``border_as_contour`` the mask's pixels along the image frame count as boundary too, which is
    what produces the all-foreground border patches of the paper's section 3.3.
    """
    m = mask.astype(np.uint8)
    border = cv2.BORDER_CONSTANT if border_as_contour else cv2.BORDER_REPLICATE
    inner = cv2.erode(m, _KERNEL_3x3, borderType=border, borderValue=0)
    outer = cv2.dilate(m, _KERNEL_3x3, borderType=cv2.BORDER_REPLICATE)
    return outer > inner


def boundary_points(mask: np.ndarray, *, border_as_contour: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Boundary pixels of ``mask`` and their scores, computed inside the mask's bounding box.

    Returns ``points_xy`` (K x 2 int64) and ``scores`` (K float32): how mixed the 3x3 neighbourhood
    of each pixel is, ``1 - |2f - 1|`` with ``f`` the foreground fraction (1 = evenly mixed).
    """
    box = mask_bbox(mask)
    if box is None:
        return np.zeros((0, 2), np.int64), np.zeros((0,), np.float32)
    h, w = mask.shape
    x0, y0 = max(box[0] - 1, 0), max(box[1] - 1, 0)
    x1, y1 = min(box[2] + 1, w), min(box[3] + 1, h)
    crop = mask[y0:y1, x0:x1]
    # The crop keeps a 1-pixel background margin except at the image frame, so constant padding in
    # boundary_map only ever acts on the frame.
    ys, xs = np.nonzero(boundary_map(crop, border_as_contour=border_as_contour))
    frac = cv2.blur(crop.astype(np.float32), (3, 3), borderType=cv2.BORDER_REPLICATE)[ys, xs]
    scores = (1.0 - np.abs(2.0 * frac - 1.0)).astype(np.float32)
    points = np.stack([xs + x0, ys + y0], axis=1).astype(np.int64)
    return points, scores


def boxes_around(points_xy: np.ndarray, *, patch_size: int, image_hw: tuple[int, int]) -> np.ndarray:
    """Square boxes of side ``patch_size`` centred on each point and moved inside the image.

    The start is clamped to ``[0, W - patch_size]``, so a box at the right edge ends exactly at ``W``
    (the last column is covered) and every point stays inside its own box.
    """
    h, w = image_hw
    half = patch_size // 2
    x0 = np.clip(points_xy[:, 0] - half, 0, max(w - patch_size, 0))
    y0 = np.clip(points_xy[:, 1] - half, 0, max(h - patch_size, 0))
    return np.stack([x0, y0, x0 + patch_size, y0 + patch_size], axis=1).astype(np.int64)


def box_iou(box: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
    """IoU of one box against K boxes (half-open integer boxes)."""
    iw = np.minimum(box[2], boxes_xyxy[:, 2]) - np.maximum(box[0], boxes_xyxy[:, 0])
    ih = np.minimum(box[3], boxes_xyxy[:, 3]) - np.maximum(box[1], boxes_xyxy[:, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes_xyxy[:, 2] - boxes_xyxy[:, 0]) * (boxes_xyxy[:, 3] - boxes_xyxy[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, nms_threshold: float) -> np.ndarray:
    """Greedy NMS: indices of kept boxes, highest score first.

    A box is dropped when its IoU with an already kept box is greater than ``nms_threshold``.
    Ties in score keep the input order (stable sort), so the result is deterministic.
    """
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        order = rest[box_iou(boxes_xyxy[i], boxes_xyxy[rest]) <= nms_threshold]
    return np.asarray(keep, np.int64)


def nms_squares(boxes_xyxy: np.ndarray, scores: np.ndarray, nms_threshold: float) -> np.ndarray:
    """``nms`` for boxes that are all squares of one side (same result, less work).

    For two p x p squares offset by (dx, dy), ``inter = max(p-|dx|, 0) * max(p-|dy|, 0)`` and
    ``IoU = inter / (2 p^2 - inter)``, divided exactly as ``box_iou`` does so ties round alike.
    """
    order = np.argsort(-scores, kind="stable")
    side = int(boxes_xyxy[0, 2] - boxes_xyxy[0, 0]) if len(boxes_xyxy) else 0
    x0 = boxes_xyxy[order, 0].astype(np.int64)
    y0 = boxes_xyxy[order, 1].astype(np.int64)
    area2 = 2 * side * side
    keep: list[int] = []
    alive = np.arange(len(order))
    while alive.size:
        i = alive[0]
        keep.append(int(order[i]))
        rest = alive[1:]
        ov = np.maximum(side - np.abs(x0[rest] - x0[i]), 0) * np.maximum(side - np.abs(y0[rest] - y0[i]), 0)
        alive = rest[ov / np.maximum(area2 - ov, 1e-9) <= nms_threshold]
    return np.asarray(keep, np.int64)


def _points_in_box(points_xy: np.ndarray, box: np.ndarray) -> np.ndarray:
    x, y = points_xy[:, 0], points_xy[:, 1]
    return (x >= box[0]) & (x < box[2]) & (y >= box[1]) & (y < box[3])


def _cover_missed(
    points_xy: np.ndarray, scores: np.ndarray, boxes_xyxy: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    """Add boxes (best score first) until every point lies in a kept box.

    NMS at low thresholds can suppress a box whose centre lies outside the box that suppressed it;
    without this step those boundary pixels would never be refined.
    """
    ox, oy = points_xy.min(axis=0)
    ex, ey = points_xy.max(axis=0) + 1
    covered_map = np.zeros((ey - oy, ex - ox), bool)  # local to the points' extent
    for x0, y0, x1, y1 in boxes_xyxy[keep].tolist():
        covered_map[max(y0 - oy, 0) : max(y1 - oy, 0), max(x0 - ox, 0) : max(x1 - ox, 0)] = True
    missed = np.flatnonzero(~covered_map[points_xy[:, 1] - oy, points_xy[:, 0] - ox])
    missed = missed[np.argsort(-scores[missed], kind="stable")]
    extra: list[int] = []
    while missed.size:
        i = int(missed[0])
        extra.append(i)
        missed = missed[~_points_in_box(points_xy[missed], boxes_xyxy[i])]
    return np.concatenate([keep, np.asarray(extra, np.int64)])


def propose_boxes(
    mask: np.ndarray, *, patch_size: int = 64, nms_threshold: float = 0.55, border_as_contour: bool = False
) -> np.ndarray:
    """Dense boundary boxes for one mask, thinned by NMS at IoU ``nms_threshold``: the paper's "dense sampling + NMS".

    Every boundary pixel lies in at least one returned box. Returns K x 4 int64 ``boxes_xyxy``.
    """
    points, scores = boundary_points(mask, border_as_contour=border_as_contour)
    if len(points) == 0:
        return np.zeros((0, 4), np.int64)
    boxes = boxes_around(points, patch_size=patch_size, image_hw=mask.shape)
    keep = nms_squares(boxes, scores, nms_threshold)
    keep = _cover_missed(points, scores, boxes, keep)
    return boxes[keep]


def grid_boxes(mask: np.ndarray, *, patch_size: int = 64, border_as_contour: bool = False) -> np.ndarray:
    """Cells of a fixed grid that contain boundary pixels (the paper's "pre-defined grid" scheme).

    The last row and column of cells are shifted inside the image so that no cell leaves it.
    """
    points, _ = boundary_points(mask, border_as_contour=border_as_contour)
    if len(points) == 0:
        return np.zeros((0, 4), np.int64)
    h, w = mask.shape
    cells = np.unique(points // patch_size, axis=0) * patch_size
    x0 = np.minimum(cells[:, 0], max(w - patch_size, 0))
    y0 = np.minimum(cells[:, 1], max(h - patch_size, 0))
    return np.stack([x0, y0, x0 + patch_size, y0 + patch_size], axis=1).astype(np.int64)


def instance_box(mask: np.ndarray, *, context: float = 0.1) -> np.ndarray:
    """The whole-instance patch: the mask's bounding box enlarged by ``context`` of its size."""
    box = mask_bbox(mask)
    if box is None:
        return np.zeros((0, 4), np.int64)
    h, w = mask.shape
    x0, y0, x1, y1 = box
    mx, my = int(round((x1 - x0) * context)), int(round((y1 - y0) * context))
    out = [max(x0 - mx, 0), max(y0 - my, 0), min(x1 + mx, w), min(y1 + my, h)]
    return np.asarray([out], np.int64)


SCHEMES = ("dense", "grid", "instance")


def extract_boxes(
    mask: np.ndarray, *, scheme: str = "dense", patch_size: int = 64, nms_threshold: float = 0.55,
    border_as_contour: bool = False,
) -> np.ndarray:
    """Boxes to refine for one mask under an extraction ``scheme`` (see ``SCHEMES``)."""
    if scheme == "dense":
        return propose_boxes(mask, patch_size=patch_size, nms_threshold=nms_threshold,
                             border_as_contour=border_as_contour)
    if scheme == "grid":
        return grid_boxes(mask, patch_size=patch_size, border_as_contour=border_as_contour)
    if scheme == "instance":
        return instance_box(mask)
    raise ValueError(f"unknown patch scheme {scheme!r}; choose one of {SCHEMES}")


def _slice_padded(array: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """``array[y0:y1, x0:x1]`` where out-of-image parts repeat the nearest edge pixel."""
    h, w = array.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    part = array[cy0:cy1, cx0:cx1]
    if (cx0, cy0, cx1, cy1) == (x0, y0, x1, y1):
        return part
    pad = [(cy0 - y0, y1 - cy1), (cx0 - x0, x1 - cx1)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(part, pad, mode="edge")


def _padded_boxes(boxes_xyxy: np.ndarray, padding: int) -> list[tuple[int, int, int, int]]:
    sizes = np.unique(boxes_xyxy[:, 2:] - boxes_xyxy[:, :2], axis=0)
    if len(sizes) > 1:
        raise ValueError(f"crops need boxes of one size, got sizes {sizes.tolist()[:3]}")
    return [(x0 - padding, y0 - padding, x1 + padding, y1 + padding) for x0, y0, x1, y1 in boxes_xyxy.tolist()]


def crop_masks(mask: np.ndarray, boxes_xyxy: np.ndarray, *, padding: int = 0) -> np.ndarray:
    """(K, h, w) crops of an H x W mask (bool -> uint8 in {0, 1}; uint8 maps keep their values), each box
    enlarged by ``padding``, with ``h = y1 - y0 + 2 * padding``. Parts outside the image repeat the edge."""
    crops = [_slice_padded(mask, *b) for b in _padded_boxes(boxes_xyxy, padding)]
    if not crops:
        return np.zeros((0, 2 * padding, 2 * padding), np.uint8)
    return np.stack(crops).astype(np.uint8)


def crop_patches(
    image: np.ndarray, mask: np.ndarray, boxes_xyxy: np.ndarray, *, padding: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Native-resolution crops of equal-sized boxes, each enlarged by ``padding`` for context.

    Returns image patches (K, h, w, 3) uint8 and mask patches (K, h, w) uint8 (see ``crop_masks``),
    with ``h = y1 - y0 + 2 * padding``. Parts outside the image repeat the edge pixels.
    """
    imgs = [_slice_padded(image, *b) for b in _padded_boxes(boxes_xyxy, padding)]
    if not imgs:
        return np.zeros((0, 2 * padding, 2 * padding, 3), np.uint8), crop_masks(mask, boxes_xyxy, padding=padding)
    return np.stack(imgs), crop_masks(mask, boxes_xyxy, padding=padding)


@dataclass
class PatchAccumulator:
    """Per-pixel sum and count of patch logits in a buffer local to one instance's patches.

    The buffer spans the union of the instance's boxes (clipped to the image), never the whole image.
    """

    origin_xy: tuple[int, int]
    logit_sum: np.ndarray  # (h, w) float32
    count: np.ndarray  # (h, w) uint16
    boxes_xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))  # in image pixels

    @classmethod
    def for_boxes(cls, boxes_xyxy: np.ndarray, image_hw: tuple[int, int]) -> "PatchAccumulator":
        h, w = image_hw
        x0, y0 = max(int(boxes_xyxy[:, 0].min()), 0), max(int(boxes_xyxy[:, 1].min()), 0)
        x1, y1 = min(int(boxes_xyxy[:, 2].max()), w), min(int(boxes_xyxy[:, 3].max()), h)
        shape = (y1 - y0, x1 - x0)
        return cls((x0, y0), np.zeros(shape, np.float32), np.zeros(shape, np.uint16), np.asarray(boxes_xyxy))

    def add(self, box_xyxy: np.ndarray, logits: np.ndarray) -> None:
        """Add one patch's logits, shaped like ``box_xyxy`` (its part outside the buffer is dropped)."""
        ox, oy = self.origin_xy
        bh, bw = self.logit_sum.shape
        x0, y0, x1, y1 = (int(v) for v in box_xyxy)
        cx0, cy0 = max(x0 - ox, 0), max(y0 - oy, 0)
        cx1, cy1 = min(x1 - ox, bw), min(y1 - oy, bh)
        if cx1 <= cx0 or cy1 <= cy0:
            return
        part = logits[cy0 - (y0 - oy) : cy1 - (y0 - oy), cx0 - (x0 - ox) : cx1 - (x0 - ox)]
        self.logit_sum[cy0:cy1, cx0:cx1] += part
        self.count[cy0:cy1, cx0:cx1] += 1

    def mean_logits(self) -> tuple[np.ndarray, np.ndarray]:
        """The (h, w) mean logit over the patches covering each buffer pixel, and the (h, w) bool
        ``covered`` map (mean is 0 where no patch covers the pixel)."""
        covered = self.count > 0
        return self.logit_sum / np.maximum(self.count, 1), covered

    def flips(self, coarse: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
        """(h, w) bool over this buffer: the pixels ``write_into`` would flip in the H x W ``coarse`` mask
        (only ``allowed`` ones, an (h, w) bool map, when given)."""
        flipped = (self.count > 0) & ((self.logit_sum > 0) != self.region(coarse).astype(bool, copy=False))
        return flipped if allowed is None else flipped & allowed

    def confidence(self, where: np.ndarray) -> float:
        """The mean |mean logit| over the pixels of the (h, w) bool map ``where`` (0.0 when it is empty):
        how sure the patches are, as a whole, of their decision there."""
        values = np.abs(self.logit_sum[where] / np.maximum(self.count[where], 1))  # only where asked: cheap
        return float(values.mean()) if values.size else 0.0

    def region(self, array: np.ndarray) -> np.ndarray:
        """The view of an image-sized (H, W, ...) ``array`` that this buffer spans."""
        ox, oy = self.origin_xy
        h, w = self.count.shape
        return array[oy : oy + h, ox : ox + w]

    def allowed(self, coarse: np.ndarray, max_move: float) -> np.ndarray:
        """(h, w) bool over this buffer: pixels within ``max_move`` px (Euclidean) of the boundary of the
        H x W ``coarse`` mask, the only pixels a guarded refinement may change. Every boundary pixel lies
        inside the buffer, so distances computed on its crop are exact up to ``max_move``."""
        crop = self.region(coarse).astype(np.uint8)
        inside = cv2.distanceTransform(crop, cv2.DIST_L2, 3)  # to the nearest background pixel
        outside = cv2.distanceTransform(1 - crop, cv2.DIST_L2, 3)  # to the nearest foreground pixel
        return np.where(crop > 0, inside, outside) <= max_move

    def moved_boxes(self, coarse: np.ndarray, min_move: float) -> np.ndarray:
        """(h, w) bool over this buffer: the union of the boxes in which refinement moves the boundary of
        the H x W ``coarse`` mask by at least ``min_move`` px on average, read as changed pixels per
        contour pixel (``boundary_map`` counts both sides of the contour, so half of its pixels).

        A box whose coarse boundary is already right sees only sub-pixel disagreement and stays as it
        was; a box the network redraws keeps its changes (where boxes overlap, the moved one wins).
        """
        crop = self.region(coarse).astype(bool)
        changed = self.flips(coarse)
        edge = boundary_map(crop)
        out = np.zeros(crop.shape, bool)
        ox, oy = self.origin_xy
        for x0, y0, x1, y1 in self.boxes_xyxy:
            rows = slice(max(int(y0) - oy, 0), max(int(y1) - oy, 0))
            cols = slice(max(int(x0) - ox, 0), max(int(x1) - ox, 0))
            contour = max(np.count_nonzero(edge[rows, cols]) / 2.0, 1.0)
            if np.count_nonzero(changed[rows, cols]) >= min_move * contour:
                out[rows, cols] = True
        return out

    def apply(self, coarse: np.ndarray) -> np.ndarray:
        """The refined mask: mean logit > 0 (probability > 0.5) where covered, ``coarse`` elsewhere."""
        out = coarse.copy()
        self.write_into(out)
        return out

    def write_into(self, mask: np.ndarray, allowed: np.ndarray | None = None) -> None:
        """``apply`` in place: overwrite the covered pixels of ``mask`` (only the ``allowed`` ones, an
        (h, w) bool map over this buffer, when given)."""
        covered = self.count > 0
        if allowed is not None:
            covered &= allowed
        self.region(mask)[covered] = self.logit_sum[covered] > 0
