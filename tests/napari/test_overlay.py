"""The overlay arithmetic (DESIGN.md, napari conventions): pure functions, no viewer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_srcnn.widgets._common import LayerSnapshot, overlay_transform, result_layer_data


def test_design_formula_on_the_two_upsampled_axes():
    scale, translate = overlay_transform((2.0, 1.0, 1.0), (5.0, 0.0, 0.0), 2.0)
    assert scale == (2.0, 0.5, 0.5)
    assert translate == (5.0, -0.25, -0.25)  # f = 2, unit scale → −0.25
    scale, translate = overlay_transform((0.3, 0.6), (1.0, 2.0), 3.0)
    assert scale == pytest.approx((0.1, 0.2))
    assert translate == pytest.approx((1.0 - 0.1, 2.0 - 0.2))


@pytest.mark.parametrize("factor", [2.0, 3.0, 2.5])
@pytest.mark.parametrize("rotate, shear", [(0.0, None), (30.0, None), (-20.0, [0.3])])
def test_every_output_pixel_lands_where_the_bicubic_grid_puts_it(factor, rotate, shear):
    """Output pixel j samples input coordinate j/f + (1/f − 1)/2 (MATLAB imresize): the
    result layer must put it at that input coordinate's world position."""
    from napari.layers import Image

    source = Image(
        np.zeros((7, 9), np.uint8),
        scale=(0.7, 1.3),
        translate=(4.0, -2.0),
        rotate=rotate,
        shear=shear,
    )
    snap = LayerSnapshot.of(source)
    data, kwargs, kind = result_layer_data(snap, np.zeros((18, 23), np.uint8), factor, {})
    assert kind == "image"
    result = Image(data, **kwargs)
    for j in [(0, 0), (3, 5), (17, 22)]:
        expected = source.data_to_world([k / factor + (1 / factor - 1) / 2 for k in j])
        np.testing.assert_allclose(result.data_to_world(j), expected, atol=1e-9)


def test_result_keeps_display_settings_and_records_the_run():
    from napari.layers import Image

    source = Image(
        np.zeros((3, 8, 8), np.uint16),
        colormap="magma",
        contrast_limits=(10, 900),
        blending="additive",
        gamma=0.8,
        units=("µm", "µm", "µm"),
        axis_labels=("z", "y", "x"),
        metadata={"axes": "ZYX"},
        name="cells",
    )
    snap = LayerSnapshot.of(source)
    data, kwargs, _ = result_layer_data(snap, np.zeros((3, 16, 16), np.uint16), 2.0, {"model": "m"})
    assert kwargs["name"] == "cells ×2 SRCNN"
    assert kwargs["colormap"].name == "magma" and kwargs["contrast_limits"] == (10, 900)
    assert kwargs["blending"] == "additive" and kwargs["gamma"] == 0.8
    assert kwargs["axis_labels"] == ("z", "y", "x")
    assert kwargs["metadata"] == {"axes": "ZYX", "srcnn": {"source": "cells", "model": "m"}}
    Image(data, **kwargs)  # napari accepts every key


def test_preview_plane_goes_back_to_its_slice():
    from napari.layers import Image

    source = Image(
        np.zeros((5, 4, 8, 8), np.uint8), scale=(3.0, 2.0, 1.0, 1.0), translate=(1.0, 0.5, 0.0, 0.0)
    )
    data, kwargs, _ = result_layer_data(
        LayerSnapshot.of(source), np.zeros((16, 16), np.uint8), 2.0, {}, plane_index=(4, 1)
    )
    assert data.shape == (1, 1, 16, 16) and kwargs["name"].endswith("(preview)")
    assert kwargs["translate"] == pytest.approx((1.0 + 4 * 3.0, 0.5 + 2.0, -0.25, -0.25))
