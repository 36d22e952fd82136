"""napari-srcnn: SRCNN super-resolution for napari and the command line.

The package root stays light (no torch import) so that napari can read the plugin manifest
quickly. The engine lives in `napari_srcnn.engine`; its main entry points are
re-exported here lazily.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "upscale": "napari_srcnn.engine.inference",
    "UpscaleOptions": "napari_srcnn.engine.inference",
    "load_model": "napari_srcnn.engine.weights",
    "list_models": "napari_srcnn.engine.weights",
    "ArchSpec": "napari_srcnn.engine.model",
    "SRCNN": "napari_srcnn.engine.model",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'napari_srcnn' has no attribute {name!r}")
