"""The intensity map of an upscaling run, for the user: which one the engine used, how to
say it in the status line and the layer metadata, and whether the result still shows
within the source's contrast limits.

The engine maps stored intensities to the network's ``[0, 1]`` with one
[`Normalization`][napari_srcnn.engine.color.Normalization] per image, or one per channel
when channels are processed apart; the result is mapped back, so it keeps the source's
units and dtype and the source's contrast limits show it alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "describe_maps",
    "maps_metadata",
    "normalization_maps",
    "outside_limits",
    "robust_range",
]

#: Values sampled from a result to check it against the contrast limits.
SAMPLE = 100_000


def normalization_maps(plan: Any) -> list[Any]:
    """The intensity maps of an engine plan (``Upscaler.plan(array)[1]``): one per channel
    when channels have their own (``channel_norms``, or ``norms``), else the one ``norm``."""
    for name in ("channel_norms", "norms"):
        maps = getattr(plan, name, None)
        if maps:
            return list(maps)
    return [plan.norm]


def _number(value: float) -> str:
    """``98``, ``65535``, ``60020`` (for 60020.3), ``98.06``, ``0.0123``: no exponent
    between 0.001 and 10⁹, at most 4 significant digits below 1000."""
    if abs(value) < 1e9 and (abs(value) >= 1000 or float(value).is_integer()):
        return f"{value:.0f}"
    return f"{value:.4g}"


def describe_maps(maps: list[Any]) -> str:
    """``"intensities 98–175 → 0–1 (percentile)"``; per channel: ``"channel intensities
    98–175, 10–4000 → 0–1 (percentile)"``."""
    kinds = sorted({m.kind for m in maps})
    ranges = ", ".join(f"{_number(m.low)}–{_number(m.high)}" for m in maps)
    what = "channel intensities" if len(maps) > 1 else "intensities"
    return f"{what} {ranges} → 0–1 ({', '.join(kinds)})"


def maps_metadata(maps: list[Any]) -> list[dict[str, Any]]:
    """The maps as plain data for ``layer.metadata`` (one dict per map)."""
    return [{"kind": m.kind, "low": float(m.low), "high": float(m.high)} for m in maps]


def _sample(result: np.ndarray) -> np.ndarray:
    """At most about `SAMPLE` finite values of ``result``, as float64."""
    flat = result.reshape(-1)
    sample = flat[:: max(1, flat.size // SAMPLE)].astype(np.float64)
    return sample[np.isfinite(sample)]


def robust_range(result: np.ndarray) -> tuple[float, float] | None:
    """The 0.1–99.9 percentile range of (a sample of) ``result``; ``None`` when flat."""
    sample = _sample(result)
    if sample.size == 0:
        return None
    low, high = np.percentile(sample, [0.1, 99.9])
    return (float(low), float(high)) if high > low else None


def outside_limits(result: Any, limits: tuple[float, float] | None) -> str | None:
    """``"above"``/``"below"`` when nearly all of ``result`` (numpy; a sample of it) lies
    beyond the contrast ``limits``, so the layer would show one flat colour; else ``None``."""
    if limits is None or not isinstance(result, np.ndarray) or result.size == 0:
        return None
    sample = _sample(result)
    if sample.size == 0:
        return None
    lo, hi = limits
    if np.mean(sample >= hi) > 0.98:
        return "above"
    if np.mean(sample <= lo) > 0.98:
        return "below"
    return None
