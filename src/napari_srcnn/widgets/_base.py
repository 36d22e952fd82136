"""What the SRCNN dock widgets share: one engine job at a time in a napari worker thread,
with a progress bar, a Cancel that the engine polls, errors as notifications, and model
menus that follow the model registry.

A subclass builds its own controls (``_run``, ``_cancel`` and ``_status`` among them),
turns them into an engine request, and starts the job with `JobWidget._start_job()`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from magicgui.types import FileDialogMode
from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton

from ._common import image_layer_choices, registry_events, relay_warning

if TYPE_CHECKING:
    import napari

__all__ = ["JobWidget"]


class JobWidget(Container):
    """Base of the dock widgets that run one engine job at a time.

    Parameters
    ----------
    napari_viewer
        The viewer (napari passes it when it creates the dock widget).
    """

    #: Status line shown while a cancelled job finishes its current tile or step.
    cancel_message = "cancelling…"
    _run: PushButton
    _cancel: PushButton
    _status: Label

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self._worker: Any = None
        self._cancel_event = threading.Event()
        self._pbar: Any = None
        self._model_menu: ComboBox | None = None
        #: Shown when the model menu says "load weights file…".
        self._weights = FileEdit(
            label="weights file",
            mode=FileDialogMode.EXISTING_FILE,
            filter="Weights (*.safetensors *.pt *.pth)",
            visible=False,
        )

    # ------------------------------------------------------------------ choices

    def _image_layers(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return image_layer_choices(self.viewer)

    def _follow_registry(self, menu: ComboBox) -> None:
        """Refresh ``menu`` whenever a model is registered (keeping its selection)."""
        self._model_menu = menu
        registry_events.changed.connect(self._on_registry_changed)

    def _on_registry_changed(self, _name: str) -> None:
        menu = self._model_menu
        if menu is None:
            return
        try:
            current = menu.value
            menu.reset_choices()
        except RuntimeError:  # the Qt widget was deleted with its viewer: stop listening
            registry_events.changed.disconnect(self._on_registry_changed)
            return
        if current in menu.choices:
            menu.value = current

    def _weights_path(self, missing: str) -> str:
        """The picked weights file; ``InputError(missing)`` when none is picked."""
        from ..errors import InputError

        path = str(self._weights.value or "")
        if path in ("", "."):
            raise InputError(missing)
        return path

    # ------------------------------------------------------------------ the job

    @property
    def running(self) -> bool:
        return self._worker is not None

    def _start_job(
        self,
        function: Callable[..., Any],
        *args: Any,
        total: int,
        desc: str,
        status: str,
        on_returned: Callable[[Any], None],
        **kwargs: Any,
    ) -> Any:
        """Make the worker for ``function(*args, cancel=..., **kwargs)`` with a progress bar
        of ``total`` steps (0: unknown yet) and the running state; the caller starts it."""
        from napari.qt.threading import create_worker
        from napari.utils import cancelable_progress

        self._cancel_event.clear()
        self._pbar = cancelable_progress(total=total, desc=desc, cancel_callback=self.cancel)
        worker = create_worker(
            function, *args, cancel=self._should_cancel, _start_thread=False, **kwargs
        )
        worker.returned.connect(on_returned)
        worker.finished.connect(self._on_finished)
        worker.warned.connect(relay_warning)
        self._worker = worker
        self._set_running(True)
        self._status.value = status
        return worker

    def _should_cancel(self) -> bool:
        """Polled by the engine (worker thread): our Cancel button, the activity dock's
        cancel, or napari's ``worker.quit()``."""
        worker = self._worker
        return self._cancel_event.is_set() or (worker is not None and worker.abort_requested)

    def cancel(self) -> None:
        """Ask the running job to stop at its next check.

        Only the event is set: ``worker.quit()`` would also drop the worker's ``returned``
        signal, and with it the outcome that says the run was cancelled.
        """
        if self.running:
            self._cancel_event.set()
            self._status.value = self.cancel_message

    def _on_finished(self) -> None:
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        self._worker = None
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self._run.enabled = not running
        self._cancel.enabled = running

    def _error(self, message: str) -> None:
        from napari.utils.notifications import show_error

        self._status.value = f"error: {message}"
        show_error(message)
