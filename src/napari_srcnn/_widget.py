"""napari widget contributions (see ``napari.yaml``); the widgets live in `.widgets`."""

from .widgets import TrainWidget, UpscaleWidget

__all__ = ["TrainWidget", "UpscaleWidget"]
