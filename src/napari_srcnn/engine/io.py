"""Reading and writing images: TIFF (axes and pixel size kept), PNG and JPEG.

TIFFs are read with tifffile: the file's one series (a file of several images is refused, as are
CMYK, palette and L*a*b* colours: never half-read or misread), its axes string (``"ZCYX"``, ``"YXS"``, …)
and the physical pixel size from OME (``PhysicalSizeX/Y/Z``), ImageJ (``spacing``, ``unit``)
or the resolution tags. Written TIFFs are ImageJ hyperstacks when the axes and dtype allow
it (Fiji and napari read them), plain TIFFs with shaped metadata otherwise; the pixel size
goes into the resolution tags either way. Every write is atomic.

Hostile or broken files never crash the caller: anything that cannot be read (missing, empty, a
folder, truncated, corrupt, not an image, larger than the machine's memory) is an
[`InputError`][napari_srcnn.errors.InputError] with a one-line message; a write that fails (disk
full, read-only folder) is a [`WriteError`][napari_srcnn.errors.WriteError] and leaves the previous
file intact.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, SRCNNError
from .files import atomic_path, check_readable_file, one_line

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_TIFF_PAGES",
    "TIFF_SUFFIXES",
    "ImageHeader",
    "ImageMeta",
    "check_tiff_chain",
    "check_writable",
    "max_image_bytes",
    "read_header",
    "read_image",
    "write_image",
]

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
    white_is_zero
        A TIFF whose photometric interpretation is ``MINISWHITE`` (0 is white): written back
        the same way, so that the result looks like its input in every viewer.
    """

    axes: str
    spacing: tuple[float | None, ...] = field(default=())
    unit: str | None = None
    white_is_zero: bool = False

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
        if "Y" in self.axes and "X" in self.axes:
            return self.axes.index("Y"), self.axes.index("X")
        n = len(self.axes)
        return (n - 3, n - 2) if self.rgb else (n - 2, n - 1)

    def upscaled(self, factor: float) -> ImageMeta:
        """The metadata after up-sampling Y and X by ``factor`` (pixels get smaller)."""
        spacing = list(self.spacing)
        for ax in self.spatial_axes:
            value = spacing[ax]
            if value is not None:
                spacing[ax] = value / factor
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


def max_image_bytes() -> int:
    """Largest image, in bytes, that [`read_image()`][napari_srcnn.engine.io.read_image] loads: the
    memory available now ([`memory_limit()`][napari_srcnn.engine.memory.memory_limit]).

    A corrupt or hostile header can claim terabytes; such a file is refused before any
    allocation instead of exhausting the memory of a shared machine.
    """
    from .memory import memory_limit

    return memory_limit()


def _check_size(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    from .memory import MEMORY_LIMIT_ENV, format_bytes

    nbytes = math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize
    limit = max_image_bytes()
    if nbytes > limit:
        words = (
            "allowed by " + MEMORY_LIMIT_ENV if os.environ.get(MEMORY_LIMIT_ENV) else "available"
        )
        raise InputError(
            f"{str(path)!r} declares an image of shape {tuple(shape)} ({format_bytes(nbytes)}), "
            f"more than the {format_bytes(limit)} of memory {words}; the file is corrupt "
            "or must be cropped first"
        )


def _check_readable(path: Path) -> None:
    check_readable_file(path, "input", InputError)


def _as_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"{path!r} is not a file path (give a str or a pathlib.Path)")
    return Path(path)


@dataclass(frozen=True)
class ImageHeader:
    """What [`read_header()`][napari_srcnn.engine.io.read_header] learns from an image file
    without reading its pixels: the shape, dtype and metadata
    [`read_image()`][napari_srcnn.engine.io.read_image] would return."""

    path: Path
    shape: tuple[int, ...]
    dtype: np.dtype
    meta: ImageMeta

    @property
    def nbytes(self) -> int:
        """Bytes the pixels take in memory once read."""
        return math.prod(self.shape) * self.dtype.itemsize


def read_header(path: str | os.PathLike) -> ImageHeader:
    """The shape, dtype and axes of an image file, read from its header only (no pixels, so it
    is cheap for a file of any size): everything that can be checked before any work.

    Raises
    ------
    InputError
        As [`read_image()`][napari_srcnn.engine.io.read_image] does for a file that cannot be
        read (missing, empty, corrupt header, unsupported type, several series, CMYK, …), and
        for an image larger than the memory available.
    """
    path = _as_path(path)
    _check_readable(path)
    suffix = _suffix(path)
    if suffix in TIFF_SUFFIXES:
        import tifffile

        check_tiff_chain(path)
        try:
            with tifffile.TiffFile(path) as tif:
                series = _tiff_series(tif, path)
                shape, dtype, axes = tuple(series.shape), np.dtype(series.dtype), series.axes
                spacing, unit = _tiff_spacing(tif, series, axes)
                white = _photometric(tif, series) == "MINISWHITE"
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"cannot read {str(path)!r}: {one_line(exc, 160)}") from None
        order, axes, spacing = _layout(path, shape, axes, spacing)
        _check_size(path, shape, dtype)
        shape = tuple(shape[i] for i in order)
        meta = ImageMeta(axes=axes, spacing=spacing, unit=unit, white_is_zero=white)
        return ImageHeader(path, shape, dtype, meta)
    if suffix in PLAIN_SUFFIXES:
        import imageio.v3 as iio

        try:
            _check_plain_colours(path)
            props = iio.improps(path)
            shape, dtype = tuple(int(s) for s in props.shape), np.dtype(props.dtype)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"cannot read {str(path)!r}: {one_line(exc, 160)}") from None
        _check_size(path, shape, dtype)
        shape, meta = _plain_layout(path, shape)
        return ImageHeader(path, shape, dtype, meta)
    raise _unsupported(path, suffix)


def _unsupported(path: Path, suffix: str) -> InputError:
    return InputError(
        f"{str(path)!r}: unsupported file type {suffix or '(none)'}; "
        f"use one of {', '.join(IMAGE_SUFFIXES)}"
    )


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, ImageMeta]:
    """Read an image file (the file is opened read-only and never modified).

    Parameters
    ----------
    path
        A TIFF (``.tif``, ``.tiff``, ``.ome.tif``), PNG, JPEG or BMP file.

    Returns
    -------
    data : numpy.ndarray
        The pixels, spatial axes last: ``(..., Y, X)`` or ``(..., Y, X, S)`` for RGB(A).
        The dtype is the file's.
    meta : ImageMeta
        Axes (one letter per axis of ``data``), pixel size and unit.

    Raises
    ------
    InputError
        For a missing, empty, truncated, corrupt or unreadable file, a folder, an unknown suffix, an
        image with fewer than two axes or of size 0, a TIFF that holds several images (series) or
        colours that are not gray or RGB(A) (CMYK, a palette, L*a*b*), or one that declares more
        bytes than the memory available
        ([`max_image_bytes()`][napari_srcnn.engine.io.max_image_bytes]).
    """
    path = _as_path(path)
    _check_readable(path)
    suffix = _suffix(path)
    if suffix in TIFF_SUFFIXES:
        return _read_tiff(path)
    if suffix in PLAIN_SUFFIXES:
        return _read_plain(path)
    raise _unsupported(path, suffix)


# Pillow modes whose samples are not intensities or RGB(A) (a CMYK JPEG reads as 4 samples).
_PLAIN_MODES_REFUSED = {
    "CMYK": "a CMYK image; convert it to RGB first",
    "LAB": "an L*a*b* image; convert it to RGB first",
    "HSV": "an HSV image; convert it to RGB first",
}


def _check_plain_colours(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        mode = image.mode
    if mode in _PLAIN_MODES_REFUSED:
        raise InputError(f"{str(path)!r} is {_PLAIN_MODES_REFUSED[mode]}")


def _plain_layout(path: Path, shape: tuple[int, ...]) -> tuple[tuple[int, ...], ImageMeta]:
    """The shape and axes a PNG/JPEG/BMP of ``shape`` is returned with."""
    if len(shape) == 3 and shape[-1] == 1:
        shape = shape[:2]
    if len(shape) not in (2, 3) or 0 in shape:
        raise InputError(f"{str(path)!r}: unexpected image shape {shape}")
    if len(shape) == 3 and shape[-1] == 2:
        # Gray + alpha: two channels, not colour samples (each is upscaled on its own).
        return shape, ImageMeta(axes="YXC")
    return shape, ImageMeta.default(shape, rgb=len(shape) == 3)


def _read_plain(path: Path) -> tuple[np.ndarray, ImageMeta]:
    import imageio.v3 as iio

    try:
        _check_plain_colours(path)
        props = iio.improps(path)
        _check_size(path, tuple(props.shape), props.dtype)
        data = np.asarray(iio.imread(path))
    except SRCNNError:
        raise
    except Exception as exc:  # imageio/Pillow raise many types for corrupt files
        raise InputError(f"cannot read {str(path)!r}: {one_line(exc, 160)}") from None
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    shape, meta = _plain_layout(path, tuple(data.shape))
    return data.reshape(shape), meta


# Photometric interpretations whose samples are not intensities or RGB(A): upscaling them as
# such would be silently wrong (CMYK read as RGBA, palette indices interpolated).
_PHOTOMETRIC_REFUSED = {
    "SEPARATED": "a CMYK (separated ink) image; convert it to RGB first",
    "PALETTE": "a palette (indexed-colour) image; convert it to RGB or grayscale first",
    "CIELAB": "a CIE L*a*b* image; convert it to RGB first",
    "ICCLAB": "an ICC L*a*b* image; convert it to RGB first",
    "ITULAB": "an ITU L*a*b* image; convert it to RGB first",
}


#: More image directories than this in one TIFF are refused (a 1-million-plane stack is ~1 TB
#: even at 1 MB a plane); the chain is walked before tifffile parses it.
MAX_TIFF_PAGES = 1_000_000


def check_tiff_chain(path: Path) -> None:
    """Refuse, with an InputError, a TIFF whose chain of image directories loops or is longer
    than `MAX_TIFF_PAGES`: tifffile would otherwise read the same directories forever (a
    damaged or crafted file of a few hundred bytes). Only the directory headers are read."""
    import struct

    with open(path, "rb") as fh:
        head = fh.read(16)
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            return  # tifffile says what is wrong
        order = "<" if head[:2] == b"II" else ">"
        (version,) = struct.unpack(order + "H", head[2:4])
        if version == 43 and len(head) >= 16:  # BigTIFF: 8-byte offsets and counts
            count_fmt, entry, offset_fmt = "Q", 20, "Q"
            (offset,) = struct.unpack(order + "Q", head[8:16])
        elif version == 42:
            count_fmt, entry, offset_fmt = "H", 12, "I"
            (offset,) = struct.unpack(order + "I", head[4:8])
        else:
            return
        count_size, offset_size = struct.calcsize(count_fmt), struct.calcsize(offset_fmt)
        size = os.fstat(fh.fileno()).st_size
        seen: set[int] = set()
        while 0 < offset < size:
            if offset in seen:
                raise InputError(
                    f"cannot read {str(path)!r}: its image directories form a loop (a damaged TIFF)"
                )
            if len(seen) >= MAX_TIFF_PAGES:
                raise InputError(
                    f"cannot read {str(path)!r}: more than {MAX_TIFF_PAGES} image directories"
                )
            seen.add(offset)
            fh.seek(offset)
            raw = fh.read(count_size)
            if len(raw) < count_size:
                return
            (count,) = struct.unpack(order + count_fmt, raw)
            where = offset + count_size + count * entry
            if where + offset_size > size:
                return  # a directory beyond the end: tifffile says what is wrong
            fh.seek(where)
            raw = fh.read(offset_size)
            if len(raw) < offset_size:
                return
            (offset,) = struct.unpack(order + offset_fmt, raw)


def _tiff_series(tif: Any, path: Path) -> Any:
    """The one image series of a TIFF, checked: several series (several images in one file) and
    colour spaces other than gray and RGB(A) are refused, never half-read."""
    if not tif.series:
        raise InputError(f"cannot read {str(path)!r}: no image data in the file")
    if len(tif.series) > 1:
        shapes = ", ".join(str(tuple(s.shape)) for s in tif.series[:4])
        more = ", …" if len(tif.series) > 4 else ""
        raise InputError(
            f"{str(path)!r} holds {len(tif.series)} images (TIFF series {shapes}{more}); "
            "napari-srcnn reads one image per file: save each one to its own file"
        )
    series = tif.series[0]
    photometric = _photometric(tif, series)
    if photometric in _PHOTOMETRIC_REFUSED:
        raise InputError(f"{str(path)!r} is {_PHOTOMETRIC_REFUSED[photometric]}")
    return series


def _photometric(tif: Any, series: Any) -> str | None:
    page = series.pages[0] if series.pages else tif.pages[0]
    return getattr(getattr(page, "photometric", None), "name", None)


def _layout(
    path: Path, shape: tuple[int, ...], axes: str, spacing: tuple[float | None, ...]
) -> tuple[list[int], str, tuple[float | None, ...]]:
    """How a TIFF array of ``shape`` and tifffile ``axes`` is returned: the axis order that brings
    Y, X (and samples) last, the new axes and spacing."""
    if len(shape) < 2:
        raise InputError(f"{str(path)!r} holds a {len(shape)}-D array {shape}, not an image")
    if len(shape) != len(axes):
        axes = ImageMeta.default(shape).axes
        spacing = (None,) * len(shape)
    if 0 in shape:
        raise InputError(f"{str(path)!r} holds an empty image of shape {shape}")
    if "Y" not in axes or "X" not in axes or any(axes.count(a) > 1 for a in "YXS"):
        axes = ImageMeta.default(shape).axes
        spacing = (None,) * len(shape)
    if "S" in axes and shape[axes.index("S")] not in (3, 4):
        # Extra samples that are not RGB(A) (e.g. gray + alpha): channels, never up-sampled.
        axes = axes.replace("S", "C" if "C" not in axes else "Q")
    # Bring the spatial axes (and samples) last: (..., Y, X[, S]).
    order = [i for i, a in enumerate(axes) if a not in "YXS"]
    order += [axes.index("Y"), axes.index("X")] + ([axes.index("S")] if "S" in axes else [])
    return order, "".join(axes[i] for i in order), tuple(spacing[i] for i in order)


def _read_tiff(path: Path) -> tuple[np.ndarray, ImageMeta]:
    import tifffile

    check_tiff_chain(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = _tiff_series(tif, path)
            _check_size(path, tuple(series.shape), series.dtype)
            data = series.asarray()
            axes = series.axes
            spacing, unit = _tiff_spacing(tif, series, axes)
            white = _photometric(tif, series) == "MINISWHITE"
    except InputError:
        raise
    except Exception as exc:  # tifffile raises many types for corrupt/truncated files
        # (MemoryError included: a header may claim more than can be allocated.)
        raise InputError(f"cannot read {str(path)!r}: {one_line(exc, 160)}") from None
    data = np.asarray(data)
    order, axes, spacing = _layout(path, tuple(data.shape), axes, spacing)
    if order != list(range(len(axes))):
        data = np.transpose(data, order)
    return data, ImageMeta(axes=axes, spacing=spacing, unit=unit, white_is_zero=white)


def _canonical_unit(unit: str | None) -> str | None:
    """``"µm"`` for the spellings of micrometre found in TIFF metadata, else ``unit``."""
    if unit in ("micron", "um", "\\u00B5m", "\\u00b5m"):
        return "µm"
    return unit


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
        unit = _canonical_unit(unit)
    return tuple(spacing), unit


def write_image(path: str | os.PathLike, data: np.ndarray, meta: ImageMeta | None = None) -> Path:
    """Write ``data`` to ``path`` (TIFF, PNG or JPEG by suffix), atomically.

    Parameters
    ----------
    path
        Output file; its suffix picks the format.
    data
        The pixels, ``(..., Y, X)`` or ``(..., Y, X, S)``. TIFF takes any shape and any
        integer, float or complex dtype; PNG takes ``(Y, X)`` uint8 or uint16 and ``(Y, X,
        2|3|4)`` (gray + alpha, RGB, RGBA) uint8; JPEG and BMP ``(Y, X)`` or ``(Y, X, 3)``
        uint8.
    meta
        Axes and pixel size to store (TIFF only); default
        [`ImageMeta.default()`][napari_srcnn.engine.io.ImageMeta.default].

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        If the format cannot hold ``data`` (checked before anything is written) or the
        metadata does not match it.
    WriteError
        If the file cannot be written (missing or read-only folder, disk full). The
        previous content of ``path``, if any, is intact: the data goes to a temporary file
        in the same folder that is renamed over ``path`` only once complete.
    """
    path = _as_path(path)
    try:
        data = np.asarray(data)
    except (ValueError, TypeError) as exc:  # a ragged list
        raise InputError(f"cannot make an image array to write: {one_line(exc, 120)}") from None
    meta = meta or ImageMeta.default(data.shape)
    if len(meta.axes) != data.ndim:
        raise InputError(f"axes {meta.axes!r} do not match an array of shape {data.shape}")
    suffix = check_writable(path, data.shape, data.dtype)
    if suffix in TIFF_SUFFIXES:
        ome = suffix in (".ome.tif", ".ome.tiff")
        _write_checked(path, lambda tmp: _write_tiff(tmp, data, meta, path_is_ome=ome))
        return path
    import imageio.v3 as iio

    _write_checked(path, lambda tmp: iio.imwrite(tmp, data, extension=suffix))
    return path


def check_writable(path: str | os.PathLike, shape: tuple[int, ...], dtype: Any) -> str:
    """Check that ``path``'s format can hold an image of ``shape`` and ``dtype`` (before the
    work that makes it); returns the format's suffix.

    Raises
    ------
    InputError
        For an unknown suffix, or data the format would lose (float in PNG, 3-D in JPEG, …).
    """
    path, shape, dtype = _as_path(path), tuple(shape), np.dtype(dtype)
    suffix = _suffix(path)
    if suffix in TIFF_SUFFIXES:
        if dtype.kind not in "buifc":
            raise InputError(f"TIFF cannot store {dtype} data")
        return suffix
    if suffix in PLAIN_SUFFIXES:
        ndim = len(shape)
        if ndim not in (2, 3) or (ndim == 3 and shape[-1] not in (2, 3, 4)):
            raise InputError(
                f"{suffix} holds 2-D grayscale or RGB(A) images; write shape {shape} "
                "to .tif instead"
            )
        allowed = (np.uint8, np.uint16) if suffix == ".png" else (np.uint8,)
        if dtype not in allowed:
            raise InputError(f"{suffix} cannot store {dtype} data; write a .tif instead")
        if suffix != ".png" and ndim == 3 and shape[-1] != 3:
            raise InputError(f"{suffix} cannot store {shape[-1]} channels; use .png or .tif")
        if dtype == np.uint16 and ndim == 3:
            raise InputError("16-bit PNG holds grayscale only; write a .tif instead")
        return suffix
    raise InputError(
        f"{str(path)!r}: unsupported output type {suffix or '(none)'}; use .tif or .png"
    )


def _write_checked(path: Path, write) -> None:
    """Run ``write(tmp)`` inside `atomic_path()`; library errors become InputError."""
    try:
        with atomic_path(path) as tmp:
            write(tmp)
    except (SRCNNError, KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # the writer refused the data (OSErrors are WriteErrors)
        raise InputError(f"cannot write {str(path)!r}: {one_line(exc, 160)}") from None


def _write_tiff(path: Path, data: np.ndarray, meta: ImageMeta, path_is_ome: bool = False) -> None:
    """An ImageJ hyperstack where ImageJ can hold the data, else a plain tifffile TIFF; an
    OME-TIFF (``PhysicalSize*`` with unit, ``DimensionOrder`` from the axes) if
    ``path_is_ome``. All three keep the pixel size for
    [`read_image()`][napari_srcnn.engine.io.read_image]."""
    import tifffile

    axes = meta.axes
    kwargs: dict = {}
    sx = meta.spacing[axes.index("X")] if "X" in axes else None
    sy = meta.spacing[axes.index("Y")] if "Y" in axes else None
    if sx and sy and math.isfinite(sx) and math.isfinite(sy):
        kwargs["resolution"] = (1.0 / sx, 1.0 / sy)
    if path_is_ome:
        _write_ome_tiff(path, data, meta, **kwargs)
        return
    imagej_ok = (
        not meta.white_is_zero  # ImageJ hyperstacks are always black-is-zero
        and data.dtype in (np.uint8, np.uint16, np.float32)
        and len(set(axes)) == len(axes)
        and all(a in IMAGEJ_AXES for a in axes)
        and [IMAGEJ_AXES.index(a) for a in axes] == sorted(IMAGEJ_AXES.index(a) for a in axes)
        and not (axes.endswith("S") and data.dtype != np.uint8)
    )
    if imagej_ok:
        md: dict = {"axes": axes}
        if meta.unit:
            # ImageJ metadata is ASCII; Fiji spells µm "micron".
            md["unit"] = "micron" if _canonical_unit(meta.unit) == "µm" else meta.unit
        if "Z" in axes and meta.spacing[axes.index("Z")]:
            md["spacing"] = meta.spacing[axes.index("Z")]
        tifffile.imwrite(path, data, imagej=True, metadata=md, **kwargs)
    else:
        tifffile.imwrite(
            path, data, metadata={"axes": axes}, photometric=_gray_or_rgb(meta), **kwargs
        )


def _gray_or_rgb(meta: ImageMeta) -> str:
    if meta.axes.endswith("S"):
        return "rgb"
    return "miniswhite" if meta.white_is_zero else "minisblack"


def _write_ome_tiff(path: Path, data: np.ndarray, meta: ImageMeta, **kwargs: Any) -> None:
    import tifffile

    axes = meta.axes
    md: dict[str, Any] = {"axes": axes}
    unit = _canonical_unit(meta.unit) or "µm"  # OME's default unit
    for letter in "XYZ":
        size = meta.spacing[axes.index(letter)] if letter in axes else None
        if size and math.isfinite(size):
            md[f"PhysicalSize{letter}"] = float(size)
            md[f"PhysicalSize{letter}Unit"] = unit
    tifffile.imwrite(path, data, ome=True, metadata=md, photometric=_gray_or_rgb(meta), **kwargs)
