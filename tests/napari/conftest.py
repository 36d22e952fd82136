"""Fixtures of the napari GUI tests: a registered tiny model, and helpers to run a widget."""

from __future__ import annotations

import time

import pytest


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path) -> str:
    """The tiny trained ×2 model of ``tests/conftest.py``, registered for the widgets."""
    from napari_srcnn.engine import weights

    name = weights.register_model(tiny_model_path).name
    yield name
    assert weights.unregister_model(name)


@pytest.fixture
def run_widget(qtbot):
    """``run_widget(widget)``: click its run button, wait until the worker has finished and
    its result is shown; returns the seconds from click to result."""

    def run(widget, timeout: float = 60.0) -> float:
        start = time.perf_counter()
        widget._run.native.click()
        # Idle in Qt's event loop between checks, as napari does while a worker runs
        # (a tight Python polling loop would compete with the worker for the GIL).
        while widget.running:
            qtbot.wait(20)
            assert time.perf_counter() - start < timeout, "the widget's worker did not finish"
        return time.perf_counter() - start

    return run


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def widget(viewer, tiny_model):
    from napari_srcnn.widgets.upscale import UpscaleWidget

    w = UpscaleWidget(viewer)
    viewer.window.add_dock_widget(w, name="SRCNN upscale")
    return w


def activity_cancel_button(viewer, prog):
    """The Cancel button napari's activity dock shows for the progress bar ``prog``."""
    from napari._qt.widgets.qt_progress_bar import QtLabeledProgressBar

    dialog = viewer.window._qt_window._activity_dialog
    for bar in dialog.findChildren(QtLabeledProgressBar):
        if bar.progress is prog:
            return bar.cancel_button
    raise AssertionError("the job's progress bar is not in the activity dock")


class StallMeter:
    """The longest gap between two ticks of a 5 ms timer on the UI thread: how long the
    viewer could not answer a click or a repaint."""

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.gaps: list[float] = []
        self._last = None
        self._timer = QTimer()
        self._timer.setInterval(5)
        self._timer.timeout.connect(self._tick)

    def _tick(self):
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.append(now - self._last)
        self._last = now

    def __enter__(self):
        self._last = None
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.stop()

    @property
    def longest_ms(self) -> float:
        return 1000 * max(self.gaps, default=0.0)


@pytest.fixture
def activity_cancel():
    """``activity_cancel(viewer, prog)``: the activity dock's Cancel button for ``prog``."""
    return activity_cancel_button


@pytest.fixture
def stall_meter(qtbot):
    """A `StallMeter` on the UI thread (use it as a context manager)."""
    return StallMeter()
