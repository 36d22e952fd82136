"""How much of the network's correction an image gets: the strength, measured on the image itself.

SRCNN adds a correction to bicubic up-sampling. On most images the whole correction is right;
on some scientific images it is too strong: smooth, heavily oversampled data (a confocal stack
sampled far above the optics' resolution), where a model trained on sharper content sharpens
what was never sharp, or 16-bit data whose structure differs from anything it saw. The output
is then ``bicubic + strength × (srcnn - bicubic)``:

- ``strength=1`` is the plain model, ``0`` is bicubic;
- ``strength="auto"`` measures it on the image, for images mapped by their own range
  (microscopy and other scientific data; photographs and the literature protocol keep 1, bit
  for bit): the image is binned once more by the factor (``scale × scale`` pixel means, as a
  camera with bigger pixels, stored back on the image's levels), that copy is upscaled both
  ways, and the strength is the least-squares one that best turns the copy's bicubic
  up-sampling into the image, clipped to ``[0, 1]``.

The copy is a proxy one level down, not the truth: where the image is far more oversampled than
its binned copy the measured strength is still too high. It is computed once per image, or once
per channel where channels are mapped apart, from at most `MAX_PLANES` evenly spaced planes and a
central crop of at most `MAX_SIDE` pixels per side, so every tile, plane and dask chunk of the
image shares it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from .cells import Plan
from .degradation import area_downsample, as_stored
from .lazy import UpscalerLike
from .resize import imresize

__all__ = ["MAX_PLANES", "MAX_SIDE", "measure_strengths", "plan_strengths"]

#: Planes of an image (per channel) that the strength is measured on.
MAX_PLANES = 4
#: Side of the central crop (input pixels) of each plane that the strength is measured on.
MAX_SIDE = 384
# The binned copy must leave the network something to see.
_MIN_COPY = 8


def plan_strengths(
    upscaler: UpscalerLike, arr: Any, plan: Plan, strength: float | str
) -> tuple[float, ...]:
    """The ``Plan.strengths`` of ``arr`` for the option ``strength``: a number as given;
    ``"auto"`` measured (`measure_strengths()`) on an image processed plane by plane and mapped
    by its own range (scientific data), else none (the plain model: photographs, the protocol)."""
    if strength != "auto":
        return (float(strength),)
    norms = plan.channel_norms or (plan.norm,)
    if plan.mode != "per-channel" or any(n.kind != "percentile" for n in norms):
        return ()
    return measure_strengths(upscaler, arr, plan)


def measure_strengths(upscaler: UpscalerLike, arr: Any, plan: Plan) -> tuple[float, ...]:
    """One measured strength per channel where ``plan`` maps channels apart, else one.

    ``arr`` is the image as planned (channel axis first), NumPy or dask; only the crops of the
    planes used are read."""
    groups: list[list[tuple[int, ...]]]
    indices = list(np.ndindex(*plan.planes_shape))
    if plan.channel_norms:
        groups = [[i for i in indices if i[0] == c] for c in range(len(plan.channel_norms))]
    else:
        groups = [indices]
    strengths = []
    for c, group in enumerate(groups):
        norm = plan.channel_norms[c] if plan.channel_norms else plan.norm
        picked = [
            group[round(k)] for k in np.linspace(0, len(group) - 1, min(MAX_PLANES, len(group)))
        ]
        num = den = 0.0
        for index in dict.fromkeys(picked):  # unique, in order
            a, b = _plane_terms(upscaler, arr, plan, index, norm)
            num, den = num + a, den + b
        strengths.append(float(np.clip(num / den, 0.0, 1.0)) if den > 0 else 1.0)
    return tuple(strengths)


def _plane_terms(
    upscaler: UpscalerLike, arr: Any, plan: Plan, index: tuple[int, ...], norm: Any
) -> tuple[float, float]:
    """``(<d, y - b>, <d, d>)`` of one plane's central crop ``y``: ``b`` the bicubic
    up-sampling of its binned copy, ``d`` the network's correction over ``b``."""
    h, w = plan.lr_shape
    scale = plan.scale
    step = int(scale) if float(scale).is_integer() else 1
    ch, cw = min(h, MAX_SIDE), min(w, MAX_SIDE)
    ch, cw = ch - ch % step, cw - cw % step
    r0, c0 = (h - ch) // 2, (w - cw) // 2
    crop = np.asarray(arr[index][r0 : r0 + ch, c0 : c0 + cw])
    small = (math.floor(ch / scale), math.floor(cw / scale))
    if min(small) < _MIN_COPY:
        return 0.0, 0.0
    y = crop.astype(np.float64)
    if step > 1:
        copy = area_downsample(y[None].astype(np.float32), step)[0].astype(np.float64)
    else:  # a non-integer factor: MATLAB bicubic shrinks the copy
        copy = imresize(y, output_shape=small)
    copy = as_stored(copy, crop.dtype)
    sub = replace(
        plan,
        norm=norm,
        channel_axis=None,
        planes_shape=(),
        lr_shape=small,
        out_dtype=np.dtype(np.float32),
        channel_norms=(),
    )
    H, W = sub.hr_shape
    sub = replace(sub, out_shape=(H, W))
    outs = []
    for strength in (0.0, 1.0):
        out = np.empty((H, W), dtype=np.float32)
        upscaler.render(copy, (0, 0), out, (0, H, 0, W), replace(sub, strengths=(strength,)))
        outs.append(out.astype(np.float64))
    bicubic, sr = outs
    hh, ww = min(H, ch), min(W, cw)
    shave = math.ceil(scale)
    inner = (slice(shave, hh - shave), slice(shave, ww - shave))
    target, b, d = y[inner], bicubic[inner], sr[inner] - bicubic[inner]
    ok = np.isfinite(target) & np.isfinite(b) & np.isfinite(d)
    if not ok.any():
        return 0.0, 0.0
    d, e = d[ok], target[ok] - b[ok]
    return float(np.dot(d, e)), float(np.dot(d, d))
