"""Independent references for the bicubic resize tests: MATLAB's formulas as plain loops."""

from __future__ import annotations

import math

import numpy as np

from napari_srcnn.engine.resize import AxisWeights


def reference_contributions(
    n_in: int, scale: float, n_out: int, antialias: bool = True
) -> np.ndarray:
    """Dense ``(n_out, n_in)`` resize matrix, a literal loop over MATLAB's contributions.

    Written independently of the module (scalar Python, 1-based like MATLAB) so that the
    vectorised implementation is checked against the formulas, not against itself.
    """

    def keys(t: float) -> float:  # a = -0.5
        t = abs(t)
        if t <= 1:
            return 1.5 * t**3 - 2.5 * t**2 + 1
        if t <= 2:
            return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
        return 0.0

    width = 4.0
    if scale < 1 and antialias:
        width = 4.0 / scale

        def h(t: float) -> float:
            return scale * keys(scale * t)
    else:
        h = keys
    mat = np.zeros((n_out, n_in))
    for x in range(1, n_out + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + p for p in range(math.ceil(width) + 2)]
        w = [h(u - j) for j in taps]
        total = sum(w)
        for j, wj in zip(taps, w, strict=True):
            # symmetric border: 0 -> 1, -1 -> 2, n+1 -> n, ... (period 2n)
            k = (j - 1) % (2 * n_in)
            src = k if k < n_in else 2 * n_in - 1 - k
            mat[x - 1, src] += wj / total
    return mat


def dense(aw: AxisWeights, n_in: int) -> np.ndarray:
    """The ``(n_out, n_in)`` matrix an :class:`AxisWeights` stands for."""
    mat = np.zeros((aw.n_out, n_in))
    rows = np.repeat(np.arange(aw.n_out), aw.n_taps)
    np.add.at(mat, (rows, aw.indices.numpy().ravel()), aw.weights.numpy().ravel())
    return mat
