"""Degradations: the low-resolution partner of a high-resolution plane.

The LR partner of an HR plane is made as in the paper: optional Gaussian blur, MATLAB-bicubic
down-sampling by the factor, and bicubic up-sampling back to the HR grid
([`degrade()`][napari_srcnn.engine.degradation.degrade]). Real low-resolution images are not only
bicubic shrinks: ``kind="area"`` bins ``s × s`` pixels into one (a camera with pixels ``s`` times
larger; integer factors), on the same pixel grid as MATLAB's shrink, before the same bicubic
up-sampling. `DEGRADATIONS` names the choices of a training set (``"mixed"``: every plane with
both, a mildly blurred bicubic one, and an *oversampled* one: the HR plane itself blurred first, as
a microscope that samples finer than its optics resolve records it, so that the model also learns
when there is nothing to sharpen). Planes are first mod-cropped
([`modcrop_plane()`][napari_srcnn.engine.degradation.modcrop_plane]) so that the LR grid is whole;
the degradation is applied to each whole plane, so patches cut from it see true image-level
degradation, not per-patch border effects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .resize import imresize

__all__ = [
    "DEGRADATIONS",
    "MAX_BLUR",
    "MIXED_BLUR",
    "PairedPlanes",
    "area_downsample",
    "degradation_kinds",
    "degrade",
    "grid_step",
    "modcrop_plane",
    "oversample",
]


@dataclass
class PairedPlanes:
    """Aligned planes: ``lr_up`` (the degraded plane, up-sampled back to the HR grid) and ``hr``,
    both ``(C, H, W)`` float32: one training (or validation) image."""

    lr_up: np.ndarray
    hr: np.ndarray


#: Degradations of a training set: ``"bicubic"`` (the paper's), ``"area"`` (pixel binning)
#: and ``"mixed"`` (each plane four times: bicubic, area, bicubic after a mild blur, and
#: bicubic of an oversampled plane).
DEGRADATIONS = ("bicubic", "area", "mixed")
#: Largest blur (HR pixels): a wider one leaves nothing of the plane to learn from (and its
#: kernel alone would not fit in memory).
MAX_BLUR = 32.0
#: The mild blur of ``"mixed"`` (HR pixels), when no blur is asked for.
MIXED_BLUR = 0.6
#: The blur (in HR pixels, per unit of the factor) that makes a plane oversampled: detail
#: finer than about the LR pixel is gone from the HR plane itself.
OVERSAMPLED_BLUR = 0.4


def degradation_kinds(degradation: str, blur_sigma: float) -> list[tuple[str, float]]:
    """The ``(kind, blur sigma)`` partners every HR plane gets under ``degradation``.

    Kind ``"oversampled"`` means: blur the HR plane by ``OVERSAMPLED_BLUR × scale`` and use the
    blurred plane as HR and (bicubic-shrunk) as LR source (see `oversample()`)."""
    if degradation not in DEGRADATIONS:
        raise ValueError(f"degradation {degradation!r} is not one of {', '.join(DEGRADATIONS)}")
    if degradation != "mixed":
        return [(degradation, blur_sigma)]
    return [
        ("bicubic", 0.0),
        ("area", 0.0),
        ("bicubic", blur_sigma or MIXED_BLUR),
        ("oversampled", 0.0),
    ]


def oversample(hr: np.ndarray, scale: float) -> np.ndarray:
    """``hr`` as a microscope sampling finer than its optics records it: Gaussian blur of
    ``OVERSAMPLED_BLUR × scale`` HR pixels (float32, same shape)."""
    from scipy.ndimage import gaussian_filter

    sigma = OVERSAMPLED_BLUR * scale
    return gaussian_filter(hr, sigma=(0, sigma, sigma), mode="reflect").astype(np.float32)


def area_downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Mean of every ``factor × factor`` block of a ``(C, H, W)`` plane (H, W multiples of it)."""
    c, h, w = x.shape
    blocks = x.reshape(c, h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(2, 4), dtype=np.float64).astype(np.float32)


def degrade(
    hr: np.ndarray, scale: float, blur_sigma: float = 0.0, kind: str = "bicubic"
) -> np.ndarray:
    """The degradation of a ``(C, H, W)`` plane: blur, ↓scale (bicubic or area), bicubic ↑.

    Parameters
    ----------
    hr
        ``(C, H, W)`` float32, mod-cropped so that ``H / scale`` and ``W / scale`` are integers (see
        [`modcrop_plane()`][napari_srcnn.engine.degradation.modcrop_plane]).
    scale
        Down-sampling factor.
    blur_sigma
        Standard deviation (HR pixels) of an optional Gaussian blur before down-sampling.
    kind
        ``"bicubic"`` (MATLAB's antialiased shrink) or ``"area"`` (block means; the factor
        must be an integer).

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
    if kind == "area":
        if abs(scale - round(scale)) > 1e-9:
            raise ValueError(f"area binning needs an integer factor, got ×{scale:g}")
        lr = area_downsample(np.asarray(x, dtype=np.float32), int(round(scale)))
    elif kind == "bicubic":
        lr = imresize(x, output_shape=(round(h / scale), round(w / scale)))
    else:
        raise ValueError(f"degradation kind {kind!r} is not bicubic or area")
    return imresize(lr, output_shape=(h, w)).astype(np.float32)


def modcrop_plane(plane: np.ndarray, scale: float) -> np.ndarray:
    """Crop H and W so that they are whole multiples of the LR grid (exact for integers)."""
    h, w = plane.shape[-2:]
    step = grid_step(scale)
    return plane[..., : h - h % step, : w - w % step]


def grid_step(scale: float) -> int:
    """Smallest HR length that maps to a whole number of LR pixels (3 for ×3, 5 for ×2.5)."""
    for k in range(1, 101):
        if abs(k / scale - round(k / scale)) < 1e-6:
            return k
    return max(1, math.ceil(scale))
