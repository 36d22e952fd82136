"""MATLAB's bicubic resize weights ("contributions") for one axis.

For every output pixel of an axis: the input pixels it reads (mirrored at the borders, half-sample
symmetric, as MATLAB's ``imresize``) and their normalised Keys-kernel weights (a = -0.5, stretched
by ``1 / scale`` when shrinking with antialiasing). For integer up-scaling the weights are computed
per phase, so that they repeat bit for bit every ``scale`` outputs;
[`resize_axis()`][napari_srcnn.engine.resize.resize_axis] uses that to work with shifted slices
instead of gathers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

__all__ = ["AxisWeights", "axis_weights", "cubic", "output_size"]

# MATLAB's bicubic kernel is 4 input pixels wide (support [-2, 2]).
_KERNEL_WIDTH = 4.0

# Relative tolerance when turning ``n * scale`` into an integer size: 35 * 0.2 is
# 7.000000000000001 in floating point and must give 7, not 8.
_SIZE_RTOL = 1e-9


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``).

    Parameters
    ----------
    x : numpy.ndarray
        Distances in input pixels, any shape, float64.

    Returns
    -------
    numpy.ndarray
        Kernel values, same shape as ``x``; zero for ``|x| > 2``.
    """
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    inner = (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1)
    outer = (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1) & (absx <= 2))
    return inner + outer


def output_size(n_in: int, scale: float) -> int:
    """Length of an axis of ``n_in`` pixels resized by ``scale`` (MATLAB: ``ceil``).

    A product that is an integer up to floating-point error (``35 * 0.2``,
    ``256 * (1/3) * 3``) is taken as that integer instead of being rounded up.

    Parameters
    ----------
    n_in : int
        Input length, at least 1.
    scale : float
        Positive, finite scale factor.

    Returns
    -------
    int
        The output length, at least 1.

    Raises
    ------
    ValueError
        If ``n_in`` < 1 or ``scale`` is not a positive finite number.
    """
    _check_length(n_in, "n_in")
    _check_scale(scale)
    v = n_in * scale
    nearest = round(v)
    if abs(v - nearest) <= _SIZE_RTOL * max(1.0, abs(v)):
        return max(1, int(nearest))
    return max(1, math.ceil(v))


@dataclass(frozen=True, eq=False)
class AxisWeights:
    """MATLAB's resize contributions for one axis.

    Output pixel ``i`` is ``sum_p weights[i, p] * input[indices[i, p]]``.

    Attributes
    ----------
    indices : torch.Tensor
        ``(n_out, P)`` int64 indices into the full input axis, already mirrored at the
        borders (so always in ``[0, n_in)``).
    weights : torch.Tensor
        ``(n_out, P)`` float64 weights; every row sums to 1.
    step : int or None
        For an integer up-scaling ``s``: the weights repeat every ``s`` outputs and the taps move on
        by one input pixel, so [`resize_axis()`][napari_srcnn.engine.resize.resize_axis] computes
        each of the ``s`` phases with shifted slices instead of gathers. ``None`` otherwise.
    first : torch.Tensor or None
        With ``step``: ``(n_out,)`` int64 input index of each output's first tap *before*
        mirroring (it may lie outside the axis at the borders).
    n_in : int
        Length of the full input axis (where the mirroring folds).

    Notes
    -----
    Instances returned by [`axis_weights()`][napari_srcnn.engine.resize_weights.axis_weights] are
    cached and shared: treat the tensors
    as read-only. Equality is identity (tensors have no boolean ``==``).
    """

    indices: torch.Tensor
    weights: torch.Tensor
    step: int | None = None
    first: torch.Tensor | None = None
    n_in: int = 0
    # Copies already moved to a device/dtype, so that tiles on a GPU do not pay a
    # host-to-device transfer (and a sync) for every call.
    _converted: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.indices.ndim != 2 or self.indices.shape != self.weights.shape:
            raise ValueError(
                "AxisWeights needs indices and weights of the same (n_out, P) shape, got "
                f"{tuple(self.indices.shape)} and {tuple(self.weights.shape)}"
            )
        if self.step is not None and (
            self.first is None or self.first.shape != self.indices.shape[:1]
        ):
            raise ValueError("periodic AxisWeights need one first tap per output")

    @property
    def n_out(self) -> int:
        """Number of output pixels these weights produce."""
        return int(self.indices.shape[0])

    @property
    def n_taps(self) -> int:
        """Number of input pixels combined per output pixel (P)."""
        return int(self.indices.shape[1])

    def slice(self, start: int, stop: int) -> AxisWeights:
        """Contributions of output pixels ``[start, stop)`` only.

        Parameters
        ----------
        start, stop : int
            Output range, ``0 <= start <= stop <= n_out``.

        Returns
        -------
        AxisWeights
            Weights for ``stop - start`` output pixels, still indexing the full input.

        Raises
        ------
        ValueError
            If the range is outside ``[0, n_out]``.
        """
        if not 0 <= start <= stop <= self.n_out:
            raise ValueError(
                f"output slice [{start}, {stop}) is outside the axis [0, {self.n_out})"
            )
        first = None if self.first is None else self.first[start:stop]
        return AxisWeights(
            self.indices[start:stop], self.weights[start:stop], self.step, first, self.n_in
        )

    def span(self) -> tuple[int, int]:
        """Input range ``[lo, hi)`` that these outputs actually read.

        Only taps with a non-zero weight count, so this is the smallest piece of the input axis that
        [`resize_axis()`][napari_srcnn.engine.resize.resize_axis] needs (useful to size tiles and
        halos).

        Returns
        -------
        tuple of int
            ``(lo, hi)``; ``(0, 0)`` when no output pixel is left.
        """
        used = self.indices[self.weights != 0]
        if used.numel() == 0:
            return (0, 0)
        return (int(used.min()), int(used.max()) + 1)

    def on(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices and weights on ``device``, weights cast to ``dtype`` (cached).

        Parameters
        ----------
        device : torch.device
            Where the data to resize lives.
        dtype : torch.dtype
            Floating dtype of the computation.

        Returns
        -------
        tuple of torch.Tensor
            ``(indices, weights)`` on ``device``.
        """
        key = (torch.device(device), dtype)
        cached = self._converted.get(key)
        if cached is None:
            cached = (
                self.indices.to(device=device),
                # Cast here, then move: MPS has no float64 to receive the weights in.
                self.weights.to(dtype=dtype).to(device=device),
            )
            self._converted[key] = cached
        return cached


def axis_weights(
    n_in: int,
    scale: float | None = None,
    n_out: int | None = None,
    antialias: bool = True,
) -> AxisWeights:
    """MATLAB ``imresize`` contributions for resizing an axis of ``n_in`` pixels.

    Give ``scale`` (``n_out`` is then ``output_size(n_in, scale)``), ``n_out`` (``scale``
    is then ``n_out / n_in``), or both, as MATLAB does when a scale is requested.

    Parameters
    ----------
    n_in : int
        Input length, at least 1.
    scale : float, optional
        Scale factor (> 1 enlarges).
    n_out : int, optional
        Output length, at least 1.
    antialias : bool, default True
        When shrinking, stretch the kernel by ``1 / scale`` (MATLAB's default); without
        it a shrink samples the input and aliases.

    Returns
    -------
    AxisWeights
        CPU tensors: ``indices`` int64, ``weights`` float64, shape ``(n_out, P)``. The
        result is cached and shared between callers.

    Raises
    ------
    ValueError
        If neither ``scale`` nor ``n_out`` is given, or a value is out of range.
    """
    if scale is None and n_out is None:
        raise ValueError("axis_weights needs a scale or an output length (n_out)")
    _check_length(n_in, "n_in")
    if n_out is None:
        assert scale is not None
        n_out = output_size(n_in, scale)
    _check_length(n_out, "n_out")
    if scale is None:
        scale = n_out / n_in
    _check_scale(scale)
    return _axis_weights_cached(int(n_in), float(scale), int(n_out), bool(antialias))


@lru_cache(maxsize=256)
def _axis_weights_cached(n_in: int, scale: float, n_out: int, antialias: bool) -> AxisWeights:
    # A line-by-line translation of MATLAB's imresize/contributions, in float64 and with
    # 1-based coordinates kept until the final index conversion.
    kernel_width = _KERNEL_WIDTH
    # Antialiasing stretches the kernel: interpolate and low-pass filter in one step.
    stretch = scale if scale < 1 and antialias else 1.0
    kernel_width = kernel_width / stretch

    def h(d: np.ndarray) -> np.ndarray:
        return stretch * cubic(stretch * d)

    n_taps = math.ceil(kernel_width) + 2
    step = _integer_step(n_in, scale, n_out)
    if step is None:
        x = np.arange(1, n_out + 1, dtype=np.float64)[:, None]
    else:
        # Integer up-scaling: output x = k * step + r samples input u(r) + k, so the taps
        # of phase r, shifted by k, serve every output of that phase. Computing the phases
        # once makes the repetition exact (float rounding of x / scale would otherwise
        # make rows differ in the last bit, or floor() pick the tap one pixel over).
        x = np.arange(1, step + 1, dtype=np.float64)[:, None]
    # Pixel edges line up: output 0.5 maps to input 0.5, output 0.5 + scale to 1.5.
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    indices = left + np.arange(n_taps, dtype=np.float64)[None, :]
    weights = h(u - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    if step is not None:
        phase = np.arange(n_out) % step
        indices = indices[phase] + (np.arange(n_out) // step)[:, None]
        weights = weights[phase]

    keep = np.flatnonzero(np.any(weights != 0, axis=0))
    first = None
    if step is not None:
        if np.any(np.diff(keep) != 1):  # pragma: no cover - the cubic's zeros are at its ends
            step = None
        else:
            first = torch.from_numpy(indices[:, keep[0]].astype(np.int64) - 1)
    return AxisWeights(
        torch.from_numpy(
            np.ascontiguousarray(_mirror(indices[:, keep].astype(np.int64) - 1, n_in))
        ),
        torch.from_numpy(np.ascontiguousarray(weights[:, keep])),
        step,
        first,
        n_in,
    )


def _integer_step(n_in: int, scale: float, n_out: int) -> int | None:
    """``s`` when this is an up-scaling by the integer ``s`` (``n_out == s * n_in``)."""
    s = round(scale)
    return s if s >= 2 and scale == s and n_out == s * n_in else None


def _mirror(index: np.ndarray, n_in: int) -> np.ndarray:
    """Symmetric (half-sample) mirror of 0-based indices: ..., 1, 0 | 0, 1, ..., n-1 | n-1, ..."""
    aux = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])
    return aux[np.mod(index, 2 * n_in)]


def _check_length(n: int, name: str) -> None:
    if int(n) != n or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")


def _check_scale(scale: float) -> None:
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
