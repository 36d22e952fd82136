"""The plugin as a user sees it: sample data, both widgets docked, a real upscale and a
short fine-tuning run; a microscopy channel upscaled with the default intensity map. With
``NAPARI_SRCNN_DOCS_SCREENSHOT=1`` the screenshots replace those in ``docs/images/`` (a
plain test run leaves the checkout untouched)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from napari_srcnn.widgets._common import AUTO_MODEL

pytestmark = pytest.mark.gui

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def _model_for_x3(tiny_model: str) -> str:
    """The shipped model the widget picks for ×3 when there is one, else the tiny test model."""
    from napari_srcnn.engine.weights import default_model_name, list_models
    from napari_srcnn.errors import SRCNNError

    shipped = {m.name for m in list_models() if m.path and "napari_srcnn" in str(m.path)}
    try:
        name = default_model_name(3.0, "y")
    except SRCNNError:
        return tiny_model
    return name if name in shipped else tiny_model


def _folder(tmp_path: Path) -> Path:
    update_docs = os.environ.get("NAPARI_SRCNN_DOCS_SCREENSHOT") == "1" and DOCS_IMAGES.is_dir()
    return DOCS_IMAGES if update_docs else tmp_path


def _grid(viewer, qtbot, shown) -> None:
    """napari's grid mode with ``shown`` side by side (first on the left)."""
    for layer in shown:
        viewer.layers.move(viewer.layers.index(layer), len(viewer.layers))
    viewer.grid.enabled = True
    viewer.grid.shape = (1, len(shown))
    for layer in viewer.layers:
        layer.visible = layer in shown
    viewer.reset_view()
    qtbot.wait(200)


def test_screenshot_with_both_widgets(make_napari_viewer, qtbot, run_widget, tiny_model, tmp_path):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1500, 1000)
    _, upscale = viewer.window.add_plugin_dock_widget("napari-srcnn", "SRCNN upscale")
    _, train = viewer.window.add_plugin_dock_widget("napari-srcnn", "SRCNN train / fine-tune")

    # the LR photo upscaled ×3 lands on the HR original's pixel grid
    [hr] = viewer.open_sample("napari-srcnn", "astronaut_hr")
    [lr] = viewer.open_sample("napari-srcnn", "astronaut_lr")
    upscale._image.value = lr
    upscale._model.value = _model_for_x3(tiny_model)
    upscale._scale.value = 3.0
    run_widget(upscale)
    sr = viewer.layers["astronaut (LR ×1/3) ×3 SRCNN"]
    assert sr.data.shape == hr.data.shape
    np.testing.assert_allclose(sr.scale, hr.scale)
    np.testing.assert_allclose(sr.translate, hr.translate, atol=1e-9)

    # a short fine-tuning run on the two-channel sample fills the live plot
    channels = viewer.open_sample("napari-srcnn", "ihc_hr")
    for layer in channels:
        layer.visible = False
    train._hr.value = channels
    train._start.value = _model_for_x3(tiny_model)
    for key, value in dict(
        scale=3.0,
        steps=60,
        batch=8,
        patch=24,
        val_fraction=0.5,
        val_every=10,
        device="cpu",
        output=tmp_path / "ihc-finetuned.safetensors",
    ).items():
        getattr(train, f"_{key}").value = value
    run_widget(train, timeout=180)
    assert train.last_outcome.error is None and len(train.plot.val_steps) == 7
    assert "ihc-finetuned" in upscale._model.choices
    qtbot.waitUntil(lambda: not train.plot.busy, timeout=10_000)  # the last figure is drawn

    viewer.layers.selection.active = sr
    upscale._image.value = lr  # opening the IHC layers selected them, and the chooser followed
    _grid(viewer, qtbot, (lr, sr, hr))
    assert viewer.window._qt_window.height() <= 1000  # both widgets fit the screen
    image = viewer.screenshot(
        str(_folder(tmp_path) / "napari-srcnn-widgets.png"), canvas_only=False
    )
    assert image.shape[0] >= 600 and image.shape[1] >= 900
    assert image[..., :3].std() > 10  # not a blank window


def test_screenshot_of_a_microscopy_layer_upscaled(
    make_napari_viewer, qtbot, run_widget, tiny_model, tmp_path
):
    """The hematoxylin channel of the 16-bit IHC sample, ×3 with the widget's defaults: the
    result keeps the channel's intensities, colormap and contrast limits."""
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1500, 1000)
    _, upscale = viewer.window.add_plugin_dock_widget("napari-srcnn", "SRCNN upscale")
    hr = viewer.open_sample("napari-srcnn", "ihc_hr")[0]
    lr = viewer.open_sample("napari-srcnn", "ihc_lr")[0]
    viewer.layers.selection.active = lr  # the chooser follows the selection
    assert upscale._image.value is lr and lr.data.dtype == np.uint16
    assert upscale._model.value == AUTO_MODEL  # the installed model for microscopy at ×3
    upscale._scale.value = 3.0
    run_widget(upscale)
    sr = viewer.layers[f"{lr.name} ×3 SRCNN"]
    assert sr.data.shape == hr.data.shape and sr.data.dtype == np.uint16
    np.testing.assert_allclose(sr.contrast_limits, lr.contrast_limits)
    assert sr.colormap.name == lr.colormap.name
    assert "(percentile)" in upscale._status.value  # the map used is shown
    assert sr.metadata["srcnn"]["model"] in upscale._status.value  # and the model that ran

    viewer.layers.selection.active = sr
    _grid(viewer, qtbot, (lr, sr, hr))
    image = viewer.screenshot(
        str(_folder(tmp_path) / "napari-srcnn-microscopy.png"), canvas_only=False
    )
    assert image.shape[0] >= 600 and image[..., :3].std() > 10
