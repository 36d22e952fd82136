"""The paper's degradation: mod-crop, blur, bicubic down and up."""

import numpy as np

from napari_srcnn.engine.degradation import degrade, modcrop_plane
from napari_srcnn.engine.resize import imresize


def test_degrade_is_bicubic_down_then_up(camera):
    hr = modcrop_plane(camera[None, :65, :70].astype(np.float32) / 255, 3)
    assert hr.shape == (1, 63, 69)
    lr_up = degrade(hr, 3)
    expected = imresize(imresize(hr, 1 / 3), 3.0)
    assert lr_up.shape == hr.shape and lr_up.dtype == np.float32
    np.testing.assert_allclose(lr_up, expected, atol=1e-6)
    blurred = degrade(hr, 3, blur_sigma=1.5)
    # The Gaussian removes detail that bicubic alone keeps.
    assert np.abs(blurred - hr).mean() > np.abs(lr_up - hr).mean()
    assert modcrop_plane(hr, 2.5).shape == (1, 60, 65)  # ×2.5: multiples of 5


def test_level_grid_reads_the_integer_levels_of_a_mapped_plane(camera):
    from napari_srcnn.engine.color import normalization_auto, normalize
    from napari_srcnn.engine.degradation import level_grid

    # A dim 16-bit plane (values 98-175, as a low-signal camera records) and 12-bit data.
    twelve_bit = camera.astype(np.uint16) * 16 + np.arange(camera.shape[1], dtype=np.uint16) % 16
    for stored in (98 + (camera.astype(np.uint16) * 77) // 255, twelve_bit):
        norm = normalization_auto(stored, "per-channel")
        plane = normalize(stored, norm)[None]
        origin, step = level_grid(plane)
        # One grid step is one stored level, and level 0 of the file is on the grid.
        assert abs(step * (norm.high - norm.low) - 1) < 1e-4
        zero = ((0 - norm.low) / (norm.high - norm.low) - origin) / step
        assert abs(zero - round(zero)) < 1e-3
        levels = (plane.astype(np.float64) - origin) / step
        np.testing.assert_allclose(levels, np.rint(levels), atol=1e-3)
        assert np.unique(np.rint(levels)).size == np.unique(stored).size
    # Continuous data, and grids finer than MAX_LEVELS, are not rounded.
    rng = np.random.default_rng(0)
    assert level_grid(rng.random((1, 64, 64), dtype=np.float32)) is None
    wide = rng.integers(0, 65536, (128, 128), dtype=np.uint16)
    assert level_grid(normalize(wide, normalization_auto(wide, "per-channel"))[None]) is None
    assert level_grid(np.full((1, 8, 8), 0.5, np.float32)) is None


def test_degrade_rounds_the_lr_plane_onto_the_stored_levels(camera):
    from napari_srcnn.engine.color import normalization_auto, normalize
    from napari_srcnn.engine.degradation import level_grid

    stored = 98 + (camera.astype(np.uint16) * 77) // 255
    hr = modcrop_plane(normalize(stored, normalization_auto(stored, "per-channel"))[None], 2)
    origin, step = level_grid(hr)
    lr = imresize(hr, 0.5)
    rounded = (np.rint((lr - origin) / step) * step + origin).astype(np.float32)
    np.testing.assert_allclose(
        degrade(hr, 2, levels=(origin, step)), imresize(rounded, 2.0), atol=1e-6
    )
    # The rounding is what a dim 8-bit file holds: its error is up to half a level.
    unrounded = degrade(hr, 2)
    gap = np.abs(degrade(hr, 2, levels=(origin, step)) - unrounded).max()
    assert 0.1 * step < gap < 1.0 * step
