"""Training planes: normalisation (the inference rule), colour modes, hyperstacks."""

from types import SimpleNamespace

import numpy as np
import pytest

from napari_srcnn.engine.color import rgb_to_ycbcr
from napari_srcnn.engine.inference import UpscaleOptions, Upscaler
from napari_srcnn.engine.io import ImageMeta
from napari_srcnn.engine.planes import normalization_auto, planes_from_array

# ------------------------------------------------------------------ normalisation


@pytest.mark.parametrize(
    "array",
    [
        np.arange(256, dtype=np.uint8).reshape(16, 16),
        (np.arange(256, dtype=np.uint16) * 16).reshape(16, 16),
        np.linspace(-300, 300, 256).astype(np.int16).reshape(16, 16),
        np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16),
        np.linspace(-2, 7, 256).reshape(16, 16),
        np.linspace(0.1, 250, 256, dtype=np.float32).reshape(16, 16),
    ],
    ids=["uint8", "uint16", "int16", "float01", "float64-wide", "float32-wide"],
)
def test_normalisation_is_the_inference_rule(array):
    """Training sees intensities mapped exactly as `upscale` maps them by default."""
    upscaler = SimpleNamespace(options=UpscaleOptions())
    assert normalization_auto(array) == Upscaler.normalization_for(upscaler, array)
    plane = planes_from_array(array, "gray")[0][0]
    norm = normalization_auto(array)
    np.testing.assert_allclose(
        plane, (array.astype(np.float64) - norm.low) / (norm.high - norm.low), atol=1e-6
    )


def test_uint16_by_dtype_range_and_float_min_max(stack16):
    planes = planes_from_array(stack16, "gray")
    assert len(planes) == 4 and planes[0].shape == (1, 64, 64) and planes[0].dtype == np.float32
    np.testing.assert_allclose(planes[1][0], stack16[1] / 65535, atol=1e-7)
    wide = stack16.astype(np.float32) - 1000  # float outside [0, 1]: min/max of the whole stack
    planes = planes_from_array(wide, "gray")
    lo, hi = wide.min(), wide.max()
    assert min(p.min() for p in planes) == 0 and max(p.max() for p in planes) == pytest.approx(1)
    np.testing.assert_allclose(planes[2][0], (wide[2] - lo) / (hi - lo), atol=1e-6)


# ------------------------------------------------------------------ planes and colour


def test_rgb_in_y_rgb_and_per_channel_modes(astronaut):
    y = planes_from_array(astronaut, "y")
    assert len(y) == 1 and y[0].shape == (1, 96, 80)
    np.testing.assert_allclose(y[0][0], rgb_to_ycbcr(astronaut / 255.0)[..., 0], atol=1e-5)
    rgb = planes_from_array(astronaut, "rgb")
    assert len(rgb) == 1 and rgb[0].shape == (3, 96, 80)
    np.testing.assert_allclose(rgb[0][1], astronaut[..., 1] / 255, atol=1e-6)
    gray = planes_from_array(astronaut, "gray")
    assert len(gray) == 3 and all(p.shape == (1, 96, 80) for p in gray)
    rgba = np.concatenate([astronaut, np.full((96, 80, 1), 255, np.uint8)], axis=-1)
    np.testing.assert_array_equal(planes_from_array(rgba, "rgb")[0], rgb[0])
    assert planes_from_array(astronaut, "auto")[0].shape == (1, 96, 80)  # auto: y for RGB


def test_hyperstack_every_plane_is_an_image(stack16):
    zcyx = np.stack([stack16, stack16 // 2, stack16 // 3], axis=1)  # (4, 3, 64, 64)
    meta = ImageMeta(axes="ZCYX")
    planes = planes_from_array(zcyx, "gray", meta)
    assert len(planes) == 12
    np.testing.assert_allclose(planes[4][0], zcyx[1, 1] / 65535, atol=1e-7)
    # A 3-channel C axis serves an RGB model.
    rgb = planes_from_array(zcyx, "rgb", meta)
    assert len(rgb) == 4 and rgb[0].shape == (3, 64, 64)
    np.testing.assert_allclose(rgb[3][2], zcyx[3, 2] / 65535, atol=1e-7)
    # Samples that are not RGB (YXS with 2 samples) become planes, not a bogus W axis.
    two = np.stack([stack16[0], stack16[1]], axis=-1)
    planes = planes_from_array(two, "gray", ImageMeta(axes="YXS"))
    assert len(planes) == 2 and planes[1].shape == (1, 64, 64)
