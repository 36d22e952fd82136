"""The "SRCNN upscale" dock widget: one Image layer in, one up-sampled layer out.

The widget translates its settings into one engine call,
``Upscaler(model, UpscaleOptions(...))(data, progress=..., cancel=...)``, run off the UI
thread by a napari ``thread_worker``, and turns the result into a layer that overlays the
source (see `overlay_transform()`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    PushButton,
    SpinBox,
)

from ..engine.files import one_line
from ..engine.options import MAX_SCALE
from ._base import JobWidget
from ._common import (
    AUTO_MODEL,
    MODEL_FILE,
    LayerSnapshot,
    device_choices,
    is_srcnn_result,
    model_choices,
    register_weights,
    result_layer_data,
    show_result,
)
from ._intensity import describe_maps, robust_range
from ._jobs import UpscaleOutcome, run_upscale
from ._words import CHANNEL_LABELS, NORMALIZATION_LABELS, UPSCALE_VOCABULARY

#: The strength menu: measured, or a fixed share of the network's correction.
STRENGTH_CHOICES = [
    ("auto (measured)", "auto"),
    ("1 (full model)", 1.0),
    ("0.75", 0.75),
    ("0.5", 0.5),
    ("0.25", 0.25),
    ("0 (bicubic)", 0.0),
]

if TYPE_CHECKING:
    import napari

__all__ = ["UpscaleWidget"]

#: Seconds between two progress updates sent to the UI thread (tiles can be very quick).
PROGRESS_INTERVAL = 0.05


def _is_chunked(data: Any) -> bool:
    """dask or zarr (or another chunked, not in-memory) array."""
    return not isinstance(data, np.ndarray) and hasattr(data, "chunks")


def _layer_shape(layer: Any) -> tuple[int, ...]:
    """Shape of the layer's dimensions (level 0 of a multiscale; RGB samples excluded)."""
    data = layer.data[0] if layer.multiscale else layer.data
    return tuple(data.shape[: layer.ndim])


class UpscaleWidget(JobWidget):
    """Upscale an Image layer with SRCNN; the result overlays the source.

    Parameters
    ----------
    napari_viewer
        The viewer (napari passes it when it creates the dock widget).
    """

    vocabulary = UPSCALE_VOCABULARY

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        from ..engine.options import PRECISIONS

        super().__init__(napari_viewer)
        self._image = ComboBox(
            label="image",
            choices=self._image_layers,
            tooltip="the Image layer to upscale (follows the layer selected in the layer list)",
        )
        self._scale = FloatSpinBox(
            label="scale ×",
            value=3.0,
            min=1.1,
            max=float(MAX_SCALE),
            step=1.0,
            tooltip="×2, ×3, ×4 are the trained factors; any factor runs",
        )
        self._model = ComboBox(
            label="model",
            choices=lambda _w: model_choices(AUTO_MODEL),
            tooltip="auto: the installed model trained nearest the scale; models you "
            "fine-tune or load are listed here",
        )
        self._channels = ComboBox(
            label="colour mode",
            choices=list(CHANNEL_LABELS),
            value="auto",
            tooltip="auto: RGB layers through the model's colour mode, "
            "everything else plane by plane",
        )
        self._normalization = ComboBox(
            label="normalisation",
            choices=[(label, value) for label, value in NORMALIZATION_LABELS.items()],
            value="auto",
            tooltip="how stored intensities map to the network's 0–1 range (the result is "
            "mapped back: same units, dtype and contrast limits as the layer)\n"
            "auto: 8-bit colour photos by the dtype range, everything else by its own "
            "0.1–99.9 % range\ndtype range: 0–255, 0–65535, … (floats as stored)\n"
            "percentiles: the data's own range between the percentiles below\n"
            "none: values as stored (data already in 0–1)",
        )
        self._low = FloatSpinBox(
            value=0.1, min=0.0, max=50.0, step=0.1, tooltip="low percentile: maps to 0"
        )
        self._high = FloatSpinBox(
            value=99.9, min=50.0, max=100.0, step=0.1, tooltip="high percentile: maps to 1"
        )
        self._percentiles = Container(
            label="percentiles",
            layout="horizontal",
            labels=False,
            widgets=[self._low, self._high],
            visible=False,
            tooltip="low and high percentiles of the layer's values: they map to 0 and 1",
        )
        self._percentiles.margins = (0, 0, 0, 0)
        for box in (self._low, self._high):
            box.native.setSuffix(" %")
        self._preview = CheckBox(
            text="preview on the current slice",
            value=False,
            tooltip="upscale only the slice on screen (a stack's or time series' plane)",
        )
        self._ensemble = CheckBox(
            text="self-ensemble (SRCNN+, 8× the time)",
            value=False,
            tooltip="average the results of the 8 flips and rotations of the layer "
            "(a little sharper and cleaner; not for previews or lazy results)",
        )
        self._strength = ComboBox(
            label="strength",
            choices=STRENGTH_CHOICES,
            value="auto",
            tooltip="share of the network's correction over bicubic up-sampling\n"
            "auto: measured on the layer itself (per channel) for scientific data, "
            "full for colour photos\n1: the plain model; 0: bicubic",
        )
        self._channel_axis = ComboBox(
            label="channel axis",
            choices=self._axis_choices,
            tooltip="a stacked channel axis (never up-sampled); "
            "from the file's metadata when known",
        )
        self._device = ComboBox(
            label="device",
            choices=lambda _w: device_choices(),
            tooltip="auto: the first GPU when there is one, else the CPU",
        )
        self._precision = ComboBox(
            label="precision",
            choices=list(PRECISIONS),
            value="auto",
            tooltip="auto: bf16 on a GPU (checked for NaN, else fp32); on the CPU bf16 only "
            "where the CPU computes it natively, else fp32",
        )
        self._tile = SpinBox(
            label="tile (px)",
            value=512,
            min=16,
            max=8192,
            step=64,
            tooltip="output tile edge: the unit of progress and cancel; "
            "the result does not depend on it",
        )
        self._lazy = CheckBox(
            text="lazy result (dask/zarr layers)",
            value=False,
            tooltip="compute the result chunk by chunk as napari displays it, instead of "
            "all at once with a progress bar",
        )
        self._build(
            form=[
                self._image,
                self._scale,
                self._model,
                self._weights,
                self._channels,
                self._normalization,
                self._percentiles,
                self._preview,
                self._ensemble,
            ],
            more=[
                self._strength,
                self._channel_axis,
                self._device,
                self._precision,
                self._tile,
                self._lazy,
            ],
            run=PushButton(text="Upscale", tooltip="upscale the chosen layer into a new layer"),
            cancel=PushButton(text="Cancel", tooltip="stop after the current tile; no layer"),
        )
        self._last_outcome: UpscaleOutcome | None = None

        self._image.changed.connect(self._on_image_changed)
        self._model.changed.connect(self._on_model_changed)
        self._normalization.changed.connect(self._on_normalization)
        self._weights.changed.connect(self._on_weights_file)
        self._follow_registry(self._model)
        self.reset_choices()
        chosen = self._user_layers()
        if chosen:
            self._image.value = chosen[-1]
        self._on_image_changed(self._image.value)

    # ------------------------------------------------------------------ choices

    def _axis_choices(self, _widget: Any = None) -> list[tuple[str, int | None]]:
        layer = self._image.value if hasattr(self, "_image") else None
        choices: list[tuple[str, int | None]] = [("none", None)]
        if layer is None:
            return choices
        shape = _layer_shape(layer)
        labels = list(getattr(layer, "axis_labels", None) or range(layer.ndim))
        for i in range(layer.ndim - 2):  # only leading axes: napari shows the last two as Y/X
            choices.append((f"{labels[i]} (axis {i}, {shape[i]})", i))
        return choices

    @staticmethod
    def _metadata_channel_axis(layer: Any) -> int | None:
        """The ``C`` axis named in the layer's metadata (reader convention), if any."""
        axes = layer.metadata.get("axes") if isinstance(layer.metadata, dict) else None
        if not isinstance(axes, str):
            return None
        axes = axes[: layer.ndim] if layer.rgb and axes.endswith("S") else axes
        if len(axes) != layer.ndim or "C" not in axes[:-2]:
            return None
        return axes.index("C")

    def _on_image_changed(self, layer: Any) -> None:
        self._channel_axis.reset_choices()
        self._channel_axis.value = None if layer is None else self._metadata_channel_axis(layer)
        self._preview.enabled = layer is not None and layer.ndim > 2
        data = None if layer is None else (layer.data[0] if layer.multiscale else layer.data)
        self._lazy.enabled = data is not None and _is_chunked(data)
        if not self._lazy.enabled:
            self._lazy.value = False

    def _on_active_layer(self, event: Any) -> None:
        """The layer clicked in napari's layer list becomes the image to upscale (not an
        SRCNN result: its selection as it is added must not replace the source)."""
        from napari.layers import Image

        layer = event.value
        if self.running or not isinstance(layer, Image) or is_srcnn_result(layer):
            return
        try:
            if layer not in self._image.choices:
                self._image.reset_choices()
            if layer in self._image.choices:
                self._image.value = layer
        except RuntimeError:  # the Qt widget was deleted with its dock
            self.viewer.layers.selection.events.active.disconnect(self._on_active_layer)

    def _on_normalization(self, value: str) -> None:
        self._percentiles.visible = value == "percentile"

    def _on_model_changed(self, value: str) -> None:
        self._weights.visible = value == MODEL_FILE

    def _on_weights_file(self, path: Any) -> None:
        """A picked ``.safetensors`` file becomes a named model, selected here and listed
        in every SRCNN widget; legacy ``.pt`` files are used by path."""
        from pathlib import Path

        from ..errors import SRCNNError

        path = Path(path)
        if not path.is_file() or not path.name.endswith(".safetensors"):
            return
        try:
            name = register_weights(path)
        except SRCNNError as exc:
            self._error(one_line(exc))
            return
        self._model.value = name

    # ------------------------------------------------------------------ running

    def request(self) -> tuple[Any, str | None, dict[str, Any], tuple[int, ...] | None, bool]:
        """The current settings as ``(data, model, options, plane_index, lazy)``."""
        from ..errors import InputError

        layer = self._image.value
        if layer is None:
            raise InputError("choose an Image layer to upscale")
        data = layer.data[0] if layer.multiscale else layer.data
        model: str | None = self._model.value
        if model == AUTO_MODEL:
            model = None
        elif model == MODEL_FILE:
            model = self._weights_path("choose a weights file (or another model)")
        channel_axis = self._channel_axis.value
        plane_index = None
        if self._preview.value and layer.ndim > 2:
            plane_index = self.current_plane(layer)  # the engine plans the whole layer
        lazy = bool(self._lazy.value) and plane_index is None and _is_chunked(data)
        if lazy and not hasattr(data, "dask"):  # zarr & co: the engine's lazy path takes dask
            import dask.array as da

            data = da.from_array(data, chunks=data.chunks)
        options = {
            "scale": float(self._scale.value),
            "channels": CHANNEL_LABELS[self._channels.value],
            "channel_axis": channel_axis,
            "tile": int(self._tile.value),
            "device": self._device.value or "auto",
            "normalization": self._normalization.value,
            "percentiles": (float(self._low.value), float(self._high.value)),
            "precision": self._precision.value,
            # The self-ensemble needs the whole layer in memory: not for previews or lazy runs.
            "ensemble": bool(self._ensemble.value) and not lazy and plane_index is None,
            "strength": self._strength.value,
            # napari's flag, not a guess from the shape: a layer 3 or 4 pixels wide that
            # napari shows as grayscale has Y and X as its last two axes.
            "rgb": bool(layer.rgb),
        }
        return data, model, options, plane_index, lazy

    def current_plane(self, layer: Any) -> tuple[int, ...]:
        """Index of the displayed plane over the layer's leading (non-Y/X) axes."""
        shape = _layer_shape(layer)
        position = layer.world_to_data(self.viewer.dims.point)
        return tuple(
            int(np.clip(round(float(p)), 0, n - 1))
            for p, n in zip(position[: layer.ndim - 2], shape[: layer.ndim - 2], strict=True)
        )

    def run(self) -> Any:
        """Start upscaling the chosen layer in a worker thread; returns the worker."""
        from ..errors import SRCNNError

        if self.running:
            return self._worker
        try:
            data, model, options, plane_index, lazy = self.request()
        except SRCNNError as exc:
            self._error(one_line(exc))
            return None
        source = LayerSnapshot.of(self._image.value)
        factor = options["scale"]
        self._last_outcome = None
        worker = self._start_job(
            run_upscale,
            data,
            model,
            options,
            total=0,
            desc=f"SRCNN ×{factor:g} {source.name}",
            unit="tile",
            status=f"upscaling {source.name} ×{factor:g}…",
            on_returned=lambda outcome: self._on_done(outcome, source, factor, plane_index),
            progress=self._throttled_progress(),
            lazy=lazy,
            limits=None if source.rgb else source.contrast_limits,
            plane_index=plane_index,
        )
        worker.start()
        return worker

    def _throttled_progress(self) -> Any:
        """A ``progress(done, total)`` for the worker that forwards to the UI thread at most
        every `PROGRESS_INTERVAL` seconds (and always the last tile)."""
        from superqt.utils import ensure_main_thread

        @ensure_main_thread
        def show(done: int, total: int) -> None:
            if self.running:
                self._progress.update(done, total)

        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.perf_counter()
            if done == total or now - last[0] >= PROGRESS_INTERVAL:
                last[0] = now
                show(done, total)

        return progress

    def _on_done(
        self,
        outcome: UpscaleOutcome,
        source: LayerSnapshot,
        factor: float,
        plane_index: tuple[int, ...] | None,
    ) -> None:
        self._last_outcome = outcome
        if outcome.cancelled:
            self._status.value = "cancelled"
            from napari.utils.notifications import show_info

            show_info("SRCNN upscaling cancelled")
            return
        if outcome.error is not None:
            self._error(outcome.error)
            return
        settings = dict(outcome.settings)
        if plane_index is not None:
            settings["preview_plane"] = list(plane_index)
        data, kwargs, _ = result_layer_data(source, outcome.result, factor, settings, plane_index)
        note = ""
        side = outcome.outside
        if side is not None and "contrast_limits" in kwargs:
            # One flat colour within the source's limits: show the result by its own range
            # (and say so) rather than as a white or black square.
            own = robust_range(data)
            if own is not None:
                kwargs["contrast_limits"] = own
            note = (
                f"; the result lies {side} the layer's contrast limits"
                + (" and is shown with its own range" if own is not None else "")
                + " (try normalisation “auto” or “percentiles”)"
            )
        show_result(self.viewer, data, kwargs)
        where = "preview" if plane_index is not None else f"{data.shape}"
        if settings.get("lazy"):
            where += ", lazy: computed as displayed"
        plus = "+ (self-ensemble)" if settings.get("ensemble") else ""
        self._status.value = (
            f"×{factor:g} with {settings['model']}{plus} on {settings['device']} "
            f"in {outcome.seconds:.2f} s → {where}; {describe_maps(outcome.maps)}; "
            f"strength {settings['strength_used']}{note}"
        )

    def _on_finished(self) -> None:
        if self._last_outcome is None:  # napari's own cancel (worker.quit) drops the result
            self._status.value = "cancelled"
        super()._on_finished()
