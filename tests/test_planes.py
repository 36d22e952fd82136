"""Training planes: normalisation (the inference rule), colour modes, hyperstacks."""

from types import SimpleNamespace

import numpy as np
import pytest

from napari_srcnn.engine.color import AUTO_PERCENTILES, normalization_auto, rgb_to_ycbcr
from napari_srcnn.engine.inference import Upscaler
from napari_srcnn.engine.io import ImageMeta
from napari_srcnn.engine.options import UpscaleOptions
from napari_srcnn.engine.planes import image_mode, planes_from_array

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
    norm = normalization_auto(array, image_mode(array.shape, None, "per-channel"))
    assert norm == Upscaler.normalization_for(upscaler, array) == normalization_auto(array)
    assert norm.kind == "percentile"  # not a photograph: the data's own robust range
    lo, hi = np.percentile(array.astype(np.float64), AUTO_PERCENTILES)
    assert (norm.low, norm.high) == pytest.approx((lo, hi))
    plane = planes_from_array(array, "per-channel")[0][0]
    np.testing.assert_allclose(
        plane, (array.astype(np.float64) - norm.low) / (norm.high - norm.low), atol=1e-6
    )


def test_a_stack_shares_one_robust_map_and_photos_keep_the_dtype_map(stack16, astronaut):
    dim = (stack16 // 64 + 98).astype(np.uint16)  # a dim 16-bit stack, values far below 65535
    planes = planes_from_array(dim, "per-channel")
    assert len(planes) == 4 and planes[0].shape == (1, 64, 64) and planes[0].dtype == np.float32
    lo, hi = np.percentile(dim.astype(np.float64), AUTO_PERCENTILES)  # of the whole stack
    np.testing.assert_allclose(planes[1][0], (dim[1] - lo) / (hi - lo), atol=1e-6)
    assert 0.2 < float(np.mean(planes)) < 0.8  # not a sliver of [0, 1]
    # 8-bit RGB photographs in colour keep the protocol's dtype map.
    assert normalization_auto(astronaut, image_mode(astronaut.shape, None, "y")).kind == "dtype"
    assert (
        normalization_auto(astronaut, image_mode(astronaut.shape, None, "per-channel")).kind
        == "percentile"
    )


def test_channels_of_a_hyperstack_get_maps_of_their_own(stack16):
    czyx = np.stack([stack16, stack16 // 8 + 5], axis=0)  # a bright and a dim channel
    planes = planes_from_array(czyx, "per-channel", ImageMeta(axes="CZYX"))
    assert len(planes) == 8
    for c in range(2):
        norm = normalization_auto(czyx[c])
        np.testing.assert_allclose(
            planes[4 * c + 1][0], (czyx[c, 1] - norm.low) / (norm.high - norm.low), atol=1e-6
        )


# ------------------------------------------------------------------ planes and colour


def test_rgb_in_y_rgb_and_per_channel_modes(astronaut):
    y = planes_from_array(astronaut, "y")
    assert len(y) == 1 and y[0].shape == (1, 96, 80)
    np.testing.assert_allclose(y[0][0], rgb_to_ycbcr(astronaut / 255.0)[..., 0], atol=1e-5)
    rgb = planes_from_array(astronaut, "rgb")
    assert len(rgb) == 1 and rgb[0].shape == (3, 96, 80)
    np.testing.assert_allclose(rgb[0][1], astronaut[..., 1] / 255, atol=1e-6)
    gray = planes_from_array(astronaut, "per-channel")
    assert len(gray) == 3 and all(p.shape == (1, 96, 80) for p in gray)
    rgba = np.concatenate([astronaut, np.full((96, 80, 1), 255, np.uint8)], axis=-1)
    np.testing.assert_array_equal(planes_from_array(rgba, "rgb")[0], rgb[0])
    assert planes_from_array(astronaut, "auto")[0].shape == (1, 96, 80)  # auto: y for RGB


def test_hyperstack_every_plane_is_an_image(stack16):
    zcyx = np.stack([stack16, stack16 // 2, stack16 // 3], axis=1)  # (4, 3, 64, 64)
    meta = ImageMeta(axes="ZCYX")
    planes = planes_from_array(zcyx, "per-channel", meta)
    assert len(planes) == 12
    norm = normalization_auto(zcyx[:, 1])  # channel 1 (planes 4..7, by z) has its own map
    np.testing.assert_allclose(
        planes[5][0], (zcyx[1, 1] - norm.low) / (norm.high - norm.low), atol=1e-6
    )
    # A 3-channel C axis serves an RGB model.
    rgb = planes_from_array(zcyx, "rgb", meta)
    assert len(rgb) == 4 and rgb[0].shape == (3, 64, 64)
    whole = normalization_auto(zcyx)  # colour: one map for the three channels
    np.testing.assert_allclose(
        rgb[3][2], (zcyx[3, 2] - whole.low) / (whole.high - whole.low), atol=1e-6
    )
    # Samples that are not RGB (YXS with 2 samples) become planes, not a bogus W axis.
    two = np.stack([stack16[0], stack16[1]], axis=-1)
    planes = planes_from_array(two, "per-channel", ImageMeta(axes="YXS"))
    assert len(planes) == 2 and planes[1].shape == (1, 64, 64)
