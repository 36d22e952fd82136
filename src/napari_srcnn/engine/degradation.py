"""The paper's degradation: the low-resolution partner of a high-resolution plane.

The LR partner of an HR plane is made as in the paper: optional Gaussian blur, MATLAB-bicubic
down-sampling by the factor, and bicubic up-sampling back to the HR grid
([`degrade()`][napari_srcnn.engine.degradation.degrade]). Planes are first mod-cropped
([`modcrop_plane()`][napari_srcnn.engine.degradation.modcrop_plane]) so that the LR grid is whole;
the degradation is applied to each whole plane, so patches cut from it see true image-level
degradation, not per-patch border effects.
"""

from __future__ import annotations

import math

import numpy as np

from .resize import imresize

__all__ = ["degrade", "modcrop_plane"]


def degrade(hr: np.ndarray, scale: float, blur_sigma: float = 0.0) -> np.ndarray:
    """The paper's degradation of a ``(C, H, W)`` plane: blur, bicubic ↓scale, bicubic ↑.

    Parameters
    ----------
    hr
        ``(C, H, W)`` float32, mod-cropped so that ``H / scale`` and ``W / scale`` are integers (see
        [`modcrop_plane()`][napari_srcnn.engine.degradation.modcrop_plane]).
    scale
        Down-sampling factor.
    blur_sigma
        Standard deviation (HR pixels) of an optional Gaussian blur before down-sampling.

    Returns
    -------
    numpy.ndarray
        The bicubic-up-sampled LR plane, float32, same shape as ``hr``.
    """
    x = hr
    if blur_sigma > 0:
        from scipy.ndimage import gaussian_filter

        x = gaussian_filter(x, sigma=(0, blur_sigma, blur_sigma), mode="reflect")
    h, w = x.shape[-2:]
    lr = imresize(x, output_shape=(round(h / scale), round(w / scale)))
    return imresize(lr, output_shape=(h, w)).astype(np.float32)


def modcrop_plane(plane: np.ndarray, scale: float) -> np.ndarray:
    """Crop H and W so that they are whole multiples of the LR grid (exact for integers)."""
    h, w = plane.shape[-2:]
    step = _grid(scale)
    return plane[..., : h - h % step, : w - w % step]


def _grid(scale: float) -> int:
    """Smallest HR length that maps to a whole number of LR pixels (3 for ×3, 5 for ×2.5)."""
    for k in range(1, 101):
        if abs(k / scale - round(k / scale)) < 1e-6:
            return k
    return max(1, math.ceil(scale))
