"""What the SRCNN dock widgets share: the layout (main settings, a collapsible section of
less-used ones, Run/Cancel, a progress bar with the time left, a status line, all in a
scroll area), one engine job at a time in a napari worker thread, a Cancel that the engine
polls (ours and the activity dock's), errors as notifications in the widget's words, and
model menus that follow the model registry.

A subclass makes its controls, hands them to `JobWidget._build()`, turns them into an
engine request and starts the job with `JobWidget._start_job()`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from magicgui.types import FileDialogMode
from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton
from magicgui.widgets.bases import Widget

from ._common import (
    image_layer_choices,
    is_srcnn_result,
    registry_events,
    relay_warning,
    selected_image_layers,
)
from ._messages import Vocabulary, widget_message
from ._progress import JobProgress

if TYPE_CHECKING:
    import napari

__all__ = ["JobWidget"]


def _scroll_area(content: Any, min_height: int) -> Any:
    """``content`` in a vertical scroll area that asks for the content's full height when
    there is room and shrinks (scrolling) down to ``min_height`` when there is not: two
    docked widgets never make the window taller than the screen."""
    from qtpy.QtCore import QEvent, QObject, QSize, Qt
    from qtpy.QtWidgets import QFrame, QScrollArea

    class _Scroll(QScrollArea):
        def _bar_width(self) -> int:
            bar = self.verticalScrollBar()
            return bar.sizeHint().width() if bar is not None else 0

        def sizeHint(self) -> QSize:
            # A few pixels of slack: the dock's frame takes some, and wrapped text may
            # need them at the width it finally gets.
            hint = content.sizeHint()
            return QSize(hint.width() + self._bar_width(), hint.height() + 8)

        def minimumSizeHint(self) -> QSize:
            # Never narrower than the content (nothing scrolls sideways, nothing is cut).
            needs = content.minimumSizeHint()
            return QSize(needs.width() + self._bar_width(), min(needs.height(), min_height))

    class _Relayout(QObject):
        """Tell the dock when the content's height changes (a section unfolds)."""

        def eventFilter(self, watched: Any, event: Any) -> bool:
            if event.type() == QEvent.Type.LayoutRequest:
                scroll.updateGeometry()
            return False

    scroll = _Scroll()
    scroll._relayout = _Relayout(scroll)  # type: ignore[attr-defined]
    content.installEventFilter(scroll._relayout)  # type: ignore[attr-defined]
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(content)
    return scroll


class JobWidget(Container):
    """Base of the dock widgets that run one engine job at a time.

    Parameters
    ----------
    napari_viewer
        The viewer (napari passes it when it creates the dock widget).
    """

    #: Status line shown while a cancelled job finishes its current tile or step.
    cancel_message = "cancelling…"
    #: Title of the collapsible section of less-used settings.
    more_title = "more settings"
    #: Height (px) below which the widget scrolls instead of shrinking further.
    min_height = 280
    #: How engine messages name this widget's controls (see `widget_message()`).
    vocabulary = Vocabulary()
    _run: PushButton
    _cancel: PushButton

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=False)
        self.viewer = napari_viewer
        self._worker: Any = None
        self._cancel_event = threading.Event()
        self._model_menu: ComboBox | None = None
        #: Shown when the model menu says "load weights file…".
        self._weights = FileEdit(
            label="weights file",
            mode=FileDialogMode.EXISTING_FILE,
            filter="Weights (*.safetensors *.pt *.pth)",
            visible=False,
            tooltip="a .safetensors file is added to every model menu; .pt/.pth files "
            "(other SRCNN implementations) are used by path",
        )
        self._status = Label(value="")
        self._status.native.setWordWrap(True)
        self._progress_text = Label(value="", visible=False)
        self._form: Container = Container(labels=True)
        self._more: Container = Container(labels=True)
        self._layout_ready = False

    # ------------------------------------------------------------------ layout

    def _build(
        self,
        form: Sequence[Widget],
        more: Sequence[Widget],
        run: PushButton,
        cancel: PushButton,
        below: Sequence[Any] = (),
    ) -> None:
        """Lay the widget out: ``form``, ``more`` (collapsed), Run | Cancel, the progress
        bar, the status line and ``below`` (Qt widgets, e.g. the live plot)."""
        from qtpy.QtWidgets import (
            QComboBox,
            QHBoxLayout,
            QProgressBar,
            QSizePolicy,
            QVBoxLayout,
            QWidget,
        )
        from superqt import QCollapsible

        self._run, self._cancel = run, cancel
        self._form.extend(form)
        self._more.extend(more)
        self._collapsible = QCollapsible(self.more_title, collapsedIcon="▶")
        self._collapsible.setDuration(0)
        folded = self._collapsible.layout()
        if folded is not None:  # 50 px tall folded otherwise
            folded.setContentsMargins(0, 0, 0, 0)
            folded.setSpacing(0)
        self._collapsible.addWidget(self._more.native)
        buttons = Container(layout="horizontal", labels=False, widgets=[run, cancel])
        # One left edge for everything: the body has the margins, its parts none.
        margin = self._form.margins[0]
        for part in (self._form, self._more, buttons):
            part.margins = (0, 0, 0, 0)
        self._bar = QProgressBar()
        self._bar.setTextVisible(False)
        self._bar.setVisible(False)
        self._progress = JobProgress(self._bar, self._progress_text)

        for control in (*self._form, *self._more):
            if isinstance(control, ComboBox):  # long layer or model names elide, the popup
                # shows them whole: the dock does not widen to the longest entry
                control.native.setSizeAdjustPolicy(
                    QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
                )
                control.native.setMinimumContentsLength(16)
        self._status.native.setSizePolicy(  # the widget's full width
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred
        )
        # Room for the progress and a two-line status from the start: docks keep their
        # first height, so a widget that grew later would scroll its status out of sight.
        for hidden in (self._bar, self._progress_text.native):
            policy = hidden.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            hidden.setSizePolicy(policy)
        self._status.native.setMinimumHeight(2 * self._status.native.fontMetrics().lineSpacing())
        progress_row = QWidget()
        row = QHBoxLayout(progress_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self._bar, 1)
        row.addWidget(self._progress_text.native)
        body = QWidget()
        column = QVBoxLayout(body)
        column.setContentsMargins(margin, margin, margin, margin)
        for item in (
            self._form.native,
            self._collapsible,
            buttons.native,
            progress_row,
            self._status.native,
            *below,
        ):
            column.addWidget(item)
        growing = [
            w for w in below if w.sizePolicy().verticalPolicy() == QSizePolicy.Policy.Expanding
        ]
        for item in growing:  # the live plot takes the room that is left
            column.setStretchFactor(item, 1)
        column.addStretch(0 if growing else 1)
        scroll = _scroll_area(body, self.min_height)
        grows = bool(growing)
        # Room beyond the content goes to a widget that can use it (the live plot); one
        # without asks for no more than its content, so a docked neighbour gets the rest.
        vertical = QSizePolicy.Policy.Expanding if grows else QSizePolicy.Policy.Maximum
        scroll.setSizePolicy(QSizePolicy.Policy.Preferred, vertical)
        self.native.setSizePolicy(QSizePolicy.Policy.Preferred, vertical)
        self.native.layout().addWidget(scroll)
        self.native.layout().setContentsMargins(0, 0, 0, 0)
        self._layout_ready = True

        self._run.changed.connect(self.run)
        self._cancel.changed.connect(self.cancel)
        self._cancel.enabled = False
        self.viewer.layers.selection.events.active.connect(self._on_active_layer)

    def reset_choices(self, *_: Any) -> None:
        """Refresh every menu (napari calls this when layers are added or removed)."""
        if self._layout_ready:
            self._form.reset_choices()
            self._more.reset_choices()

    def run(self) -> Any:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    # ------------------------------------------------------------------ choices

    def _image_layers(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return image_layer_choices(self.viewer)

    def _user_layers(self) -> list[Any]:
        """The Image layers the user means: the selected ones that are not SRCNN results
        (else the selected results; with none selected, the top Image layer)."""
        selected = selected_image_layers(self.viewer)
        chosen = [layer for layer in selected if not is_srcnn_result(layer)] or selected
        if not chosen:
            images = [layer for _, layer in image_layer_choices(self.viewer)]
            chosen = ([layer for layer in images if not is_srcnn_result(layer)] or images)[-1:]
        return chosen

    def _on_active_layer(self, event: Any) -> None:
        """napari's layer selection changed (the user clicked a layer)."""

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
            # magicgui appends new choices after the old ones (after "load weights file…"):
            # emptied first, the menu is rebuilt in the order model_choices() gives.
            with menu.changed.blocked():
                menu.native.clear()
                menu.reset_choices()
                if current in menu.choices:
                    menu.value = current
        except RuntimeError:  # the Qt widget was deleted with its viewer: stop listening
            registry_events.changed.disconnect(self._on_registry_changed)
            return
        if menu.value != current:
            menu.changed.emit(menu.value)

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
        unit: str,
        status: str,
        on_returned: Callable[[Any], None],
        **kwargs: Any,
    ) -> Any:
        """Make the worker for ``function(*args, cancel=..., **kwargs)`` with progress bars
        of ``total`` ``unit``s (0: unknown yet) and the running state; the caller starts it."""
        from napari.qt.threading import create_worker

        self._cancel_event.clear()
        self._progress.start(total, desc, unit, cancel=self.cancel)
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
        Cancel, or napari's ``worker.quit()``."""
        worker = self._worker
        return (
            self._cancel_event.is_set()
            or self._progress.is_canceled
            or (worker is not None and worker.abort_requested)
        )

    def cancel(self) -> None:
        """Ask the running job to stop at its next check.

        Only the event is set: ``worker.quit()`` would also drop the worker's ``returned``
        signal, and with it the outcome that says the run was cancelled.
        """
        if self.running:
            self._cancel_event.set()
            self._status.value = self.cancel_message

    def _on_finished(self) -> None:
        self._progress.close()
        self._worker = None
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self._run.enabled = not running
        self._cancel.enabled = running

    def _error(self, message: str) -> None:
        """Show an engine or settings error, in the words of this widget's controls."""
        from napari.utils.notifications import show_error

        message = widget_message(message, self.vocabulary)
        self._status.value = f"error: {message}"
        show_error(message)
