"""Lazy, chunk-wise upscaling of dask arrays: out of core, and on a dask cluster.

[`upscale_dask()`][napari_srcnn.engine.lazy.upscale_dask] turns a dask array into a lazy dask array
of the upscaled image: nothing is computed until a chunk is asked for (napari displays a huge
upscaled stack this way, one visible chunk at a time), and
[`upscale_zarr()`][napari_srcnn.engine.lazy.upscale_zarr] streams a zarr array on disk into another
one with a bounded amount of memory.

Why the chunks' seams are exact: output chunk ``k`` covers the output pixels of input chunk
``k`` (``round(a * scale)`` to ``round(b * scale)``) and is computed by the same tile code
as the in-memory path, from the input chunk grown by ``depth`` low-resolution pixels
(``dask.array.overlap``) and the *whole-image* bicubic weights. Every output pixel therefore
sees exactly the low-resolution pixels, weights and network halo it would see in one piece.

The [`Upscaler`][napari_srcnn.engine.inference.Upscaler] travels to the workers once per graph (as a
``dask.delayed`` value) and is rebuilt there from its weights, on whatever device ``"auto"`` means
on that worker, so the same graph runs on the threaded scheduler and on a ``dask.distributed``
cluster.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import InputError
from .options import check_image_meta

if TYPE_CHECKING:  # pragma: no cover
    import dask.array as da
    import torch
    import zarr

    from .cells import Plan
    from .memory import Estimate
    from .options import UpscaleOptions
    from .weights_file import LoadedModel

__all__ = [
    "UpscalerLike",
    "DEFAULT_CHUNK",
    "check_zarr_run",
    "lazy_estimate",
    "open_zarr_array",
    "upscale_dask",
    "upscale_zarr",
]


class UpscalerLike(Protocol):
    """What the lazy paths use of an upscaler: the engine's
    [`Upscaler`][napari_srcnn.engine.inference.Upscaler] is one. Spelled out here so that this
    module needs nothing from `inference`, which hands dask arrays to it."""

    model: LoadedModel
    device: torch.device
    options: UpscaleOptions

    @property
    def scale(self) -> float: ...

    def tile_edge(self) -> int: ...

    def plan(self, image: Any) -> tuple[Any, Plan]: ...

    def shape_plan(self, shape: tuple[int, ...], dtype: Any) -> tuple[tuple[int, ...], Plan]: ...

    def render(
        self,
        lr: np.ndarray,
        lr_origin: tuple[int, int],
        out: np.ndarray,
        box: tuple[int, int, int, int],
        plan: Plan,
        progress: Callable[[int, int], Any] | None = None,
        cancel: Callable[[], bool] | None = None,
        total: int = 0,
        plane_offset: tuple[int, ...] = (),
    ) -> None: ...


# Edge of an output chunk, in pixels: 1024² uint16 is 2 MiB, small enough for napari to
# fetch one view quickly and large enough that the halo re-read per chunk stays < 3 %.
DEFAULT_CHUNK = 1024
# Input chunks thinner than this are merged (per-chunk overhead, overlap re-reads).
_MIN_CHUNK = 32


def _boundaries(chunks: tuple[int, ...]) -> list[int]:
    edges = [0]
    for c in chunks:
        edges.append(edges[-1] + int(c))
    return edges


def _out_edge(a: int, n_in: int, n_out: int, scale: float) -> int:
    """Output pixel where the output chunk of the input boundary ``a`` starts (monotone,
    0 at 0 and ``n_out`` at ``n_in``)."""
    if a >= n_in:
        return n_out
    return min(n_out, int(math.floor(a * scale + 0.5)))


def _depth_needed(upscaler: UpscalerLike, plan: Plan, axis: int, edges: list[int]) -> int:
    """Low-resolution pixels by which the input chunks must overlap their neighbours."""
    from .cells import lr_range

    aw = plan.weights()[axis]
    n_in, n_out = plan.lr_shape[axis], aw.n_out
    halo = upscaler.model.info.arch.halo
    depth = 0
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        lo, hi = lr_range(
            aw, _out_edge(a, n_in, n_out, plan.scale), _out_edge(b, n_in, n_out, plan.scale), halo
        )
        depth = max(depth, a - lo, hi - b)
    return depth


def _balanced(n: int, size: int) -> tuple[int, ...]:
    """``n`` cut into near-equal chunks of at most ``size`` (no sliver at the end)."""
    parts = max(1, math.ceil(n / size))
    base, extra = divmod(n, parts)
    return tuple(base + 1 if k < extra else base for k in range(parts))


def upscale_dask(array: da.Array, upscaler: UpscalerLike, chunk: int = DEFAULT_CHUNK) -> da.Array:
    """Upscale a dask array lazily, chunk by chunk, with exact seams.

    Parameters
    ----------
    array
        ``(..., H, W)`` or ``(..., H, W, 3|4)`` dask array, any dtype that
        [`upscale()`][napari_srcnn.engine.inference.upscale] accepts (e.g.
        ``dask.array.from_zarr(...)``).
    upscaler
        Model, device and options; ``options.channel_axis`` and ``options.channels`` are
        honoured as for numpy input.
    chunk
        Largest output chunk edge in pixels. Input chunks whose output would be larger are
        split; leading axes (z, t, channels) get one plane per chunk.

    Returns
    -------
    dask.array.Array
        Same dtype as ``array``; the two spatial axes are ``ceil(n * scale)`` long. Only
        the intensity normalisation is decided now (from a seeded sample of at most a
        million values when it depends on the data); everything else runs on compute.
    """
    import dask
    import dask.array as da

    if chunk < 16:
        raise InputError(f"chunk {chunk!r} must be at least 16 pixels")
    if upscaler.options.ensemble:  # it needs every flip of the whole image
        raise InputError(
            "the self-ensemble needs the image in memory; compute the lazy (zarr or dask) "
            "array first, or upscale it without the ensemble"
        )
    check_image_meta(tuple(array.shape), np.dtype(array.dtype))
    # Before the plan: its intensity sample alone would build a graph over every chunk.
    lazy_estimate(array.shape, array.dtype, upscaler, [max(c) for c in array.chunks], chunk).check()
    arr, plan = upscaler.plan(array)
    ax = plan.channel_axis
    n_lead = len(plan.planes_shape)
    spatial = (n_lead, n_lead + 1)

    # One plane per chunk on the leading axes, the colour axis whole, spatial chunks of at
    # most `chunk` output pixels and thicker than the overlap they need.
    target = max(16, math.ceil(chunk / plan.scale))
    new_chunks: list[Any] = [1] * n_lead
    for i, axis in enumerate(spatial):
        sizes = arr.chunks[axis]
        if max(sizes) > target or min(sizes) < _MIN_CHUNK:
            sizes = _balanced(plan.lr_shape[i], min(target, max(max(sizes), _MIN_CHUNK)))
        new_chunks.append(sizes)
    if plan.color is not None:
        new_chunks.append(-1)
    arr = arr.rechunk(tuple(new_chunks))
    edges = [_boundaries(arr.chunks[axis]) for axis in spatial]
    depths = [_depth_needed(upscaler, plan, i, edges[i]) for i in range(2)]
    if any(d > min(arr.chunks[axis]) for d, axis in zip(depths, spatial, strict=True)):
        # Input chunks thinner than their overlap (large factors, tiny images): one
        # chunk per spatial axis.
        arr = arr.rechunk({axis: -1 for axis in spatial})
        edges = [_boundaries(arr.chunks[axis]) for axis in spatial]
        depths = [0, 0]
    overlapped = (
        da.overlap.overlap(
            arr, depth={axis: d for axis, d in zip(spatial, depths, strict=True)}, boundary="none"
        )
        if any(depths)
        else arr
    )

    H, W = plan.hr_shape
    out_edges = [
        [_out_edge(a, plan.lr_shape[i], (H, W)[i], plan.scale) for a in edges[i]] for i in range(2)
    ]
    out_chunks = list(arr.chunks[:n_lead])
    out_chunks += [tuple(np.diff(e).tolist()) for e in out_edges]
    if plan.color is not None:
        out_chunks.append((plan.color,))
    result = da.map_blocks(
        _upscale_block,
        overlapped,
        dask.delayed(upscaler, pure=True),
        plan=plan,
        edges=edges,
        out_edges=out_edges,
        depths=depths,
        n_lead=n_lead,
        chunks=tuple(out_chunks),
        dtype=plan.out_dtype,
        meta=np.empty((0,) * arr.ndim, dtype=plan.out_dtype),
        name="srcnn-upscale-" + dask.base.tokenize(arr, upscaler, plan),
    )
    if ax is not None:
        result = da.moveaxis(result, 0, ax)
    return result


def _upscale_block(
    block: np.ndarray,
    upscaler: UpscalerLike,
    *,
    plan: Plan,
    edges: list[list[int]],
    out_edges: list[list[int]],
    depths: list[int],
    n_lead: int,
    block_info: dict | None = None,
) -> np.ndarray:
    """Compute one output chunk from its (overlapped) input chunk."""
    assert block_info is not None
    location = block_info[None]["chunk-location"]
    iy, ix = location[n_lead], location[n_lead + 1]
    origin = (max(0, edges[0][iy] - depths[0]), max(0, edges[1][ix] - depths[1]))
    stop = (
        min(edges[0][-1], edges[0][iy + 1] + depths[0]),
        min(edges[1][-1], edges[1][ix + 1] + depths[1]),
    )
    if tuple(block.shape[n_lead : n_lead + 2]) != (stop[0] - origin[0], stop[1] - origin[1]):
        # Guard against a change of dask's overlap semantics: never compute from a
        # misplaced crop.
        raise RuntimeError(
            f"overlapped chunk {location} has shape {block.shape}, expected rows "
            f"{origin[0]}:{stop[0]} and columns {origin[1]}:{stop[1]}"
        )
    box = (out_edges[0][iy], out_edges[0][iy + 1], out_edges[1][ix], out_edges[1][ix + 1])
    shape = list(block.shape[:n_lead]) + [box[1] - box[0], box[3] - box[2]]
    if plan.color is not None:
        shape.append(plan.color)
    out = np.empty(shape, dtype=plan.out_dtype)
    upscaler.render(
        np.asarray(block), origin, out, box, plan, plane_offset=tuple(location[:n_lead])
    )
    return out


# ------------------------------------------------------------------------------ zarr


def open_zarr_array(path: str | os.PathLike) -> zarr.Array:
    """Open a zarr array read-only: an array, or the full-resolution level of a group
    (OME-Zarr ``"0"``, or the group's only array).

    Raises
    ------
    InputError
        If there is no zarr array at ``path``.
    """
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises several unrelated types for "not a zarr"
        raise InputError(f"{str(path)!r} is not a readable zarr store ({exc})") from None
    if isinstance(node, zarr.Array):
        return node
    arrays = dict(node.arrays())
    if "0" in arrays:
        return arrays["0"]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    raise InputError(
        f"zarr group {str(path)!r} holds {len(arrays)} arrays and no level '0'; "
        "give the path of one array"
    )


def lazy_estimate(
    shape: tuple[int, ...],
    dtype: Any,
    upscaler: UpscalerLike,
    source_chunks: list[int],
    chunk: int = DEFAULT_CHUNK,
) -> Estimate:
    """What upscaling a lazy array of ``shape`` in ``chunk``-sized output chunks needs in memory
    (one chunk at a time, plus the task graph) and, as ``output_bytes``, on disk (uncompressed),
    from the shape alone: see [`zarr_estimate()`][napari_srcnn.engine.memory.zarr_estimate]."""
    import torch

    from .memory import zarr_estimate

    moved, plan = upscaler.shape_plan(tuple(int(s) for s in shape), dtype)
    lead = len(plan.planes_shape)
    arch = upscaler.model.info.arch
    cpu = upscaler.device.type == "cpu"
    return zarr_estimate(
        moved,
        dtype,
        upscaler.scale,
        source_chunks=source_chunks,
        chunk=chunk,
        spatial=(lead, lead + 1),
        halo=arch.halo,
        widths=(arch.n1, arch.n2),
        channels=arch.channels,
        color=plan.color or 1,
        workers=torch.get_num_threads() if cpu else 1,
        tile=upscaler.tile_edge(),
    )


def check_zarr_run(
    source: zarr.Array,
    destination: str | os.PathLike,
    upscaler: UpscalerLike,
    chunk: int = DEFAULT_CHUNK,
) -> None:
    """Check, before any work, that ``source`` can be streamed into the new zarr array
    ``destination``: the folder exists and the array does not, the run fits in memory, and the
    result (uncompressed) fits on the disk.

    Raises
    ------
    InputError
        For the first problem, with what is needed and how to need less.
    """
    from .files import check_output_path
    from .memory import check_disk

    dst = Path(destination)
    if upscaler.options.ensemble:
        raise InputError(
            "the self-ensemble needs the image in memory; upscale a zarr array without it"
        )
    if dst.exists():
        raise InputError(f"output {str(dst)!r} already exists; remove it or choose another name")
    check_output_path(dst)
    check_image_meta(tuple(source.shape), np.dtype(source.dtype))
    estimate = lazy_estimate(
        tuple(source.shape), source.dtype, upscaler, list(source.chunks), chunk
    ).check()
    check_disk(
        dst.parent if str(dst.parent) else Path("."),
        estimate.output_bytes,
        estimate.task,
        "free some space, write to another disk, or upscale a region or a few planes at a time",
    )


class _CheckedSource:
    """A zarr array whose unreadable chunks (corrupt, truncated, deleted meanwhile) raise a
    one-line InputError naming the array, instead of a codec's bare error during the run."""

    def __init__(self, array: zarr.Array, path: str):
        self._array = array
        self._path = path
        self.shape = tuple(array.shape)
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("srcnn-zarr-source", self._path, self.shape, str(self.dtype))

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(self._array[key])
        except Exception as exc:  # codecs and stores raise many unrelated types
            from .files import one_line

            raise InputError(
                f"cannot read zarr array {self._path!r}: a chunk is corrupt or unreadable "
                f"({type(exc).__name__}: {one_line(exc, 120)})"
            ) from None


def upscale_zarr(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    upscaler: UpscalerLike,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int, int], Any] | None = None,
    scheduler: str = "synchronous",
) -> zarr.Array:
    """Stream a zarr array into a new, upscaled zarr array, chunk by chunk.

    Parameters
    ----------
    source
        Zarr array (or group, see [`open_zarr_array()`][napari_srcnn.engine.lazy.open_zarr_array]).
    destination
        New zarr array path; it must not exist yet. The array is written to a hidden
        temporary folder beside it and renamed into place when complete: a failed or
        cancelled run leaves nothing at ``destination``.
    upscaler
        Model, device and options.
    chunk
        Output chunk edge (also the zarr chunk size of the result).
    progress
        ``progress(done, total)`` after every finished task of the graph.
    scheduler
        dask scheduler. ``"synchronous"`` (default) computes one chunk at a time: memory
        stays at about one chunk and the network still uses every core through PyTorch.

    Returns
    -------
    zarr.Array
        The written array; its attributes are those of the source plus
        ``napari_srcnn`` (model and scale).
    """
    import dask.array as da
    import zarr

    from .files import atomic_dir

    dst = Path(destination)  # atomic_dir refuses an existing one
    if not dst.parent.is_dir():
        raise InputError(f"output folder {str(dst.parent)!r} does not exist")
    src = open_zarr_array(source)
    check_zarr_run(src, dst, upscaler, chunk)
    checked = _CheckedSource(src, str(source))
    lazy = upscale_dask(
        da.from_array(checked, chunks=tuple(src.chunks), asarray=False, fancy=False),
        upscaler,
        chunk=chunk,
    )
    # zarr chunks are regular: the first dask chunk of every axis sets them, and the dask
    # chunks are made to match so that no two tasks write the same zarr chunk.
    regular = tuple(c[0] for c in lazy.chunks)
    if any(len(set(c[:-1])) > 1 or c[-1] > c[0] for c in lazy.chunks):
        lazy = lazy.rechunk(regular)
    attrs = dict(src.attrs.asdict()) if hasattr(src.attrs, "asdict") else dict(src.attrs)
    attrs["napari_srcnn"] = {
        "model": upscaler.model.name,
        "arch": upscaler.model.info.arch.name,
        "scale": upscaler.scale,
        "source": str(source),
    }
    import contextlib

    import dask

    watch = _TaskProgress(progress) if progress is not None else contextlib.nullcontext()
    with atomic_dir(dst) as tmp:
        out = zarr.open_array(
            str(tmp), mode="w", shape=lazy.shape, dtype=lazy.dtype, chunks=regular
        )
        out.attrs.update(attrs)
        with dask.config.set(scheduler=scheduler), watch:
            da.store(lazy, out, lock=False)  # type: ignore[arg-type]  # zarr.Array is a valid target
    return zarr.open_array(str(dst), mode="r+")


class _TaskProgress:
    """A dask local-scheduler callback that reports finished tasks as ``(done, total)``."""

    def __init__(self, progress: Callable[[int, int], Any]):
        from dask.callbacks import Callback

        self._progress = progress
        self._done = 0
        self._total = 0
        outer = self

        class _Callback(Callback):
            def _start_state(self, dsk: Any, state: dict) -> None:
                outer._total = len(state["ready"]) + len(state["waiting"]) + len(state["finished"])

            def _posttask(
                self, key: Any, result: Any, dsk: Any, state: dict, worker_id: Any
            ) -> None:
                outer._done += 1
                outer._progress(min(outer._done, outer._total), outer._total)

        self._callback = _Callback()

    def __enter__(self) -> _TaskProgress:
        self._callback.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._callback.__exit__(*exc)
