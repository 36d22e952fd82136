"""The settings of an upscaling run, shared by the Python API, the CLI and the widget."""

from __future__ import annotations

import decimal
import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InputError
from .resize import output_size

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "CHANNEL_MODES",
    "MAX_SCALE",
    "NORMALIZATIONS",
    "PRECISIONS",
    "UpscaleOptions",
    "check_image_meta",
    "output_shape",
]

CHANNEL_MODES = ("auto", "y", "rgb", "per-channel")
NORMALIZATIONS = ("auto", "dtype", "percentile", "none")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MAX_SCALE = 16.0


@dataclass(frozen=True)
class UpscaleOptions:
    """Settings of an upscaling run, shared by the Python API, the CLI and the widget.

    Parameters
    ----------
    scale
        Up-sampling factor (> 1, any real number; ``None``: the model's trained factor).
    channels
        ``"auto"``: a last axis of 3 (RGB) or 4 (RGBA) is colour and goes through the
        model's colour mode (Y for 1-channel models, RGB for 3-channel ones); anything else is
        processed plane by plane. ``"y"``: network on luminance, bicubic on chroma.
        ``"rgb"``: 3-channel network. ``"per-channel"``: every channel (and every plane) on
        its own with a 1-channel model.
    channel_axis
        Axis of a stacked channel dimension (e.g. 0 for ``(C, H, W)``, -1 for ``(H, W, C)``).
        It is never up-sampled. Needed only when it is one of the last two axes.
    tile
        Output tile edge in pixels (>= 16): the unit of progress, cancel and host memory. The result
        does not depend on it. On the CPU the network runs each tile in cache-sized blocks; on CUDA
        tiles grow to what the free device memory allows (see
        [`tile_edge()`][napari_srcnn.engine.inference.Upscaler.tile_edge]) and the blocks halve on
        out-of-memory.
    device
        ``"auto"`` (CUDA, else the Apple GPU, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``
        or ``"mps"``.
    normalization
        ``"auto"``: 8-bit RGB photographs by the dtype's range, every other image by its own
        0.1/99.9 percentiles, per channel for a channel axis (see
        [`normalization_auto()`][napari_srcnn.engine.color.normalization_auto]). ``"dtype"``,
        ``"percentile"`` (robust, for scientific data) or ``"none"``.
    percentiles
        Low/high percentiles for ``normalization="percentile"``.
    precision
        ``"auto"``: bf16 on a CPU with native bf16 (AVX-512 BF16 or AMX) for a model whose
        weights record a passed bf16 check (at most 0.05 dB lost on Set5), bf16 autocast on
        CUDA (NaN check, fp32 fallback), fp32 otherwise (MPS, other CPUs: see
        [`napari_srcnn.engine.precision`][napari_srcnn.engine.precision]); or ``"fp32"``,
        ``"bf16"``, ``"fp16"``. What ran is the runner's ``precision``.
    rgb
        Whether the last axis is colour: ``None`` guesses so when it has 3 (RGB) or 4 (RGBA)
        entries (napari's rule); ``False``: never, the last two axes are Y and X (a stack
        3 or 4 pixels wide); ``True``: always (the last axis must have 3 or 4 entries).
        A napari layer's ``rgb`` flag is the value to pass.
    ensemble
        Self-ensemble ("SRCNN+", as EDSR+ and RCAN+): the image is upscaled in its 8 flips and
        rotations and the results, turned back, are averaged. 8× the work; in-memory arrays
        only. Scores are reported apart from the plain model's.
    strength
        Share of the network's correction over bicubic up-sampling: ``1`` the plain model,
        ``0`` bicubic, any number between. ``"auto"``: measured on the image itself (once per
        image, per channel for a channel axis) where it is mapped by its own range and processed
        plane by plane (scientific data), 1 for photographs and the protocol (see
        [`calibration`][napari_srcnn.engine.calibration]).
    """

    scale: float | None = None
    channels: str = "auto"
    channel_axis: int | None = None
    tile: int = 512
    device: str = "auto"
    normalization: str = "auto"
    percentiles: tuple[float, float] = (0.1, 99.9)
    precision: str = "auto"
    rgb: bool | None = None
    ensemble: bool = False
    strength: float | str = "auto"

    def __post_init__(self) -> None:
        # NumPy scalars, Fractions and Decimals are numbers too: stored as plain float / int.
        if self.scale is not None:
            scale = _real(self.scale)
            if scale is None:
                raise InputError(f"scale {self.scale!r} must be a number")
            if not math.isfinite(scale) or scale <= 1.0 or scale > MAX_SCALE:
                raise InputError(
                    f"scale {self.scale!r} must be a number above 1 and at most {MAX_SCALE:g}"
                )
            object.__setattr__(self, "scale", scale)
        if not isinstance(self.channels, str) or self.channels not in CHANNEL_MODES:
            raise InputError(f"channels {self.channels!r} is not one of {', '.join(CHANNEL_MODES)}")
        tile = _integer(self.tile)
        if tile is None or tile < 16:
            raise InputError(f"tile {self.tile!r} must be an integer of at least 16 pixels")
        object.__setattr__(self, "tile", tile)
        if self.channel_axis is not None:
            axis = _integer(self.channel_axis)
            if axis is None:
                raise InputError(f"channel_axis {self.channel_axis!r} must be an integer or None")
            object.__setattr__(self, "channel_axis", axis)
        if not isinstance(self.normalization, str) or self.normalization not in NORMALIZATIONS:
            raise InputError(
                f"normalization {self.normalization!r} is not one of {', '.join(NORMALIZATIONS)}"
            )
        pair = _pair(self.percentiles)
        if pair is None or not (0 <= pair[0] < pair[1] <= 100):
            raise InputError(
                f"percentiles {self.percentiles!r} must be two numbers (low, high) with "
                "0 <= low < high <= 100"
            )
        object.__setattr__(self, "percentiles", pair)
        if not isinstance(self.device, str):
            raise InputError(f"device {self.device!r} must be a string such as 'auto' or 'cpu'")
        if not isinstance(self.precision, str) or self.precision not in PRECISIONS:
            raise InputError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if not isinstance(self.ensemble, bool):
            raise InputError(f"ensemble {self.ensemble!r} must be True or False")
        if self.strength != "auto":
            strength = _real(self.strength)
            if strength is None or not 0.0 <= strength <= 1.0:
                raise InputError(f"strength {self.strength!r} must be 'auto' or a number in [0, 1]")
            object.__setattr__(self, "strength", strength)
        if self.rgb is not None and not isinstance(self.rgb, bool):
            raise InputError(f"rgb {self.rgb!r} must be True, False or None (guess)")


def _real(value: object) -> float | None:
    """``value`` as a float if it is a real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, decimal.Decimal)):
        return None
    try:
        return float(value)
    except (OverflowError, ValueError):  # a Fraction or Decimal beyond float's range
        return None


def _integer(value: object) -> int | None:
    """``value`` as an int if it is an integer (NumPy's included, not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def _pair(value: object) -> tuple[float, float] | None:
    """``value`` as two finite floats, else None."""
    if isinstance(value, (str, bytes)):
        return None
    try:
        items = list(value)  # type: ignore[call-overload]
    except TypeError:  # None, a number
        return None
    if len(items) != 2:
        return None
    low, high = (_real(v) for v in items)
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return None
    return low, high


def output_shape(
    shape: tuple[int, ...], scale: float, spatial_axes: tuple[int, int]
) -> tuple[int, ...]:
    """Shape after up-sampling ``spatial_axes`` of ``shape`` by ``scale`` (MATLAB's ceil)."""
    out = list(shape)
    for ax in spatial_axes:
        out[ax] = output_size(shape[ax], scale)
    return tuple(out)


def check_image_meta(shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse, with an InputError, what cannot be upscaled, from shape and dtype alone (no data is
    read): a non-numeric dtype, fewer than 2 or more than 6 dimensions, an empty shape."""
    if dtype.kind not in "uif":  # also refuses bool (kind "b")
        raise InputError(f"unsupported dtype {dtype}: use an integer or float image")
    if len(shape) < 2:
        raise InputError(f"image must have at least 2 dimensions, got shape {shape}")
    if len(shape) > 5 + 1:
        raise InputError(f"image has {len(shape)} dimensions; at most 6 are supported")
    if 0 in shape:
        raise InputError(f"image of shape {shape} is empty")
