"""Scoring models on image files by the literature's protocol (see
[`.metrics`][napari_srcnn.engine.metrics])."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .color import normalization_for, normalize, rgb_to_y_uint8, rgb_to_ycbcr
from .data import find_images
from .device import cpu_has_native_bf16, cpu_model
from .inference import Upscaler
from .io import read_image
from .metrics import evaluate_pair, psnr, ssim
from .model import SRCNN
from .precision import BF16_MAX_LOSS_DB
from .resize import imresize

__all__ = [
    "FLAT_DTYPES",
    "FLAT_LEVELS",
    "FLAT_MAX_ERROR_255",
    "check_bf16",
    "check_flat",
    "flat_error_255",
    "compare_to_reference",
    "evaluate_files",
    "protocol_upscaler",
    "summarize",
]


def protocol_upscaler(
    model: Any, scale: int, device: str = "auto", precision: str = "fp32", ensemble: bool = False
) -> Upscaler:
    """The [`Upscaler`][napari_srcnn.engine.inference.Upscaler] that
    [`evaluate_files()`][napari_srcnn.engine.evaluation.evaluate_files] scores ``model`` with (a
    name, a weights file, a [`LoadedModel`][napari_srcnn.engine.weights_file.LoadedModel], or
    ``None`` for the installed Y model of ``scale``): its inputs are already in ``[0, 1]`` (no
    normalisation); a Y model runs on the Y plane, an RGB model (3 channels) on the RGB image (the
    paper's colour experiment, scored on Y). It runs in fp32 unless ``precision`` says
    otherwise: the protocol scores the model, not a faster approximation of it (see
    [`napari_srcnn.engine.precision`][napari_srcnn.engine.precision]). ``ensemble=True`` scores the
    self-ensemble ("SRCNN+", see [`UpscaleOptions`][napari_srcnn.engine.options.UpscaleOptions])."""
    from .options import UpscaleOptions
    from .weights import default_model_name, load_model

    if model is None:
        model = default_model_name(float(scale), "y")
    loaded = load_model(model, scale=float(scale))
    channels = "rgb" if loaded.info.arch.channels == 3 else "per-channel"
    return Upscaler(
        loaded,
        UpscaleOptions(
            scale=float(scale),
            channels=channels,
            device=device,
            normalization="none",
            precision=precision,
            ensemble=ensemble,
        ),
    )


def evaluate_files(
    paths: Sequence[str | os.PathLike],
    scale: int,
    upscaler: Upscaler | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> list[dict[str, Any]]:
    """Score bicubic (and ``upscaler``, when given) on every image in ``paths``.

    Each image is an HR original: Y channel (BT.601), mod-crop, MATLAB-bicubic ↓ then ↑ (the bicubic
    baseline), the model applied to the LR, PSNR/SSIM with ``scale`` pixels shaved. Returns one dict
    per image: ``name``, ``bicubic_psnr``, ``bicubic_ssim`` and, with a model, ``psnr`` and
    ``ssim``. An RGB model (3 channels, from
    [`protocol_upscaler()`][napari_srcnn.engine.evaluation.protocol_upscaler]) gets the down-sampled
    RGB image and is scored on the Y of its result.
    """
    if float(scale) != int(scale):
        raise InputError(f"evaluation needs an integer scale (the protocol mod-crops), got {scale}")
    files = find_images(paths)
    rows = []
    fn = None
    rgb = False
    if upscaler is not None:
        rgb = upscaler.model.info.arch.channels == 3
        if rgb and upscaler.options.channels != "rgb":
            raise InputError("an RGB model is scored with channels='rgb' (see protocol_upscaler)")

        def fn(lr_y: np.ndarray) -> np.ndarray:
            return upscaler(lr_y)

    for i, path in enumerate(files):
        image, _ = read_image(path)
        if image.dtype != np.uint8:
            raise InputError(
                f"{path.name}: the evaluation protocol needs 8-bit images, got {image.dtype}"
            )
        if image.ndim == 3 and image.shape[-1] == 4:
            image = image[..., :3]
        try:
            scores = evaluate_pair(image, int(scale), fn, rgb=rgb)
        except ValueError as exc:
            raise InputError(f"{path.name}: {exc}") from None
        rows.append({"name": path.name, **scores})
        if progress is not None:
            progress(i + 1, len(files))
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of every numeric column."""
    keys = [k for k in rows[0] if k != "name"] if rows else []
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def _luma255(image: np.ndarray) -> np.ndarray:
    """Y on the 0..255 scale: MATLAB ``rgb2ycbcr`` (rounded) for 8-bit RGB, else intensities."""
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        if image.dtype == np.uint8:
            return rgb_to_y_uint8(image[..., :3]).astype(np.float64)
        rgb = normalize(image[..., :3], normalization_for(image, "dtype"))
        return rgb_to_ycbcr(rgb, channel_axis=-1)[..., 0].astype(np.float64) * 255
    return normalize(image, normalization_for(image, "dtype")).astype(np.float64) * 255


def compare_to_reference(
    lr: np.ndarray, sr: np.ndarray, hr: np.ndarray, scale: float
) -> dict[str, float]:
    """PSNR/SSIM on Y (0..255) of bicubic(``lr``) and of ``sr`` against the original ``hr``.

    As in the protocol, Y is taken first and the bicubic baseline up-samples the LR Y;
    ``ceil(scale)`` pixels are shaved and the images are cropped to their common size.
    """
    if hr.ndim != sr.ndim or hr.ndim not in (2, 3):
        raise InputError(f"reference of shape {hr.shape} does not match the result {sr.shape}")
    y_lr, y_sr, y_hr = _luma255(lr), _luma255(sr), _luma255(hr)
    y_bic = imresize(y_lr, scale)
    # The reference must be the result's size up to the factor's rounding (a reference cropped
    # or shrunk would be scored against a corner of the result).
    if any(abs(y_hr.shape[i] - y_sr.shape[i]) > scale for i in (0, 1)):
        raise InputError(f"reference of shape {hr.shape} is not ×{scale:g} the input")
    h, w = (min(a.shape[i] for a in (y_sr, y_hr, y_bic)) for i in (0, 1))
    shave = int(math.ceil(scale))
    y_sr, y_hr, y_bic = (np.clip(a[:h, :w], 0, 255) for a in (y_sr, y_hr, y_bic))
    return {
        "shave": shave,
        "bicubic_psnr": psnr(y_bic, y_hr, 255.0, shave=shave),
        "bicubic_ssim": ssim(y_bic, y_hr, 255.0, shave=shave),
        "psnr": psnr(y_sr, y_hr, 255.0, shave=shave),
        "ssim": ssim(y_sr, y_hr, 255.0, shave=shave),
    }


#: Levels of the flat-image check, as shares of the data's range: black and white included.
FLAT_LEVELS = tuple(float(v) for v in np.linspace(0.0, 1.0, 21))
#: Data types of the flat-image check and the top of the range they hold: 8-bit, 16-bit, 12-bit
#: data stored in uint16 (a camera's), float in [0, 1].
FLAT_DTYPES = (("uint8", 255), ("uint16", 65535), ("uint16", 4095), ("float32", 1))
#: What a model may move a flat image by, in 1/255 of the range.
FLAT_MAX_ERROR_255 = 0.5


def flat_error_255(net: SRCNN) -> float:
    """How far a network moves a flat image, in 1/255 of its [0, 1] range: the worst over the
    levels of `FLAT_LEVELS` and those of 12-bit data read by the uint16 dtype map (the bottom
    6 %), in fp32. A flat input gives a flat output whatever the padding, so this is the
    network's part of `check_flat()` at a few milliseconds' cost; training uses it to keep
    weights that move flat images too far from being written."""
    spec = net.spec
    levels = torch.tensor(FLAT_LEVELS + tuple(v * 4095 / 65535 for v in FLAT_LEVELS))
    side = 2 * spec.halo + 1
    param = next(net.parameters())
    x = levels.view(-1, 1, 1, 1).expand(-1, spec.channels, side, side)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            y = net.body(x.to(param.device, torch.float32)).float().cpu()
    finally:
        net.train(was_training)
    return float((y - levels.view(-1, 1, 1, 1)).abs().max()) * 255


def check_flat(model: Any, scale: float | None = None) -> dict[str, Any]:
    """How far ``model`` moves flat images: the ``metrics["flat"]`` entry of a weights file.

    A flat image at every level of `FLAT_LEVELS`, in every dtype of `FLAT_DTYPES`, is upscaled
    in fp32 with the dtype's own intensity map (``normalization="dtype"``: 12-bit data then lies
    in the bottom 6 % of the network's range) and with the default one; its error is measured
    in 1/255 of the range that map spans (the dtype's, or for the default map the data's own).
    A model that keeps flat regions flat (black stays black) is within `FLAT_MAX_ERROR_255`.

    Returns
    -------
    dict
        ``max_error_255``, ``ok``, and where the worst error is: ``level``, ``dtype``, ``top``
        (the top of the data's range) and ``normalization``.
    """
    from .options import UpscaleOptions
    from .weights import load_model

    loaded = load_model(model)
    factor = loaded.info.scale if scale is None else float(scale)
    upscalers = {
        n: Upscaler(loaded, UpscaleOptions(scale=factor, precision="fp32", normalization=n))
        for n in ("dtype", "auto")
    }
    # Any size gives the same flat output (the network's border is padded from the image).
    shape = (16, 16, 3) if loaded.info.arch.channels == 3 else (16, 16)
    worst: dict[str, Any] = {"max_error_255": -1.0}
    for level in FLAT_LEVELS:
        for dtype_name, top in FLAT_DTYPES:
            dtype = np.dtype(dtype_name)
            value = level * top if dtype.kind == "f" else float(np.rint(level * top))
            image = np.full(shape, value).astype(dtype)
            for normalization, upscaler in upscalers.items():
                out = upscaler(image).astype(np.float64)
                span = top if normalization == "auto" or dtype.kind == "f" else np.iinfo(dtype).max
                err = float(np.abs(out - value).max()) / span * 255
                if err > worst["max_error_255"]:
                    worst = {
                        "max_error_255": err,
                        "level": level,
                        "dtype": dtype_name,
                        "top": top,
                        "normalization": normalization,
                    }
    worst["max_error_255"] = round(worst["max_error_255"], 4)
    return {**worst, "ok": worst["max_error_255"] <= FLAT_MAX_ERROR_255}


def default_eval_sets() -> dict[str, Path]:
    """The benchmark folders next to the project, when present (``../shared/datasets``)."""
    root = Path(os.environ.get("NAPARI_SRCNN_DATASETS", Path.cwd().parent / "shared" / "datasets"))
    return {p.name: p for p in sorted((root / "eval").glob("*")) if p.is_dir()}


def check_bf16(
    model: Any,
    images: str | os.PathLike | None = None,
    scale: int | None = None,
    max_loss_db: float = BF16_MAX_LOSS_DB,
) -> dict[str, Any]:
    """Score ``model`` on the protocol in fp32 and in bf16 on the CPU: the ``metrics["bf16"]``
    entry that ``precision="auto"`` reads.

    Parameters
    ----------
    model
        Registry name, weights file or
        [`LoadedModel`][napari_srcnn.engine.weights_file.LoadedModel].
    images
        High-resolution images of the protocol (default: Set5 from
        ``$NAPARI_SRCNN_DATASETS/eval``, or ``../shared/datasets/eval`` next to the working
        directory).
    scale
        Integer factor (default: the model's).
    max_loss_db
        Largest accepted Y-PSNR loss of bf16 against fp32.

    Returns
    -------
    dict
        ``set``, ``scale``, ``fp32_psnr``, ``bf16_psnr``, ``set5_psnr_delta`` (bf16 − fp32, dB),
        ``max_loss_db``, ``ok``, and where it was measured (``cpu``, ``native_bf16``, ``torch``).
    """
    from .weights import load_model

    loaded = load_model(model)
    factor = int(round(loaded.info.scale)) if scale is None else int(scale)
    if images is None:
        sets = default_eval_sets()
        if "Set5" not in sets:
            raise InputError(
                "Set5 not found: pass the protocol's images (or set NAPARI_SRCNN_DATASETS)"
            )
        images = sets["Set5"]
    psnr = {}
    for precision in ("fp32", "bf16"):
        upscaler = protocol_upscaler(loaded, factor, device="cpu", precision=precision)
        psnr[precision] = summarize(evaluate_files([images], factor, upscaler))["psnr"]
    delta = psnr["bf16"] - psnr["fp32"]
    return {
        "set": Path(images).name,
        "scale": factor,
        "fp32_psnr": round(psnr["fp32"], 4),
        "bf16_psnr": round(psnr["bf16"], 4),
        "set5_psnr_delta": round(delta, 4),
        "max_loss_db": max_loss_db,
        "ok": bool(math.isfinite(delta) and delta >= -max_loss_db),
        "cpu": cpu_model(),
        "native_bf16": cpu_has_native_bf16(),
        "torch": torch.__version__,
    }
