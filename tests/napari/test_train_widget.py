"""The train / fine-tune widget in a real napari viewer: live plot, cancel, registration."""

from __future__ import annotations

import numpy as np
import pytest

from napari_srcnn.widgets._common import SCRATCH
from napari_srcnn.widgets.train import PAIR, TrainWidget
from napari_srcnn.widgets.upscale import UpscaleWidget

pytestmark = pytest.mark.gui


@pytest.fixture
def stack(camera):
    """Four 48×48 planes of a real photo: three to train on, one to validate."""
    return np.stack([camera[i * 20 : i * 20 + 48, 10:58] for i in range(4)])


def _docked(viewer, **values):
    """A train widget docked in the viewer, with its defaults but for ``values`` (by field)."""
    w = TrainWidget(viewer)
    viewer.window.add_dock_widget(w, name="SRCNN train")
    _set(w, **values)
    return w


def _set(w, **values):
    for key, value in values.items():
        getattr(w, f"_{key}").value = value


def _widget(viewer, tmp_path, **values):
    w = _docked(viewer)
    w.reset_choices()
    defaults = dict(
        scale=2.0,
        steps=12,
        batch=4,
        patch=24,
        val_fraction=0.25,
        val_every=4,
        device="cpu",
        output=tmp_path / "trained.safetensors",
    )
    _set(w, **{**defaults, **values})
    return w


def test_fine_tunes_from_an_hr_layer_with_a_live_plot(
    qtbot, run_widget, viewer, tiny_model, stack, tmp_path
):
    layer = viewer.add_image(stack, name="planes")
    upscale = UpscaleWidget(viewer)
    w = _widget(viewer, tmp_path, hr=[layer], start=tiny_model)
    run_widget(w, timeout=120)
    outcome = w.last_outcome
    assert outcome.error is None, outcome.error
    result = outcome.result
    assert not result.cancelled and result.steps == 12
    assert outcome.init_from == tiny_model and outcome.train_planes == 3 and outcome.val_planes == 1
    # the live plot got every step's loss and every validation, bicubic included
    assert w.plot.steps == list(range(1, 13))
    assert w.plot.val_steps == [0, 4, 8, 12]
    assert all(np.isfinite(w.plot.psnr)) and all(np.isfinite(w.plot.bicubic))
    assert "val PSNR" in w._status.value
    # the new model is in the upscale widget at once, and upscales
    name = outcome.extra["model_name"]
    assert name == "trained" and name in upscale._model.choices
    upscale._image.value = layer
    upscale._model.value = name
    upscale._scale.value = 2.0
    run_widget(upscale)
    assert viewer.layers["planes ×2 SRCNN"].data.shape == (4, 96, 96)


def test_trains_from_scratch_on_an_lr_hr_pair(qtbot, run_widget, viewer, stack, tmp_path):
    from napari_srcnn.engine.resize import imresize

    hr = viewer.add_image(stack, name="hr")
    lr_data = np.clip(np.round(imresize(stack.astype(np.float64), 0.5)), 0, 255).astype(np.uint8)
    lr = viewer.add_image(lr_data, name="lr", scale=(1, 2, 2))
    w = _widget(
        viewer, tmp_path, mode=PAIR, hr=[hr], lr=lr, start=SCRATCH, arch="3-1-3:8,4", rate="3e-3"
    )
    run_widget(w, timeout=120)
    outcome = w.last_outcome
    assert outcome.error is None, outcome.error
    assert outcome.init_from is None and outcome.result.steps == 12
    from napari_srcnn.engine.weights_file import read_info

    info = read_info(tmp_path / "trained.safetensors")
    assert info.arch.name == "3-1-3:8,4" and info.scale == 2.0


def test_cancel_keeps_the_best_weights(qtbot, viewer, tiny_model, stack, tmp_path):
    layer = viewer.add_image(stack, name="planes")
    w = _widget(viewer, tmp_path, hr=[layer], start=tiny_model, steps=100_000, val_every=5)
    w._run.native.click()
    qtbot.waitUntil(lambda: len(w.plot.val_steps) >= 2, timeout=120_000)
    w._cancel.native.click()
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    result = w.last_outcome.result
    assert result.cancelled and result.steps < 100_000
    assert (tmp_path / "trained.safetensors").is_file()
    assert w.last_outcome.extra["model_name"] == "trained"
    assert w._status.value.startswith("cancelled")


def test_settings_errors_are_reported(qtbot, run_widget, viewer, stack, tmp_path, monkeypatch):
    errors = []
    monkeypatch.setattr("napari.utils.notifications.show_error", errors.append)
    w = _widget(viewer, tmp_path)
    assert w.run() is None and "high-resolution layer" in errors[-1]
    layer = viewer.add_image(stack[0], name="one plane")
    w.reset_choices()
    w._hr.value = [layer]
    w._mode.value = PAIR
    assert w.run() is None and "low-resolution layer" in errors[-1]
    w._mode.value = w._mode.choices[0]
    w._rate.value = "fast"
    assert w.run() is None and "not a number" in errors[-1]
    # an engine error (a 48×48 plane leaves no room for a validation region) arrives as a
    # one-line notification in the widget's words, and leaves the widget ready
    w._rate.value = "auto"
    w._start.value = SCRATCH
    run_widget(w)
    assert "validation fraction" in errors[-1] and "\n" not in errors[-1]
    assert "--" not in errors[-1]
    assert w._run.enabled and not w.running


def test_cancel_while_making_the_pairs_writes_nothing(qtbot, viewer, stack, tmp_path, monkeypatch):
    """Cancel before the first step (while the big stack is being degraded): the run ends
    at once, says so, and writes no file."""
    import napari_srcnn.engine.data as data_module

    layer = viewer.add_image(np.concatenate([stack] * 8), name="planes")  # 32 planes
    w = _widget(viewer, tmp_path, hr=[layer], start=SCRATCH, arch="3-1-3:8,4")
    degraded = []
    real_make_pair = data_module.make_pair

    def slow_make_pair(*args, **kwargs):
        degraded.append(1)
        if len(degraded) == 2:
            w._cancel_event.set()  # what the Cancel button does, from the worker's side
        return real_make_pair(*args, **kwargs)

    monkeypatch.setattr(data_module, "make_pair", slow_make_pair)
    w._run.native.click()
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    assert w.last_outcome.cancelled and w.last_outcome.result is None
    assert len(degraded) == 2  # stopped at the next plane, not after all 32
    assert not (tmp_path / "trained.safetensors").exists()
    assert w._status.value.startswith("cancelled before training")


@pytest.mark.isolated
def test_training_never_stalls_the_viewer(
    make_napari_viewer, qtbot, run_widget, tiny_model, stack, tmp_path, stall_meter
):
    """A 200-step run with the live plot on screen: the UI thread is never blocked for
    100 ms or more (the plot is drawn off the UI thread, at most 4 times a second)."""
    viewer = make_napari_viewer(show=True)
    layer = viewer.add_image(stack, name="planes")
    w = _widget(viewer, tmp_path, hr=[layer], start=tiny_model, steps=200, batch=16, val_every=20)
    qtbot.wait(100)  # laid out: the plot has its size
    with stall_meter:
        seconds = run_widget(w, timeout=300)
        qtbot.waitUntil(lambda: not w.plot.busy, timeout=10_000)
    outcome = w.last_outcome
    assert outcome.error is None and outcome.result.steps == 200
    draws, draw_ms = w.plot.draws, 1000 * max(w.plot.draw_seconds)
    print(
        f"\n200 training steps in {seconds:.1f} s: longest UI-thread stall "
        f"{stall_meter.longest_ms:.0f} ms; {draws} plot redraws (longest {draw_ms:.0f} ms, "
        f"off the UI thread; {w.plot.full_draws} with the axes)"
    )
    assert len(w.plot.steps) == 200 and len(w.plot.val_steps) == 11
    assert 2 <= draws <= 4 * seconds + 3  # live, and at a bounded rate
    assert w.plot.full_draws < draws  # some frames blit the curves onto the cached axes
    assert stall_meter.longest_ms < 100


def test_a_one_plane_layer_fine_tunes_with_the_defaults(
    qtbot, run_widget, viewer, tiny_model, camera, tmp_path
):
    """One plane, the widget's default validation fraction: the engine holds out a region
    of the plane for validation."""
    layer = viewer.add_image(camera, name="one plane")
    w = _docked(viewer)
    assert w._hr.value == [layer]  # the selected layer, not an empty list
    _set(w, start=tiny_model, scale=2.0, steps=4, device="cpu", output=tmp_path / "one.safetensors")
    run_widget(w, timeout=180)
    outcome = w.last_outcome
    assert outcome.error is None, outcome.error
    assert outcome.result.steps == 4 and outcome.val_planes >= 1
    assert "val PSNR" in w._status.value


def test_a_dim_16_bit_plane_fine_tunes_the_microscopy_model_and_keeps_black_black(
    qtbot, run_widget, viewer, camera, tmp_path
):
    """The fidelity issue's case in the widget: one 256² uint16 plane with values 98..175,
    the widget's defaults (start model: the installed microscopy model). The run ends at or
    above the start model on the held-out region, and what it writes keeps flat images flat."""
    from skimage.transform import resize

    from napari_srcnn.engine.evaluation import FLAT_MAX_ERROR_255
    from napari_srcnn.engine.weights import load_model

    big = resize(camera.astype(np.float64), (256, 256), order=3, anti_aliasing=False)
    plane = np.rint(98 + (big - big.min()) / (big.max() - big.min()) * 77).astype(np.uint16)
    viewer.add_image(plane, name="dim plane")
    w = _docked(viewer, scale=2.0, steps=40, device="cpu", output=tmp_path / "dim.safetensors")
    run_widget(w, timeout=300)
    outcome = w.last_outcome
    assert outcome.error is None, outcome.error
    assert outcome.init_from == "srcnn-955-micro-x2" and outcome.val_planes == 1
    result = outcome.result
    assert result.best_psnr >= result.start_psnr > result.bicubic_psnr
    flat = load_model(result.output).info.metrics["flat_max_error_255"]
    assert flat == result.flat_max_error_255 <= FLAT_MAX_ERROR_255
    assert f"flat images stay flat within {flat:.2f}/255" in w._status.value


def test_a_second_run_never_overwrites_the_first_model(
    qtbot, run_widget, viewer, tiny_model, stack, tmp_path
):
    layer = viewer.add_image(stack, name="planes")
    w = _widget(viewer, tmp_path, hr=[layer], start=tiny_model, steps=2)
    run_widget(w, timeout=120)
    first = tmp_path / "trained.safetensors"
    before = first.read_bytes()
    run_widget(w, timeout=120)
    second = tmp_path / "trained-2.safetensors"
    assert w.last_outcome.result.output == second and second.is_file()
    assert first.read_bytes() == before
    assert w._output.value == second  # the field says where the run wrote
    assert "trained-2" in w._status.value


def test_new_models_are_listed_before_load_weights_file(
    qtbot, run_widget, viewer, tiny_model, stack, tmp_path
):
    from napari_srcnn.widgets._common import MODEL_FILE

    layer = viewer.add_image(stack, name="planes")
    upscale = UpscaleWidget(viewer)
    w = _widget(viewer, tmp_path, hr=[layer], start=tiny_model, steps=2, output=tmp_path / "new")
    run_widget(w, timeout=120)
    assert w.last_outcome.extra["model_name"] == "new"
    for menu in (upscale._model, w._start):
        assert "new" in menu.choices and menu.choices[-1] == MODEL_FILE
    assert w._start.value == tiny_model  # the selection is kept
