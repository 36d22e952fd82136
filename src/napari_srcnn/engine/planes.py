"""Training planes: images and stacks of any dimensionality cut into normalised 2-D planes.

Every 2-D plane of the data is one training image.
[`planes_from_array()`][napari_srcnn.engine.planes.planes_from_array] checks an array (non-empty,
numeric, finite), resolves the colour mode (`COLOR_MODES`: RGB to luminance, to 3 channels, or every
channel on its own) and returns ``(C, H, W)`` float32 planes.

Intensities are normalised by the rule inference uses by default (``"auto"``, see
[`normalization_auto()`][napari_srcnn.engine.color.normalization_auto]: the dtype's range for 8-bit
RGB photographs, else the data's own robust range, per channel for a channel axis in per-channel
mode), so a model sees the same range in training and in use.
"""

from __future__ import annotations

import numpy as np

from ..errors import TrainingDataError
from .color import Normalization, normalization_auto, normalize, rgb_to_ycbcr
from .io import ImageMeta

__all__ = [
    "COLOR_MODES",
    "image_mode",
    "check_array",
    "planes_from_array",
    "resolve_color_mode",
]

#: Colour modes of training data: ``"y"`` (luminance of RGB; grayscale as is), ``"rgb"``
#: (3-channel model), ``"per-channel"`` (every 2-D plane of every channel on its own), and
#: ``"auto"`` (``"y"`` when the first image is RGB, else ``"per-channel"``).
COLOR_MODES = ("auto", "y", "rgb", "per-channel")


def _is_rgb(shape: tuple[int, ...], meta: ImageMeta) -> bool:
    return meta.rgb and len(shape) >= 3 and shape[-1] in (3, 4)


def resolve_color_mode(color_mode: str, shape: tuple[int, ...], meta: ImageMeta | None) -> str:
    """Turn ``"auto"`` into ``"y"`` (RGB data) or ``"per-channel"``; check the other modes."""
    if color_mode not in COLOR_MODES:
        raise TrainingDataError(
            f"colour mode {color_mode!r} is not one of {', '.join(COLOR_MODES)}"
        )
    if color_mode != "auto":
        return color_mode
    meta = _meta_for(shape, meta)
    return "y" if _is_rgb(shape, meta) else "per-channel"


def _meta_for(shape: tuple[int, ...], meta: ImageMeta | None) -> ImageMeta:
    if meta is None or len(meta.axes) != len(shape):
        return ImageMeta.default(shape)
    return meta


def image_mode(shape: tuple[int, ...], meta: ImageMeta | None, color_mode: str) -> str:
    """How one training image of ``shape`` is processed in ``color_mode``: ``"y"`` or ``"rgb"``
    only when it is an RGB image (a grayscale plane in a Y-mode set is processed on its own),
    else ``"per-channel"`` — the ``mode`` that
    [`normalization_auto()`][napari_srcnn.engine.color.normalization_auto] takes."""
    meta = _meta_for(shape, meta)
    mode = resolve_color_mode(color_mode, shape, meta)
    return mode if _is_rgb(shape, meta) else "per-channel"


def check_array(arr: np.ndarray, what: str) -> None:
    """Refuse what cannot be training data: empty, under 2-D, non-numeric or non-finite."""
    if arr.size == 0:
        raise TrainingDataError(f"{what} of shape {arr.shape} is empty")
    if arr.ndim < 2:
        raise TrainingDataError(f"{what} of shape {arr.shape} has no 2-D planes")
    if arr.dtype == bool or arr.dtype.kind not in "uif":
        raise TrainingDataError(
            f"{what} of dtype {arr.dtype} is not supported; use integer or float images"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise TrainingDataError(
            f"{what} contains {bad} NaN or Inf value(s); clean or replace them first"
        )


def planes_from_array(
    array: np.ndarray,
    color_mode: str,
    meta: ImageMeta | None = None,
    norm: Normalization | None = None,
    what: str = "training stack",
) -> list[np.ndarray]:
    """Split an image or stack of any dimensionality into normalised planes.

    Parameters
    ----------
    array
        ``(..., H, W)`` or, for colour data, ``(..., H, W, S)`` with S = 3 or 4 (the last
        axis is colour when ``meta`` says so; without ``meta``, a last axis of 3 or 4 on a
        3-D or larger array is taken as colour). Integer or float dtype.
    color_mode
        ``"y"`` (RGB → BT.601 luminance, non-colour planes as they are), ``"rgb"`` (colour
        samples kept as 3 channels; a ``C`` axis of length 3 counts as colour), ``"per-channel"``
        (every 2-D plane of every channel and colour sample on its own) or ``"auto"``.
    meta
        Axes of the array (as
        [`napari_srcnn.engine.io.read_image()`][napari_srcnn.engine.io.read_image] returns them).
    norm
        Intensity normalisation of the whole array; default
        [`normalization_auto()`][napari_srcnn.engine.color.normalization_auto] (of [`image_mode()`][napari_srcnn.engine.planes.image_mode]), and in ``"per-channel"``
        mode with a channel axis (``C`` in ``meta``) one such map per channel, as inference maps
        channels processed on their own.
    what
        How error messages name the array.

    Returns
    -------
    list of numpy.ndarray
        ``(C, H, W)`` float32 planes, C = 3 for ``"rgb"``, else 1; about ``[0, 1]``.

    Raises
    ------
    TrainingDataError
        Empty, non-numeric or non-finite data, or an RGB mode without colour data.
    """
    arr = np.asarray(array)
    check_array(arr, what)
    meta = _meta_for(arr.shape, meta)
    color_mode = resolve_color_mode(color_mode, arr.shape, meta)
    ch = meta.channel_axis
    if norm is None and color_mode == "per-channel" and ch is not None and arr.ndim >= 3:
        # Channels on their own: one map per channel, as inference does.
        return [
            p
            for c in range(arr.shape[ch])
            for p in planes_from_array(
                np.take(arr, c, axis=ch),
                color_mode,
                ImageMeta(axes=meta.axes[: ch % arr.ndim] + meta.axes[ch % arr.ndim + 1 :]),
                None,
                what,
            )
        ]
    norm = norm or normalization_auto(arr, image_mode(arr.shape, meta, color_mode))
    if color_mode == "rgb" and not _is_rgb(arr.shape, meta):
        ch = meta.channel_axis
        if ch is not None and arr.shape[ch] == 3 and arr.ndim >= 3:
            arr = np.moveaxis(arr, ch, -1)  # a 3-channel C axis is taken as R, G, B
            meta = ImageMeta(axes=meta.axes.replace("C", "") + "S")
        else:
            raise TrainingDataError(
                f"an RGB model needs RGB images (a last axis of 3); {what} has shape {arr.shape}"
                " — use --channels y or per-channel"
            )
    if _is_rgb(arr.shape, meta):
        rgb = normalize(arr[..., :3], norm)
        rgb = rgb.reshape(-1, *rgb.shape[-3:])
        if color_mode == "rgb":
            return [np.ascontiguousarray(p.transpose(2, 0, 1)) for p in rgb]
        if color_mode == "y":
            return [
                np.ascontiguousarray(rgb_to_ycbcr(p, channel_axis=-1)[None, ..., 0]) for p in rgb
            ]
        # per-channel: each colour sample is a plane of its own
        return [np.ascontiguousarray(p[..., c])[None] for p in rgb for c in range(3)]
    if meta.axes.endswith("S"):
        arr = np.moveaxis(arr, -1, 0)  # samples that are not RGB(A): planes of their own
    planes = normalize(arr, norm).reshape(-1, *arr.shape[-2:])
    return [np.ascontiguousarray(p)[None] for p in planes]
