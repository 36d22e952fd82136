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
