"""Every error the engine can raise through a widget reaches the user in the widget's words:
no command-line flags, no ``napari-srcnn`` commands, no Python keywords.

The audit reads the engine's source: each ``raise`` of an ``SRCNNError`` (with its
f-string placeholders filled) goes through each widget's vocabulary. A new engine message
that speaks CLI fails here until the widgets can say it. Then real errors are raised
through the widgets in a viewer and read from napari's notifications.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import napari_srcnn
from napari_srcnn.widgets._messages import widget_message
from napari_srcnn.widgets._words import TRAIN_VOCABULARY as TRAIN
from napari_srcnn.widgets._words import UPSCALE_VOCABULARY as UPSCALE

ENGINE = Path(napari_srcnn.__file__).parent / "engine"
ERRORS = {
    "SRCNNError",
    "InputError",
    "WeightsError",
    "DeviceError",
    "TrainingDataError",
    "WriteError",
    "CancelledError",
}
#: Engine modules no widget calls: files on disk (the CLI's and the reader's), the
#: literature evaluation (``napari-srcnn eval``), resuming a checkpoint (``--resume``).
NOT_FROM_WIDGETS = {"io.py", "evaluation.py", "checkpoints.py"}
#: Python parameter names a widget user never sees (environment variables, NAME=value, are
#: set outside napari and read alike by every entry point: they may appear).
KEYWORDS = re.compile(
    r"\b(channel_axis|val_fraction|patch_size|batch_size|val_every|checkpoint_every|"
    r"init_from|color_mode|extra_layers)\b|\b(?![A-Z][A-Z0-9_]*=)\w+=\S"
)


def _text(node: ast.expr, constants: dict[str, str]) -> str:
    """A message expression as text: module-level string constants filled in (the name of
    an environment variable), every other placeholder shown as ``X``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v, constants) for v in node.values)
    if isinstance(node, ast.FormattedValue):
        value = node.value
        return constants.get(value.id, "X") if isinstance(value, ast.Name) else "X"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left, constants) + _text(node.right, constants)
    if isinstance(node, ast.IfExp):
        return _text(node.body, constants) + _text(node.orelse, constants)
    return "X"


def _constants(tree: ast.Module) -> dict[str, str]:
    """``NAME = "text"`` assignments at the top of a module."""
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def engine_messages() -> list[tuple[str, str]]:
    """``(where, message)`` of every SRCNNError the widgets' engine calls can raise."""
    found = []
    for path in sorted(ENGINE.glob("*.py")):
        if path.name in NOT_FROM_WIDGETS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _constants(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            func = node.exc.func
            name = getattr(func, "id", getattr(func, "attr", ""))
            if name in ERRORS and node.exc.args:
                text = " ".join(_text(node.exc.args[0], constants).split())
                found.append((f"{path.name}:{node.lineno}", text))
    return found


def _cli_words(text: str) -> list[str]:
    return (
        re.findall(r"(?<![\w-])--[a-z][\w-]*", text)
        + re.findall(r"napari-srcnn (?:train|upscale|eval|models|samples)\b", text)
        + [m.group(0) for m in KEYWORDS.finditer(text)]
    )


def test_the_audit_finds_the_engine_messages():
    messages = dict(engine_messages())
    assert len(messages) > 80
    # the ones this audit exists for are among them
    assert any("--channels" in m for m in messages.values())
    assert any("--lr" in m for m in messages.values())
    assert any("napari-srcnn train" in m for m in messages.values())


@pytest.mark.parametrize("vocabulary", [UPSCALE, TRAIN], ids=["upscale", "train"])
def test_every_engine_message_speaks_the_widgets_language(vocabulary):
    bad = {}
    for where, message in engine_messages():
        said = widget_message(message, vocabulary)
        if words := _cli_words(said):
            bad[where] = (said, words)
    assert not bad, "\n".join(f"{k}: {v[0]!r} ({v[1]})" for k, v in bad.items())


@pytest.mark.parametrize(
    ("vocabulary", "engine", "widget"),
    [
        (
            UPSCALE,
            "channels='rgb' needs a 3-channel model; 'tiny' has 1 channel",
            "“colour mode” “RGB (3-channel model)” needs a 3-channel model; 'tiny' has 1 channel",
        ),
        (
            UPSCALE,
            "channels='y' needs a last axis of 3 (RGB) or 4 (RGBA) and rgb not False; "
            "the image has shape (20, 20)",
            "“colour mode” “Y (luminance; chroma bicubic)” needs an RGB layer; "
            "the image has shape (20, 20)",
        ),
        (
            UPSCALE,
            "no 'y' model is installed for ×5; pass a weights file (--weights) or train one "
            "(napari-srcnn train)",
            "no 'y' model is installed for ×5; pick “load weights file…” in the model menu, or "
            "train one in the “SRCNN train / fine-tune” widget",
        ),
        (UPSCALE, "channel_axis 4 is out of range", "“channel axis” 4 is out of range"),
        (
            TRAIN,
            "an RGB model needs RGB images (a last axis of 3); layer has shape (9, 9) — use "
            "--channels y or per-channel",
            "an RGB model needs RGB images (a last axis of 3); layer has shape (9, 9) — choose "
            "colour mode “Y (luminance)” or “per channel”",
        ),
        (
            TRAIN,
            "training diverged at step 9 (loss nan); lower --lr",
            "training diverged at step 9 (loss nan); lower the “learning rate”",
        ),
        (
            TRAIN,
            "batch-size must be a positive integer, got 0",
            "“batch size” must be a positive integer, got 0",
        ),
        (
            TRAIN,
            "start model 'm' has 3 channel(s); the training data has 1 (colour mode 'per-channel')",
            "start model 'm' has 3 channel(s); the training data has 1 (colour mode “per channel”)",
        ),
        (
            TRAIN,
            "give more planes or --val-fraction 0",
            "give more planes or “validation fraction” 0",
        ),
    ],
)
def test_messages_name_the_widgets_controls(vocabulary, engine, widget):
    assert widget_message(engine, vocabulary) == widget


def test_paths_and_names_in_messages_are_left_alone():
    for message in (
        "cannot write '/data/my_run--2/channels=3.safetensors': disk full",
        "'m.safetensors' is not a napari-srcnn weights file (no 'format' header)",
    ):
        assert widget_message(message, TRAIN) == message


@pytest.mark.gui
def test_engine_errors_reach_the_user_in_the_widgets_words(
    qtbot, run_widget, viewer, widget, tiny_model, camera, astronaut, tmp_path, monkeypatch
):
    """Real engine errors raised through both widgets, read from the notifications."""
    from napari_srcnn.widgets._common import SCRATCH
    from napari_srcnn.widgets.train import TrainWidget

    errors = []
    monkeypatch.setattr("napari.utils.notifications.show_error", errors.append)
    gray = viewer.add_image(camera[:24, :24], name="gray")
    # upscale: the Y colour mode on a grayscale layer
    widget.reset_choices()
    widget._image.value = gray
    widget._model.value = tiny_model
    widget._scale.value = 2.0
    widget._channels.value = "Y (luminance; chroma bicubic)"
    run_widget(widget)
    assert errors[-1].startswith("“colour mode” “Y (luminance; chroma bicubic)” needs an RGB")
    # training: an RGB model asked for on a grayscale layer; a sub-image that does not fit
    train = TrainWidget(viewer)
    train.reset_choices()
    train._hr.value = [gray]
    for key, value in dict(
        scale=2.0, start=SCRATCH, steps=2, batch=4, device="cpu", val_fraction=0.0
    ).items():
        getattr(train, f"_{key}").value = value
    train._output.value = tmp_path / "m.safetensors"
    train._colors.value = "RGB"
    run_widget(train)
    assert "choose colour mode “Y (luminance)” or “per channel”" in errors[-1]
    train._colors.value = "auto"
    train._patch.value = 64
    run_widget(train)
    assert "“patch size”" in errors[-1]
    for message in errors:
        assert not _cli_words(message), message
    assert len(errors) == 3 and not np.any(["\n" in m for m in errors])
