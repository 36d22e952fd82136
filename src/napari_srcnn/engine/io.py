"""Reading and writing images: TIFF (axes and pixel size kept), PNG and JPEG.

TIFFs are read with tifffile: the first series, its axes string (``"ZCYX"``, ``"YXS"``, …)
and the physical pixel size from OME (``PhysicalSizeX/Y/Z``), ImageJ (``spacing``, ``unit``)
or the resolution tags. Written TIFFs are ImageJ hyperstacks when the axes and dtype allow
it (Fiji and napari read them), plain TIFFs with shaped metadata otherwise; the pixel size
goes into the resolution tags either way. Every write is atomic.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from .files import atomic_path

__all__ = ["ImageMeta", "read_image", "write_image", "TIFF_SUFFIXES", "IMAGE_SUFFIXES"]

TIFF_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff")
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
IMAGE_SUFFIXES = TIFF_SUFFIXES + PLAIN_SUFFIXES
IMAGEJ_AXES = "TZCYXS"


@dataclass(frozen=True)
class ImageMeta:
    """What we keep about an image besides its pixels.

    Attributes
    ----------
    axes
        One letter per array axis, tifffile's convention (``Y``, ``X`` spatial, ``S``
        samples/RGB, ``C`` channel, ``Z``, ``T``, ``Q``/``I`` unknown).
    spacing
        Physical size of a pixel along each axis (``None`` where unknown).
    unit
        Unit of ``spacing`` (e.g. ``"µm"``), or ``None``.
    """

    axes: str
    spacing: tuple[float | None, ...] = field(default=())
    unit: str | None = None

    def __post_init__(self) -> None:
        if not self.spacing:
            object.__setattr__(self, "spacing", (None,) * len(self.axes))

    @property
    def rgb(self) -> bool:
        """True when the last axis holds RGB(A) samples."""
        return self.axes.endswith("S")

    @property
    def channel_axis(self) -> int | None:
        """Index of the ``C`` axis, if there is one."""
        return self.axes.index("C") if "C" in self.axes else None

    @property
    def spatial_axes(self) -> tuple[int, int]:
        """Indices of the two up-sampled axes (Y, X)."""
        n = len(self.axes)
        return (n - 3, n - 2) if self.rgb else (n - 2, n - 1)

    def upscaled(self, factor: float) -> ImageMeta:
        """The metadata after up-sampling Y and X by ``factor`` (pixels get smaller)."""
        spacing = list(self.spacing)
        for ax in self.spatial_axes:
            if spacing[ax] is not None:
                spacing[ax] = spacing[ax] / factor
        return replace(self, spacing=tuple(spacing))

    @classmethod
    def default(cls, shape: tuple[int, ...], rgb: bool | None = None) -> ImageMeta:
        """Axes for a bare array: ``...YX`` or ``...YXS`` when the last axis is 3/4 long."""
        if rgb is None:
            rgb = len(shape) >= 3 and shape[-1] in (3, 4)
        tail = "YXS" if rgb else "YX"
        lead = "QTZ"[-(len(shape) - len(tail)) :] if len(shape) > len(tail) else ""
        if len(lead) < len(shape) - len(tail):
            lead = "Q" * (len(shape) - len(tail) - len(lead)) + lead
        return cls(axes=lead + tail)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"input {str(path)!r} does not exist")
    if path.is_dir():
        raise InputError(f"input {str(path)!r} is a folder, not an image file")
    if path.stat().st_size == 0:
        raise InputError(f"input {str(path)!r} is an empty file")


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, ImageMeta]:
    """Read an image file. Returns the array and its :class:`ImageMeta`.

    Raises :class:`InputError` for missing, empty, truncated or unreadable files.
    """
    path = Path(path)
    _check_readable(path)
    suffix = _suffix(path)
    if suffix in TIFF_SUFFIXES:
        return _read_tiff(path)
    if suffix in PLAIN_SUFFIXES:
        return _read_plain(path)
    raise InputError(
        f"{str(path)!r}: unsupported file type {suffix or '(none)'}; "
        f"use one of {', '.join(IMAGE_SUFFIXES)}"
    )


def _read_plain(path: Path) -> tuple[np.ndarray, ImageMeta]:
    import imageio.v3 as iio

    try:
        data = np.asarray(iio.imread(path))
    except Exception as exc:  # imageio raises many types for corrupt files
        raise InputError(f"cannot read {str(path)!r}: {str(exc).splitlines()[0][:160]}") from None
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3) or 0 in data.shape:
        raise InputError(f"{str(path)!r}: unexpected image shape {data.shape}")
    return data, ImageMeta.default(data.shape, rgb=data.ndim == 3)


def _read_tiff(path: Path) -> tuple[np.ndarray, ImageMeta]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise InputError(f"cannot read {str(path)!r}: no image data in the file")
            series = tif.series[0]
            data = series.asarray()
            axes = series.axes
            spacing, unit = _tiff_spacing(tif, series, axes)
    except InputError:
        raise
    except Exception as exc:  # tifffile raises many types for corrupt/truncated files
        raise InputError(f"cannot read {str(path)!r}: {str(exc).splitlines()[0][:160]}") from None
    data = np.asarray(data)
    if data.ndim != len(axes):
        axes = ImageMeta.default(data.shape).axes
        spacing = (None,) * data.ndim
    if 0 in data.shape:
        raise InputError(f"{str(path)!r} holds an empty image of shape {data.shape}")
    if "Y" not in axes or "X" not in axes:
        axes = ImageMeta.default(data.shape).axes
        spacing = (None,) * data.ndim
    # Bring the spatial axes (and samples) last: (..., Y, X[, S]).
    order = [i for i, a in enumerate(axes) if a not in "YXS"]
    order += [axes.index("Y"), axes.index("X")] + ([axes.index("S")] if "S" in axes else [])
    if order != list(range(len(axes))):
        data = np.transpose(data, order)
        axes = "".join(axes[i] for i in order)
        spacing = tuple(spacing[i] for i in order)
    return data, ImageMeta(axes=axes, spacing=tuple(spacing), unit=unit)


def _tiff_spacing(tif, series, axes: str) -> tuple[tuple[float | None, ...], str | None]:
    spacing: list[float | None] = [None] * len(axes)
    unit: str | None = None
    if tif.is_ome and tif.ome_metadata:
        xml = tif.ome_metadata
        for letter in "XYZ":
            m = re.search(rf'PhysicalSize{letter}="([0-9.eE+-]+)"', xml)
            if m and letter in axes:
                spacing[axes.index(letter)] = float(m.group(1))
        m = re.search(r'PhysicalSizeXUnit="([^"]+)"', xml)
        unit = m.group(1) if m else ("µm" if any(spacing) else None)
        if any(s is not None for s in spacing):
            return tuple(spacing), unit
    page = series.pages[0] if series.pages else tif.pages[0]
    tags = page.tags
    for letter, tag in (("X", "XResolution"), ("Y", "YResolution")):
        if tag in tags and letter in axes:
            num, den = tags[tag].value
            if num and den and not (num == 1 and den == 1):
                spacing[axes.index(letter)] = den / num
    ij = tif.imagej_metadata or {}
    if ij.get("spacing") and "Z" in axes:
        spacing[axes.index("Z")] = float(ij["spacing"])
    if ij.get("unit"):
        unit = str(ij["unit"])
        unit = "µm" if unit in ("micron", "um", "\\u00B5m", "\\u00b5m") else unit
    return tuple(spacing), unit


def write_image(path: str | os.PathLike, data: np.ndarray, meta: ImageMeta | None = None) -> Path:
    """Write ``data`` to ``path`` (TIFF, PNG or JPEG by suffix), atomically.

    TIFF keeps axes and pixel size. PNG/JPEG take 2-D grayscale or RGB(A) 8-bit (PNG also
    16-bit) data only.
    """
    path = Path(path)
    meta = meta or ImageMeta.default(data.shape)
    suffix = _suffix(path)
    if suffix in TIFF_SUFFIXES:
        with atomic_path(path) as tmp:
            _write_tiff(tmp, data, meta)
        return path
    if suffix in PLAIN_SUFFIXES:
        if data.ndim not in (2, 3) or (data.ndim == 3 and data.shape[-1] not in (3, 4)):
            raise InputError(
                f"{suffix} holds 2-D grayscale or RGB(A) images; write shape {data.shape} "
                "to .tif instead"
            )
        allowed = (np.uint8, np.uint16) if suffix == ".png" else (np.uint8,)
        if data.dtype not in allowed:
            raise InputError(f"{suffix} cannot store {data.dtype} data; write a .tif instead")
        import imageio.v3 as iio

        with atomic_path(path) as tmp:
            iio.imwrite(tmp, data, extension=suffix)
        return path
    raise InputError(
        f"{str(path)!r}: unsupported output type {suffix or '(none)'}; use .tif or .png"
    )


def _write_tiff(path: Path, data: np.ndarray, meta: ImageMeta) -> None:
    import tifffile

    axes = meta.axes
    kwargs: dict = {}
    sx = meta.spacing[axes.index("X")] if "X" in axes else None
    sy = meta.spacing[axes.index("Y")] if "Y" in axes else None
    if sx and sy and math.isfinite(sx) and math.isfinite(sy):
        kwargs["resolution"] = (1.0 / sx, 1.0 / sy)
    imagej_ok = (
        data.dtype in (np.uint8, np.uint16, np.float32)
        and len(set(axes)) == len(axes)
        and all(a in IMAGEJ_AXES for a in axes)
        and [IMAGEJ_AXES.index(a) for a in axes] == sorted(IMAGEJ_AXES.index(a) for a in axes)
        and not (axes.endswith("S") and data.dtype != np.uint8)
    )
    if imagej_ok:
        md: dict = {"axes": axes}
        if meta.unit:
            # ImageJ metadata is ASCII; Fiji spells µm "micron".
            md["unit"] = "micron" if meta.unit in ("µm", "um", "\u00b5m") else meta.unit
        if "Z" in axes and meta.spacing[axes.index("Z")]:
            md["spacing"] = meta.spacing[axes.index("Z")]
        tifffile.imwrite(path, data, imagej=True, metadata=md, **kwargs)
    else:
        photometric = "rgb" if axes.endswith("S") else "minisblack"
        tifffile.imwrite(path, data, metadata={"axes": axes}, photometric=photometric, **kwargs)
