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
