"""One cell of an upscaling run: from stored low-resolution pixels to stored output.

[`Upscaler`][napari_srcnn.engine.inference.Upscaler] plans a run
([`Plan`][napari_srcnn.engine.cells.Plan]) and cuts the output into tiles and cells;
[`compute_cell()`][napari_srcnn.engine.cells.compute_cell] computes one cell (normalise, bicubic
up-sampling of just the region the cell and the network's halo need, the network, the colour step)
and [`store()`][napari_srcnn.engine.cells.store] writes it in the output's dtype. Cells never depend
on each other, so block threads compute them side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .color import YCBCR_FROM_RGB, YCBCR_OFFSET, Normalization, denormalize, normalize
from .resize import AxisWeights, axis_weights, output_size, resize_axis
from .runner import NetworkRunner

__all__ = ["Plan", "cell_split", "compute_cell", "lr_range", "store"]

# BT.601 luma of RGB in [0, 1] (MATLAB's rgb2ycbcr, first row) and the amount by which
# R, G and B change per unit of Y at fixed Cb, Cr (first column of the inverse).
_LUMA = tuple(float(v) for v in YCBCR_FROM_RGB[0] / 255.0)
_LUMA_OFFSET = float(YCBCR_OFFSET[0] / 255.0)
_Y_TO_RGB = float(np.linalg.inv(YCBCR_FROM_RGB / 255.0)[0, 0])


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    """``(h, w, 3)`` RGB -> ``(h, w, 1)`` Y, as
    [`rgb_to_ycbcr()`][napari_srcnn.engine.color.rgb_to_ycbcr] computes it."""
    r, g, b = _LUMA
    y = rgb[..., 0:1] * r
    return y.add_(rgb[..., 1:2], alpha=g).add_(rgb[..., 2:3], alpha=b).add_(_LUMA_OFFSET)


# Beyond this, ``value * span + low`` may leave float32's range.
_FLOAT32_SAFE = 2.0**100
# Output dtypes whose round trip float32 holds exactly; others take color.denormalize.
_FAST_STORE = {
    np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.float32, np.float16)
}


@torch.inference_mode()
def store(target: np.ndarray, result: torch.Tensor, norm: Normalization) -> None:
    """``target[...] = denormalize(result, norm, target.dtype)``, computed in torch.

    Same arithmetic as [`denormalize()`][napari_srcnn.engine.color.denormalize] (float32, round half
    to even, clip at the dtype's limits, NaN -> 0 for integers), but in place and on PyTorch's
    threads: the single-threaded NumPy version cost ~10 % of a 9-1-5 upscale on two cores.
    """
    dtype = target.dtype
    # A range near float32's limits (±3.4e38 data) would overflow in float32: float64 then.
    huge = max(abs(norm.low), abs(norm.high)) > _FLOAT32_SAFE
    if dtype not in _FAST_STORE or result.dtype != torch.float32 or huge:
        target[...] = denormalize(result.numpy(), norm, dtype)
        return
    y = result
    if norm.high - norm.low != 1.0:
        y.mul_(norm.high - norm.low)
    if norm.low != 0.0:
        y.add_(norm.low)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        y.round_().clamp_(float(info.min), float(info.max)).nan_to_num_(0.0)
    else:  # floats: clip at the dtype's limits only (NaN, missing data, stays)
        limits = np.finfo(dtype)
        y.clamp_(float(limits.min), float(limits.max))
    target[...] = y.numpy()  # the cast to the target dtype happens in this one copy


@dataclass(frozen=True)
class Plan:
    """How one array is processed: colour mode, normalisation and shapes (picklable)."""

    mode: str  # "y", "rgb" or "per-channel"
    norm: Normalization
    channel_axis: int | None  # moved to axis 0 during processing
    planes_shape: tuple[int, ...]
    color: int | None  # size of the trailing colour axis, None for planes
    lr_shape: tuple[int, int]
    out_shape: tuple[int, ...]  # with the channel axis at 0 when moved
    out_dtype: np.dtype
    scale: float
    channel_norms: tuple[Normalization, ...] = ()  # per channel (axis 0), when processed apart
    # Share of the network's correction over bicubic (napari_srcnn.engine.calibration): one
    # for every plane, or one per channel (axis 0); none is 1.
    strengths: tuple[float, ...] = ()

    def norm_at(self, index: tuple[int, ...]) -> Normalization:
        """The intensity map of plane ``index`` (its channel's, when channels have their own)."""
        if self.channel_norms and index:
            return self.channel_norms[index[0]]
        return self.norm

    def strength_at(self, index: tuple[int, ...]) -> float:
        """The strength of plane ``index`` (its channel's, when channels have their own)."""
        if not self.strengths:
            return 1.0
        if len(self.strengths) > 1 and index:
            return self.strengths[index[0]]
        return self.strengths[0]

    def intensity_summary(self) -> str:
        """The intensity map(s) in words, for the CLI's and the widget's report: e.g.
        ``"data range 98–175"``, ``"dtype range 0–255"``, or one range per channel."""

        def one(norm: Normalization) -> str:
            what = {"percentile": "data range", "dtype": "dtype range", "none": "as is"}[norm.kind]
            return what if norm.kind == "none" else f"{what} {norm.low:.4g}–{norm.high:.4g}"

        if self.channel_norms:
            return "per channel: " + ", ".join(one(n) for n in self.channel_norms)
        return one(self.norm)

    def strength_summary(self) -> str:
        """The strength(s) in words: ``"1"``, ``"0.74"``, or one per channel."""
        values = self.strengths or (1.0,)
        text = ", ".join(f"{v:.2g}" for v in values)
        return f"per channel: {text}" if len(values) > 1 else text

    @property
    def hr_shape(self) -> tuple[int, int]:
        return (
            output_size(self.lr_shape[0], self.scale),
            output_size(self.lr_shape[1], self.scale),
        )

    def weights(self) -> tuple[AxisWeights, AxisWeights]:
        # Cached per process: a worker of a cluster computes them once.
        return (
            axis_weights(self.lr_shape[0], scale=self.scale),
            axis_weights(self.lr_shape[1], scale=self.scale),
        )


def cell_split(n_tiles: int, workers: int, tile: tuple[int, int, int, int]) -> int:
    """Cells per tile side on the CPU: tiles whole when they keep ``workers`` block threads
    evenly busy (a count they divide, or plenty), else cut into 2×2, 3×3... equal cells
    (not below 64 pixels). Bigger cells recompute less halo and pay less overhead."""
    y0, y1, x0, x1 = tile
    most = max(1, min(4, min(y1 - y0, x1 - x0) // 64))
    for k in range(1, most + 1):
        cells = n_tiles * k * k
        if cells % workers == 0 or cells >= 4 * workers:
            return k
    return most


def lr_range(aw: AxisWeights, start: int, stop: int, halo: int) -> tuple[int, int]:
    """Low-resolution pixels ``[lo, hi)`` that output pixels ``[start, stop)`` need,
    their network halo included (what a tile or a dask chunk must read)."""
    n_out = aw.n_out
    sub = aw.slice(max(0, start - halo), min(n_out, stop + halo))
    return int(sub.indices.min()), int(sub.indices.max()) + 1


@torch.inference_mode()
def compute_cell(
    runner: NetworkRunner,
    plane: np.ndarray,
    origin: tuple[int, int],
    plan: Plan,
    box: tuple[int, int, int, int],
    norm: Normalization | None = None,
    strength: float = 1.0,
) -> torch.Tensor:
    """Output pixels ``box`` of one plane (intensity map ``norm``, default ``plan.norm``), normalised intensities, ``(h, w)`` or
    ``(h, w, C)`` float32 on the CPU (a fresh tensor: [`store()`][napari_srcnn.engine.cells.store]
    may work in it). ``strength`` scales the network's correction over bicubic (``0``:
    bicubic, and the network does not run).

    Colour stays interleaved (height, width, channel) from the stored image to the
    stored result: no planar copies, and the 3-channel network reads it as the
    channels-last batch it wants."""
    y0, y1, x0, x1 = box
    mode = plan.mode
    norm = norm or plan.norm
    wy, wx = plan.weights()
    halo = runner.halo
    H, W = wy.n_out, wx.n_out
    ey0, ey1 = max(0, y0 - halo), min(H, y1 + halo)
    ex0, ex1 = max(0, x0 - halo), min(W, x1 + halo)
    sy, sx = wy.slice(ey0, ey1), wx.slice(ex0, ex1)
    r0, r1 = lr_range(wy, y0, y1, halo)
    c0, c1 = lr_range(wx, x0, x1, halo)
    oy, ox = origin
    # (h, w, C) low-resolution crop, on the device, normalised to ~[0, 1].
    lr = np.asarray(plane[r0 - oy : r1 - oy, c0 - ox : c1 - ox])
    x = torch.from_numpy(normalize(lr, norm)).to(runner.device)
    if x.ndim == 2:
        x = x.unsqueeze(-1)
    missing = None
    if lr.dtype.kind == "f" and not torch.isfinite(x).all():
        # NaN marks missing data: it is computed as the bottom of the range (its neighbours see
        # no more of it than that) and comes back as NaN where it lands after up-sampling.
        missing = np.isnan(lr)
        x = torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0)
    alpha = None
    if mode in ("y", "rgb") and x.shape[-1] == 4:
        x, alpha = x[..., :3], x[..., 3:]
    up = resize_axis(resize_axis(x, 1, sx, offset=c0), 0, sy, offset=r0)
    # Y mode: bicubic weights sum to one, so the bicubic Y, Cb, Cr are the BT.601
    # transforms of the bicubic RGB: the luma of `up` is the network input, and swapping
    # in the network's Y changes R, G and B by the same multiple of (Y_sr - Y_bicubic).
    net_in = _luma(up) if mode == "y" else up
    pad = (halo - (x0 - ex0), halo - (ex1 - x1), halo - (y0 - ey0), halo - (ey1 - y1))
    batch = net_in.permute(2, 0, 1).unsqueeze(0)
    cy, cx = y0 - ey0, x0 - ex0
    centre = (slice(cy, cy + (y1 - y0)), slice(cx, cx + (x1 - x0)))
    if strength == 0.0:
        sr = net_in[centre].clone()
    else:
        sr = runner(F.pad(batch, pad, mode="replicate") if any(pad) else batch)[0]
        sr = sr.permute(1, 2, 0)  # (h, w, c)
        if strength != 1.0:  # bicubic + strength × (network - bicubic)
            base = net_in[centre].to(sr.dtype)
            sr = sr.sub_(base).mul_(strength).add_(base)
    # A map by the dtype's range (photographs) has its limits at 0 and 1; a map by the data's
    # own range does not: beyond it only the dtype's limits clip, in store().
    clip = norm.kind != "percentile"
    if mode == "y":
        if clip:
            sr.clamp_(0, 1)
        delta = sr.sub_(net_in[centre]).mul_(_Y_TO_RGB)[..., 0]
        bicubic = up[centre]
        result = torch.empty(bicubic.shape, dtype=bicubic.dtype, device=bicubic.device)
        for c in range(3):  # per channel: 2x faster than broadcasting along the last axis
            torch.add(bicubic[..., c], delta, out=result[..., c])
        if clip:
            result.clamp_(0, 1)
    elif mode == "rgb":
        result = sr.clamp(0, 1) if clip else sr
    else:
        result = sr
    if alpha is not None:
        a = resize_axis(resize_axis(alpha, 1, sx, offset=c0), 0, sy, offset=r0)
        result = torch.cat([result, a[centre].clamp(0, 1) if clip else a[centre]], -1)
    result = result.float().cpu()
    if missing is not None and missing.any():
        _mark_missing(result, missing, plan, box, (r0, c0))
    return result[..., 0] if mode == "per-channel" else result


def _mark_missing(
    result: torch.Tensor,
    missing: np.ndarray,
    plan: Plan,
    box: tuple[int, int, int, int],
    lr_origin: tuple[int, int],
) -> None:
    """Set NaN in ``result`` (``(h, w, C)``, output pixels ``box``) wherever the nearest
    low-resolution pixel of the crop from ``lr_origin`` is missing (any colour sample of it)."""
    mask: np.ndarray = missing if missing.ndim == 2 else np.any(missing, axis=-1)
    y0, y1, x0, x1 = box
    index = []
    for start, stop, origin, n_lr, n in (
        (y0, y1, lr_origin[0], plan.lr_shape[0], mask.shape[0]),
        (x0, x1, lr_origin[1], plan.lr_shape[1], mask.shape[1]),
    ):
        # The LR pixel whose area holds each output pixel's centre.
        nearest = np.floor((np.arange(start, stop) + 0.5) / plan.scale).astype(np.int64)
        index.append(np.clip(np.minimum(nearest, n_lr - 1) - origin, 0, n - 1))
    hr_mask = torch.from_numpy(np.ascontiguousarray(mask[np.ix_(*index)]))
    result[hr_mask] = float("nan")
