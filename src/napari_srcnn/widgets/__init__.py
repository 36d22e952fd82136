"""The napari dock widgets of napari-srcnn, one module each."""

from .train import TrainWidget
from .upscale import UpscaleWidget

__all__ = ["TrainWidget", "UpscaleWidget"]
