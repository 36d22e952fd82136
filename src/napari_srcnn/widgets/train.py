"""The "SRCNN train / fine-tune" dock widget.

Learns from Image layers: self-supervised from high-resolution layers (the engine makes the
low-resolution partners by bicubic down-sampling), or from an explicit LR + HR pair. The settings
become one [`TrainConfig`][napari_srcnn.engine.train_config.TrainConfig] and one ``train(data,
config, on_event=..., cancel=...)`` call in a worker thread; the engine's step and validation events
feed a live plot. The written model is registered at once, so the upscale widget lists it.
"""

from __future__ import annotations

import collections
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.types import FileDialogMode
from magicgui.widgets import (
    ComboBox,
    FileEdit,
    FloatSpinBox,
    LineEdit,
    PushButton,
    Select,
    SpinBox,
)

from ..engine.files import one_line
from ..engine.options import MAX_SCALE
from ._base import JobWidget
from ._common import (
    AUTO_MODEL,
    AUTO_START,
    MODEL_FILE,
    SCRATCH,
    device_choices,
    model_choices,
    register_weights,
)
from ._jobs import TrainOutcome, TrainRequest, run_training
from ._plot import TrainingPlot
from ._words import COLOR_LABELS, TRAIN_VOCABULARY

if TYPE_CHECKING:
    import napari

__all__ = ["TrainWidget"]

SELF_SUPERVISED = "HR layer(s): self-supervised"
PAIR = "LR + HR layer pair"
#: Milliseconds between two refreshes of the plot from the queued training events.
REFRESH_MS = 250


def _default_output(name: str, scale: float) -> Path:
    """``~/.napari-srcnn/models/<layer>_x<scale>.safetensors`` (the folder is made on use)."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_") or "model"
    return Path.home() / ".napari-srcnn" / "models" / f"{stem}_x{scale:g}.safetensors"


def fresh_output(path: Path) -> Path:
    """``path``, or ``<stem>-2.safetensors``, ``-3``, … when it (or its checkpoint) exists:
    a second run never overwrites the model of the first."""
    stem = path.name[: -len(".safetensors")] if path.name.endswith(".safetensors") else path.stem
    candidate, n = path, 1
    while candidate.exists() or candidate.with_name(candidate.stem + ".ckpt.safetensors").exists():
        n += 1
        candidate = path.with_name(f"{stem}-{n}.safetensors")
    return candidate


def _fmt(value: float) -> str:
    return f"{value:.2f} dB" if value is not None and math.isfinite(value) else "n/a"


class TrainWidget(JobWidget):
    """Train or fine-tune an SRCNN on Image layers, with a live loss / PSNR plot.

    Parameters
    ----------
    napari_viewer
        The viewer (napari passes it when it creates the dock widget).
    """

    cancel_message = "cancelling (keeping the best weights)…"
    more_title = "training settings"
    min_height = 460  # the settings and the live plot's top half
    vocabulary = TRAIN_VOCABULARY

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(napari_viewer)
        self._mode = ComboBox(
            label="learn from",
            choices=[SELF_SUPERVISED, PAIR],
            tooltip="HR layers: the low-resolution partners are made by bicubic "
            "down-sampling (the paper's recipe); a pair: your own LR and HR layers",
        )
        self._hr = Select(
            label="HR layer(s)",
            choices=self._image_layers,
            tooltip="high-resolution layers to learn from (Ctrl/Cmd-click for several); "
            "starts with the layers selected in the layer list",
        )
        self._hr.native.setMaximumHeight(76)  # four layers; it scrolls beyond
        self._lr = ComboBox(
            label="LR layer",
            choices=self._image_layers,
            nullable=True,
            visible=False,
            tooltip="the low-resolution partner of the HR layer, ×scale smaller",
        )
        self._scale = FloatSpinBox(
            label="scale ×",
            value=3.0,
            min=1.1,
            max=float(MAX_SCALE),
            step=1.0,
            tooltip="the factor the model learns to upscale by",
        )
        self._start = ComboBox(
            label="start model",
            choices=self._start_choices,
            tooltip="fine-tune a model, or train from scratch",
        )
        self._steps = SpinBox(
            label="steps",
            value=2000,
            min=1,
            max=10_000_000,
            step=100,
            tooltip="optimiser steps (batches of sub-images)",
        )
        self._output = FileEdit(
            label="output file",
            mode=FileDialogMode.OPTIONAL_FILE,
            filter="Weights (*.safetensors)",
            tooltip="default: ~/.napari-srcnn/models/<layer>_x<scale>.safetensors; an "
            "existing file is never overwritten: the run writes <name>-2, -3, … instead",
        )
        self._colors = ComboBox(
            label="colour mode",
            choices=list(COLOR_LABELS),
            value="auto",
            tooltip="auto: Y for RGB layers, per channel otherwise",
        )
        self._arch = LineEdit(
            label="architecture",
            value="9-5-5",
            tooltip="from scratch: 9-5-5, 9-3-5, 9-1-5, 9-5-5-5, 9-5-5:128,64",
        )
        self._rate = LineEdit(
            label="learning rate",
            value="auto",
            tooltip="auto: 1e-3 from scratch, 5e-4 fine-tuning per-channel data, 1e-4 photo models",
        )
        self._batch = SpinBox(
            label="batch size", value=64, min=1, max=4096, tooltip="sub-images per step"
        )
        self._patch = SpinBox(
            label="patch size", value=33, min=8, max=512, tooltip="sub-image size (33 in the paper)"
        )
        self._val_fraction = FloatSpinBox(
            label="validation fraction",
            value=0.1,
            min=0.0,
            max=0.9,
            step=0.05,
            tooltip="share of planes held out for validation (of a single plane: a region "
            "of it); 0: no validation",
        )
        self._val_every = SpinBox(
            label="validate every",
            value=200,
            min=1,
            max=1_000_000,
            tooltip="steps between validations (and checkpoints)",
        )
        self._device = ComboBox(
            label="device",
            choices=lambda _w: device_choices(),
            tooltip="auto: the first GPU when there is one, else the CPU",
        )
        self.plot = TrainingPlot(self._theme_colors())
        self._build(
            form=[
                self._mode,
                self._hr,
                self._lr,
                self._scale,
                self._start,
                self._weights,
                self._steps,
                self._output,
            ],
            more=[
                self._colors,
                self._arch,
                self._rate,
                self._batch,
                self._patch,
                self._val_fraction,
                self._val_every,
                self._device,
            ],
            run=PushButton(
                text="Train", tooltip="train in the background; the viewer stays usable"
            ),
            cancel=PushButton(
                text="Cancel (keep best)",
                tooltip="stop after the current step; the best weights so far are kept",
            ),
            below=[self.plot.native],
        )

        self._events: collections.deque = collections.deque()
        self._timer: Any = None
        self.last_outcome: TrainOutcome | None = None

        self._mode.changed.connect(self._on_mode)
        self._start.changed.connect(self._on_start)
        self._follow_registry(self._start)
        self.reset_choices()
        self._on_start(self._start.value)

    # ------------------------------------------------------------------ choices

    @staticmethod
    def _start_choices(_widget: Any = None) -> list[str]:
        return [AUTO_START, SCRATCH, *model_choices(AUTO_MODEL)[1:]]

    def _theme_colors(self) -> dict[str, str]:
        try:
            from napari.utils.theme import get_theme

            theme = get_theme(self.viewer.theme)
            return {
                "background": theme.canvas.as_hex(),
                "foreground": theme.foreground.as_hex(),
                "text": theme.text.as_hex(),
            }
        except Exception:  # a custom theme without these fields: matplotlib's defaults
            return {"background": "white", "foreground": "black", "text": "black"}

    def reset_choices(self, *args: Any) -> None:
        """Refresh the menus; an empty HR list takes the layers selected in napari."""
        super().reset_choices(*args)
        if self._layout_ready and not self._hr.value and not self.running:
            chosen = [layer for layer in self._user_layers() if layer in self._hr.choices]
            if chosen:
                self._hr.value = chosen

    def _on_mode(self, mode: str) -> None:
        self._lr.visible = mode == PAIR

    def _on_start(self, start: str) -> None:
        self._weights.visible = start == MODEL_FILE
        self._arch.visible = start in (SCRATCH, AUTO_START)

    # ------------------------------------------------------------------ running

    def request(self) -> TrainRequest:
        """The current settings as a `TrainRequest` (raises ``InputError``)."""
        from ..errors import InputError

        hr_layers = list(self._hr.value or [])
        if not hr_layers:
            raise InputError("choose the high-resolution layer(s) to learn from")
        lr_layer = None
        if self._mode.value == PAIR:
            lr_layer = self._lr.value
            if lr_layer is None:
                raise InputError("choose the low-resolution layer of the pair")
            if len(hr_layers) != 1:
                raise InputError("an LR + HR pair takes exactly one HR layer")
            if lr_layer is hr_layers[0]:
                raise InputError("the LR and the HR layer must be different layers")
        start = self._start.value
        if start == MODEL_FILE:
            start = self._weights_path(
                "choose a weights file to fine-tune (or another start model)"
            )
        rate_text = str(self._rate.value).strip().lower()
        try:
            rate = None if rate_text in ("", "auto") else float(rate_text)
        except ValueError:
            raise InputError(f"learning rate {self._rate.value!r} is not a number") from None
        scale = float(self._scale.value)
        output_value = self._output.value
        if isinstance(output_value, tuple):  # not in "w" mode; keeps mypy's union honest
            output_value = output_value[0] if output_value else None
        if output_value is None or str(output_value) in ("", "."):
            output = _default_output(hr_layers[0].name, scale)
            output.parent.mkdir(parents=True, exist_ok=True)
        else:
            output = Path(output_value)
            if not output.name.endswith(".safetensors"):
                output = output.with_name(output.name + ".safetensors")
        output = fresh_output(output)
        if Path(str(self._output.value)) != output:
            self._output.value = output

        def level0(layer: Any) -> Any:
            return layer.data[0] if layer.multiscale else layer.data

        return TrainRequest(
            hr=[level0(layer) for layer in hr_layers],
            rgb=[bool(layer.rgb) for layer in hr_layers],
            names=[layer.name for layer in hr_layers],
            lr=None if lr_layer is None else level0(lr_layer),
            lr_rgb=bool(lr_layer.rgb) if lr_layer is not None else False,
            scale=scale,
            color_mode=COLOR_LABELS[self._colors.value],
            start=start,
            arch=str(self._arch.value),
            steps=int(self._steps.value),
            lr_rate=rate,
            batch_size=int(self._batch.value),
            patch_size=int(self._patch.value),
            val_fraction=float(self._val_fraction.value),
            val_every=int(self._val_every.value),
            device=self._device.value or "auto",
            output=output,
        )

    def run(self) -> Any:
        """Start training in a worker thread; returns the worker."""
        from qtpy.QtCore import QTimer

        from ..errors import SRCNNError

        if self.running:
            return self._worker
        try:
            request = self.request()
        except SRCNNError as exc:
            self._error(one_line(exc))
            return None
        self._events.clear()
        self.plot.clear(total=request.steps)
        worker = self._start_job(
            run_training,
            request,
            total=request.steps,
            desc="SRCNN training",
            unit="step",
            status=f"training ×{request.scale:g} → {request.output.name}…",
            on_returned=self._on_done,
            on_event=self._events.append,
        )
        self._progress.note("making the training pairs…")
        self._timer = QTimer()
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self._drain_events)
        self._timer.start()
        worker.start()
        return worker

    def _drain_events(self) -> None:
        """Move queued engine events (appended by the worker thread) into the plot."""
        events = []
        while self._events:
            events.append(self._events.popleft())
        if not events:
            return
        self.plot.add_events(events)
        steps = [e for e in events if hasattr(e, "loss")]
        if steps and self.running:
            self._progress.update(steps[-1].step, steps[-1].total)
        val = [e for e in events if hasattr(e, "psnr")]
        if val and math.isfinite(val[-1].psnr):
            e = val[-1]
            self._status.value = (
                f"step {e.step}/{e.total}: val PSNR {_fmt(e.psnr)} "
                f"(bicubic {_fmt(e.bicubic_psnr)}, best {_fmt(e.best_psnr)})"
                + ("" if e.flat_ok else f"; not kept, moves flat images by {e.flat_255:.2f}/255")
            )

    def _on_done(self, outcome: TrainOutcome) -> None:
        self._drain_events()
        self.last_outcome = outcome
        if outcome.error is not None:
            self._error(outcome.error)
            return
        if outcome.cancelled:
            from napari.utils.notifications import show_info

            self._status.value = "cancelled before training started: nothing written"
            show_info("SRCNN training cancelled")
            return
        result = outcome.result
        name = None
        if Path(result.output).is_file():
            from ..errors import SRCNNError

            try:
                name = register_weights(result.output)
            except SRCNNError as exc:
                self._error(one_line(exc))
                return
        outcome.extra["model_name"] = name
        what = "cancelled" if result.cancelled else "done"
        scores = (
            f"val PSNR {_fmt(result.best_psnr)} vs bicubic {_fmt(result.bicubic_psnr)}"
            if outcome.val_planes
            else "no validation planes"
        )
        from napari.utils.notifications import show_info, show_warning

        from ..engine.evaluation import FLAT_MAX_ERROR_255

        flat = result.flat_max_error_255
        flat_note = (
            f"flat images stay flat within {flat:.2f}/255"
            if flat <= FLAT_MAX_ERROR_255
            else f"warning: flat images move by up to {flat:.2f}/255 (black will not stay black)"
        )
        self._status.value = (
            f"{what} after {result.steps} steps ({result.seconds:.0f} s): "
            f"{scores}; {flat_note}; model {name!r} is ready in the upscale widget"
        )
        show_info(f"SRCNN training {what}: {scores}; wrote {result.output}")
        if flat > FLAT_MAX_ERROR_255:
            show_warning(f"SRCNN training: the new model moves flat images by up to {flat:.2f}/255")

    def _on_finished(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._drain_events()
        super()._on_finished()
