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
    from napari_srcnn.widgets import UpscaleWidget

    w = UpscaleWidget(viewer)
    viewer.window.add_dock_widget(w, name="SRCNN upscale")
    return w
