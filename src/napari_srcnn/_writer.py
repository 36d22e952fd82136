"""napari writer: an Image layer to OME-TIFF (``.ome.tif``) or an ImageJ hyperstack
(``.tif``), keeping its pixel size.

The layer's ``scale`` on Y/X becomes the TIFF resolution (and ImageJ ``spacing`` for Z), its unit
the ImageJ unit, and its axes (``metadata["axes"]`` from the reader, else ``…ZYX``/``YXS``) the
ImageJ hyperstack axes, through the engine's [`write_image()`][napari_srcnn.engine.io.write_image]
(atomic: a failed write leaves no half file). The reader reads all of it back. ``translate`` is not
stored (TIFF has no field for it).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["write_image_layer"]

#: napari (pint) unit names → the spelling ImageJ/Fiji use in TIFF metadata.
_UNITS = {
    "micrometer": "µm",
    "nanometer": "nm",
    "millimeter": "mm",
    "centimeter": "cm",
    "meter": "m",
    "inch": "inch",
}


def _unit(meta: dict[str, Any]) -> str | None:
    units = meta.get("units")
    if units:
        names = {str(u) for u in units} - {"pixel"}
        if len(names) == 1:
            name = names.pop()
            return _UNITS.get(name, name)
    unit = (meta.get("metadata") or {}).get("unit")
    return unit if isinstance(unit, str) and unit else None


def _axes(meta: dict[str, Any], ndim: int, rgb: bool) -> str:
    from .engine.io import ImageMeta

    axes = (meta.get("metadata") or {}).get("axes")
    if (
        isinstance(axes, str)
        and len(axes) == ndim
        and axes.endswith("S") == rgb
        and len(set(axes)) == ndim
    ):
        return axes
    return ImageMeta.default((1,) * ndim, rgb=rgb).axes


def write_image_layer(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write one Image layer to ``path``; returns ``[path]``.

    ``.ome.tif``/``.ome.tiff`` give an OME-TIFF (which this plugin's reader claims when the
    file is dropped on napari), ``.tif``/``.tiff`` an ImageJ hyperstack for Fiji.

    Multiscale layers are written at full resolution (level 0); dask/zarr data is computed.
    """
    from .engine.io import ImageMeta, write_image

    if isinstance(data, list):  # multiscale
        data = data[0]
    array = np.asarray(data)
    rgb = bool(meta.get("rgb", False))
    axes = _axes(meta, array.ndim, rgb)
    n_dims = array.ndim - (1 if rgb else 0)
    scale = list(meta.get("scale") or [1.0] * n_dims)[-n_dims:]
    spacing: tuple[float | None, ...] = tuple(float(s) for s in scale) + ((None,) if rgb else ())
    written = write_image(
        os.fspath(path), array, ImageMeta(axes=axes, spacing=spacing, unit=_unit(meta))
    )
    return [os.fspath(written)]
