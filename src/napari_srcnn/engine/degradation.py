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

A real LR image is stored like its HR one: integer data keeps integer levels. ``levels`` (from
[`level_grid()`][napari_srcnn.engine.degradation.level_grid], the plane's own grid of values
after its intensity map) rounds the down-sampled plane onto that grid before it is enlarged, as a
camera or a file would; a model that only ever saw unrounded LR takes the rounding steps of dim
8-bit data for edges and sharpens them (measured on held-out microscopy: a model that gains
0.6-1.0 dB over bicubic on unrounded LR loses 0.8-1.6 dB on the same LR rounded to 8 bits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .resize import imresize

__all__ = [
    "DEGRADATIONS",
    "MAX_BLUR",
    "MAX_LEVELS",
    "OWN_HR_KINDS",
    "MIXED_BLUR",
    "PairedPlanes",
    "area_downsample",
    "as_stored",
    "arrays_per_plane",
    "degradation_kinds",
    "degrade",
    "grid_step",
    "level_grid",
    "make_pair",
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
#: and ``"mixed"`` (each plane five times: bicubic, area, bicubic after a mild blur, bicubic of
#: an oversampled plane, and a dim recording of a few levels).
DEGRADATIONS = ("bicubic", "area", "mixed")
#: Largest blur (HR pixels): a wider one leaves nothing of the plane to learn from (and its
#: kernel alone would not fit in memory).
MAX_BLUR = 32.0
#: The mild blur of ``"mixed"`` (HR pixels), when no blur is asked for.
MIXED_BLUR = 0.6
#: Kinds whose HR plane is one of their own (the others share the original HR array).
OWN_HR_KINDS = ("oversampled", "dim")
#: Levels across the range of the ``"dim"`` partners (cycled over the planes): a dim
#: fluorescence image holds a few dozen, and its one-level steps are not edges.
DIM_LEVELS = (16, 32, 64, 128)
#: Planes with more levels than this across their values are not rounded: the rounding error of
#: a 12-bit or finer grid is far below anything a model or a score sees.
MAX_LEVELS = 4096
#: The blurs (in HR pixels, per unit of the factor) that make a plane oversampled, cycled over
#: the planes: detail finer than about the LR pixel is gone from the HR plane itself, and at
#: 0.8 × the factor a shrink and bicubic enlargement give it back almost exactly (a plane that
#: was itself interpolated, as "calibrated" microscopy data often is).
OVERSAMPLED_BLURS = (0.4, 0.6, 0.8)


def degradation_kinds(degradation: str, blur_sigma: float) -> list[tuple[str, float]]:
    """The ``(kind, blur sigma)`` partners every HR plane gets under ``degradation``.

    Kind ``"oversampled"`` means: blur the HR plane by 0.4-0.8 × ``scale``
    (`OVERSAMPLED_BLURS`) and use the blurred plane as HR and (bicubic-shrunk) as LR source
    (see `oversample()`); kind ``"dim"``: a dim recording of the plane, HR and LR stored on a
    few levels (see `make_pair()`)."""
    if degradation not in DEGRADATIONS:
        raise ValueError(f"degradation {degradation!r} is not one of {', '.join(DEGRADATIONS)}")
    if degradation != "mixed":
        return [(degradation, blur_sigma)]
    return [
        ("bicubic", 0.0),
        ("area", 0.0),
        ("bicubic", blur_sigma or MIXED_BLUR),
        ("oversampled", 0.0),
        ("dim", 0.0),
    ]


def arrays_per_plane(kinds: list[tuple[str, float]]) -> int:
    """Plane-sized arrays the partners ``kinds`` make of one HR plane (an LR plane each, and
    an HR plane of their own for `OWN_HR_KINDS`): what the memory estimate counts."""
    return len(kinds) + sum(kind in OWN_HR_KINDS for kind, _ in kinds)


def oversample(hr: np.ndarray, scale: float, blur: float = OVERSAMPLED_BLURS[0]) -> np.ndarray:
    """``hr`` as a microscope sampling finer than its optics records it: Gaussian blur of
    ``blur × scale`` HR pixels (float32, same shape)."""
    from scipy.ndimage import gaussian_filter

    sigma = blur * scale
    return gaussian_filter(hr, sigma=(0, sigma, sigma), mode="reflect").astype(np.float32)


def make_pair(
    hr: np.ndarray,
    scale: float,
    kind: str,
    blur_sigma: float = 0.0,
    levels: tuple[float, float] | None = None,
    index: int = 0,
) -> PairedPlanes:
    """One LR partner of the mod-cropped ``(C, H, W)`` plane ``hr`` (kinds of
    `degradation_kinds()`).

    ``"oversampled"`` pairs the plane blurred by ``OVERSAMPLED_BLURS[index % 3] × scale`` (see
    `oversample()`) with its bicubic shrink. ``"dim"`` is the plane recorded with
    ``DIM_LEVELS[(index // 2) % 4]`` levels across its range (every other plane oversampled
    first): HR and LR both stored on those levels, bicubic-shrunk for even ``index // 4`` and
    area-binned for odd. The other kinds share ``hr`` and go through `degrade()`; ``levels``
    rounds their LR plane (see `level_grid()`).
    """
    blur = OVERSAMPLED_BLURS[index % len(OVERSAMPLED_BLURS)]
    if kind == "oversampled":  # the HR plane itself is smooth: nothing to sharpen
        smooth = oversample(hr, scale, blur)
        return PairedPlanes(lr_up=degrade(smooth, scale, levels=levels), hr=smooth)
    if kind == "dim":
        n = DIM_LEVELS[(index // 2) % len(DIM_LEVELS)]
        source = oversample(hr, scale, blur) if index % 2 else hr
        dim = _round_to(source, (0.0, 1 / n))
        binned = (index // 4) % 2 and abs(scale - round(scale)) < 1e-9
        lr_up = degrade(dim, scale, kind="area" if binned else "bicubic", levels=(0.0, 1 / n))
        return PairedPlanes(lr_up=lr_up, hr=dim)
    return PairedPlanes(lr_up=degrade(hr, scale, blur_sigma, kind, levels=levels), hr=hr)


def as_stored(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` as an image of ``dtype`` stores them (integers rounded and clipped)."""
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def area_downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Mean of every ``factor × factor`` block of a ``(C, H, W)`` plane (H, W multiples of it)."""
    c, h, w = x.shape
    blocks = x.reshape(c, h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(2, 4), dtype=np.float64).astype(np.float32)


def level_grid(plane: np.ndarray) -> tuple[float, float] | None:
    """The grid ``origin + k × step`` that every value of ``plane`` lies on, or ``None``.

    A plane of integer data after its affine intensity map (``(x - low) / (high - low)``) lies
    on a grid of step ``1 / (high - low)``; float data, and grids of more than `MAX_LEVELS`
    levels, give ``None``. The step is the mean of the gaps between neighbouring levels, so
    float32 rounding of the mapped values does not move it.
    """
    values = np.unique(np.asarray(plane, dtype=np.float32)).astype(np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return None
    gaps = np.diff(values)
    smallest = gaps.min()
    span = values[-1] - values[0]
    if smallest <= 0 or span / smallest > MAX_LEVELS * 1.01:
        return None
    step = gaps[gaps < 1.5 * smallest].mean()
    levels = round(span / step)
    step = span / levels
    k = (values - values[0]) / step
    if np.abs(k - np.rint(k)).max() > 0.05:
        return None
    return float(values[0]), float(step)


def _round_to(x: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    origin, step = levels
    return (np.rint((x - origin) / step) * step + origin).astype(np.float32)


def degrade(
    hr: np.ndarray,
    scale: float,
    blur_sigma: float = 0.0,
    kind: str = "bicubic",
    levels: tuple[float, float] | None = None,
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
    levels
        ``(origin, step)`` of the grid the stored LR plane lies on (see `level_grid()`): the
        down-sampled plane is rounded onto it before it is enlarged. ``None``: not rounded.

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
    if levels is not None:
        lr = _round_to(lr, levels)
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
