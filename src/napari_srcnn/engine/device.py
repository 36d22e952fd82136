"""Choosing the compute device: what is available, and validating what was asked for."""

from __future__ import annotations

import functools
import os
import platform

import torch

from ..errors import DeviceError

__all__ = [
    "available_devices",
    "cpu_flags",
    "cpu_has_native_bf16",
    "cpu_model",
    "mps_available",
    "resolve_device",
]

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


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bf16 natively (where bf16 autocast is ~2x faster than
    fp32; on an AVX2-only CPU it was ~100x slower)."""
    return bool(cpu_flags() & NATIVE_BF16_FLAGS)


def mps_available() -> bool:
    """Whether PyTorch can run on an Apple GPU (Metal Performance Shaders): Apple silicon,
    macOS 12.3 or later and a torch built with MPS."""
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Devices this machine can run on, in the order ``"auto"`` tries them:
    ``["cpu", "cuda:0", ..., "mps"]`` (CUDA and MPS only when usable)."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if mps_available():
        devices.append("mps")
    return devices


_KNOWN = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:i"`` or ``"mps"`` into a usable device.

    ``"auto"`` picks the first CUDA device when there is one, else the Apple GPU (MPS) when
    there is one, else the CPU. Asking for a device that does not exist raises
    [`DeviceError`][napari_srcnn.errors.DeviceError] (never a CUDA or Metal crash later).
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = str(device).strip().lower()
    if name in ("", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda:0")
        return torch.device("mps") if mps_available() else torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"unknown device {device!r}; use {_KNOWN}") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "mps":
        if not mps_available():
            raise DeviceError(
                f"device {device!r} requested but MPS (the Apple GPU) is not available on this "
                "machine: it needs Apple silicon, macOS 12.3 or later and a torch built with MPS"
            )
        if dev.index not in (None, 0):
            raise DeviceError(f"device {device!r} requested but only one MPS device ('mps') exists")
        return torch.device("mps")
    if dev.type != "cuda":
        raise DeviceError(f"device {device!r} is not supported; use {_KNOWN}")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} requested but CUDA is not available on this machine")
    index = 0 if dev.index is None else dev.index
    if index >= torch.cuda.device_count():
        raise DeviceError(
            f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return torch.device("cuda", index)
