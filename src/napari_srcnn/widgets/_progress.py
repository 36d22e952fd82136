"""Progress of a widget's job, shown twice: a bar with counts and the time left inside the
dock widget, and napari's own bar in the activity dock, whose Cancel stops the job.

Everything here runs on the UI thread; the worker's progress reaches it through a queued
call (upscaling) or the training widget's event queue.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from napari.utils import cancelable_progress

__all__ = ["ActivityProgress", "JobProgress", "format_duration", "time_left"]

#: Seconds between two updates of napari's activity bar: each one makes napari process
#: every pending Qt event and repaint its window (10-30 ms under load).
ACTIVITY_INTERVAL = 1.0
#: Seconds of work before a time-left estimate is shown (the first tiles and steps pay
#: one-off costs: threads starting, caches warming).
ESTIMATE_AFTER = 1.0


class ActivityProgress(cancelable_progress):
    """napari's cancellable progress bar whose Cancel reaches the job at once.

    napari's own `cancelable_progress` only sets ``is_canceled`` and calls its callback from
    inside a ``for`` loop over the bar; our jobs never iterate over it, so its activity-dock
    Cancel button said "Canceled" and the job ran on. Here `cancel()` calls the callback.
    """

    def cancel(self) -> None:
        super().cancel()
        if self.cancel_callback is not None:
            self.cancel_callback()


def format_duration(seconds: float) -> str:
    """``"<1 s"``, ``"42 s"``, ``"3 min 05 s"``, ``"2 h 07 min"``."""
    if not math.isfinite(seconds):
        return "?"
    s = int(round(max(seconds, 0.0)))
    if seconds < 1:
        return "<1 s"
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def time_left(elapsed: float, done: int, total: int) -> str | None:
    """The remaining time at the rate so far, or ``None`` while too early to tell."""
    if done <= 0 or total <= 0 or elapsed < ESTIMATE_AFTER:
        return None
    return format_duration(elapsed / done * max(total - done, 0))


class JobProgress:
    """The progress of one job at a time: the widget's bar and text, napari's bar.

    Parameters
    ----------
    bar
        The widget's ``QProgressBar``.
    text
        The magicgui ``Label`` beside it (``"tile 12/40 · 3 s left"``).
    """

    def __init__(self, bar: Any, text: Any):
        self.bar = bar
        self.text = text
        self.unit = "step"
        self.activity: ActivityProgress | None = None
        self.done = 0
        self.total = 0
        self._start = 0.0
        self._activity_at = -math.inf
        self._updating = False

    # ------------------------------------------------------------------ lifecycle

    def start(self, total: int, desc: str, unit: str, cancel: Callable[[], None]) -> None:
        """Show both bars; ``total`` 0 means not known yet (a busy bar)."""
        self.close()
        self.unit, self.done, self.total = unit, 0, total
        self._start = time.perf_counter()
        self._activity_at = -math.inf
        self.activity = ActivityProgress(total=total or None, desc=desc, cancel_callback=cancel)
        self.bar.setRange(0, total)  # (0, 0): Qt's busy indicator
        self.bar.setValue(0)
        self.bar.setVisible(True)
        self.text.value = "starting…"
        self.text.visible = True

    def note(self, message: str) -> None:
        """Say what the job does before its first counted step (e.g. making the pairs)."""
        self.text.value = message

    def update(self, done: int, total: int) -> None:
        """``done`` of ``total`` units are finished."""
        if self._updating:  # napari's bar runs processEvents: a queued update may land here
            return
        self._updating = True
        try:
            self.done, self.total = done, total
            if self.bar.maximum() != total:
                self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
            left = time_left(time.perf_counter() - self._start, done, total)
            self.text.value = f"{self.unit} {done}/{total}" + (f" · {left} left" if left else "")
            act, now = self.activity, time.perf_counter()
            if act is not None and (done >= total or now - self._activity_at >= ACTIVITY_INTERVAL):
                self._activity_at = now
                if act.total != total:
                    act.total = total
                if done > act.n:
                    act.update(done - act.n)
        finally:
            self._updating = False

    @property
    def is_canceled(self) -> bool:
        """Whether the activity dock's Cancel was pressed (read from the worker thread)."""
        act = self.activity
        return act is not None and act.is_canceled

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    def close(self) -> None:
        """Remove napari's bar and hide the widget's (the status line takes over)."""
        if self.activity is not None:
            self.activity.close()
            self.activity = None
        self.bar.setVisible(False)
        self.text.visible = False
