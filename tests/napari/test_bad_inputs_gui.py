"""Hostile inputs through the SRCNN upscale widget in a real napari viewer (Xvfb).

Each row is an input the widget can be given (a layer, a weights file, a model); the
expectation is a napari notification (``napari.utils.notifications``: what the user sees)
of the right severity and text, and a viewer that keeps working: the widget is ready
again, the source layer is unchanged, and a normal run right after succeeds.

The widget bounds what it cannot accept at the source: the scale spin box allows 1.1-16,
the tile box 16-8192, and the device menu only lists devices the machine has, so absurd
scales, tiny tiles and a missing CUDA cannot be entered there (the CLI and API rows of
``tests/test_bad_inputs.py`` cover them).
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from napari_srcnn.widgets._common import MODEL_FILE

pytestmark = pytest.mark.gui


@pytest.fixture
def notifications():
    """The notifications dispatched during the test (severity, message)."""
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)

    def new() -> list[tuple[str, str]]:
        return [
            (str(n.severity).lower(), str(n.message)) for n in notification_manager.records[start:]
        ]

    return new


def _sha(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# ----------------------------------------------------------------------------- inputs


def _truncated_weights(tmp: Path, tiny: Path) -> Path:
    data = tiny.read_bytes()
    path = tmp / "cut.safetensors"
    path.write_bytes(data[: len(data) // 2])
    return path


def _bomb_weights(tmp: Path, tiny: Path) -> Path:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tiny), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        meta = dict(fh.metadata())
    meta["arch"] = (
        '{"f1": 9, "f2": 5, "f3": 5, "n1": 200000, "n2": 200000, "channels": 1, "extra_layers": 0}'
    )
    path = tmp / "bomb.safetensors"
    save_file(tensors, str(path), metadata=meta)
    return path


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_pth(tmp: Path, tiny: Path) -> Path:
    path = tmp / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"conv1.weight": _Payload(tmp / "PWNED")}, fh, protocol=2)
    return path


def _rgb_weights(tmp: Path, tiny: Path) -> Path:
    import torch

    from napari_srcnn.engine.model import SRCNN, ArchSpec
    from napari_srcnn.engine.model_info import ModelInfo
    from napari_srcnn.engine.weights_file import save_weights

    torch.manual_seed(0)
    net = SRCNN(ArchSpec.parse("3-1-3:4,2", channels=3))
    return save_weights(
        tmp / "rgbmodel.safetensors",
        net,
        ModelInfo(name="gui-rgb", arch=net.spec, scale=2.0, color_mode="rgb"),
    )


@dataclass(frozen=True)
class GuiRow:
    id: str
    layer: Callable[[np.ndarray], np.ndarray]  # the source layer's data, from the camera crop
    weights: Callable[[Path, Path], Path] | None  # a file picked in "load weights file…"
    severity: str  # of the notification: "error", "warning" or "" (none expected)
    fragment: str
    check: Callable[[np.ndarray], None] | None = None  # the result layer, when there is one


def _finite(out: np.ndarray) -> None:
    assert np.isfinite(out).all()


GUI_ROWS = [
    GuiRow("bool-layer", lambda cam: cam > 100, None, "error", "unsupported dtype bool"),
    GuiRow("1x1-layer", lambda cam: cam[:1, :1], None, "error", "too small"),
    GuiRow("truncated-weights-file", lambda cam: cam, _truncated_weights, "error", "safetensors"),
    GuiRow(
        "memory-bomb-weights-file",
        lambda cam: cam,
        _bomb_weights,
        "error",
        "implausible architecture",
    ),
    GuiRow("pickle-that-runs-code", lambda cam: cam, _evil_pth, "error", "refused to load"),
    GuiRow("rgb-model-on-a-gray-layer", lambda cam: cam, _rgb_weights, "error", "RGB model"),
    GuiRow(
        "nan-pixels",
        lambda cam: np.where(cam > 200, np.nan, cam / 255.0).astype(np.float32),
        None,
        "",
        "",
        _finite,
    ),
    GuiRow(
        "rgba-layer",
        lambda cam: np.stack([cam, cam, cam, np.full_like(cam, 128)], -1),
        None,
        "",
        "",
        lambda out: (out.shape[-1] == 4 and (out[..., 3] == 128).all()) or pytest.fail("alpha"),
    ),
    GuiRow(
        "6-d-layer",
        lambda cam: np.broadcast_to(cam[:12, :12], (1, 2, 1, 2, 12, 12)).copy(),
        None,
        "",
        "",
        lambda out: out.shape == (1, 2, 1, 2, 24, 24) or pytest.fail(str(out.shape)),
    ),
]


@pytest.mark.parametrize("row", GUI_ROWS, ids=[r.id for r in GUI_ROWS])
def test_bad_input_in_the_upscale_widget(
    qtbot,
    run_widget,
    viewer,
    widget,
    tiny_model,
    tiny_model_path,
    camera,
    tmp_path,
    notifications,
    row,
):
    data = row.layer(camera[:24, :24])
    rgb = data.ndim == 3 and data.shape[-1] == 4
    source = viewer.add_image(data, name="bad", rgb=rgb)
    before = _sha(source.data)
    widget.reset_choices()
    widget._image.value = source
    widget._scale.value = 2.0
    widget._tile.value = 16
    if row.weights is None:
        widget._model.value = tiny_model
    else:
        widget._model.value = MODEL_FILE
        widget._weights.value = row.weights(tmp_path, Path(tiny_model_path))
    # A refused .safetensors is already reported when it is picked; running tries it again.
    run_widget(widget)
    got = notifications()
    if row.severity:
        matching = [m for s, m in got if s == row.severity and row.fragment in m]
        assert matching, got
        assert all("\n" not in m for m in matching)
        assert "bad ×2 SRCNN" not in viewer.layers
    else:
        assert not [m for s, m in got if s == "error"], got
        row.check(np.asarray(viewer.layers["bad ×2 SRCNN"].data))
    assert not (tmp_path / "PWNED").exists(), "a pickle payload was executed"
    _assert_viewer_still_works(qtbot, run_widget, viewer, widget, tiny_model, camera)
    assert _sha(source.data) == before, "the source layer was modified"


def _assert_viewer_still_works(qtbot, run_widget, viewer, widget, tiny_model, camera) -> None:
    assert widget._run.enabled and not widget.running
    good = viewer.add_image(camera[:20, :20], name="good")
    widget.reset_choices()
    widget._image.value = good
    widget._model.value = tiny_model
    widget._scale.value = 2.0
    widget._channels.value = "auto"
    run_widget(widget)
    assert viewer.layers["good ×2 SRCNN"].data.shape == (40, 40)
    viewer.dims.ndisplay = 3  # the canvas still redraws
    viewer.dims.ndisplay = 2
    qtbot.wait(10)


def test_scale_mismatch_is_a_warning_notification(
    qtbot, run_widget, viewer, widget, tiny_model, camera, notifications
):
    source = viewer.add_image(camera[:20, :20], name="photo")
    widget.reset_choices()
    widget._image.value = source
    widget._model.value = tiny_model  # trained for ×2
    widget._scale.value = 3.0
    run_widget(widget)
    assert viewer.layers["photo ×3 SRCNN"].data.shape == (60, 60)
    warnings = [m for s, m in notifications() if s == "warning"]
    assert any("trained for ×2" in m for m in warnings), notifications()


def test_an_unexpected_engine_crash_reaches_napari_and_the_viewer_survives(
    qtbot, run_widget, viewer, widget, tiny_model, camera, monkeypatch
):
    """Not an SRCNNError (a bug): it goes to napari's error hook; the widget is usable again."""
    from napari_srcnn.engine import inference

    def crash(self, image, progress=None, cancel=None):
        raise RuntimeError("simulated engine bug")

    source = viewer.add_image(camera[:20, :20], name="crash")
    widget.reset_choices()
    widget._image.value = source
    widget._model.value = tiny_model
    widget._scale.value = 2.0
    # napari re-raises a worker's exception in the Qt event loop, where the napari app's
    # exception hook turns it into an error notification; pytest-qt's hook stands in for it.
    with monkeypatch.context() as m, qtbot.capture_exceptions() as caught:
        m.setattr(inference.Upscaler, "__call__", crash)
        run_widget(widget)
    assert [str(e[1]) for e in caught] == ["simulated engine bug"]
    assert "crash ×2 SRCNN" not in viewer.layers
    _assert_viewer_still_works(qtbot, run_widget, viewer, widget, tiny_model, camera)
