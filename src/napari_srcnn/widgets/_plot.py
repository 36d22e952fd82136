"""The live training plot: loss per step, and validation PSNR against bicubic's."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["TrainingPlot"]


class TrainingPlot:
    """Two stacked matplotlib axes in a Qt canvas (``.native``), redrawn on demand.

    Falls back to a one-line text label when matplotlib is not installed (it is part of the
    ``napari`` extra), so the widget works either way.

    Parameters
    ----------
    colors
        ``{"background", "foreground", "text"}`` as matplotlib colours (napari's theme).
    """

    def __init__(self, colors: dict[str, str] | None = None):
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.val_steps: list[int] = []
        self.psnr: list[float] = []
        self.bicubic: list[float] = []
        self._colors = colors or {"background": "white", "foreground": "black", "text": "black"}
        try:
            from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
            from matplotlib.figure import Figure
        except ImportError:  # pragma: no cover - matplotlib is in the napari extra
            from qtpy.QtWidgets import QLabel

            self.figure = None
            self.native = QLabel("install matplotlib for the live training plot")
            return
        bg, text = self._colors["background"], self._colors["text"]
        self.figure = Figure(figsize=(3.2, 3.0), dpi=100, facecolor=bg, layout="constrained")
        self.loss_ax, self.psnr_ax = self.figure.subplots(2, 1, sharex=True)
        for ax in (self.loss_ax, self.psnr_ax):
            ax.set_facecolor(bg)
            ax.tick_params(which="both", colors=text, labelsize=7)
            for spine in ax.spines.values():
                spine.set_color(text)
            ax.xaxis.label.set_color(text)
            ax.yaxis.label.set_color(text)
        from matplotlib.ticker import LogFormatterSciNotation

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
        self.native = FigureCanvasQTAgg(self.figure)
        self.native.setMinimumHeight(260)

    def clear(self) -> None:
        """Forget every point (a new run starts)."""
        for values in (self.steps, self.losses, self.val_steps, self.psnr, self.bicubic):
            values.clear()
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

    def redraw(self) -> None:
        if self.figure is None:
            if self.psnr and math.isfinite(self.psnr[-1]):
                self.native.setText(
                    f"step {self.val_steps[-1]}: val PSNR {self.psnr[-1]:.2f} dB "
                    f"(bicubic {self.bicubic[-1]:.2f} dB)"
                )
            return
        positive = [(s, v) for s, v in zip(self.steps, self.losses, strict=True) if v > 0]
        self._loss_line.set_data([s for s, _ in positive], [v for _, v in positive])
        self._psnr_line.set_data(self.val_steps, self.psnr)
        self._bicubic_line.set_data(self.val_steps, self.bicubic)
        for ax in (self.loss_ax, self.psnr_ax):
            ax.relim()
            ax.autoscale_view()
        self.native.draw_idle()
