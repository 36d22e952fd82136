"""How much memory (and disk) a run needs, estimated from shapes before anything is allocated.

Every entry point checks its estimate before it allocates or writes anything: reading an image
([`read_image()`][napari_srcnn.engine.io.read_image]), upscaling an array or a file
([`Upscaler`][napari_srcnn.engine.inference.Upscaler]), streaming a zarr array
([`upscale_zarr()`][napari_srcnn.engine.lazy.upscale_zarr]), building training data and a training
step ([`train()`][napari_srcnn.engine.training.train]). A run that would not fit is one
[`InputError`][napari_srcnn.errors.InputError] that says how much it needs, how much there is, and
how to need less, instead of a ``MemoryError`` (or the kernel's out-of-memory killer) half-way.

The estimates are upper bounds of the big allocations (the result, the copies made on the way, the
per-tile working buffers of every thread), not of every byte Python touches. The limit is the memory
available now ([`memory_limit()`][napari_srcnn.engine.memory.memory_limit]: ``psutil``'s
``available``), or ``$NAPARI_SRCNN_MEMORY_LIMIT`` (e.g. ``512MiB``, ``2G``, ``1e9``) when set.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = [
    "MEMORY_LIMIT_ENV",
    "Estimate",
    "available_memory",
    "check_disk",
    "format_bytes",
    "memory_limit",
    "parse_size",
    "training_data_estimate",
    "training_step_estimate",
    "upscale_estimate",
    "zarr_estimate",
]

MEMORY_LIMIT_ENV = "NAPARI_SRCNN_MEMORY_LIMIT"
# What every run holds besides its arrays: the percentile sample (a million float64 values and
# its mask), resize weights, the model and PyTorch's own buffers.
BASE_BYTES = 64 << 20
# Memory of one output chunk of a lazy (dask) graph: ~13 tasks (read, rechunk, overlap, the
# upscale, store) of about a KiB each, measured on dask 2026.8.
GRAPH_BYTES_PER_CHUNK = 16 << 10

_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_UNITS.update({"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12})
_UNITS.update({"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40})


def parse_size(text: str) -> int:
    """Bytes of a size such as ``"512MiB"``, ``"2G"``, ``"1.5GB"`` or ``"1e9"``."""
    found = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([a-z]*)\s*", text.lower())
    try:
        if found is None or found.group(2) not in _UNITS:
            raise ValueError(text)
        value = float(found.group(1)) * _UNITS[found.group(2)]
    except ValueError:
        raise InputError(
            f"{MEMORY_LIMIT_ENV}={text!r} is not a size; use e.g. 512MiB, 2G or 1e9"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{MEMORY_LIMIT_ENV}={text!r} is not a size; use e.g. 512MiB, 2G or 1e9")
    return int(value)


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (``psutil``'s ``available``; else the
    free physical pages; else half the physical memory; else 8 GiB)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # not installed, or no /proc in a sandbox
        pass
    try:
        page = int(os.sysconf("SC_PAGE_SIZE"))
        try:
            return page * int(os.sysconf("SC_AVPHYS_PAGES"))
        except (ValueError, OSError):
            return page * int(os.sysconf("SC_PHYS_PAGES")) // 2
    except (AttributeError, ValueError, OSError):  # not POSIX
        return 8 << 30


def memory_limit() -> int:
    """The most memory a run may need: ``$NAPARI_SRCNN_MEMORY_LIMIT`` if set, else
    [`available_memory()`][napari_srcnn.engine.memory.available_memory]."""
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    return parse_size(text) if text else available_memory()


def _limit_words(limit: int | None) -> tuple[int, str]:
    if limit is not None:
        return limit, f"the {format_bytes(limit)} allowed"
    if os.environ.get(MEMORY_LIMIT_ENV, "").strip():
        limit = memory_limit()
        return limit, f"the {format_bytes(limit)} allowed by {MEMORY_LIMIT_ENV}"
    limit = memory_limit()
    return limit, f"the {format_bytes(limit)} available"


def format_bytes(n: float) -> str:
    """``n`` bytes for people: ``"215 GiB"``, ``"1.50 MiB"``, ``"12 B"``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.3g} {unit}" if abs(n) < 1000 else f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


@dataclass(frozen=True)
class Estimate:
    """What a run needs, at most, in memory.

    Attributes
    ----------
    task
        The run in words (``"upscaling a 30000×30000 uint8 image ×16"``).
    peak_bytes
        Working memory at the peak, the result included when it is held in memory.
    output_bytes
        The result's size (in memory, or on disk for a zarr output).
    advice
        How to need less, for the error message.
    output_in_memory
        Whether the result is part of ``peak_bytes`` (False for a zarr output on disk).
    """

    task: str
    peak_bytes: int
    output_bytes: int
    advice: str
    output_in_memory: bool = True

    def check(self, limit: int | None = None) -> Estimate:
        """Raise an InputError unless ``peak_bytes`` fits ``limit`` (default
        [`memory_limit()`][napari_srcnn.engine.memory.memory_limit]); return ``self``."""
        limit, words = _limit_words(limit)
        if self.peak_bytes > limit:
            result = ""
            if self.output_in_memory and self.output_bytes >= self.peak_bytes // 4:
                result = f" (the result alone is {format_bytes(self.output_bytes)})"
            raise InputError(
                f"{self.task} needs about {format_bytes(self.peak_bytes)} of memory{result}, "
                f"more than {words}; {self.advice}"
            )
        return self


def check_disk(folder: str | os.PathLike, nbytes: int, task: str, advice: str) -> None:
    """Raise an InputError when ``folder``'s file system has less than ``nbytes`` free."""
    try:
        free = shutil.disk_usage(Path(folder)).free
    except OSError:  # cannot tell: the write itself will say
        return
    if nbytes > free:
        raise InputError(
            f"{task} writes up to {format_bytes(nbytes)} (uncompressed) and "
            f"{str(folder)!r} has {format_bytes(free)} free; {advice}"
        )


def _dims(shape: Sequence[int]) -> str:
    return "×".join(str(int(s)) for s in shape)


def _cell_bytes(tile: int, halo: int, channels: int, widths: tuple[int, int], block: int) -> int:
    """Working memory of one cell: the normalised crop, the two-pass bicubic and the padded
    input (``channels`` float32 each), the result, and the network's activations on one block."""
    edge = tile + 2 * halo
    image = edge * edge * 4 * (6 * channels + 2)
    side = min(edge, block + 2 * halo)
    return image + side * side * 4 * (sum(widths) + channels)


def upscale_estimate(
    shape: Sequence[int],
    dtype: np.dtype | str,
    scale: float,
    *,
    spatial: tuple[int, int] = (-2, -1),
    tile: int = 512,
    halo: int = 8,
    widths: tuple[int, int] = (64, 32),
    channels: int = 1,
    workers: int = 1,
    block: int = 256,
    ensemble: bool = False,
    input_bytes: int = 0,
    extra_bytes: int = 0,
    advice: str = "",
) -> Estimate:
    """Memory for upscaling an array of ``shape`` and ``dtype`` by ``scale`` in memory.

    Parameters
    ----------
    shape, dtype
        The input; ``spatial`` are its two up-sampled axes (the others are kept).
    scale
        The factor.
    tile, halo, widths, channels, block
        Output tile edge, the network's halo, its widths ``(n1, n2)``, the channels the network
        sees (3 for an RGB model, else 1; colour is per pixel either way) and its block edge.
    workers
        Cells computed side by side (the CPU's block threads).
    ensemble
        The self-ensemble: 8 turned copies, a float64 accumulator and a float result.
    input_bytes
        Memory the input takes that is not allocated yet (a file still to be read); 0 for an
        array in memory.
    extra_bytes
        Anything else the caller will hold (a reference image and its scores).
    advice
        How to need less (default: a smaller scale or a crop).
    """
    dtype = np.dtype(dtype)
    from .resize import output_size

    out = [int(s) for s in shape]
    for ax in spatial:
        out[ax] = output_size(int(shape[ax]), float(scale))
    n_in = math.prod(int(s) for s in shape)
    n_out = math.prod(out)
    result = n_out * dtype.itemsize
    peak = BASE_BYTES + input_bytes + extra_bytes + result
    tile_edge = min(int(tile), max(out[spatial[0]], out[spatial[1]]))
    peak += max(1, workers) * _cell_bytes(tile_edge, halo, channels, widths, block)
    if ensemble:
        work = 8 if dtype.itemsize > 4 or dtype.kind in "ui" and dtype.itemsize >= 4 else 4
        peak += n_out * (8 + work) + n_in * dtype.itemsize
    task = f"upscaling a {_dims(shape)} {dtype} image ×{float(scale):g}"
    default = "use a smaller scale or crop the image"
    return Estimate(task, int(peak), int(result), advice or default)


def zarr_estimate(
    shape: Sequence[int],
    dtype: np.dtype | str,
    scale: float,
    *,
    source_chunks: Sequence[int],
    chunk: int = 1024,
    spatial: tuple[int, int] = (-2, -1),
    halo: int = 8,
    widths: tuple[int, int] = (64, 32),
    channels: int = 1,
    color: int = 1,
    workers: int = 1,
    block: int = 256,
    tile: int = 512,
) -> Estimate:
    """Memory for streaming a zarr (or dask) array of ``shape`` into an upscaled one, chunk by
    chunk: the largest source chunk (read and decompressed), one input block with its overlap, one
    output chunk, the cells' working memory, and the task graph (its size grows with the number
    of output chunks). ``output_bytes`` is the result's uncompressed size on disk."""
    dtype = np.dtype(dtype)
    from .resize import output_size

    out = [int(s) for s in shape]
    for ax in spatial:
        out[ax] = output_size(int(shape[ax]), float(scale))
    lead = [int(s) for i, s in enumerate(shape) if i not in {a % len(shape) for a in spatial}]
    planes = math.prod(lead) // max(1, color)
    n_chunks = planes * math.ceil(out[spatial[0]] / chunk) * math.ceil(out[spatial[1]] / chunk)
    source_chunk = math.prod(int(c) for c in source_chunks) * dtype.itemsize
    side = math.ceil(chunk / float(scale)) + 2 * (halo + 4)
    block_in = side * side * color * dtype.itemsize * 3  # read, rechunked, overlapped
    block_out = chunk * chunk * color * max(dtype.itemsize, 4)
    cells = max(1, workers) * _cell_bytes(min(tile, chunk), halo, channels, widths, block)
    graph = n_chunks * GRAPH_BYTES_PER_CHUNK
    peak = BASE_BYTES + 2 * source_chunk + block_in + block_out + cells + graph
    task = f"upscaling a {_dims(shape)} {dtype} zarr array ×{float(scale):g} ({n_chunks} chunks)"
    advice = "use a smaller scale, or upscale a region or a few planes of it at a time"
    if 2 * source_chunk > peak // 2:
        advice = "rechunk the source into smaller chunks, or " + advice
    return Estimate(task, int(peak), math.prod(out) * dtype.itemsize, advice, False)


def training_data_estimate(
    images: Iterable[tuple[Sequence[int], np.dtype | str]],
    scale: float,
    partners: int = 1,
    channels: int = 1,
) -> Estimate:
    """Memory for training data made from images of these shapes and dtypes: the images as read,
    every plane as float32 HR, and one float32 LR partner per degradation (``partners``: 3 for
    ``mixed``), plus the LR before up-sampling. ``channels`` is 3 for RGB training, else 1 (an RGB
    image trained per channel or on Y has as many float values as pixels × its own samples)."""
    raw = floats = 0
    for shape, dtype in images:
        n = math.prod(int(s) for s in shape)
        raw += n * np.dtype(dtype).itemsize
        floats += n * 4
    lr = floats / (float(scale) ** 2)
    peak = BASE_BYTES + raw + floats * (1 + partners) + 2 * lr
    return Estimate(
        "building the training data",
        int(peak),
        int(floats * (1 + partners)),
        "train on fewer or smaller images (crop them), or on fewer planes of a stack",
        False,
    )


def training_step_estimate(
    batch: int, patch: int, *, halo: int, widths: tuple[int, int], channels: int = 1
) -> Estimate:
    """Memory for one training step: ``batch`` sub-images of ``patch`` pixels, the network's
    activations, their gradients and the saved inputs of the backward pass (about three copies of
    every activation), on the CPU (host memory) or on the GPU (checked against host memory too:
    the batch is made on the CPU first)."""
    side = max(1, patch - 2 * halo)
    inputs = patch * patch * channels * 4 * 4  # LR and HR, on the CPU and on the device
    activations = (patch * patch) * sum(widths) * 4 * 3
    per = inputs + activations + side * side * channels * 4 * 3
    peak = BASE_BYTES + batch * per
    return Estimate(
        f"a training step of {batch} sub-images of {patch}×{patch} pixels",
        int(peak),
        int(batch * per),
        "use a smaller batch or sub-image size",
        False,
    )
