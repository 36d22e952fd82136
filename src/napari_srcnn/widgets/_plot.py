"""The live training plot: loss per step, and validation PSNR against bicubic's.

Drawing the whole figure costs 50 ms on an idle machine and 0.3-0.5 s next to a training
run, far too long for the UI thread. So the figure is drawn by matplotlib's Agg backend in a
thread of its own, and the UI thread only paints the finished image. Redraws are coalesced
and paced: one is drawn at a time, at most `MIN_INTERVAL` apart, and requests made meanwhile
collapse into one with the latest data.

Off the UI thread is not enough: matplotlib is Python, and a full draw holds the GIL for
most of its 100-200 ms, so the UI thread waited for it (stalls of 100+ ms on 2 cores). The
axes limits are therefore quantised (x up to the run's step count, loss in quarter decades,
PSNR in half dB) and the axes, ticks and legend are drawn only when the limits or the size
change; every other frame blits the three curves onto that cached background, a few ms.
"""

from __future__ import annotations

import contextlib
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["TrainingPlot"]

#: Shortest time between the starts of two draws (seconds): at most 4 figures a second.
MIN_INTERVAL = 0.25
#: Most points drawn per curve: longer runs are thinned evenly (the last point kept).
MAX_POINTS = 2000
#: Loss axis limits snap to this fraction of a decade; PSNR limits to this many dB.
LOSS_SNAP_DECADES = 0.25
PSNR_SNAP_DB = 0.5


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 × 10^k that is at least ``value`` (x limit of an open run)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


def _snapped(lo: float, hi: float, step: float) -> tuple[float, float]:
    """``[lo, hi]`` widened outwards to multiples of ``step`` (never empty)."""
    a, b = math.floor(lo / step) * step, math.ceil(hi / step) * step
    return (a, b) if b > a else (a - step, b + step)


def _grown(values: list[float], step: float, before: tuple | None) -> tuple | None:
    """The axis range for ``values`` snapped to ``step``: ``before`` (the drawn range) while
    the values fit it, else grown one more step past them on the side they left it, so that
    a run redraws its axes a few times only. None while there are no values."""
    if not values:
        return before
    lo, hi = _snapped(min(values), max(values), step)
    if before is None:
        return lo, hi
    return (
        min(before[0], lo - step if lo < before[0] else lo),
        max(before[1], hi + step if hi > before[1] else hi),
    )


def _thin(xs: list, ys: list) -> tuple[list, list]:
    if len(xs) <= MAX_POINTS:
        return xs, ys
    step = -(-len(xs) // MAX_POINTS)
    return xs[::step] + xs[-1:], ys[::step] + ys[-1:]


def _view_class() -> type:
    """The Qt widget that shows the drawn image (made on first use: Qt loads lazily)."""
    from qtpy.QtCore import QRectF, Signal
    from qtpy.QtGui import QImage, QPainter
    from qtpy.QtWidgets import QSizePolicy, QWidget

    class PlotView(QWidget):
        """Paints the last image drawn off the UI thread; asks for a new one on resize."""

        resized = Signal()

        def __init__(self) -> None:
            super().__init__()
            self.image: QImage | None = None
            self.setMinimumHeight(150)
            self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        def show_image(self, rgba: bytes, width: int, height: int, ratio: float) -> None:
            image = QImage(rgba, width, height, 4 * width, QImage.Format.Format_RGBA8888)
            self.image = image.copy()  # own the pixels: ``rgba`` is released after this
            self.image.setDevicePixelRatio(ratio)
            self.update()

        def paintEvent(self, event: Any) -> None:
            if self.image is None:
                return
            painter = QPainter(self)
            painter.drawImage(QRectF(self.rect()), self.image)
            painter.end()

        def resizeEvent(self, event: Any) -> None:
            super().resizeEvent(event)
            self.resized.emit()

        def sizeHint(self) -> Any:
            # Its least height: a scroll area holding word-wrapped text makes its content
            # as tall as the content's hint; the plot still takes whatever room is left.
            hint = super().sizeHint()
            hint.setHeight(self.minimumHeight())
            return hint

    return PlotView


class TrainingPlot:
    """Two stacked matplotlib axes, drawn off the UI thread into a Qt widget (``.native``).

    Falls back to a one-line text label when matplotlib is not installed (it is part of the
    ``napari`` extra), so the widget works either way.

    Parameters
    ----------
    colors
        ``{"background", "foreground", "text"}`` as matplotlib colours (napari's theme).
    """

    #: The Qt widget: the plot view (a QLabel subclass made by `_view_class()`, with
    #: ``resized`` and ``show_image``) or, without matplotlib, a plain QLabel.
    native: Any

    def __init__(self, colors: dict[str, str] | None = None):
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.val_steps: list[int] = []
        self.psnr: list[float] = []
        self.bicubic: list[float] = []
        #: The run's step count, when known: the x axis spans it from the first step.
        self.total: int | None = None
        #: Figures drawn so far, and the seconds each took (in the drawing thread); of them,
        #: ``full_draws`` drew the axes too (the others blitted the curves onto the cache).
        self.draws = 0
        self.full_draws = 0
        self.draw_seconds: list[float] = []
        self._run = 0  # bumped by clear(): the drawing thread starts new axis ranges
        self._ranges_run = 0
        self._ranges: tuple = (None, None)  # (log10 loss, PSNR) ranges drawn this run
        self._background: Any = None
        self._background_key: tuple | None = None
        self._colors = colors or {"background": "white", "foreground": "black", "text": "black"}
        self._drawing = False
        self._waiting: tuple | None = None
        self._last_start = -math.inf
        self._executor: ThreadPoolExecutor | None = None
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:  # pragma: no cover - matplotlib is in the napari extra
            from qtpy.QtWidgets import QLabel

            self.figure = None
            self.native = QLabel("install matplotlib for the live training plot")
            return
        self.figure = Figure(figsize=(3.2, 2.4), dpi=100, facecolor=self._colors["background"])
        self._canvas = FigureCanvasAgg(self.figure)
        self._make_axes()
        self.native = _view_class()()
        self.native.resized.connect(self.redraw)
        self._deliver = self._make_delivery()
        from qtpy.QtCore import QTimer

        self._pace = QTimer()
        self._pace.setSingleShot(True)
        self._pace.timeout.connect(self._kick)

    def _make_axes(self) -> None:
        from matplotlib.ticker import LogFormatterSciNotation

        assert self.figure is not None
        bg, text = self._colors["background"], self._colors["text"]
        # A fixed layout: "constrained" re-solves it at every draw (a third of the time).
        self.figure.subplots_adjust(left=0.2, right=0.97, top=0.97, bottom=0.14, hspace=0.12)
        self.loss_ax, self.psnr_ax = self.figure.subplots(2, 1, sharex=True)
        for ax in (self.loss_ax, self.psnr_ax):
            ax.set_facecolor(bg)
            ax.tick_params(which="both", colors=text, labelsize=7)
            for spine in ax.spines.values():
                spine.set_color(text)
            ax.xaxis.label.set_color(text)
            ax.yaxis.label.set_color(text)
        self.loss_ax.set_ylabel("loss (MSE)", fontsize=8)
        self.loss_ax.set_yscale("log")
        # A fine-tuning loss spans less than a decade: label the minor ticks too.
        self.loss_ax.yaxis.set_minor_formatter(
            LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(2, 0.4))
        )
        self.psnr_ax.set_ylabel("val PSNR (dB)", fontsize=8)
        self.psnr_ax.set_xlabel("step", fontsize=8)
        (self._loss_line,) = self.loss_ax.plot([], [], color="#4c9be8", lw=0.8)
        (self._psnr_line,) = self.psnr_ax.plot(
            [], [], "o-", color="#f0a030", ms=3, lw=1.2, label="SRCNN"
        )
        (self._bicubic_line,) = self.psnr_ax.plot(
            [], [], "--", color="#9a9a9a", lw=1.0, label="bicubic"
        )
        legend = self.psnr_ax.legend(fontsize=7, loc="lower right", frameon=False)
        for t in legend.get_texts():
            t.set_color(text)

    def _make_delivery(self) -> Any:
        from superqt.utils import ensure_main_thread

        @ensure_main_thread
        def deliver(rgba: bytes, width: int, height: int, ratio: float) -> None:
            with contextlib.suppress(RuntimeError):  # the widget was deleted with its viewer
                self.native.show_image(rgba, width, height, ratio)
            self._finished_one()

        return deliver

    # ------------------------------------------------------------------ data

    def clear(self, total: int | None = None) -> None:
        """Forget every point: a new run of ``total`` steps (None: not known) starts."""
        for values in (self.steps, self.losses, self.val_steps, self.psnr, self.bicubic):
            values.clear()
        self.total = total
        self._run += 1
        self.redraw()

    def add_events(self, events: list[Any]) -> None:
        """Append engine ``StepEvent``/``ValidationEvent``s (by duck type) and redraw."""
        for event in events:
            if hasattr(event, "loss"):
                self.steps.append(event.step)
                self.losses.append(event.loss)
            elif hasattr(event, "psnr"):
                self.val_steps.append(event.step)
                self.psnr.append(event.psnr)
                self.bicubic.append(event.bicubic_psnr)
        if events:
            self.redraw()

    # ------------------------------------------------------------------ drawing

    @property
    def busy(self) -> bool:
        """Whether a figure is being drawn or waits to be (tests wait for this to clear)."""
        return self._drawing or self._waiting is not None

    def redraw(self) -> None:
        """Ask for the figure with the current data (UI thread; returns at once)."""
        if self.figure is None:
            if self.psnr and math.isfinite(self.psnr[-1]):
                self.native.setText(
                    f"step {self.val_steps[-1]}: val PSNR {self.psnr[-1]:.2f} dB "
                    f"(bicubic {self.bicubic[-1]:.2f} dB)"
                )
            return
        width, height = self.native.width(), self.native.height()
        if width < 20 or height < 20:
            return  # not laid out yet: the first resize asks again
        ratio = float(self.native.devicePixelRatioF())
        positive = [(s, v) for s, v in zip(self.steps, self.losses, strict=True) if v > 0]
        self._waiting = (  # replaces an older request: only the latest data is drawn
            _thin([s for s, _ in positive], [v for _, v in positive]),
            (list(self.val_steps), list(self.psnr), list(self.bicubic)),
            (width, height, ratio),
            (self.total, self._run),
        )
        self._kick()

    def _kick(self) -> None:
        """Start drawing the waiting request when no draw runs and the last one started at
        least `MIN_INTERVAL` ago; else come back when it may (UI thread)."""
        if self._drawing or self._waiting is None:
            return
        wait = self._last_start + MIN_INTERVAL - time.perf_counter()
        if wait > 0:
            if not self._pace.isActive():
                self._pace.start(int(1000 * wait) + 1)
            return
        job, self._waiting = self._waiting, None
        self._drawing = True
        self._last_start = time.perf_counter()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="srcnn-plot")
        self._executor.submit(self._draw, job)

    def _finished_one(self) -> None:
        self._drawing = False
        self._kick()

    def _draw(self, job: tuple) -> None:
        """Draw ``job`` into an RGBA image (drawing thread; only it touches the figure)."""
        start = time.perf_counter()
        assert self.figure is not None
        try:
            loss, val, size, run = job
            limits = self._limits(run, loss, val)
            if (size, limits) != self._background_key:
                self._draw_background(size, limits)
                self._background_key = (size, limits)
            else:
                self._canvas.restore_region(self._background)
            self._loss_line.set_data(*loss)
            self._psnr_line.set_data(val[0], val[1])
            self._bicubic_line.set_data(val[0], val[2])
            for line in self._lines:
                self.figure.draw_artist(line)
            rgba = bytes(self._canvas.buffer_rgba())
            w, h = self._canvas.get_width_height(physical=True)
        except Exception:
            self._deliver_failure()
            raise
        self.draws += 1
        self.draw_seconds.append(time.perf_counter() - start)
        self._deliver(rgba, w, h, size[2])

    def _limits(self, run: tuple, loss: tuple[list, list], val: tuple) -> tuple:
        """(x, log10 loss, PSNR) axis ranges for this data (drawing thread). x spans the
        run's steps when known, else a 1-2-5 ceiling of the last step."""
        total, number = run
        if number != self._ranges_run:
            self._ranges, self._ranges_run = (None, None), number
        last = max([*loss[0][-1:], *val[0][-1:], 1])
        x = (0.0, float(total) if total and total >= last else _nice_ceiling(last))
        finite = [v for v in (*val[1], *val[2]) if math.isfinite(v)]
        self._ranges = (
            _grown([math.log10(v) for v in loss[1]], LOSS_SNAP_DECADES, self._ranges[0]),
            _grown(finite, PSNR_SNAP_DB, self._ranges[1]),
        )
        return (x, *self._ranges)

    @property
    def _lines(self) -> tuple:
        return (self._loss_line, self._psnr_line, self._bicubic_line)

    def _draw_background(self, size: tuple, limits: tuple) -> None:
        """Draw the axes, ticks and legend without the curves, and keep that image."""
        assert self.figure is not None
        width, height, ratio = size
        self.figure.set_dpi(100 * ratio)
        self.figure.set_size_inches(width / 100, height / 100, forward=False)
        x, log_loss, psnr_y = limits
        self.psnr_ax.set_xlim(*x)  # shared with the loss axes
        if log_loss is not None:
            self.loss_ax.set_ylim(10 ** log_loss[0], 10 ** log_loss[1])
        if psnr_y is not None:
            self.psnr_ax.set_ylim(*psnr_y)
        for line in self._lines:
            line.set_visible(False)
        try:
            self._canvas.draw()
        finally:
            for line in self._lines:
                line.set_visible(True)
        self._background = self._canvas.copy_from_bbox(self.figure.bbox)
        self.full_draws += 1

    def _deliver_failure(self) -> None:
        from superqt.utils import ensure_main_thread

        ensure_main_thread(self._finished_one)()
