"""napari-srcnn: SRCNN super-resolution for napari and the command line.

The package root stays light (no torch import) so that napari can read the plugin manifest
quickly. The engine's public API is `napari_srcnn.engine`; its main entry points are served
here too, lazily, from there.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "upscale": "napari_srcnn.engine",
    "UpscaleOptions": "napari_srcnn.engine",
    "load_model": "napari_srcnn.engine",
    "list_models": "napari_srcnn.engine",
    "ArchSpec": "napari_srcnn.engine",
    "SRCNN": "napari_srcnn.engine",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'napari_srcnn' has no attribute {name!r}")
