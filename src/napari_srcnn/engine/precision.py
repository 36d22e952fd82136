"""Which floating-point precision a network runs in, and the per-model bf16 check behind ``auto``.

``precision="auto"`` means the fastest precision that keeps a model's results:

- on a CPU with native bf16 arithmetic (AVX-512 BF16 or AMX, see
  [`cpu_has_native_bf16()`][napari_srcnn.engine.device.cpu_has_native_bf16]) bf16, but only for a
  model whose weights file records a passed bf16 check (below); otherwise fp32. A CPU without
  native bf16 never gets bf16 from ``auto``: it emulates it, ~100x slower than fp32;
- on CUDA bf16 (with a NaN check and fp32 fallback), unless the model's check failed;
- on an Apple GPU (MPS) fp32.

The check ([`check_bf16()`][napari_srcnn.engine.evaluation.check_bf16]) scores the model on the
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

from collections.abc import Mapping
from typing import Any

import torch

from ..errors import InputError
from .device import NATIVE_BF16_FLAGS, cpu_flags, cpu_has_native_bf16

__all__ = ["BF16_MAX_LOSS_DB", "bf16_check", "choose_precision"]

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
