"""Colour conversion (ITU-R BT.601 as in MATLAB) and intensity normalisation.

SRCNN in Y mode works on the luma of MATLAB's ``rgb2ycbcr``; the published PSNRs are
computed on that Y too, so the coefficients must be MATLAB's exactly. Several public
ports carry a typo (64.738 instead of 65.481 for R) and report wrong numbers.

The network sees intensities of about ``[0, 1]``;
[`normalization_for()`][napari_srcnn.engine.color.normalization_for],
[`normalize()`][napari_srcnn.engine.color.normalize] and
[`denormalize()`][napari_srcnn.engine.color.denormalize] map 8-bit, 16-bit, other integer and float
data there and back so that an upscaled image keeps the dtype and range of its input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = [
    "YCBCR_FROM_RGB",
    "YCBCR_OFFSET",
    "AUTO_PERCENTILES",
    "Normalization",
    "denormalize",
    "normalization_auto",
    "normalization_for",
    "normalize",
    "rgb_to_y_uint8",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

# MATLAB rgb2ycbcr (BT.601, "studio swing"): for R, G, B in [0, 255],
# [Y, Cb, Cr] = offset + M @ [R, G, B] / 255 with Y in [16, 235], Cb/Cr in [16, 240].
YCBCR_FROM_RGB: np.ndarray = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ],
    dtype=np.float64,
)
YCBCR_OFFSET: np.ndarray = np.array([16.0, 128.0, 128.0], dtype=np.float64)

# The same transform for data in [0, 1] on both sides, and its exact inverse (MATLAB's
# ycbcr2rgb also inverts the matrix rather than using rounded published coefficients).
_M = YCBCR_FROM_RGB / 255.0
_B = YCBCR_OFFSET / 255.0
_M_INV = np.linalg.inv(_M)

NORMALIZATION_MODES = ("dtype", "percentile", "none")


def rgb_to_ycbcr(x: ArrayT, channel_axis: int = -1) -> ArrayT:
    """RGB to YCbCr like MATLAB's ``rgb2ycbcr`` on ``double`` data.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        Floating RGB data in ``[0, 1]`` with three channels along ``channel_axis``.
    channel_axis : int, default -1
        Axis holding R, G, B.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Same type, shape, dtype and device; Y in ``[16/255, 235/255]``, Cb and Cr in
        ``[16/255, 240/255]`` for inputs in ``[0, 1]``.

    Raises
    ------
    ValueError
        If ``x`` is not floating point or the channel axis does not have length 3.
    """
    return _affine(x, _M, _B, channel_axis, "rgb_to_ycbcr")


def ycbcr_to_rgb(x: ArrayT, channel_axis: int = -1) -> ArrayT:
    """YCbCr to RGB, the exact inverse of
    [`rgb_to_ycbcr()`][napari_srcnn.engine.color.rgb_to_ycbcr].

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        Floating YCbCr data (MATLAB's ``double`` scaling) with three channels along
        ``channel_axis``.
    channel_axis : int, default -1
        Axis holding Y, Cb, Cr.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        RGB of the same type, shape, dtype and device. Not clipped: YCbCr triplets
        outside the RGB cube give values outside ``[0, 1]``; clamp before display.

    Raises
    ------
    ValueError
        If ``x`` is not floating point or the channel axis does not have length 3.
    """
    return _affine(x, _M_INV, -_M_INV @ _B, channel_axis, "ycbcr_to_rgb")


def _affine(x: ArrayT, m: np.ndarray, b: np.ndarray, channel_axis: int, name: str) -> ArrayT:
    """``m @ v + b`` for every 3-vector ``v`` along ``channel_axis``."""
    if isinstance(x, torch.Tensor):
        if not torch.is_floating_point(x):
            raise ValueError(f"{name} needs floating data in [0, 1], got a {x.dtype} tensor")
        _check_channels(tuple(x.shape), channel_axis, name)
        # Half-precision tensors are converted in float32: the coefficients need more bits.
        work = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        mt = torch.as_tensor(m, dtype=work, device=x.device)
        bt = torch.as_tensor(b, dtype=work, device=x.device)
        v = torch.movedim(x.to(work), channel_axis, -1)
        out = torch.matmul(v, mt.T) + bt
        return torch.movedim(out, -1, channel_axis).to(x.dtype)
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        raise ValueError(
            f"{name} needs floating data in [0, 1], got {arr.dtype}; scale integer images "
            "with normalize() first (or use rgb_to_y_uint8 for 8-bit RGB)"
        )
    _check_channels(arr.shape, channel_axis, name)
    work_np = arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    v = np.moveaxis(arr.astype(work_np, copy=False), channel_axis, -1)
    out_np = v @ m.T.astype(work_np) + b.astype(work_np)
    return np.moveaxis(out_np, -1, channel_axis).astype(arr.dtype, copy=False)  # type: ignore[return-value]


def _check_channels(shape: tuple[int, ...], channel_axis: int, name: str) -> None:
    if not -len(shape) <= channel_axis < len(shape):
        raise ValueError(f"{name}: channel_axis {channel_axis} is out of range for shape {shape}")
    if shape[channel_axis] != 3:
        raise ValueError(
            f"{name} needs 3 channels on axis {channel_axis}, got shape {shape}; "
            "pass channel_axis= for channels-first data"
        )


def rgb_to_y_uint8(rgb_uint8: np.ndarray) -> np.ndarray:
    """MATLAB's 8-bit luma: ``rgb2ycbcr(uint8 image)(:, :, 1)``.

    This is the Y on which the evaluation protocol scores (``Y in [16, 235]``).

    Parameters
    ----------
    rgb_uint8 : numpy.ndarray
        ``(..., 3)`` uint8 RGB.

    Returns
    -------
    numpy.ndarray
        ``(...)`` uint8 luma, rounded half away from zero as MATLAB converts doubles to
        ``uint8``.

    Raises
    ------
    ValueError
        If the input is not uint8 or has no trailing axis of length 3.
    """
    arr = np.asarray(rgb_uint8)
    if arr.dtype != np.uint8:
        raise ValueError(f"rgb_to_y_uint8 needs a uint8 RGB image, got {arr.dtype}")
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise ValueError(f"rgb_to_y_uint8 needs an (..., 3) RGB image, got shape {arr.shape}")
    rgb = arr.astype(np.float64)
    y = YCBCR_OFFSET[0] + rgb @ YCBCR_FROM_RGB[0] / 255.0
    # The values are positive, so floor(v + 0.5) is MATLAB's round-half-away-from-zero
    # (np.rint would round halves to even).
    return np.clip(np.floor(y + 0.5), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- intensity normalisation


@dataclass(frozen=True)
class Normalization:
    """An affine map from stored intensities to the network's ``[0, 1]`` range.

    ``normalized = (value - low) / (high - low)``.

    Attributes
    ----------
    kind : str
        How ``low`` / ``high`` were chosen: ``"dtype"`` (the dtype's range; identity for
        floats), ``"percentile"`` (data percentiles) or ``"none"`` (identity).
    low, high : float
        Intensities mapped to 0 and 1; ``high > low``.
    """

    kind: str
    low: float
    high: float

    def __post_init__(self) -> None:
        if self.kind not in NORMALIZATION_MODES:
            raise ValueError(
                f"normalization kind {self.kind!r} is not one of {', '.join(NORMALIZATION_MODES)}"
            )
        if not (np.isfinite(self.low) and np.isfinite(self.high) and self.high > self.low):
            raise ValueError(
                f"normalization needs finite low < high, got low={self.low}, high={self.high}"
            )


def normalization_for(
    array: Any,
    mode: str = "dtype",
    percentiles: tuple[float, float] = (0.1, 99.9),
    max_samples: int = 1_000_000,
    seed: int = 0,
) -> Normalization:
    """Choose how to map ``array``'s intensities to ``[0, 1]``.

    Parameters
    ----------
    array : array-like
        numpy array, memmap or any array with ``shape``, ``dtype`` and numpy-style
        fancy indexing (or ``vindex``, as dask and zarr arrays have). Not loaded in full
        when it has more than ``max_samples`` elements.
    mode : {"dtype", "percentile", "none"}
        ``"dtype"``: uint8 -> 0..255, uint16 -> 0..65535, other integers -> their dtype's
        range, floats -> identity (assumed already in ``[0, 1]``). ``"percentile"``:
        ``percentiles`` of the finite values. ``"none"``: identity for every dtype.
    percentiles : (float, float), default (0.1, 99.9)
        Low and high percentiles, in ``[0, 100]``, for ``mode="percentile"``.
    max_samples : int, default 1_000_000
        Percentiles of a larger array are computed on this many values drawn at random
        (seeded, so the result is reproducible) instead of on the whole array.
    seed : int, default 0
        Seed of that draw.

    Returns
    -------
    Normalization
        If the percentiles coincide (a constant image), ``high = low + 1``.

    Raises
    ------
    ValueError
        For boolean, complex or non-numeric data, an unknown mode, bad percentiles, or
        (percentile mode) an array without a single finite value.
    """
    dtype = np.dtype(array.dtype)
    _check_numeric(dtype)
    if mode == "none":
        return Normalization("none", 0.0, 1.0)
    if mode == "dtype" and dtype.kind in "ui" and dtype.itemsize > 2:
        # 32/64-bit integer images never fill their dtype's range (a camera image in int64
        # would collapse to one grey level): use the data's own range instead.
        return normalization_for(array, "percentile", (0.0, 100.0), max_samples, seed)
    if mode == "dtype":
        if dtype.kind in "ui":
            info = np.iinfo(dtype)
            return Normalization("dtype", float(info.min), float(info.max))
        return Normalization("dtype", 0.0, 1.0)
    if mode != "percentile":
        raise ValueError(
            f"normalization mode {mode!r} is not one of {', '.join(NORMALIZATION_MODES)}"
        )
    p_low, p_high = (float(p) for p in percentiles)
    if not 0.0 <= p_low <= p_high <= 100.0:
        raise ValueError(
            f"percentiles must satisfy 0 <= low <= high <= 100, got {tuple(percentiles)}"
        )
    if max_samples < 1:
        raise ValueError(f"max_samples must be at least 1, got {max_samples}")
    values = _sample(array, max_samples, seed).astype(np.float64, copy=False).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError(
            "percentile normalisation found no finite value in the image; "
            "use normalization 'dtype' or 'none'"
        )
    low, high = np.percentile(values, [p_low, p_high])
    low, high = float(low), float(high)
    if not high > low:
        # A constant image: any positive width will do, but it must be representable next
        # to `low` (1e17 + 1 == 1e17 in float64).
        high = low + max(1.0, abs(low) * 1e-6)
    return Normalization("percentile", low, high)


#: The robust range of ``normalization="auto"``: these percentiles of the data's own finite
#: values map to 0 and 1 (the few pixels beyond stay beyond: only the dtype's limits clip).
AUTO_PERCENTILES = (0.1, 99.9)


def normalization_auto(
    array: Any, mode: str = "per-channel", max_samples: int = 1_000_000, seed: int = 0
) -> Normalization:
    """The default intensity map (``"auto"``): the one rule, for training and inference alike.

    8-bit photographs (``mode`` ``"y"`` or ``"rgb"``: an RGB image processed in colour, uint8)
    keep the exact dtype map, the literature protocol's. Every other image (uint16, 12-bit data in
    uint16, float, wide integers, single- and multichannel uint8 microscopy) is mapped by a
    robust range of its own finite values, the `AUTO_PERCENTILES` of a seeded subsample of
    at most ``max_samples`` values, so that dim 16-bit data does not land in a sliver of
    ``[0, 1]`` and every tile, plane and chunk of one image shares one map. Call it once per
    image or stack, and once per channel where channels are processed separately.

    Parameters
    ----------
    array : array-like
        As for [`normalization_for()`][napari_srcnn.engine.color.normalization_for].
    mode : str
        How ``array`` is processed: ``"y"`` or ``"rgb"`` (an RGB image in colour) or
        ``"per-channel"`` (every plane on its own, the default).
    max_samples, seed
        The subsample (see [`normalization_for()`][napari_srcnn.engine.color.normalization_for]).

    Returns
    -------
    Normalization
        ``kind="dtype"`` for photographs (and for floating data without a finite value),
        else ``kind="percentile"``.
    """
    if mode in ("y", "rgb") and np.dtype(array.dtype) == np.uint8:
        return normalization_for(array, "dtype")
    try:
        return normalization_for(array, "percentile", AUTO_PERCENTILES, max_samples, seed)
    except ValueError:  # not a single finite value: nothing to measure, keep the values
        return normalization_for(array, "dtype")


def _sample(array: Any, max_samples: int, seed: int) -> np.ndarray:
    """All of ``array`` if small, else ``max_samples`` values drawn with replacement."""
    shape = tuple(int(s) for s in array.shape)
    size = int(np.prod(shape, dtype=np.int64))
    if size <= max_samples:
        return np.asarray(array)
    rng = np.random.default_rng(seed)
    # Sorted flat positions read memmaps and chunked arrays in storage order.
    flat = np.sort(rng.integers(0, size, size=max_samples, dtype=np.int64))
    coords = np.unravel_index(flat, shape)
    if isinstance(array, np.ndarray):
        return array[coords]
    vindex = getattr(array, "vindex", None)
    picked = vindex[coords] if vindex is not None else array[coords]
    if hasattr(picked, "compute"):  # dask
        picked = picked.compute()
    return np.asarray(picked)


def normalize(x: Any, norm: Normalization) -> np.ndarray:
    """Map stored intensities to the network range: ``(x - low) / (high - low)``.

    Parameters
    ----------
    x : array-like
        Any real numeric array (not boolean or complex).
    norm : Normalization
        From [`normalization_for()`][napari_srcnn.engine.color.normalization_for].

    Returns
    -------
    numpy.ndarray
        float32, same shape, not clipped (values outside ``[low, high]`` map outside
        ``[0, 1]``; NaN stays NaN).

    Raises
    ------
    ValueError
        For boolean or complex data.
    """
    arr = np.asarray(x)
    _check_numeric(arr.dtype)
    if arr.dtype.itemsize > 2 and arr.dtype != np.float32 or norm.kind == "percentile":
        # Subtract and scale in float64 *before* narrowing: float64 data beyond float32's
        # range (1e300) or wide integers would otherwise become inf or lose all contrast.
        wide = arr.astype(np.float64)
        span = norm.high - norm.low
        if math.isfinite(span):
            return ((wide - norm.low) / span).astype(np.float32)
        # A range wider than float64 holds (-1.7e308 to 1.7e308): halve everything first.
        with np.errstate(over="ignore", invalid="ignore"):
            return ((wide / 2 - norm.low / 2) / (norm.high / 2 - norm.low / 2)).astype(np.float32)
    out = arr.astype(np.float32)  # always a fresh array, safe to modify in place
    if norm.low != 0.0:
        out -= np.float32(norm.low)
    if norm.high - norm.low != 1.0:
        out *= np.float32(1.0 / (norm.high - norm.low))
    return out


def denormalize(x: Any, norm: Normalization, dtype: Any) -> np.ndarray:
    """Map network-range values back to stored intensities of ``dtype``.

    Parameters
    ----------
    x : array-like
        Values in about ``[0, 1]`` (float).
    norm : Normalization
        The normalisation the input was made with.
    dtype : numpy dtype-like
        Output dtype. Integers are rounded to nearest and clipped to the dtype's range
        (NaN becomes 0, as MATLAB converts NaN to integers); floats are clipped only at the
        dtype's finite limits (nothing becomes ±inf; NaN stays NaN).

    Returns
    -------
    numpy.ndarray
        ``x * (high - low) + low`` as ``dtype``.

    Raises
    ------
    ValueError
        For a boolean, complex or non-numeric ``dtype``.
    """
    out_dtype = np.dtype(dtype)
    _check_numeric(out_dtype)
    arr = np.asarray(x)
    # float32 is exact enough for 8/16-bit targets; wider integers and float64 need more, and
    # so does a range near float32's limits (``value * span`` would overflow).
    wide = (out_dtype.kind in "ui" and out_dtype.itemsize >= 4) or out_dtype == np.float64
    wide = wide or max(abs(norm.low), abs(norm.high)) > 2.0**100
    work = np.dtype(np.float64) if wide or arr.dtype == np.float64 else np.dtype(np.float32)
    y: np.ndarray = arr.astype(work)  # fresh copy
    span = norm.high - norm.low
    if not math.isfinite(span):
        # A range wider than float64 holds: in halves, clipped, then doubled (see normalize()).
        half = float(np.finfo(np.float64).max) / 2
        with np.errstate(over="ignore"):  # beyond the limits: clipped next
            np.multiply(y, norm.high / 2 - norm.low / 2, out=y)
            np.add(y, norm.low / 2, out=y)
        np.clip(y, -half, half, out=y)
        np.multiply(y, 2.0, out=y)
    else:
        with np.errstate(over="ignore"):  # beyond the dtype's limits: clipped below
            if span != 1.0:
                np.multiply(y, span, out=y)
            if norm.low != 0.0:
                np.add(y, norm.low, out=y)
    if out_dtype.kind in "ui":
        info = np.iinfo(out_dtype)
        top = float(info.max)
        if top > info.max:  # 2**63 - 1 rounds up to 2**63 in float64 and would overflow
            top = float(np.nextafter(top, 0.0))
        np.rint(y, out=y)
        np.clip(y, float(info.min), top, out=y)
        np.nan_to_num(y, copy=False, nan=0.0)
    else:
        # Clip at the dtype's limits only, so that nothing becomes ±inf (NaN stays NaN).
        limits = np.finfo(out_dtype)
        np.clip(y, float(limits.min), float(limits.max), out=y)
    return y.astype(out_dtype, copy=False)


def _check_numeric(dtype: np.dtype) -> None:
    if dtype.kind == "b":
        raise ValueError(
            "boolean images cannot be normalised; convert the mask to uint8 (0/255) first"
        )
    if dtype.kind == "c":
        raise ValueError(
            "complex images are not supported; upscale the magnitude or the real and "
            "imaginary parts separately"
        )
    if dtype.kind not in "uif":
        raise ValueError(
            f"images of dtype {dtype} are not supported; use an integer or float dtype"
        )
