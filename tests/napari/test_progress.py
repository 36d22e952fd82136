"""Progress and cancel of both widgets in a real viewer: the bar and time left inside the
widget, napari's bar in the activity dock, and that dock's Cancel stopping the job."""

from __future__ import annotations

import time

import numpy as np
import pytest

from napari_srcnn.widgets._progress import format_duration, time_left
from napari_srcnn.widgets.train import TrainWidget

pytestmark = pytest.mark.gui


def _big_upscale(viewer, widget, tiny_model, camera):
    data = np.broadcast_to(camera[:96, :96], (40, 96, 96)).copy()
    source = viewer.add_image(data, name="big")
    widget.reset_choices()
    widget._image.value = source
    widget._model.value = tiny_model
    widget._scale.value = 2.0
    widget._tile.value = 16
    return source


def test_activity_dock_cancel_stops_an_upscale_and_adds_no_layer(
    qtbot, viewer, widget, tiny_model, camera, activity_cancel
):
    _big_upscale(viewer, widget, tiny_model, camera)
    widget._run.native.click()
    qtbot.waitUntil(lambda: widget._progress.done > 0, timeout=30_000)
    prog = widget._progress.activity
    assert prog is not None and prog.total == widget._progress.total  # tiles, in the dock too
    button = activity_cancel(viewer, prog)
    assert button.isVisibleTo(button.parentWidget())  # napari shows it: it must work
    start = time.perf_counter()
    button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    latency = time.perf_counter() - start
    print(f"\nactivity-dock cancel of an upscale: stopped in {1000 * latency:.0f} ms")
    assert widget._last_outcome.cancelled
    assert "big ×2 SRCNN" not in viewer.layers
    assert widget._status.value == "cancelled"
    assert widget._run.enabled and not widget._cancel.enabled
    assert widget._progress.activity is None  # napari's bar is closed
    assert latency < 5.0


def test_activity_dock_cancel_stops_training_keeping_the_best(
    qtbot, viewer, tiny_model, camera, tmp_path, activity_cancel
):
    stack = np.stack([camera[i * 20 : i * 20 + 48, 10:58] for i in range(4)])
    layer = viewer.add_image(stack, name="planes")
    w = TrainWidget(viewer)
    viewer.window.add_dock_widget(w, name="SRCNN train")
    w.reset_choices()
    for key, value in dict(
        hr=[layer],
        start=tiny_model,
        scale=2.0,
        steps=100_000,
        batch=4,
        patch=24,
        val_fraction=0.25,
        val_every=5,
        device="cpu",
        output=tmp_path / "trained.safetensors",
    ).items():
        getattr(w, f"_{key}").value = value
    w._run.native.click()
    qtbot.waitUntil(lambda: len(w.plot.val_steps) >= 2, timeout=120_000)
    start = time.perf_counter()
    activity_cancel(viewer, w._progress.activity).click()
    assert w._status.value.startswith("cancelling")  # said at once, not at the next step
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    print(f"\nactivity-dock cancel of training: stopped in {time.perf_counter() - start:.2f} s")
    result = w.last_outcome.result
    assert result.cancelled and result.steps < 100_000
    assert (tmp_path / "trained.safetensors").is_file()


def test_upscale_shows_tiles_and_time_left_in_the_widget(qtbot, viewer, widget, tiny_model, camera):
    _big_upscale(viewer, widget, tiny_model, camera)
    assert widget._bar.isHidden()  # idle: no bar
    widget._run.native.click()
    assert widget._bar.isVisibleTo(widget.native)
    assert widget._status.value.startswith("upscaling big")
    qtbot.waitUntil(lambda: "left" in widget._progress_text.value, timeout=30_000)
    text = widget._progress_text.value
    done, total = widget._bar.value(), widget._bar.maximum()
    print(f"\nwidget progress: {text!r}")
    assert text.startswith("tile ") and f"/{total}" in text
    assert 0 < done < total == widget._progress.activity.total
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    assert widget._bar.isHidden()


def test_training_shows_steps_in_the_widget(
    qtbot, run_widget, viewer, tiny_model, camera, tmp_path
):
    stack = np.stack([camera[i * 20 : i * 20 + 48, 10:58] for i in range(4)])
    layer = viewer.add_image(stack, name="planes")
    w = TrainWidget(viewer)
    viewer.window.add_dock_widget(w, name="SRCNN train")
    w.reset_choices()
    for key, value in dict(
        hr=[layer],
        start=tiny_model,
        scale=2.0,
        steps=40,
        batch=4,
        patch=24,
        val_fraction=0.25,
        val_every=20,
        device="cpu",
        output=tmp_path / "t.safetensors",
    ).items():
        getattr(w, f"_{key}").value = value
    seen = []
    for name in ("note", "update"):
        real = getattr(w._progress, name)

        def record(*args, real=real):
            real(*args)
            seen.append(w._progress_text.value)

        setattr(w._progress, name, record)
    run_widget(w, timeout=120)
    assert w.last_outcome.error is None
    assert seen[0] == "making the training pairs…"
    steps = [t for t in seen if t.startswith("step ")]
    assert steps and steps[-1].startswith("step 40/40")


def test_time_left_and_durations():
    assert time_left(0.5, 10, 100) is None  # too early to tell
    assert time_left(10.0, 0, 100) is None
    assert time_left(10.0, 50, 100) == "10 s"
    assert time_left(10.0, 1, 100) == "16 min 30 s"
    assert format_duration(0.2) == "<1 s"
    assert format_duration(7265) == "2 h 01 min"
