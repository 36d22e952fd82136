"""The settings of an upscaling run: every bad value is refused with a clear message."""

import pytest

from napari_srcnn.engine.options import UpscaleOptions
from napari_srcnn.errors import InputError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 0.5}, "above 1"),
        ({"scale": -2}, "above 1"),
        ({"scale": 1e6}, "at most"),
        ({"scale": float("nan")}, "above 1"),
        ({"tile": 4}, "at least 16"),
        ({"channels": "cmyk"}, "not one of"),
        ({"percentiles": (50, 10)}, "percentiles"),
        ({"normalization": "zscore"}, "not one of"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(InputError, match=message):
        UpscaleOptions(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"percentiles": (1, 2, 3)}, "must be two numbers"),
        ({"percentiles": None}, "must be two numbers"),
        ({"percentiles": "ab"}, "must be two numbers"),
        ({"percentiles": (1, float("nan"))}, "must be two numbers"),
        ({"channel_axis": 0.5}, "must be an integer or None"),
        ({"channel_axis": True}, "must be an integer or None"),
        ({"scale": True}, "must be a number"),
        ({"scale": "2"}, "must be a number"),
        ({"tile": 32.0}, "must be an integer"),
        ({"device": 5}, "must be a string"),
        ({"precision": ["fp32"]}, "not one of"),
        ({"channels": None}, "not one of"),
    ],
)
def test_options_of_the_wrong_type_are_input_errors(kwargs, message):
    """Row 15 of issue 15: never a bare ValueError or TypeError."""
    with pytest.raises(InputError, match=message):
        UpscaleOptions(**kwargs)


def test_numpy_scalars_fractions_and_decimals_are_numbers():
    from decimal import Decimal
    from fractions import Fraction

    import numpy as np

    opts = UpscaleOptions(
        scale=np.float32(2.5),
        tile=np.int64(32),
        channel_axis=np.int8(-1),
        percentiles=np.array([1, 99]),
    )
    assert (opts.scale, opts.tile, opts.channel_axis, opts.percentiles) == (
        2.5,
        32,
        -1,
        (1.0, 99.0),
    )
    assert type(opts.scale) is float and type(opts.tile) is int and type(opts.channel_axis) is int
    assert UpscaleOptions(scale=Fraction(3, 2)).scale == 1.5
    assert UpscaleOptions(scale=Decimal("3")).scale == 3.0
    with pytest.raises(InputError, match="above 1"):
        UpscaleOptions(scale=np.float64("nan"))
