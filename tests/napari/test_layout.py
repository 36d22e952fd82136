"""How the two widgets sit in a real napari window: they fit a 1000-pixel screen together,
the less-used settings fold away, the status line spans the widget, every control says
what it does, and the layer choosers start from the layer the user selected."""

from __future__ import annotations

import numpy as np
import pytest

from napari_srcnn.widgets.train import TrainWidget
from napari_srcnn.widgets.upscale import UpscaleWidget

pytestmark = pytest.mark.gui


@pytest.fixture
def docked(make_napari_viewer, qtbot):
    """A 1500×1000 viewer on screen with both widgets docked, as from the Plugins menu."""
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1500, 1000)
    _, upscale = viewer.window.add_plugin_dock_widget("napari-srcnn", "SRCNN upscale")
    _, train = viewer.window.add_plugin_dock_widget("napari-srcnn", "SRCNN train / fine-tune")
    qtbot.wait(200)
    return viewer, upscale, train


def test_both_widgets_fit_a_1000_pixel_screen(qtbot, docked):
    viewer, upscale, train = docked
    window = viewer.window._qt_window
    print(f"\nwindow with both widgets docked: {window.width()}×{window.height()} px")
    assert window.height() <= 1000
    # the training settings are folded away, and scroll rather than grow when unfolded
    assert not train._collapsible.isExpanded() and not upscale._collapsible.isExpanded()
    train._collapsible.expand(animate=False)
    upscale._collapsible.expand(animate=False)
    qtbot.wait(200)
    assert window.height() <= 1000
    assert not train._batch.native.isHidden()


@pytest.mark.parametrize("kind", [UpscaleWidget, TrainWidget])
def test_status_line_spans_the_widget_and_every_control_has_a_tooltip(
    make_napari_viewer, qtbot, kind
):
    viewer = make_napari_viewer(show=True)
    w = kind(viewer)
    viewer.window.add_dock_widget(w)
    qtbot.wait(100)
    # not indented into the settings' field column: it starts where the labels start
    assert w._status.native.x() == w._form.native.x()
    assert w._status.native.width() >= w._form.native.width() - 2
    controls = [*w._form, *w._more, w._run, w._cancel]
    untipped = [c.label or c.name for c in controls if not c.tooltip]
    assert not untipped, f"controls without a tooltip: {untipped}"


def test_upscale_image_follows_the_selected_layer(qtbot, viewer, widget, tiny_model, run_widget):
    a = viewer.add_image(np.zeros((20, 20), np.uint8), name="a")
    b = viewer.add_image(np.zeros((20, 20), np.uint8), name="b")
    c = viewer.add_image(np.zeros((20, 20), np.uint8), name="c")
    viewer.layers.selection.active = b
    fresh = UpscaleWidget(viewer)
    assert fresh._image.value is b  # the selected layer, not the bottom one
    viewer.layers.selection.active = a
    assert fresh._image.value is a and widget._image.value is a
    # the result is added (and selected by napari) but the source stays chosen
    widget._model.value = tiny_model
    widget._scale.value = 2.0
    run_widget(widget)
    assert viewer.layers.selection.active.name == "a ×2 SRCNN"
    assert widget._image.value is a
    viewer.layers.selection.active = c
    assert widget._image.value is c


def test_hr_list_starts_with_the_selected_layers(qtbot, viewer):
    a = viewer.add_image(np.zeros((20, 20), np.uint8), name="a")
    b = viewer.add_image(np.zeros((20, 20), np.uint8), name="b")
    viewer.layers.selection = {a, b}
    w = TrainWidget(viewer)
    assert w._hr.value == [a, b]
    # nothing selected: the top layer
    viewer.layers.selection.clear()
    assert TrainWidget(viewer)._hr.value == [b]
