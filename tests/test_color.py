"""Tests of BT.601 colour conversion and intensity normalisation (``engine.color``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr

from napari_srcnn.engine.color import (
    YCBCR_FROM_RGB,
    Normalization,
    denormalize,
    normalization_for,
    normalize,
    rgb_to_y_uint8,
    rgb_to_ycbcr,
    ycbcr_to_rgb,
)

# ------------------------------------------------------------------------ RGB <-> YCbCr


def test_bt601_coefficients_are_matlabs() -> None:
    # 65.481, not the 64.738 typo that several SRCNN ports carry.
    assert YCBCR_FROM_RGB[0].tolist() == [65.481, 128.553, 24.966]
    red = rgb_to_ycbcr(np.array([1.0, 0.0, 0.0]))
    assert red[0] == pytest.approx((16 + 65.481) / 255, abs=1e-15)


def test_known_colours() -> None:
    rgb = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5], [0.0, 0.0, 1.0]])
    ycc = rgb_to_ycbcr(rgb) * 255
    np.testing.assert_allclose(ycc[0], [16, 128, 128], atol=1e-12)
    np.testing.assert_allclose(ycc[1], [235, 128, 128], atol=1e-12)
    np.testing.assert_allclose(ycc[2, 1:], [128, 128], atol=1e-12)  # greys carry no chroma
    np.testing.assert_allclose(ycc[3], [16 + 24.966, 128 + 112, 128 - 18.214], atol=1e-12)


def test_matches_skimage_rgb2ycbcr() -> None:
    rgb = np.random.default_rng(0).random((8, 9, 3))
    np.testing.assert_allclose(rgb_to_ycbcr(rgb) * 255, rgb2ycbcr(rgb), atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_numpy(dtype: type) -> None:
    rgb = np.random.default_rng(1).random((16, 17, 3)).astype(dtype)
    ycc = rgb_to_ycbcr(rgb)
    back = ycbcr_to_rgb(ycc)
    assert ycc.dtype == dtype and back.dtype == dtype
    assert np.abs(back.astype(np.float64) - rgb).max() < 1e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip_torch_channels_first(dtype: torch.dtype) -> None:
    rgb = torch.rand(2, 3, 10, 11, dtype=dtype)
    ycc = rgb_to_ycbcr(rgb, channel_axis=1)
    back = ycbcr_to_rgb(ycc, channel_axis=1)
    assert isinstance(ycc, torch.Tensor) and ycc.dtype == dtype and ycc.shape == rgb.shape
    assert float((back - rgb).abs().max()) < 1e-6
    # Same numbers as the numpy path on channels-last data.
    ref = rgb_to_ycbcr(np.moveaxis(rgb.double().numpy(), 1, -1))
    np.testing.assert_allclose(np.moveaxis(ycc.double().numpy(), 1, -1), ref, atol=1e-6)


def test_inverse_is_exact_not_rounded_coefficients() -> None:
    # MATLAB's ycbcr2rgb inverts the matrix; the rounded 1.164 / 1.596 shortcut would
    # miss this by ~1e-3.
    ycc = np.array([235.0, 240.0, 240.0]) / 255
    expected = np.linalg.solve(YCBCR_FROM_RGB / 255, ycc - np.array([16.0, 128, 128]) / 255)
    np.testing.assert_allclose(ycbcr_to_rgb(ycc), expected, atol=1e-14)


def test_conversion_errors() -> None:
    with pytest.raises(ValueError, match="3 channels"):
        rgb_to_ycbcr(np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="floating"):
        rgb_to_ycbcr(np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="floating"):
        ycbcr_to_rgb(torch.zeros(3, 4, 4, dtype=torch.int32), channel_axis=0)
    with pytest.raises(ValueError, match="out of range"):
        rgb_to_ycbcr(np.zeros((4, 3)), channel_axis=2)


def test_rgb_to_y_uint8_matches_matlab_rounding() -> None:
    rgb = np.array(
        [[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8
    )
    # 16 + 65.481 = 81.481 -> 81; 16 + 128.553 -> 145; 16 + 24.966 -> 41.
    np.testing.assert_array_equal(rgb_to_y_uint8(rgb), [[16, 235, 81, 145, 41]])
    big = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    y = rgb_to_y_uint8(big)
    assert y.dtype == np.uint8 and y.shape == (64, 64)
    ref = np.floor(rgb2ycbcr(big)[..., 0] + 0.5)  # MATLAB uint8(): half away from zero
    np.testing.assert_array_equal(y, ref)


def test_rgb_to_y_uint8_rejects_other_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        rgb_to_y_uint8(np.zeros((4, 4, 3), dtype=np.uint16))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        rgb_to_y_uint8(np.zeros((4, 4), dtype=np.uint8))


# --------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("dtype", "low", "high"),
    [
        (np.uint8, 0, 255),
        (np.uint16, 0, 65535),
        (np.int16, -32768, 32767),
        (np.float32, 0, 1),
        (np.float64, 0, 1),
    ],
)
def test_dtype_normalization(dtype: type, low: float, high: float) -> None:
    norm = normalization_for(np.zeros((3, 3), dtype=dtype))
    assert norm == Normalization("dtype", low, high)


@pytest.mark.parametrize("dtype", [np.uint32, np.int32, np.int64])
def test_wide_integers_use_their_data_range(dtype: type) -> None:
    """A 0..255 image stored as int64 must keep its contrast (not 1/2**56 of the range)."""
    image = np.arange(256, dtype=dtype).reshape(16, 16) + 1000
    norm = normalization_for(image)
    assert (norm.low, norm.high) == (1000, 1255)
    x = normalize(image, norm)
    assert x.dtype == np.float32 and x.min() == 0 and x.max() == 1
    np.testing.assert_array_equal(denormalize(x, norm, dtype), image)


def test_extreme_floats_do_not_overflow() -> None:
    image = np.linspace(0, 1, 64).reshape(8, 8) * 1e300
    norm = normalization_for(image, "percentile", (0, 100))
    x = normalize(image, norm)
    assert np.isfinite(x).all() and x.max() == pytest.approx(1.0)
    const = normalization_for(np.full((4, 4), 1e17), "percentile")
    assert const.high > const.low == 1e17


@pytest.mark.parametrize("dtype", [bool, np.complex64])
@pytest.mark.parametrize("mode", ["dtype", "percentile", "none"])
def test_unsupported_dtypes_raise(dtype: type, mode: str) -> None:
    with pytest.raises(ValueError, match="boolean|complex"):
        normalization_for(np.zeros((3, 3), dtype=dtype), mode)


def test_unsupported_dtypes_raise_in_normalize_and_denormalize() -> None:
    norm = Normalization("none", 0.0, 1.0)
    with pytest.raises(ValueError, match="boolean"):
        normalize(np.zeros(3, dtype=bool), norm)
    with pytest.raises(ValueError, match="complex"):
        denormalize(np.zeros(3), norm, np.complex128)


def test_none_mode_and_bad_arguments() -> None:
    assert normalization_for(np.zeros(3, np.uint16), "none") == Normalization("none", 0, 1)
    with pytest.raises(ValueError, match="mode"):
        normalization_for(np.zeros(3), "minmax")
    with pytest.raises(ValueError, match="percentiles"):
        normalization_for(np.zeros(3), "percentile", percentiles=(99.0, 1.0))
    with pytest.raises(ValueError, match="low < high"):
        Normalization("dtype", 1.0, 1.0)


def test_percentile_small_array_is_exact() -> None:
    x = np.random.default_rng(3).normal(100, 20, (50, 60)).astype(np.float32)
    norm = normalization_for(x, "percentile", percentiles=(1.0, 99.0))
    low, high = np.percentile(x.astype(np.float64), [1.0, 99.0])
    assert norm.kind == "percentile"
    assert norm.low == pytest.approx(low) and norm.high == pytest.approx(high)


def test_percentile_ignores_nan_and_inf() -> None:
    x = np.linspace(0.0, 10.0, 101)
    x_bad = np.concatenate([x, [np.nan, np.inf, -np.inf]])
    assert normalization_for(x_bad, "percentile", (0, 100)) == Normalization("percentile", 0, 10)
    with pytest.raises(ValueError, match="finite"):
        normalization_for(np.full(5, np.nan), "percentile")


def test_percentile_of_constant_image_has_unit_range() -> None:
    norm = normalization_for(np.full((4, 4), 7, np.uint16), "percentile")
    assert (norm.low, norm.high) == (7.0, 8.0)


class _NoFullReadArray:
    """A stand-in for a huge lazy stack: refuses to be loaded whole, counts reads."""

    def __init__(self, data: np.ndarray) -> None:
        self._data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.elements_read = 0

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise AssertionError("the whole array was loaded")

    def __getitem__(self, key: Any) -> np.ndarray:
        out = self._data[key]
        self.elements_read += out.size
        return out


def test_percentile_of_large_uint16_stack_uses_a_subsample() -> None:
    rng = np.random.default_rng(4)
    data = rng.gamma(2.0, 500.0, (8, 512, 512)).clip(0, 65535).astype(np.uint16)  # 2.1 M
    lazy = _NoFullReadArray(data)
    norm = normalization_for(lazy, "percentile", percentiles=(1.0, 99.0), max_samples=50_000)
    assert lazy.elements_read == 50_000
    exact_low, exact_high = np.percentile(data, [1.0, 99.0])
    assert norm.low == pytest.approx(exact_low, rel=0.05)
    assert norm.high == pytest.approx(exact_high, rel=0.02)
    # Seeded: the same call gives the same answer.
    assert normalization_for(data, "percentile", (1.0, 99.0), max_samples=50_000) == norm
    # Below the limit every value is used.
    assert normalization_for(data, "percentile", (1.0, 99.0), max_samples=10**7) == Normalization(
        "percentile", float(exact_low), float(exact_high)
    )


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
def test_integer_round_trip_is_exact(dtype: type) -> None:
    info = np.iinfo(dtype)
    x = np.random.default_rng(5).integers(info.min, info.max, (33, 35), dtype=dtype, endpoint=True)
    norm = normalization_for(x)
    y = normalize(x, norm)
    assert y.dtype == np.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    np.testing.assert_array_equal(denormalize(y, norm, dtype), x)


def test_int32_round_trip_is_within_float32_precision() -> None:
    # normalize() returns float32 (24-bit mantissa), so 32-bit data loses its low bits;
    # the error stays below one float32 step of the full range.
    x = np.random.default_rng(6).integers(-(2**31), 2**31 - 1, 1000, dtype=np.int32)
    norm = normalization_for(x)
    back = denormalize(normalize(x, norm), norm, np.int32)
    assert back.dtype == np.int32
    assert np.abs(back.astype(np.int64) - x).max() <= 2**32 * 2.0**-24


def test_denormalize_rounds_and_clips_integers() -> None:
    norm = Normalization("dtype", 0.0, 255.0)
    out = denormalize(
        np.array([-0.5, 0.0, 0.49 / 255, 0.51 / 255, 1.0, 1.7, np.nan]), norm, np.uint8
    )
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [0, 0, 0, 1, 255, 255, 0])


def test_denormalize_float_keeps_range() -> None:
    norm = Normalization("percentile", 100.0, 300.0)
    out = denormalize(np.array([-0.5, 0.25, 1.5], dtype=np.float32), norm, np.float32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 150.0, 400.0])
    x = np.array([120.0, 250.0])
    np.testing.assert_allclose(denormalize(normalize(x, norm), norm, np.float64), x, rtol=1e-6)


def test_float_dtype_normalization_is_identity() -> None:
    x = np.array([[-0.2, 0.3, 1.4]], dtype=np.float64)
    norm = normalization_for(x)
    np.testing.assert_array_equal(normalize(x, norm), x.astype(np.float32))
    np.testing.assert_array_equal(
        denormalize(normalize(x, norm), norm, np.float32), x.astype(np.float32)
    )
