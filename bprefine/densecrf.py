"""DenseCRF (Kraehenbuehl and Koltun 2011), the classic boundary refiner, as a peer to compare against.

Optional: ``pip install "bprefine[crf]"`` (pydensecrf2; the older pydensecrf works too). The settings are
the common ones: unary from the coarse labels (probability 0.7), a Gaussian kernel (sxy 3, compat 3) and a
bilateral kernel (sxy 80, srgb 13, compat 10), 5 mean-field iterations.
"""

from __future__ import annotations

import importlib.util

import numpy as np

MISSING = "DenseCRF is not installed: pip install \"bprefine[crf]\" (pydensecrf2)"


def available() -> bool:
    """Whether ``pydensecrf`` (as installed by pydensecrf2 or pydensecrf) can be imported."""
    return importlib.util.find_spec("pydensecrf") is not None


def densecrf(image: np.ndarray, labels: np.ndarray, n_labels: int, iterations: int = 5) -> np.ndarray:
    """Refine an H x W integer label map (values < ``n_labels``) of an H x W x 3 uint8 RGB image;
    returns the H x W int64 labels after ``iterations`` mean-field steps."""
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_labels

    h, w = labels.shape
    crf = dcrf.DenseCRF2D(w, h, n_labels)
    crf.setUnaryEnergy(unary_from_labels(labels.astype(np.int64), n_labels, gt_prob=0.7, zero_unsure=False))
    crf.addPairwiseGaussian(sxy=3, compat=3)
    crf.addPairwiseBilateral(sxy=80, srgb=13, rgbim=np.array(image, order="C", copy=True), compat=10)
    return np.argmax(crf.inference(iterations), axis=0).reshape(h, w).astype(np.int64)
