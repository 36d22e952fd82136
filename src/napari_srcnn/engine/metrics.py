"""PSNR and SSIM by the super-resolution evaluation protocol.

The protocol (see ``DESIGN.md``) is the one behind the published SRCNN numbers: score the Y channel
of MATLAB's ``rgb2ycbcr`` on the 8-bit scale, after mod-cropping the HR image to a multiple of the
factor and shaving ``scale`` pixels from every border. The degraded input is MATLAB's bicubic
``imresize`` down and up by the factor.
[`evaluate_pair()`][napari_srcnn.engine.metrics.evaluate_pair] runs all of it for one image, so
every front end reports comparable numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .color import rgb_to_y_uint8, rgb_to_ycbcr
from .resize import imresize

__all__ = ["evaluate_pair", "modcrop", "psnr", "shave", "ssim"]

# Wang et al. 2004 / MATLAB ssim_index defaults.
_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the last two axes (H, W) down to multiples of ``scale``.

    The crop keeps the top-left corner, as the reference MATLAB ``modcrop`` does.

    Parameters
    ----------
    img : numpy.ndarray
        ``(..., H, W)``; for channels-last RGB crop the Y image or move the axis first.
    scale : int
        Integer scale factor (an integral float such as ``3.0`` is accepted).

    Returns
    -------
    numpy.ndarray
        A view of ``img`` of shape ``(..., H - H % scale, W - W % scale)``.

    Raises
    ------
    ValueError
        If ``scale`` is not a positive integer or ``img`` has fewer than two axes.
    """
    s = _int_scale(scale)
    if img.ndim < 2:
        raise ValueError(f"modcrop needs an (..., H, W) array, got shape {img.shape}")
    h, w = img.shape[-2:]
    return img[..., : h - h % s, : w - w % s]


def shave(img: np.ndarray, n: int) -> np.ndarray:
    """Remove ``n`` pixels from each border of the last two axes.

    Parameters
    ----------
    img : numpy.ndarray
        ``(..., H, W)``.
    n : int
        Border width, ``>= 0``.

    Returns
    -------
    numpy.ndarray
        A view of shape ``(..., H - 2n, W - 2n)``.

    Raises
    ------
    ValueError
        If ``n`` is negative or leaves nothing of the image.
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"shave needs a border width >= 0, got {n}")
    if img.ndim < 2:
        raise ValueError(f"shave needs an (..., H, W) array, got shape {img.shape}")
    if n == 0:
        return img
    h, w = img.shape[-2:]
    if 2 * n >= min(h, w):
        raise ValueError(f"shaving {n} pixels from each border leaves nothing of {h}×{w}")
    return img[..., n : h - n, n : w - n]


def psnr(a: Any, b: Any, data_range: float = 255.0, shave: int = 0) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range² / MSE)`` in dB.

    Parameters
    ----------
    a, b : array-like
        Same shape ``(..., H, W)``, any real dtype; computed in float64 without
        rounding or clipping.
    data_range : float, default 255.0
        Peak value (255 for 8-bit scores, 1 for ``[0, 1]`` data).
    shave : int, default 0
        Border width excluded on H and W (the protocol uses the scale factor).

    Returns
    -------
    float
        PSNR in dB; ``inf`` for identical images.

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    x, y = _pair(a, b, shave, "psnr")
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def ssim(a: Any, b: Any, data_range: float = 255.0, shave: int = 0) -> float:
    """Mean structural similarity, as MATLAB's ``ssim_index`` (Wang et al. 2004).

    An 11×11 Gaussian window (σ = 1.5) slides over the *valid* region only (no
    padding), with ``C1 = (0.01 L)²`` and ``C2 = (0.03 L)²``; the result is the mean of
    the SSIM map. No down-sampling is applied (unlike MATLAB's later ``ssim``).

    Parameters
    ----------
    a, b : array-like
        2-D images of the same shape, at least 11×11 after shaving; float64 math.
    data_range : float, default 255.0
        Dynamic range ``L`` of the data.
    shave : int, default 0
        Border width excluded before filtering.

    Returns
    -------
    float
        Mean SSIM, 1.0 for identical images.

    Raises
    ------
    ValueError
        If the inputs are not 2-D, differ in shape or are smaller than the window.
    """
    x, y = _pair(a, b, shave, "ssim")
    if x.ndim != 2:
        raise ValueError(f"ssim needs 2-D images, got shape {x.shape}")
    if min(x.shape) < _SSIM_WINDOW:
        raise ValueError(
            f"ssim needs images of at least {_SSIM_WINDOW}×{_SSIM_WINDOW} pixels "
            f"after shaving, got {x.shape[0]}×{x.shape[1]}"
        )
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    g = _gaussian_1d(_SSIM_WINDOW, _SSIM_SIGMA)
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    sxx = _filter_valid(x * x, g) - mu_x * mu_x
    syy = _filter_valid(y * y, g) - mu_y * mu_y
    sxy = _filter_valid(x * y, g) - mu_x * mu_y
    num = (2.0 * mu_x * mu_y + c1) * (2.0 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


def _gaussian_1d(size: int, sigma: float) -> np.ndarray:
    # fspecial('gaussian') normalises the 2-D window; it is the outer product of this
    # normalised 1-D kernel with itself, so the filter can be applied separably.
    r = (size - 1) / 2.0
    t = np.arange(size, dtype=np.float64) - r
    g = np.exp(-(t * t) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation with ``outer(g, g)`` (MATLAB ``filter2(..., 'valid')``)."""
    rows = sliding_window_view(img, g.size, axis=0) @ g
    return sliding_window_view(rows, g.size, axis=1) @ g


def _pair(a: Any, b: Any, n: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"{name} needs images of the same shape, got {x.shape} and {y.shape}")
    return shave(x, n), shave(y, n)


def _int_scale(scale: Any) -> int:
    try:
        s = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale must be a positive integer, got {scale!r}") from None
    if not (s.is_integer() and s >= 1):
        raise ValueError(
            f"the evaluation protocol needs an integer scale factor (2, 3, 4, ...), got {scale!r}"
        )
    return int(s)


def _to_uint8_scale(img: np.ndarray) -> np.ndarray:
    """MATLAB's ``double(uint8(img))``: clip to 0..255, round half away from zero."""
    return np.floor(np.clip(np.nan_to_num(img, nan=0.0), 0.0, 255.0) + 0.5)


def evaluate_pair(
    hr_rgb_or_gray_uint8: np.ndarray,
    scale: int,
    upscale_fn: Callable[[np.ndarray], Any] | None = None,
    quantize: bool = True,
    rgb: bool = False,
) -> dict[str, float]:
    """Score bicubic (and optionally a model) on one HR image by the protocol.

    Steps: Y = MATLAB ``rgb2ycbcr`` luma of the 8-bit RGB image, rounded to uint8 (a 2-D
    grayscale image is used as it is); mod-crop Y to a multiple of ``scale``;
    ``LR = imresize(Y, 1/scale)`` and ``bicubic = imresize(LR, scale)`` in float64 on
    the 0..255 scale; the scored images are rounded to 8 bits (``quantize``); PSNR and
    SSIM against the HR Y with ``scale`` pixels shaved from every border.

    Parameters
    ----------
    hr_rgb_or_gray_uint8 : numpy.ndarray
        HR image, uint8, ``(H, W, 3)`` RGB or ``(H, W)`` grayscale.
    scale : int
        Integer factor (2, 3, 4, ...).
    upscale_fn : callable, optional
        The method to score. It receives the **low-resolution Y divided by 255**, a
        float32 ``(H/scale, W/scale)`` array (MATLAB-bicubic down-sampling of the
        mod-cropped HR Y, unrounded, values in about ``[16/255, 235/255]``), and must
        return the super-resolved Y at the HR (mod-cropped) size ``(H, W)`` in ``[0, 1]``
        (numpy or anything ``np.asarray`` accepts). The result is clipped to ``[0, 1]``
        and scaled by 255 before scoring. Handing over the LR (not the bicubic image)
        lets the scored method be the very ``upscale()`` that users run.
    quantize : bool, default True
        Round the bicubic and the ``upscale_fn`` images to 8-bit values (clip to
        0..255, round half away from zero) before scoring, as the published SRCNN
        evaluation code does (``uint8(im * 255)``); this reproduces the reference SSIMs
        of Set5 to four decimals. ``False`` scores the floating-point values (about
        0.01 dB higher PSNR).
    rgb : bool, default False
        Score a method that works on RGB (the paper's colour experiment): ``upscale_fn``
        receives the MATLAB-bicubic down-sampled **RGB** (mod-cropped, ``/ 255``, float32
        ``(H/scale, W/scale, 3)``) and returns RGB ``(H, W, 3)`` in ``[0, 1]``; its Y
        (MATLAB ``rgb2ycbcr`` of the 8-bit result) is scored against the HR Y. A grayscale
        image is handed over as three equal channels and scored on their mean. The
        bicubic baseline is unchanged (Y first), so the table stays comparable.

    Returns
    -------
    dict of str to float
        ``"bicubic_psnr"``, ``"bicubic_ssim"``, and with ``upscale_fn`` also ``"psnr"``
        and ``"ssim"`` (PSNR in dB, SSIM in [-1, 1]).

    Raises
    ------
    ValueError
        If the image is not uint8 2-D / RGB, is too small for the factor, the scale is
        not an integer, or ``upscale_fn`` returns a wrong shape.
    """
    s = _int_scale(scale)
    hr = np.asarray(hr_rgb_or_gray_uint8)
    if hr.dtype != np.uint8:
        raise ValueError(f"evaluate_pair needs a uint8 image, got {hr.dtype}")
    if hr.ndim == 3 and hr.shape[-1] == 3:
        y_hr = rgb_to_y_uint8(hr)
    elif hr.ndim == 2:
        y_hr = hr
    else:
        raise ValueError(
            f"evaluate_pair needs an (H, W) grayscale or (H, W, 3) RGB image, got {hr.shape}"
        )
    y_hr = modcrop(y_hr, s).astype(np.float64)
    # After shaving ``s`` pixels per border the SSIM window must still fit.
    if min(y_hr.shape) < 2 * s + _SSIM_WINDOW:
        raise ValueError(f"image {hr.shape[:2]} is too small to score at ×{s}")
    lr = imresize(y_hr, 1.0 / s)
    bicubic = imresize(lr, float(s))
    if bicubic.shape != y_hr.shape:  # cannot happen after modcrop; guards the sizes
        raise AssertionError(f"bicubic size {bicubic.shape} != HR size {y_hr.shape}")
    scored = _to_uint8_scale(bicubic) if quantize else bicubic
    scores = {
        "bicubic_psnr": psnr(scored, y_hr, 255.0, shave=s),
        "bicubic_ssim": ssim(scored, y_hr, 255.0, shave=s),
    }
    if upscale_fn is not None:
        # The method gets the unrounded LR, as in the reference code (which then applies
        # the same bicubic up-sampling before the network).
        if rgb:
            sr = _rgb_method_luma(hr, s, upscale_fn, quantize)
        else:
            sr = np.asarray(upscale_fn((lr / 255.0).astype(np.float32)), dtype=np.float64)
        if sr.shape != y_hr.shape:
            raise ValueError(
                f"upscale_fn returned shape {sr.shape}, expected the HR shape {y_hr.shape}"
            )
        sr = np.clip(sr, 0.0, 1.0) * 255.0
        if quantize and not rgb:
            sr = _to_uint8_scale(sr)
        scores["psnr"] = psnr(sr, y_hr, 255.0, shave=s)
        scores["ssim"] = ssim(sr, y_hr, 255.0, shave=s)
    return scores


def _rgb_method_luma(
    hr: np.ndarray, s: int, upscale_fn: Callable[[np.ndarray], Any], quantize: bool
) -> np.ndarray:
    """Y / 255 of an RGB method's result (see ``rgb`` in
    [`evaluate_pair()`][napari_srcnn.engine.metrics.evaluate_pair])."""
    gray = hr.ndim == 2
    rgb_hr = np.repeat(hr[..., None], 3, axis=-1) if gray else hr
    rgb_hr = np.moveaxis(modcrop(np.moveaxis(rgb_hr, -1, 0), s), 0, -1).astype(np.float64)
    lr = np.stack([imresize(rgb_hr[..., c], 1.0 / s) for c in range(3)], axis=-1)
    sr = np.asarray(upscale_fn((lr / 255.0).astype(np.float32)), dtype=np.float64)
    if sr.shape != rgb_hr.shape:
        raise ValueError(f"upscale_fn returned shape {sr.shape}, expected {rgb_hr.shape}")
    sr = np.clip(sr, 0.0, 1.0) * 255.0
    if quantize:  # uint8(im * 255), then MATLAB's 8-bit rgb2ycbcr
        sr = _to_uint8_scale(sr)
        y = sr.mean(axis=-1) if gray else rgb_to_y_uint8(sr.astype(np.uint8))
        return _to_uint8_scale(np.asarray(y, dtype=np.float64)) / 255.0
    y = sr.mean(axis=-1) if gray else rgb_to_ycbcr(sr / 255.0, channel_axis=-1)[..., 0] * 255.0
    return np.asarray(y, dtype=np.float64) / 255.0
