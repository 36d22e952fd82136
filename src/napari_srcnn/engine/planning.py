"""How an array will be upscaled: colour mode, channel axis, intensity mapping and shapes.

[`plan_array()`][napari_srcnn.engine.planning.plan_array] turns an array and the run's
options into a [`Plan`][napari_srcnn.engine.cells.Plan] (the same for NumPy and dask
arrays), and every bad combination of image and options into one clear
[`InputError`][napari_srcnn.errors.InputError].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .cells import Plan
from .color import Normalization, normalization_auto, normalization_for
from .options import UpscaleOptions
from .resize import output_size
from .weights_file import LoadedModel

__all__ = [
    "channel_axis",
    "channel_normalizations",
    "color_mode",
    "has_color_axis",
    "make_plan",
    "normalization",
    "plan_array",
]


def has_color_axis(options: UpscaleOptions, shape: tuple[int, ...]) -> bool:
    """Whether the last axis of ``shape`` is colour (see ``UpscaleOptions.rgb``)."""
    looks = len(shape) >= 3 and shape[-1] in (3, 4)
    if options.rgb and not looks and options.channel_axis is None:
        raise InputError(
            f"rgb=True needs a last axis of 3 (RGB) or 4 (RGBA); the image has shape {shape}"
        )
    return looks and options.rgb is not False


def color_mode(options: UpscaleOptions, model: LoadedModel, shape: tuple[int, ...]) -> str:
    """``"y"``, ``"rgb"`` or ``"per-channel"``: how an array of ``shape`` will be processed."""
    channels = options.channels
    c = model.info.arch.channels
    is_color = options.channel_axis is None and has_color_axis(options, shape)
    if channels == "auto":
        if is_color:
            return "rgb" if c == 3 else "y"
        if c == 3:
            raise InputError(
                f"model {model.name!r} is an RGB model; the image of shape {shape} "
                "has no colour axis of size 3"
            )
        return "per-channel"
    if channels in ("y", "rgb"):
        if not has_color_axis(options, shape):
            raise InputError(
                f"channels={channels!r} needs a last axis of 3 (RGB) or 4 (RGBA)"
                + (" and rgb not False" if options.rgb is False else "")
                + f"; the image has shape {shape}"
            )
        if channels == "rgb" and c != 3:
            raise InputError(
                f"channels='rgb' needs a 3-channel model; {model.name!r} has 1 channel"
            )
        if channels == "y" and c != 1:
            raise InputError(f"channels='y' needs a 1-channel model; {model.name!r} is RGB")
        return channels
    if c != 1:
        raise InputError(f"channels='per-channel' needs a 1-channel model; {model.name!r} is RGB")
    return "per-channel"


def normalization(options: UpscaleOptions, image: Any, mode: str | None = None) -> Normalization:
    """The intensity mapping for the whole of ``image`` (numpy, or dask: from a sample).

    ``"auto"`` is [`normalization_auto()`][napari_srcnn.engine.color.normalization_auto]: the dtype's
    range for an 8-bit image processed in colour (``mode`` ``"y"`` or ``"rgb"``, a photograph),
    else the data's own robust range. ``mode`` defaults to ``"per-channel"``.
    """
    if options.normalization == "auto":
        return normalization_auto(image, mode or "per-channel")
    return normalization_for(image, options.normalization, percentiles=options.percentiles)


def channel_normalizations(
    options: UpscaleOptions, image: Any, mode: str, axis: int | None
) -> tuple[Normalization, ...]:
    """One map per channel when channels are processed on their own (a channel axis, moved to 0,
    with ``"auto"`` or ``"percentile"``): a dim channel next to a bright one keeps its detail.
    Empty otherwise (the whole-image map serves every plane)."""
    if axis is None or mode != "per-channel" or options.normalization not in ("auto", "percentile"):
        return ()
    return tuple(normalization(options, image[c], mode) for c in range(int(image.shape[0])))


def channel_axis(options: UpscaleOptions, shape: tuple[int, ...]) -> int | None:
    """The axis of ``shape`` that is never up-sampled, if any (checked)."""
    ax = options.channel_axis
    if ax is None and options.channels == "per-channel" and has_color_axis(options, shape):
        ax = -1  # per-channel on an RGB(A) array: the colour axis is the channel axis
    if ax is not None:
        if not -len(shape) <= ax < len(shape):
            raise InputError(f"channel_axis {ax} is out of range for shape {shape}")
        if len(shape) < 3:
            raise InputError("an image with a channel axis needs two more spatial axes")
    return ax


def make_plan(
    options: UpscaleOptions,
    model: LoadedModel,
    shape: tuple[int, ...],
    dtype: np.dtype,
    norm: Normalization,
    axis: int | None,
    channel_norms: tuple[Normalization, ...] = (),
) -> Plan:
    """Shapes and modes for an array of ``shape`` whose channel axis ``axis`` (if any) is
    already at 0."""
    assert options.scale is not None
    scale = float(options.scale)
    mode = color_mode(options, model, shape)
    if mode == "per-channel":
        planes_shape, color = shape[:-2], None
        h, w = shape[-2:]
    else:
        planes_shape, color = shape[:-3], shape[-1]
        h, w = shape[-3:-1]
    if min(h, w) < 2:
        raise InputError(f"image planes of {h}×{w} pixels are too small to upscale")
    H, W = output_size(h, scale), output_size(w, scale)
    out_shape = (*planes_shape, H, W) if color is None else (*planes_shape, H, W, color)
    # float16 is computed in float32 and handed back as float16.
    return Plan(
        mode,
        norm,
        axis,
        tuple(planes_shape),
        color,
        (h, w),
        out_shape,
        np.dtype(dtype),
        scale,
        tuple(channel_norms),
    )


def plan_array(options: UpscaleOptions, model: LoadedModel, image: Any) -> tuple[Any, Plan]:
    """``image`` with its channel axis (if any) moved first, and its [`Plan`][napari_srcnn.engine.cells.Plan]."""
    ax = channel_axis(options, tuple(image.shape))
    if ax is not None:
        image = np.moveaxis(image, ax, 0)  # a dask array stays lazy (NEP 18 dispatch)
    shape = tuple(image.shape)
    mode = color_mode(options, model, shape)
    norm = normalization(options, image, mode)
    per_channel = channel_normalizations(options, image, mode, ax)
    plan = make_plan(options, model, shape, np.dtype(image.dtype), norm, ax, per_channel)
    return image, plan
