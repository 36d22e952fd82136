"""Tests of the MATLAB-compatible bicubic resize (``napari_srcnn.engine.resize``)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from matlab_reference import dense, reference_contributions
from napari_srcnn.engine.resize import AxisWeights, axis_weights, imresize, output_size, resize_axis

# ------------------------------------------------------------------- hand-computed values


def test_upscale_row_by_two_hand_values() -> None:
    # imresize([1 2 3 4], 2). Output pixel x (1-based) samples u = x/2 + 1/4.
    # x = 1: u = 0.75, taps j = -1, 0, 1, 2 at distances 1.75, 0.75, 0.25, 1.25 have
    #   weights -0.0234375, 0.2265625, 0.8671875, -0.0703125 (sum 1). The symmetric border
    #   reads j = -1 -> x(2) = 2 and j = 0 -> x(1) = 1:
    #   -0.0234375*2 + 0.2265625*1 + 0.8671875*1 - 0.0703125*2 = 0.90625.
    # x = 2: u = 1.25, taps 0..3 -> -0.0703125*1 + 0.8671875*1 + 0.2265625*2 - 0.0234375*3
    #   = 1.1796875.
    # x = 3: u = 1.75, taps 0..3 -> -0.0234375*1 + 0.2265625*1 + 0.8671875*2 - 0.0703125*3
    #   = 1.7265625 (1.75 minus the mirrored pixel's pull).
    # x = 4, 5: interior, cubic convolution reproduces the ramp: 2.25, 2.75.
    # x = 6..8 mirror x = 3..1 about 2.5: 5 - value.
    # (The often-quoted [0.8984 1.2734 1.7500 ...] does not follow from these formulas
    # with either MATLAB border rule; 1.75 at x = 3 would need x(0) = 0.)
    expected = [0.90625, 1.1796875, 1.7265625, 2.25, 2.75, 3.2734375, 3.8203125, 4.09375]
    out = imresize(np.array([[1.0, 2.0, 3.0, 4.0]]), 2)
    assert out.shape == (2, 8)
    np.testing.assert_allclose(out, [expected, expected], rtol=0, atol=1e-14)


def test_matches_published_matlab_output() -> None:
    # MATLAB: imresize([0 0 1 1 0], [1 10]) printed
    #   0 -0.0234 -0.0703 0.2031 0.7969 1.0938 1.0938 0.7969 0.2031 -0.0703
    # (stackoverflow.com/questions/17380407). That MATLAB release replicated the edge
    # pixel; the current one mirrors, which changes only the last value: its taps 6, 7
    # read x(5) = 0 and x(4) = 1 instead of 0, 0, adding -0.0234375 -> -0.09375.
    out = imresize(np.array([[0.0, 0.0, 1.0, 1.0, 0.0]]), output_shape=(1, 10))
    np.testing.assert_allclose(
        out[0, :9],
        [0, -0.0234, -0.0703, 0.2031, 0.7969, 1.0938, 1.0938, 0.7969, 0.2031],
        atol=5e-5,
    )
    assert out[0, 9] == pytest.approx(-0.09375, abs=1e-14)


def test_shrink_by_half_with_antialias_hand_values() -> None:
    # imresize(A, 0.5) on 4x4: kernel h(t) = 0.5 * cubic(0.5 t), 8 pixels wide. Output 1
    # samples u = 1.5 with taps at distances +-0.5, +-1.5, +-2.5, +-3.5 and weights
    # 0.43359375, 0.11328125, -0.03515625, -0.01171875 (each side sums to 0.5). Mirroring
    # taps -2, -1, 0 onto pixels 3, 2, 1 and tap 5 onto 4 folds them into
    #   row 1 = [35/64, 51/128, 13/128, -3/64] . A,   row 2 = the same reversed.
    a = np.array(
        [
            [Fraction(35, 64), Fraction(51, 128), Fraction(13, 128), Fraction(-3, 64)],
            [Fraction(-3, 64), Fraction(13, 128), Fraction(51, 128), Fraction(35, 64)],
        ],
        dtype=object,
    )
    aw = axis_weights(4, 0.5)
    np.testing.assert_allclose(dense(aw, 4), a.astype(float), rtol=0, atol=1e-15)

    ramp = np.arange(1, 17, dtype=object).reshape(4, 4)
    expected = (a @ ramp @ a.T).astype(float)  # exact rational arithmetic
    np.testing.assert_allclose(
        imresize(np.arange(1.0, 17.0).reshape(4, 4), 0.5), expected, atol=1e-13
    )
    # magic(4): every folded row/column combination averages to the magic mean, 8.5.
    magic4 = np.array([[16, 2, 3, 13], [5, 11, 10, 8], [9, 7, 6, 12], [4, 14, 15, 1]], float)
    np.testing.assert_allclose(imresize(magic4, 0.5), np.full((2, 2), 8.5), atol=1e-13)


# ------------------------------------------------------------------ weights and sizes


@pytest.mark.parametrize("bad", [0.0, -2.0, math.inf, math.nan])
def test_bad_scale_raises(bad: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        output_size(10, bad)
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), bad)


def test_argument_errors() -> None:
    x = np.zeros((4, 4))
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x, 2.0, output_shape=(8, 8))
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W\)"):
        imresize(np.zeros(4), 2.0)
    with pytest.raises(ValueError):
        axis_weights(0, 2.0)
    with pytest.raises(ValueError):
        axis_weights(4)
    with pytest.raises(ValueError):
        axis_weights(4, 2.0).slice(3, 9)
    with pytest.raises(ValueError, match="floating"):
        resize_axis(torch.zeros(4, dtype=torch.int64), 0, axis_weights(4, 2.0))


# ------------------------------------------------------------------------- imresize


@pytest.mark.parametrize(
    ("shape", "kwargs"),
    [
        ((12, 9), {"scale": 2.5}),
        ((12, 9), {"scale": 3.0}),
        ((30, 21), {"scale": 1 / 3}),
        ((30, 21), {"scale": 0.4}),
        ((10, 16), {"output_shape": (25, 6)}),  # grow rows, shrink columns
        ((16, 10), {"output_shape": (6, 25)}),  # shrink rows, grow columns
        ((8, 8), {"scale": (2.0, 0.5)}),
    ],
)
def test_imresize_matches_dense_reference(shape: tuple[int, int], kwargs: dict) -> None:
    rng = np.random.default_rng(0)
    x = rng.random(shape)
    out = imresize(x, **kwargs)
    if "output_shape" in kwargs:
        oh, ow = kwargs["output_shape"]
        sh, sw = oh / shape[0], ow / shape[1]
    else:
        s = kwargs["scale"]
        sh, sw = s if isinstance(s, tuple) else (s, s)
        oh, ow = output_size(shape[0], sh), output_size(shape[1], sw)
    rows = reference_contributions(shape[0], sh, oh)
    cols = reference_contributions(shape[1], sw, ow)
    assert out.shape == (oh, ow)
    np.testing.assert_allclose(out, rows @ x @ cols.T, atol=1e-12)


def test_scale_one_is_identity() -> None:
    x = np.random.default_rng(1).random((5, 7))
    np.testing.assert_array_equal(imresize(x, 1.0), x)
    # The weights themselves are the identity too.
    np.testing.assert_allclose(dense(axis_weights(7, 1.0), 7), np.eye(7), atol=1e-15)


def test_constant_image_stays_constant() -> None:
    for scale in (0.3, 0.5, 2.0, 2.5, 4.0):
        np.testing.assert_allclose(imresize(np.full((11, 13), 0.7), scale), 0.7, atol=1e-12)


def test_antialias_suppresses_aliasing_when_shrinking() -> None:
    # Vertical stripes one pixel wide are above the Nyquist limit of the 1/3 image: the
    # antialiased result must be nearly flat, the sampled one keeps a strong pattern.
    stripes = np.tile(np.array([0.0, 1.0]), (30, 15))
    smooth = imresize(stripes, 1 / 3)[3:-3, 3:-3]
    aliased = imresize(stripes, 1 / 3, antialias=False)[3:-3, 3:-3]
    assert smooth.std() < 0.02
    assert aliased.std() > 0.2


def test_batched_leading_dims_match_per_plane() -> None:
    x = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    out = imresize(x, 2.5)
    assert out.shape == (2, 3, 23, 28)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(out[i, j], imresize(x[i, j], 2.5), rtol=0, atol=0)


def test_dtypes_and_types_round_trip() -> None:
    rng = np.random.default_rng(2)
    x64 = rng.random((6, 8))
    x32 = x64.astype(np.float32)

    out64 = imresize(x64, 2.0)
    out32 = imresize(x32, 2.0)
    assert isinstance(out64, np.ndarray) and out64.dtype == np.float64
    assert isinstance(out32, np.ndarray) and out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, atol=1e-6)

    t64 = imresize(torch.from_numpy(x64), 2.0)
    assert isinstance(t64, torch.Tensor) and t64.dtype == torch.float64
    np.testing.assert_allclose(t64.numpy(), out64, rtol=0, atol=1e-15)

    t16 = imresize(torch.from_numpy(x32).to(torch.bfloat16), 2.0)
    assert t16.dtype == torch.bfloat16
    np.testing.assert_allclose(t16.float().numpy(), out64, atol=2e-2)

    # Integers are computed and returned in float64, not rounded back.
    u8 = (x64 * 255).astype(np.uint8)
    out_u8 = imresize(u8, 2.0)
    assert out_u8.dtype == np.float64
    np.testing.assert_allclose(out_u8, imresize(u8.astype(np.float64), 2.0), rtol=0, atol=0)
    assert not np.allclose(out_u8, np.round(out_u8))
    assert imresize(torch.from_numpy(u8), 2.0).dtype == torch.float64


def test_numpy_input_is_not_modified_and_odd_layouts_work() -> None:
    rng = np.random.default_rng(3)
    x = rng.random((9, 10))
    before = x.copy()
    ref = imresize(x, 2.0)
    np.testing.assert_array_equal(x, before)
    # Transposed (non-contiguous), read-only and big-endian inputs give the same result.
    np.testing.assert_allclose(imresize(np.ascontiguousarray(x.T).T, 2.0), ref, atol=0)
    ro = x.copy()
    ro.flags.writeable = False
    np.testing.assert_allclose(imresize(ro, 2.0), ref, atol=0)
    np.testing.assert_allclose(imresize(x.astype(">f8"), 2.0), ref, atol=0)


def test_resize_axis_along_any_dim() -> None:
    x = torch.rand(7, 4, 5, dtype=torch.float64)
    aw = axis_weights(7, 2.5)
    out = resize_axis(x, 0, aw)
    assert out.shape == (18, 4, 5)
    ref = reference_contributions(7, 2.5, 18)
    np.testing.assert_allclose(out.numpy(), np.einsum("oi,ijk->ojk", ref, x.numpy()), atol=1e-12)
    # A negative dim means the same axis.
    torch.testing.assert_close(resize_axis(x, -3, aw), out, rtol=0, atol=0)


# --------------------------------------------------------------------------- tiling


@pytest.mark.parametrize(("n_in", "scale"), [(40, 2.0), (40, 3.0), (37, 2.5), (90, 1 / 3)])
def test_tile_equals_slice_of_full_result(n_in: int, scale: float) -> None:
    x = torch.rand(2, 5, n_in, dtype=torch.float64)
    aw = axis_weights(n_in, scale)
    full = resize_axis(x, -1, aw)
    n_out = aw.n_out
    for start, stop in [(0, 7), (5, 17), (n_out // 2, n_out), (n_out - 1, n_out), (0, n_out)]:
        sub = aw.slice(start, stop)
        lo, hi = sub.span()
        tile = resize_axis(x[..., lo:hi], -1, sub, offset=lo)
        # Same taps, same weights, same summation order: bit-identical.
        torch.testing.assert_close(tile, full[..., start:stop], rtol=0, atol=0)
        # A tile bigger than needed works too.
        lo2, hi2 = max(0, lo - 3), min(n_in, hi + 2)
        tile2 = resize_axis(x[..., lo2:hi2], -1, sub, offset=lo2)
        torch.testing.assert_close(tile2, full[..., start:stop], rtol=0, atol=0)


def test_two_dimensional_tile_equals_crop() -> None:
    # The way the inference code uses it: both axes of one tile, full-image weights.
    x = torch.rand(3, 21, 26, dtype=torch.float32)
    wy, wx = axis_weights(21, 3.0), axis_weights(26, 3.0)
    full = imresize(x, 3.0)
    sy, sx = wy.slice(10, 31), wx.slice(40, 64)
    (r0, r1), (c0, c1) = sy.span(), sx.span()
    tile = resize_axis(resize_axis(x[:, r0:r1, c0:c1], -2, sy, offset=r0), -1, sx, offset=c0)
    torch.testing.assert_close(tile, full[:, 10:31, 40:64], rtol=0, atol=0)


def _gather_only(aw: AxisWeights) -> AxisWeights:
    """The same contributions without the periodic fast path."""
    return AxisWeights(aw.indices, aw.weights)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_shifted_slices_equal_the_gathers_for_every_tile_and_axis(scale, dtype) -> None:
    """Integer factors skip the gathers; the values are the gather path's, bit for bit, for
    whole axes, tiles at either border and in the middle, any axis and layout."""
    torch.manual_seed(scale)
    x = torch.rand(9, 23, 30).to(dtype)
    for dim in (0, 1, 2):
        n_in = x.shape[dim]
        aw = axis_weights(n_in, float(scale))
        n_out = aw.n_out
        for start, stop in [(0, n_out), (0, 5), (3, 17), (n_out - 7, n_out), (n_out - 1, n_out)]:
            sub = aw.slice(start, stop)
            lo, hi = sub.span()
            lo2, hi2 = max(0, lo - 2), min(n_in, hi + 1)
            for a, b in ((lo, hi), (lo2, hi2)):
                tile = x.narrow(dim, a, b - a)
                fast = resize_axis(tile, dim, sub, offset=a)
                slow = resize_axis(tile, dim, _gather_only(sub), offset=a)
                assert fast.dtype == dtype and fast.shape == slow.shape
                assert torch.equal(fast, slow), (dim, start, stop, a, b)
    # Interleaved colour (height, width, channel), as the upscaler keeps it.
    hwc = x.permute(1, 2, 0)
    aw = axis_weights(30, float(scale))
    assert torch.equal(resize_axis(hwc, 1, aw), resize_axis(hwc, 1, _gather_only(aw)))


def test_tile_missing_input_raises() -> None:
    x = torch.rand(40, dtype=torch.float64)
    sub = axis_weights(40, 2.0).slice(20, 30)
    lo, hi = sub.span()
    with pytest.raises(ValueError, match="halo"):
        resize_axis(x[lo + 1 : hi], 0, sub, offset=lo + 1)
    with pytest.raises(ValueError, match="halo"):
        resize_axis(x[lo : hi - 1], 0, sub, offset=lo)


# ----------------------------------------------------------------------------- device


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    x = torch.rand(2, 33, 47, dtype=torch.float32)
    ref = imresize(x, 2.5)
    out = imresize(x.cuda(), 2.5)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-5, atol=1e-6)
    aw = axis_weights(47, 2.5)
    sub = aw.slice(30, 60)
    lo, hi = sub.span()
    tile = resize_axis(x.cuda()[..., lo:hi], -1, sub, offset=lo)
    torch.testing.assert_close(tile.cpu(), resize_axis(x, -1, aw)[..., 30:60], rtol=1e-5, atol=1e-6)
    # Integer factors take the shifted-slice path on the GPU too.
    for scale in (2.0, 3.0):
        torch.testing.assert_close(imresize(x.cuda(), scale).cpu(), imresize(x, scale))
