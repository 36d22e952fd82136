"""Which floating-point precision a network runs in, and the per-model bf16 check behind ``auto``.

``precision="auto"`` means the fastest precision that keeps a model's results:

- on a CPU with native bf16 arithmetic (AVX-512 BF16 or AMX, see
  [`cpu_has_native_bf16()`][napari_srcnn.engine.device.cpu_has_native_bf16]) bf16, but only for a
  model whose weights file records a passed bf16 check (below); otherwise fp32. A CPU without
  native bf16 never gets bf16 from ``auto``: it emulates it, ~100x slower than fp32;
- on CUDA bf16 (with a NaN check and fp32 fallback), unless the model's check failed;
- on an Apple GPU (MPS) fp32.

The check ([`check_bf16()`][napari_srcnn.engine.precision.check_bf16]) scores the model on the
evaluation protocol's images (Set5) in fp32 and in bf16 and stores the difference in the weights
file's ``metrics`` under ``"bf16"``::

    {"set": "Set5", "scale": 3, "fp32_psnr": 32.49, "bf16_psnr": 32.47,
     "set5_psnr_delta": -0.02, "max_loss_db": 0.05, "ok": true, ...}

``ok`` is true when bf16 loses at most `BF16_MAX_LOSS_DB` (0.05 dB). ``scripts/check_precision.py``
writes the entry into weights files and ``scripts/ship_models.py`` re-measures it for every
shipped model. A check measured on one machine stands for the others: the rounding is bf16's
everywhere (native or emulated), kernels differ only in their summation order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from .device import NATIVE_BF16_FLAGS, cpu_flags, cpu_has_native_bf16, cpu_model

__all__ = ["BF16_MAX_LOSS_DB", "bf16_check", "check_bf16", "choose_precision"]

#: Largest Y-PSNR loss (dB, on the protocol's Set5) that ``auto`` accepts for bf16.
BF16_MAX_LOSS_DB = 0.05


def bf16_check(metrics: Mapping[str, Any] | None) -> bool | None:
    """What a model's stored bf16 check says: ``True`` (passed), ``False`` (failed) or ``None``
    (no usable check in ``metrics``)."""
    entry = (metrics or {}).get("bf16")
    if not isinstance(entry, Mapping):
        return None
    ok = entry.get("ok")
    return ok if isinstance(ok, bool) else None


def choose_precision(
    requested: str, device: torch.device, metrics: Mapping[str, Any] | None = None
) -> tuple[str, str]:
    """The precision a network runs in on ``device``, and why (one line for humans).

    Parameters
    ----------
    requested
        ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"``.
    device
        Where the network runs.
    metrics
        The model's ``metrics`` metadata (its bf16 check decides ``auto``; see the module).

    Returns
    -------
    tuple of str
        ``(precision, reason)``, precision one of ``"fp32"``, ``"bf16"``, ``"fp16"``.

    Raises
    ------
    InputError
        For an unknown precision, or a reduced one on MPS (it runs fp32 only).
    """
    if requested not in ("auto", "fp32", "bf16", "fp16"):
        raise InputError(f"precision {requested!r} is not one of auto, fp32, bf16, fp16")
    check = bf16_check(metrics)
    if device.type == "mps":
        if requested in ("bf16", "fp16"):
            raise InputError(
                f"precision {requested!r} is not supported on MPS (the Apple GPU runs fp32); "
                "use auto or fp32"
            )
        return "fp32", "fp32 (MPS runs fp32)"
    if requested != "auto":
        note = ""
        if requested in ("bf16", "fp16") and device.type == "cpu" and not cpu_has_native_bf16():
            note = ": this CPU has no native bf16/fp16 arithmetic, expect it to be much slower"
        return requested, f"{requested} (asked for{note})"
    if device.type == "cuda":
        if check is False:
            return "fp32", "fp32 (auto: the model's bf16 check failed)"
        return "bf16", "bf16 autocast (auto on CUDA, fp32 fallback on NaN)"
    if not cpu_has_native_bf16():
        return "fp32", "fp32 (auto: this CPU has no native bf16)"
    if check is None:
        return "fp32", "fp32 (auto: the model has no bf16 check in its metadata)"
    if not check:
        return "fp32", "fp32 (auto: the model's bf16 check failed)"
    entry = (metrics or {})["bf16"]
    delta = entry.get("set5_psnr_delta")
    measured = f", {delta:+.2f} dB on Set5" if isinstance(delta, (int, float)) else ""
    flags = ", ".join(sorted(cpu_flags() & NATIVE_BF16_FLAGS))
    return "bf16", f"bf16 (auto: native bf16 CPU, {flags}; model check passed{measured})"


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
    from .evaluation import default_eval_sets, evaluate_files, protocol_upscaler, summarize
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
