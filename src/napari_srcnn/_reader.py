"""napari reader: TIFF / OME-TIFF / ImageJ hyperstacks with their pixel size, and SRCNN
weights files.

* A TIFF becomes Image layers whose ``scale`` is the physical pixel size (OME
  ``PhysicalSize*``, ImageJ ``spacing``/resolution tags), with ``units``, ``axis_labels``
  and ``metadata["axes"]`` (tifffile's letters: ``Z``, ``T``, ``Y``, ``X``, …). A channel
  axis (``C``) is split into one layer per channel; RGB samples (``S``) stay one RGB layer.
* A ``.safetensors`` napari-srcnn weights file is registered with the engine, so the SRCNN
  widgets list it at once; no layer is added.

``napari_get_reader`` never raises and returns ``None`` for anything it cannot read, so
napari falls back to another reader. Only tifffile (and, for weights, the engine) are
imported, and only when a file is actually read: no torch at import.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["layer_data_from_array", "napari_get_reader", "read_tiff", "read_weights"]

TIFF_SUFFIXES = (".tif", ".tiff")
WEIGHTS_SUFFIX = ".safetensors"
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: Unit spellings in TIFF metadata → names napari's unit registry (pint) understands.
_UNITS = {
    "µm": "micrometer",
    "\u03bcm": "micrometer",
    "um": "micrometer",
    "micron": "micrometer",
    "microns": "micrometer",
    "micrometer": "micrometer",
    "\\u00b5m": "micrometer",
    "nm": "nanometer",
    "nanometer": "nanometer",
    "mm": "millimeter",
    "millimeter": "millimeter",
    "cm": "centimeter",
    "centimeter": "centimeter",
    "m": "meter",
    "meter": "meter",
    "inch": "inch",
    "in": "inch",
}
_AXIS_NAMES = {"T": "t", "Z": "z", "Y": "y", "X": "x", "C": "c"}
#: Colormaps of split channels: two channels as green/magenta, more cycle through CMY RGB.
_CHANNEL_COLORMAPS = ("cyan", "magenta", "yellow", "red", "green", "blue")

LayerData = tuple[Any, dict[str, Any], str]
#: What napari calls: layer data tuples, ``[(None,)]`` for "read, but no layer", or None.
ReaderFunction = Callable[[Any], list[LayerData] | list[tuple[None]] | None]


def napari_get_reader(path: str | list[str]) -> ReaderFunction | None:
    """The reader function for ``path``, or ``None`` if this plugin cannot read it."""
    try:
        if isinstance(path, (list, tuple)):
            if len(path) != 1:
                return None  # stacks of files: napari's own reader stacks them
            path = path[0]
        name = os.fspath(path).lower()
        if name.endswith(WEIGHTS_SUFFIX):
            return read_weights if _is_srcnn_weights(path) else None
        if name.endswith(TIFF_SUFFIXES):
            return read_tiff if _is_tiff(path) else None
    except Exception:  # never raise: napari then tries its other readers
        return None
    return None


def _is_tiff(path: str | os.PathLike) -> bool:
    """A readable TIFF with at least one image series (reads the headers only)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(4) not in _TIFF_MAGIC:
                return False
        import tifffile

        from .engine.io import check_tiff_chain

        check_tiff_chain(Path(path))
        with tifffile.TiffFile(path) as tif:
            return bool(tif.series) and 0 not in tif.series[0].shape
    except Exception:
        return False


def _is_srcnn_weights(path: str | os.PathLike) -> bool:
    """True for a safetensors file whose header says ``format: napari-srcnn`` (stdlib only:
    the safetensors header is an 8-byte length and a JSON object)."""
    try:
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            if not 0 < size < 100_000_000:
                return False
            header = json.loads(fh.read(size))
        return header.get("__metadata__", {}).get("format") == "napari-srcnn"
    except Exception:
        return False


def read_weights(path: str | list[str]) -> list[tuple[None]] | None:
    """Register a weights file for the SRCNN widgets; adds no layer (``[(None,)]``)."""
    try:
        path = path[0] if isinstance(path, (list, tuple)) else path
        from .widgets._common import register_weights

        name = register_weights(path)
    except Exception as exc:
        from napari.utils.notifications import show_error

        show_error(f"not a usable SRCNN weights file: {' '.join(str(exc).split())}")
        return None
    from napari.utils.notifications import show_info

    show_info(f"SRCNN model {name!r} registered: choose it in the SRCNN widgets")
    return [(None,)]


def read_tiff(path: str | list[str]) -> list[LayerData] | None:
    """A TIFF as Image layer data (``None`` if it cannot be read after all)."""
    try:
        path = path[0] if isinstance(path, (list, tuple)) else path
        from .engine.io import read_image

        data, meta = read_image(path)
        return layer_data_from_array(
            data, meta.axes, meta.spacing, meta.unit, name=_stem(path), source=os.fspath(path)
        )
    except Exception:
        return None


def _stem(path: str | os.PathLike) -> str:
    name = Path(path).name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _unit_name(unit: str | None) -> str | None:
    if not unit:
        return None
    return _UNITS.get(unit.strip()) or _UNITS.get(unit.strip().lower())


def _axis_labels(axes: str) -> tuple[str, ...]:
    labels: list[str] = []
    for i, a in enumerate(axes):
        label = _AXIS_NAMES.get(a, f"{a.lower()}{i}")
        labels.append(label if label not in labels else f"{label}{i}")
    return tuple(labels)


def layer_data_from_array(
    data: Any,
    axes: str,
    spacing: tuple[float | None, ...],
    unit: str | None = None,
    name: str = "image",
    source: str | None = None,
) -> list[LayerData]:
    """Image layer data for an array with tifffile-style ``axes`` (spatial axes last).

    Parameters
    ----------
    data
        ``(..., Y, X)`` or ``(..., Y, X, S)`` array.
    axes
        One letter per axis of ``data``; ``S`` last means RGB(A) samples, ``C`` a channel
        axis that is split into one layer per channel.
    spacing
        Physical size of a pixel per axis (``None`` where unknown → 1).
    unit
        Unit of ``spacing`` (``"µm"``, ``"nm"``, …) or ``None``.
    name
        Layer name (channels get `` ch<i>`` appended).
    source
        Stored as ``metadata["source"]``.
    """
    rgb = axes.endswith("S") and data.shape[-1] in (3, 4)
    dims = axes[:-1] if axes.endswith("S") else axes
    unit_name = _unit_name(unit)
    scale = tuple(float(s) if s else 1.0 for s in spacing[: len(dims)])
    units = tuple(unit_name if (s and unit_name) else "pixel" for s in spacing[: len(dims)])
    base: dict[str, Any] = {"rgb": rgb}
    if "C" not in dims:
        kwargs = {
            **base,
            "name": name,
            "scale": scale,
            "axis_labels": _axis_labels(dims),
            "metadata": {"axes": axes, "unit": unit, "source": source},
        }
        if unit_name:
            kwargs["units"] = units
        return [(data, kwargs, "image")]
    c = dims.index("C")
    keep = [i for i in range(len(dims)) if i != c]
    sub_axes = "".join(dims[i] for i in keep) + ("S" if axes.endswith("S") else "")
    n = data.shape[c]
    colormaps = ("green", "magenta") if n == 2 else _CHANNEL_COLORMAPS
    layers = []
    for k in range(n):
        plane = data[(slice(None),) * c + (k,)]
        kwargs = {
            **base,
            "name": f"{name} ch{k}",
            "scale": tuple(scale[i] for i in keep),
            "axis_labels": _axis_labels("".join(dims[i] for i in keep)),
            "blending": "additive",
            "metadata": {"axes": sub_axes, "unit": unit, "source": source, "channel": k},
        }
        if not rgb:
            kwargs["colormap"] = colormaps[k % len(colormaps)] if n > 1 else "gray"
        if unit_name:
            kwargs["units"] = tuple(units[i] for i in keep)
        layers.append((plane, kwargs, "image"))
    return layers
