"""Scoring models on scientific images: any dtype, stacks and channels, over the data's range.

The literature's protocol ([`evaluation`][napari_srcnn.engine.evaluation]) scores 8-bit photographs on
their luma on a 0..255 scale. Microscopy is not that: 16-bit and float data, dim images, several
channels, z-stacks. [`score_image()`][napari_srcnn.engine.scoring.score_image] scores what a user
would see:

- every 2-D plane of the HR image (per channel and z) is mod-cropped and shrunk by the factor, by
  MATLAB bicubic (the protocol's degradation) or by area binning (a camera with pixels ``scale``
  times larger), rounded back to the image's dtype as a camera would store it;
- the low-resolution stack is upscaled the way the user would upscale it (the given
  [`Upscaler`][napari_srcnn.engine.inference.Upscaler], defaults included: its intensity map
  and, without a named model, its choice of model), and bicubic up-sampling is the baseline,
  both delivered in the image's dtype (integers rounded), as a user gets them;
- PSNR and SSIM are computed per plane over the HR channel's own data range (its maximum minus
  its minimum over the whole stack) with ``scale`` pixels shaved, and averaged over the planes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from .data import find_images
from .degradation import area_downsample, as_stored
from .io import ImageMeta, read_image
from .metrics import psnr, ssim
from .resize import imresize

if TYPE_CHECKING:  # pragma: no cover
    from .inference import Upscaler

__all__ = ["SCORING_DEGRADATIONS", "is_photo_file", "score_files", "score_image", "shrink"]

#: How a scored image's low-resolution input is made.
SCORING_DEGRADATIONS = ("bicubic", "area")


def shrink(plane: np.ndarray, scale: int, degradation: str = "bicubic") -> np.ndarray:
    """The low-resolution version of a mod-cropped float ``(H, W)`` plane (float64)."""
    if degradation == "area":
        return area_downsample(plane[None].astype(np.float32), scale)[0].astype(np.float64)
    if degradation == "bicubic":
        h, w = plane.shape
        return imresize(plane.astype(np.float64), output_shape=(h // scale, w // scale))
    raise InputError(f"degradation {degradation!r} is not one of {', '.join(SCORING_DEGRADATIONS)}")


def _channels_first(image: np.ndarray, meta: ImageMeta | None) -> tuple[np.ndarray, str]:
    """``(C, ..., H, W)`` view of ``image`` and the letter of the axis moved first (``C``
    channels, ``S`` colour samples, ``""`` none)."""
    axes = meta.axes if meta is not None and len(meta.axes) == image.ndim else ""
    for letter in ("C", "S"):
        if letter in axes:
            return np.moveaxis(image, axes.index(letter), 0), letter
    return image[None], ""


def score_image(
    image: np.ndarray,
    scale: int,
    upscaler: Upscaler | None,
    meta: ImageMeta | None = None,
    degradation: str = "bicubic",
) -> dict[str, Any]:
    """Score bicubic (and ``upscaler``) on one HR image or stack of any dtype.

    Parameters
    ----------
    image
        The HR original: ``(..., H, W)``, with a channel (``C``) or sample (``S``) axis where
        ``meta`` says so; integer or float.
    scale
        Integer factor.
    upscaler
        What to score; ``None`` scores bicubic only.
    meta
        Axes of ``image`` (from [`read_image()`][napari_srcnn.engine.io.read_image]).
    degradation
        ``"bicubic"`` or ``"area"`` (see [`shrink()`][napari_srcnn.engine.scoring.shrink]).

    Returns
    -------
    dict
        ``planes``, ``bicubic_psnr``, ``bicubic_ssim`` and, with an upscaler, ``psnr``,
        ``ssim``, ``model`` (the model that ran) and ``strength`` (the strength it ran with,
        the mean over channels that have their own).

    Raises
    ------
    InputError
        Non-numeric data, planes too small for the factor, or a non-finite image.
    """
    if int(scale) != scale or scale < 2:
        raise InputError(f"scoring needs an integer factor of at least 2, got {scale}")
    scale = int(scale)
    arr = np.asarray(image)
    if arr.dtype.kind not in "uif" or arr.ndim < 2:
        raise InputError(f"cannot score an image of dtype {arr.dtype} and shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError("the image holds NaN or Inf values; scoring needs finite data")
    chans, axis = _channels_first(arr, meta)
    h, w = chans.shape[-2:]
    h, w = h - h % scale, w - w % scale
    if min(h, w) < 4 * scale:
        raise InputError(
            f"planes of {chans.shape[-2]}×{chans.shape[-1]} are too small for ×{scale}"
        )
    hr = chans[..., :h, :w].astype(np.float64)
    planes = hr.reshape(-1, h, w)
    lr = np.stack([shrink(p, scale, degradation) for p in planes])
    lr_stored = as_stored(lr, arr.dtype).reshape(*hr.shape[:-2], h // scale, w // scale)
    small = lr_stored.reshape(-1, h // scale, w // scale).astype(np.float64)
    # Bicubic as a viewer or a resize tool delivers it: in the image's dtype, like SRCNN's output
    # (8-bit data with a few levels would otherwise score rounding against unrounded values).
    bicubic = as_stored(np.stack([imresize(p, float(scale)) for p in small]), arr.dtype)
    bicubic = bicubic.astype(np.float64)
    sr = None
    model = None
    if upscaler is not None:
        from dataclasses import replace

        from .inference import Upscaler

        if axis == "C":  # channels on their own, as the CLI runs a C axis
            data = lr_stored
            options = replace(upscaler.options, channel_axis=0)
            upscaler = Upscaler(None if upscaler.auto_model else upscaler.model, options)
        elif axis == "S":  # colour samples last, as stored
            data = np.moveaxis(lr_stored, 0, -1)
        else:
            data = lr_stored[0]
        runner = upscaler.for_image(tuple(data.shape))
        model = runner.model.name
        out = np.asarray(runner(data), dtype=np.float64)
        assert runner.last_plan is not None
        strengths = runner.last_plan.strengths or (1.0,)
        if axis == "S":
            out = np.moveaxis(out, -1, 0)
        sr = out.reshape(-1, h, w)
    # Each channel's own data range (over the whole stack), as a viewer's contrast would be.
    n_per_channel = planes.shape[0] // hr.shape[0]
    rows: dict[str, list[float]] = {"bicubic_psnr": [], "bicubic_ssim": [], "psnr": [], "ssim": []}
    for i, ref in enumerate(planes):
        c = i // n_per_channel
        channel = hr[c]
        data_range = float(channel.max() - channel.min()) or 1.0
        rows["bicubic_psnr"].append(psnr(bicubic[i], ref, data_range, shave=scale))
        rows["bicubic_ssim"].append(ssim(bicubic[i], ref, data_range, shave=scale))
        if sr is not None:
            rows["psnr"].append(psnr(sr[i], ref, data_range, shave=scale))
            rows["ssim"].append(ssim(sr[i], ref, data_range, shave=scale))
    result: dict[str, Any] = {"planes": len(planes)}
    for key, values in rows.items():
        if values:
            finite = [v for v in values if math.isfinite(v)]
            result[key] = float(np.mean(finite)) if finite else math.inf
    if model is not None:
        result["model"] = model
        result["strength"] = float(np.mean(strengths))
    return result


def score_files(
    paths: Sequence[str | os.PathLike],
    scale: int,
    upscaler: Upscaler | None,
    degradation: str = "bicubic",
    progress: Callable[[int, int], Any] | None = None,
) -> list[dict[str, Any]]:
    """[`score_image()`][napari_srcnn.engine.scoring.score_image] on every image in ``paths``
    (files or folders; TIFF stacks of any dtype and axes). One dict per image, with ``name``."""
    files = find_images(paths)
    rows = []
    for i, path in enumerate(files):
        image, meta = read_image(path)
        try:
            scores = score_image(image, scale, upscaler, meta, degradation)
        except InputError as exc:
            raise InputError(f"{path.name}: {exc}") from None
        rows.append({"name": path.name, **scores})
        if progress is not None:
            progress(i + 1, len(files))
    return rows


def is_photo_file(path: str | os.PathLike) -> bool:
    """Whether the literature's protocol scores this file: an 8-bit grayscale or RGB image
    (the protocol's Set5/Set14 kind), not a stack, not 16-bit or float data."""
    image, meta = read_image(path)
    return image.dtype == np.uint8 and (
        image.ndim == 2 or (image.ndim == 3 and meta.rgb and image.shape[-1] in (3, 4))
    )
