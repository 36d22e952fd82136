"""The strength of the network's correction: fixed, or measured on the image (calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_srcnn.engine.evaluation import protocol_upscaler
from napari_srcnn.engine.inference import Upscaler, upscale
from napari_srcnn.engine.options import UpscaleOptions
from napari_srcnn.engine.resize import imresize
from napari_srcnn.engine.scoring import score_image
from napari_srcnn.errors import InputError


@pytest.fixture(scope="module")
def moon16() -> np.ndarray:
    """scikit-image's moon as dim 16-bit data (values 98–175), 256² crop."""
    from skimage import data

    moon = data.moon()[128:384, 128:384].astype(np.float64)
    return np.rint(98 + moon / 255 * 77).astype(np.uint16)


@pytest.fixture(scope="module")
def soft_brick() -> np.ndarray:
    """scikit-image's brick, blurred (σ 1.5 px): oversampled 8-bit data, 256² crop."""
    from skimage import data, filters

    brick = filters.gaussian(data.brick()[:256, :256], 1.5, preserve_range=True)
    return np.rint(brick).astype(np.uint8)


def test_strength_zero_is_bicubic_and_in_between_is_the_blend(camera):
    """0 gives bicubic up-sampling (the network does not run), 1 the plain model, and any
    strength between the same share of the model's correction."""
    image = camera.astype(np.float32) / 255
    runs = {
        s: upscale(image, "srcnn-955-y-x3", 3.0, normalization="none", strength=s)
        for s in (0.0, 0.4, 1.0)
    }
    np.testing.assert_allclose(runs[0.0], imresize(image.astype(np.float64), 3.0), atol=2e-6)
    blend = runs[0.0] + 0.4 * (runs[1.0] - runs[0.0])
    np.testing.assert_allclose(runs[0.4], blend, atol=2e-6)
    assert np.abs(runs[1.0] - runs[0.0]).mean() > 1e-3  # the model does correct bicubic


def test_auto_keeps_photographs_and_the_protocol_bit_for_bit(astronaut, camera):
    """Photographs (8-bit RGB in colour) and the literature protocol (values as stored) run the
    plain model: nothing is measured."""
    auto = Upscaler(None, UpscaleOptions(scale=2))
    one = Upscaler(None, UpscaleOptions(scale=2, strength=1.0))
    np.testing.assert_array_equal(auto(astronaut), one(astronaut))
    assert auto.for_image(astronaut.shape).last_plan.strengths == ()
    protocol = protocol_upscaler(None, 2, device="cpu")
    y = camera.astype(np.float32) / 255
    np.testing.assert_array_equal(protocol(y), Upscaler(protocol.model, protocol.options)(y))
    assert protocol.last_plan.strengths == ()


def test_auto_is_measured_per_channel_and_shared_by_every_tile_and_chunk(moon16, soft_brick):
    """One strength per channel of a channel axis, measured once: tiles and dask chunks of the
    image give the untiled in-memory result bit for bit."""
    da = pytest.importorskip("dask.array")
    stack = np.stack([moon16, soft_brick.astype(np.uint16) * 200])  # (C, Y, X), two channels
    up = Upscaler(None, UpscaleOptions(scale=2, channel_axis=0))
    whole = up(stack)
    strengths = up.for_image(stack.shape).last_plan.strengths
    assert len(strengths) == 2 and all(0 < s <= 1 for s in strengths)
    assert abs(strengths[0] - strengths[1]) > 0.05  # each channel its own
    tiled = Upscaler(None, UpscaleOptions(scale=2, channel_axis=0, tile=96))(stack)
    np.testing.assert_array_equal(tiled, whole)
    lazy = up(da.from_array(stack, chunks=(1, 100, 100))).compute(scheduler="synchronous")
    np.testing.assert_array_equal(lazy, whole)
    # Each channel alone measures what it measured in the stack.
    alone = Upscaler(None, UpscaleOptions(scale=2))
    alone(moon16)
    assert alone.for_image(moon16.shape).last_plan.strengths == (strengths[0],)


def test_auto_strength_lifts_data_the_plain_model_over_sharpens(moon16, soft_brick):
    """Real behaviour on two kinds of scientific data: dim 16-bit and oversampled 8-bit. The
    plain model loses to bicubic on the first and gains less on the second; the measured
    strength (below 1) turns both into clear gains."""
    gains = {}
    for name, image in (("moon16", moon16), ("soft_brick", soft_brick)):
        for strength in ("auto", 1.0):
            up = Upscaler(None, UpscaleOptions(scale=2, precision="fp32", strength=strength))
            row = score_image(image, 2, up)
            gains[name, strength] = row["psnr"] - row["bicubic_psnr"]
            if strength == "auto":
                assert 0.3 < row["strength"] < 1.0
    assert gains["moon16", 1.0] < 0 < gains["moon16", "auto"]
    assert gains["moon16", "auto"] > gains["moon16", 1.0] + 0.3
    assert gains["soft_brick", "auto"] > gains["soft_brick", 1.0] + 0.3


def test_a_flat_image_stays_flat():
    """Nothing to correct: whatever strength is measured, a flat image comes back flat."""
    for level in (0, 1000, 65535):
        flat = np.full((64, 64), level, np.uint16)
        up = Upscaler(None, UpscaleOptions(scale=2))
        out = up(flat)
        assert len(up.for_image(flat.shape).last_plan.strengths) == 1
        assert np.abs(out.astype(np.int64) - level).max() <= 1


@pytest.mark.parametrize("bad", [1.5, -0.1, "full", True, float("nan"), None])
def test_bad_strengths_are_refused(bad):
    with pytest.raises(InputError, match="strength"):
        UpscaleOptions(scale=2, strength=bad)


def test_a_fixed_strength_applies_in_colour_and_at_any_factor(astronaut, moon16):
    """Y mode: strength 0 is bicubic of the RGB image; a measured strength works at a
    non-integer factor too (the copy is then shrunk by MATLAB bicubic)."""

    out = upscale(astronaut, None, 2.0, strength=0.0).astype(np.float64)
    bicubic = np.stack(
        [imresize(astronaut[..., c].astype(np.float64), 2.0) for c in range(3)], axis=-1
    )
    assert np.abs(out - np.clip(np.rint(bicubic), 0, 255)).max() <= 1
    up = Upscaler(None, UpscaleOptions(scale=2.5))
    result = up(moon16)
    assert result.shape == (640, 640) and result.dtype == np.uint16
    (strength,) = up.for_image(moon16.shape).last_plan.strengths
    assert 0 <= strength <= 1
