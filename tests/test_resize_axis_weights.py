"""MATLAB's resize weights per axis (`axis_weights()` of ``napari_srcnn.engine.resize``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from matlab_reference import dense, reference_contributions
from napari_srcnn.engine.resize import axis_weights, cubic, output_size


def test_cubic_kernel_values() -> None:
    # Keys a = -0.5: 1.5|x|^3 - 2.5|x|^2 + 1 on [0, 1]; -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 on (1, 2].
    x = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, -0.25, -1.75])
    expected = [
        1,
        0.8671875,
        0.5625,
        0.2265625,
        0,
        -0.0703125,
        -0.0625,
        -0.0234375,
        0,
        0,
        0.8671875,
        -0.0234375,
    ]
    np.testing.assert_array_equal(cubic(x), expected)


@pytest.mark.parametrize(
    ("n_in", "scale", "n_out"),
    [
        (4, 2.0, None),
        (7, 3.0, None),
        (10, 2.5, None),
        (13, 4.0, None),
        (12, 0.5, None),
        (30, 1 / 3, None),
        (17, 0.4, None),
        (9, 1 / 4, None),
        (5, None, 13),  # output size given: scale = 13/5
        (20, None, 7),
        (1, 3.0, None),  # a single pixel
    ],
)
def test_axis_weights_match_matlab_formulas(
    n_in: int, scale: float | None, n_out: int | None
) -> None:
    aw = axis_weights(n_in, scale=scale, n_out=n_out)
    s = scale if scale is not None else n_out / n_in  # type: ignore[operator]
    m = n_out if n_out is not None else output_size(n_in, s)
    assert aw.n_out == m
    assert aw.indices.dtype == torch.int64
    assert int(aw.indices.min()) >= 0 and int(aw.indices.max()) < n_in
    np.testing.assert_allclose(aw.weights.sum(dim=1).numpy(), 1.0, atol=1e-12)
    # P = ceil(kernel width) + 2 before the all-zero columns are dropped.
    width = 4.0 / s if s < 1 else 4.0
    assert aw.n_taps <= math.ceil(width) + 2
    np.testing.assert_allclose(dense(aw, n_in), reference_contributions(n_in, s, m), atol=1e-12)


def test_axis_weights_without_antialias() -> None:
    aw = axis_weights(16, 0.25, antialias=False)
    assert aw.n_taps <= 6  # the kernel is not stretched
    np.testing.assert_allclose(
        dense(aw, 16), reference_contributions(16, 0.25, 4, antialias=False), atol=1e-12
    )


def test_axis_weights_are_cached() -> None:
    assert axis_weights(33, 2.0) is axis_weights(33, 2.0)
    assert axis_weights(33, 2.0) is axis_weights(33, scale=2.0, n_out=66)


@pytest.mark.parametrize(
    ("n_in", "scale", "expected"),
    [
        (10, 2.5, 25),
        (11, 0.5, 6),  # 5.5 rounds up, as MATLAB's ceil
        (7, 1 / 3, 3),
        (35, 0.2, 7),  # 35 * 0.2 == 7.000000000000001 in floating point
        (256, (1 / 3) * 3, 256),
        (255, 1 / 3, 85),
        (3, 1 / 7, 1),  # never below one pixel
    ],
)
def test_output_size(n_in: int, scale: float, expected: int) -> None:
    assert output_size(n_in, scale) == expected


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("n_in", [1, 2, 7, 40])
def test_integer_upscales_repeat_every_step_exactly(n_in: int, scale: int) -> None:
    aw = axis_weights(n_in, float(scale))
    assert aw.step == scale and aw.first is not None and aw.n_in == n_in
    w, first = aw.weights.numpy(), aw.first.numpy()
    # Bit-identical weights every `scale` outputs, taps one input pixel further on.
    np.testing.assert_array_equal(w[scale:], w[:-scale])
    np.testing.assert_array_equal(first[scale:], first[:-scale] + 1)
    assert axis_weights(n_in, 2.5).step is None
    assert axis_weights(40, 0.5).step is None  # shrinking is not periodic in the taps


def test_span_at_the_border_stays_inside_the_image() -> None:
    aw = axis_weights(10, 2.0)
    assert aw.slice(0, 1).span()[0] == 0  # mirrored taps read pixels 0 and 1
    assert aw.slice(19, 20).span()[1] == 10
    assert aw.slice(4, 4).span() == (0, 0)
