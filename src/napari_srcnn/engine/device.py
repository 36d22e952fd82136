"""Choosing the compute device: what is available, and validating what was asked for."""

from __future__ import annotations

import functools
import os

import torch

from ..errors import DeviceError

__all__ = ["available_devices", "cpu_flags", "cpu_has_native_bf16", "resolve_device"]

#: CPU flags (as Linux's ``/proc/cpuinfo`` spells them) that mean native bf16 arithmetic:
#: AVX-512 BF16 (Intel Cooper Lake and later, AMD Zen 4/5) and AMX (Sapphire Rapids on).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``); empty where they cannot be read.

    ``NAPARI_SRCNN_CPU_FLAGS`` (space-separated) replaces them: for tests, and to force a
    choice on a machine whose flags are hidden.
    """
    forced = os.environ.get("NAPARI_SRCNN_CPU_FLAGS")
    if forced is not None:
        return frozenset(forced.split())
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bf16 natively (where bf16 autocast is ~2x faster than
    fp32; on an AVX2-only CPU it was ~100x slower)."""
    return bool(cpu_flags() & NATIVE_BF16_FLAGS)


def available_devices() -> list[str]:
    """Devices this machine can run on: ``["cpu", "cuda:0", ...]`` (CUDA only when usable)."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return devices


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:i"`` into a usable device.

    ``"auto"`` picks the first CUDA device when there is one, else the CPU. Asking for a CUDA device
    that does not exist raises [`DeviceError`][napari_srcnn.errors.DeviceError] (never a CUDA crash
    later).
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = str(device).strip().lower()
    if name in ("", "auto"):
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise DeviceError(f"device {device!r} is not supported; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} requested but CUDA is not available on this machine")
    index = 0 if dev.index is None else dev.index
    if index >= torch.cuda.device_count():
        raise DeviceError(
            f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return torch.device("cuda", index)
