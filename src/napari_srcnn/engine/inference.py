"""Upscaling arrays with an SRCNN model: the one function every front end calls.

``upscale(image, model, scale)`` handles 2-D grayscale, RGB(A) (network on Y or on RGB),
multichannel (per channel) and n-D arrays (plane by plane over the leading axes, only the last two
spatial axes are up-sampled), keeps the dtype, and works tile by tile so that memory stays bounded
and the result does not depend on the tile size. A dask array comes back as a lazy dask array
computed chunk by chunk ([`napari_srcnn.engine.lazy`][napari_srcnn.engine.lazy]).

How a tile is made exact: the output is cut into ``tile × tile`` blocks; each block is grown
by the network's receptive-field radius (``halo``) on every side, the bicubic up-sampling of
just that region is computed from the low-resolution pixels it needs (with the full-image
resize weights, so it is bit-identical to up-sampling the whole image), the image border is
padded by replication, and the network runs with valid convolutions. The untiled result is
the one-tile case of the same code.

Where the time goes, and what keeps it short (measured in ``benchmarks/``, see
``docs/benchmarks.md``):

- The network is ~90 % of the work: [`NetworkRunner`][napari_srcnn.engine.runner.NetworkRunner] runs
  it in cache-sized channels-last blocks with the last layer as one matrix product on the CPU, and
  in bf16 autocast with blocks sized from the free memory on CUDA.
- On the CPU the tiles are computed in cells on the block threads, one single-threaded torch per
  core ([`run_groups()`][napari_srcnn.engine.runner.run_groups]): every cell goes from the stored
  pixels to the stored output (bicubic, network, colour, dtype) on one core, so the pre- and
  post-processing run side by side too instead of on one thread between network calls.
- Integer factors up-sample with shifted slices instead of gathers
  ([`resize_axis()`][napari_srcnn.engine.resize.resize_axis]), and colour stays interleaved from the
  stored image to the stored result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from functools import partial
from typing import Any

import numpy as np
import torch

from ..errors import CancelledError, InputError
from .calibration import plan_strengths
from .cells import Plan, cell_split, compute_cell, store
from .color import Normalization
from .device import resolve_device
from .files import one_line
from .memory import Estimate, upscale_estimate
from .model import SRCNN
from .options import (
    UpscaleOptions,
    check_image_meta,
)
from .planning import channel_axis, color_mode, has_color_axis, make_plan, normalization, plan_array
from .runner import NetworkRunner, run_groups, split_range
from .weights import default_model_name, load_model
from .weights_file import LoadedModel

__all__ = [
    "Upscaler",
    "upscale",
]

# The installed model a run without a named model uses, by ``channels`` (see
# Upscaler.for_image(): ``"auto"`` picks per image between photographs and the rest).
_FAMILY = {"auto": "y", "y": "y", "rgb": "rgb", "per-channel": "per-channel"}

# Largest tile on CUDA: progress and cancel stay responsive (~0.1 s per tile on an H100).
GPU_MAX_TILE = 2048

# How an in-memory upscale that does not fit can need less (the CLI names its own ways).
_ADVICE = (
    "use a smaller scale, crop the image, or open it lazily (a zarr or dask array), "
    "which is upscaled chunk by chunk"
)

ProgressFn = Callable[[int, int], Any]
CancelFn = Callable[[], bool]


def _check_array(image: Any) -> np.ndarray:
    # zarr / memmap / other array-likes are materialised here; dask arrays never get here.
    try:
        arr = np.asarray(image)
    except (ValueError, TypeError) as exc:  # a ragged list, an object that is not an array
        raise InputError(
            f"cannot make an image array of this {type(image).__name__}: {one_line(exc, 120)}"
        ) from None
    check_image_meta(arr.shape, arr.dtype)
    return arr


def _is_dask(image: Any) -> bool:
    return type(image).__module__.startswith("dask.") and hasattr(image, "dask")


class Upscaler:
    """A model, a device and options, ready to upscale arrays.

    Build one to upscale many images with the same settings (the model is loaded once), or call
    [`upscale()`][napari_srcnn.engine.inference.upscale] for a single image. An Upscaler can be
    pickled (it travels as its weights and options, and re-resolves ``options.device`` where it is
    unpickled), so the lazy dask path runs unchanged on the workers of a ``dask.distributed``
    cluster.

    Parameters
    ----------
    model
        Registry name, weights file path, a
        [`LoadedModel`][napari_srcnn.engine.weights_file.LoadedModel], or ``None`` for the default
        installed model for ``options.scale`` and the colour mode.
    options
        The run's settings.
    """

    def __init__(
        self, model: str | LoadedModel | None = None, options: UpscaleOptions | None = None
    ):
        self.options = options or UpscaleOptions()
        self.device = resolve_device(self.options.device)
        # No model named: the installed one for the scale, picked per image (see for_image()).
        self.auto_model = model is None
        self._family: dict[str, Upscaler] = {}
        if model is None:
            if self.options.scale is None:
                raise InputError("give a scale or a model")
            model = default_model_name(self.options.scale, _FAMILY[self.options.channels])
        self.model = load_model(model, scale=self.options.scale, device=self.device)
        self.model.net.eval()
        if self.options.scale is None:
            self.options = replace(self.options, scale=self.model.info.scale)
        # channels_last: 1.8-3x faster convolutions on the CPU and on cuDNN.
        self.model.net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._runner: NetworkRunner | None = None
        self.last_plan: Plan | None = None  # of the last image planned (see plan())

    @property
    def scale(self) -> float:
        assert self.options.scale is not None
        return float(self.options.scale)

    # ------------------------------------------------------------------ pickling

    def __getstate__(self) -> dict[str, Any]:
        # Weights and options only: the runner's packed weights and device copies are
        # rebuilt on the other side, on whatever device "auto" means there.
        state = {
            k: v.detach().to("cpu").contiguous() for k, v in self.model.net.state_dict().items()
        }
        return {"options": self.options, "info": self.model.info, "state": state}

    def __setstate__(self, state: dict[str, Any]) -> None:
        import warnings

        from ..errors import ScaleMismatchWarning

        net = SRCNN(state["info"].arch)
        net.load_state_dict(state["state"])
        # The mismatch was reported where this Upscaler was made; a copy on every dask
        # worker (or every chunk of a process pool) must not repeat it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScaleMismatchWarning)
            self.__init__(LoadedModel(net, state["info"]), state["options"])  # type: ignore[misc]

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        # dask would otherwise pickle the whole model to name every graph it is part of.
        digest = hashlib.sha1()
        for key, value in self.model.net.state_dict().items():
            digest.update(key.encode())
            digest.update(value.detach().float().cpu().contiguous().numpy().tobytes())
        return (type(self).__name__, repr(self.options), self.model.info.arch, digest.hexdigest())

    # ------------------------------------------------------------------ planning

    def color_mode_for(self, shape: tuple[int, ...]) -> str:
        """``"y"``, ``"rgb"`` or ``"per-channel"``: how an array of ``shape`` will be processed."""
        return color_mode(self.options, self.model, shape)

    def normalization_for(self, image: Any) -> Normalization:
        """The intensity mapping for ``image`` (numpy, or dask: then from a sample)."""
        return normalization(self.options, image)

    def for_image(self, shape: tuple[int, ...]) -> Upscaler:
        """The Upscaler that runs an image of ``shape``: ``self``, unless no model was named.

        Then ``channels="auto"`` picks by the image: a colour photograph (a last axis of 3 or 4
        that is colour, no channel axis) gets the installed photo model (Y), everything else
        (grayscale, stacks, multichannel scientific data) the installed microscopy model
        (``color_mode="per-channel"``, applied per channel), or the photo model where none is
        installed. The choice is cached per family; ``model.name`` says which ran.
        """
        if not self.auto_model or self.options.channels != "auto":
            return self
        photo = self.options.channel_axis is None and has_color_axis(self.options, shape)
        name = default_model_name(self.scale, "y" if photo else "per-channel")
        if name == self.model.name:
            return self
        if name not in self._family:
            other = Upscaler(load_model(name, scale=self.scale, device=self.device), self.options)
            self._family[name] = other
        return self._family[name]

    def check(
        self,
        shape: tuple[int, ...],
        dtype: Any,
        *,
        input_bytes: int = 0,
        extra_bytes: int = 0,
        advice: str = "",
    ) -> Estimate:
        """Check, from its shape and dtype alone, that an image can be upscaled (dimensions,
        dtype, colour mode, plane size) and that the run fits in memory; nothing is allocated.

        ``input_bytes`` is memory the image will take that is not allocated yet (a file still to
        be read), ``extra_bytes`` anything else the caller will hold. Raises an
        [`InputError`][napari_srcnn.errors.InputError] that says how much memory is needed and
        how to need less (``advice`` replaces the default hint); returns the estimate.
        """
        shape = tuple(int(s) for s in shape)
        dtype = np.dtype(dtype)
        check_image_meta(shape, dtype)
        target = self.for_image(shape)
        moved, plan = target.shape_plan(shape, dtype)
        lead = len(plan.planes_shape)
        arch = target.model.info.arch
        cpu = target.device.type == "cpu"
        return upscale_estimate(
            moved,
            dtype,
            target.scale,
            spatial=(lead, lead + 1),
            tile=target.tile_edge(),
            halo=arch.halo,
            widths=(arch.n1, arch.n2),
            channels=arch.channels,
            workers=torch.get_num_threads() if cpu else 1,
            block=target.runner.block or target.tile_edge(),
            ensemble=target.options.ensemble,
            input_bytes=input_bytes,
            extra_bytes=extra_bytes,
            advice=advice or _ADVICE,
        ).check()

    def shape_plan(self, shape: tuple[int, ...], dtype: Any) -> tuple[tuple[int, ...], Plan]:
        """The shape with its channel axis (if any) first, and the plan of an image of ``shape``
        and ``dtype`` but for its intensity map (a placeholder): from the shape alone, so that
        every bad combination of image and options is found before any data is read."""
        axis = channel_axis(self.options, shape)
        moved = shape  # the channel axis first, as plan() moves it
        if axis is not None:
            moved = (shape[axis], *(s for i, s in enumerate(shape) if i != axis % len(shape)))
        none = Normalization("none", 0.0, 1.0)
        return moved, make_plan(self.options, self.model, moved, np.dtype(dtype), none, axis)

    def plan(self, image: Any) -> tuple[Any, Plan]:
        """``image`` with its channel axis (if any) moved first, and how it will be upscaled.

        Works on NumPy and dask arrays alike (the dask one stays lazy; a measured strength reads
        a few crops of it, see [`calibration`][napari_srcnn.engine.calibration]). The plan is
        kept as ``last_plan``, what the front ends report."""
        arr, plan = plan_array(self.options, self.model, image)
        plan = replace(plan, strengths=plan_strengths(self, arr, plan, self.options.strength))
        self.last_plan = plan
        return arr, plan

    def tile_edge(self) -> int:
        """Output tile edge actually used: ``options.tile``, grown on CUDA to what the free
        device memory allows (up to `GPU_MAX_TILE`; per-tile overheads would
        otherwise dominate a fast GPU). The result does not depend on it."""
        t = self.options.tile
        if self.device.type == "cuda":
            t = max(t, min(self.runner.cuda_block(), GPU_MAX_TILE))
        return t

    def _tiles(self, y0: int, y1: int, x0: int, x1: int) -> list[tuple[int, int, int, int]]:
        # Equal tiles (at most `tile` per side): equal work for the block threads.
        t = self.tile_edge()
        return [
            (y0 + a, y0 + b, x0 + c, x0 + d)
            for a, b in split_range(y1 - y0, t)
            for c, d in split_range(x1 - x0, t)
        ]

    @property
    def runner(self) -> NetworkRunner:
        """The network runner for the current precision (rebuilt when options change); its
        ``precision`` says what ``"auto"`` became (the model's bf16 check decides on the CPU)."""
        if self._runner is None or self._runner.requested != self.options.precision:
            self._runner = NetworkRunner(
                self.model.net,
                self.device,
                self.options.precision,
                metrics=self.model.info.metrics,
            )
        return self._runner

    # ------------------------------------------------------------------ running

    def __call__(
        self,
        image: Any,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> Any:
        """Upscale ``image`` and return a new array of the same dtype.

        ``progress(done, total)`` is called after every tile; ``cancel()`` is polled before every
        tile and raises [`CancelledError`][napari_srcnn.errors.CancelledError] when it returns True.
        A dask array gives a lazy dask array back at once (see
        [`napari_srcnn.engine.lazy.upscale_dask()`][napari_srcnn.engine.lazy.upscale_dask]; the
        callbacks are not used then: the work happens when it is computed).
        """
        if not _is_dask(image):
            image = _check_array(image)
            self.check(image.shape, image.dtype)  # before anything is allocated
        target = self.for_image(tuple(image.shape))
        if target is not self:
            return target(image, progress=progress, cancel=cancel)
        if _is_dask(image):
            if self.options.ensemble:
                raise InputError(
                    "the self-ensemble needs the image in memory; compute the dask array first "
                    "or upscale it without ensemble"
                )
            from .lazy import upscale_dask

            return upscale_dask(image, self)
        arr, plan = self.plan(_check_array(image))
        ax = plan.channel_axis
        if self.options.ensemble:
            out = self._ensemble(arr, plan, progress, cancel)
        else:
            out = np.empty(plan.out_shape, dtype=plan.out_dtype)
            H, W = plan.hr_shape
            n_planes = int(np.prod(plan.planes_shape, dtype=np.int64))
            total = n_planes * len(self._tiles(0, H, 0, W))
            self.render(
                arr, (0, 0), out, (0, H, 0, W), plan, progress=progress, cancel=cancel, total=total
            )
        if ax is not None:
            out = np.moveaxis(out, 0, ax)
        return out

    def render(
        self,
        lr: np.ndarray,
        lr_origin: tuple[int, int],
        out: np.ndarray,
        box: tuple[int, int, int, int],
        plan: Plan,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        total: int = 0,
        plane_offset: tuple[int, ...] = (),
    ) -> None:
        """Compute output rows/columns ``box = (y0, y1, x0, x1)`` of every plane into ``out``.

        ``lr`` holds the low-resolution pixels from ``lr_origin`` (row, column) on, enough of them
        for ``box`` (see [`lr_range()`][napari_srcnn.engine.cells.lr_range]); ``out`` is
        ``box``-sized. The whole-image resize weights make any box exactly the matching piece of the
        whole result. ``plane_offset`` is the index of ``lr``'s first plane in the whole array (a
        dask chunk's), which picks each plane's channel map.
        """
        y0, y1, x0, x1 = box
        tiles = self._tiles(y0, y1, x0, x1)
        runner = self.runner  # made here, not by the block threads
        work = [
            (index, t) for index in np.ndindex(*lr.shape[: len(plan.planes_shape)]) for t in tiles
        ]

        # On the CPU the block threads compute whole cells side by side, each from the
        # low-resolution pixels to the stored output (bicubic, the network in its cache-sized
        # blocks, colour, dtype): the pre- and post-processing run in parallel too, on data
        # still in the cache. On CUDA a tile is one cell.
        cpu = self.device.type == "cpu"
        workers = torch.get_num_threads() if cpu and runner.parallel_blocks else 1
        split = cell_split(len(work), workers, tiles[0]) if cpu else 1
        if len(work) * split * split < workers:
            # Fewer cells than threads (a small image on a many-core machine): whole tiles
            # here, their network blocks side by side instead.
            workers, split = 1, 1

        def cells(tile: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
            ty0, ty1, tx0, tx1 = tile
            return [
                (ty0 + a, ty0 + b, tx0 + c, tx0 + d)
                for a, b in split_range(ty1 - ty0, -(-(ty1 - ty0) // split))
                for c, d in split_range(tx1 - tx0, -(-(tx1 - tx0) // split))
            ]

        offset = plane_offset or (0,) * len(plan.planes_shape)

        def compute(index: tuple[int, ...], cell: tuple[int, int, int, int]) -> None:
            cy0, cy1, cx0, cx1 = cell
            whole = tuple(i + o for i, o in zip(index, offset, strict=True))
            norm = plan.norm_at(whole)
            result = self._cell(lr[index], lr_origin, plan, cell, norm, plan.strength_at(whole))
            store(out[index][cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0], result, norm)

        def groups() -> Iterator[list[Callable[[], None]]]:
            for index, tile in work:
                if cancel is not None and cancel():
                    raise CancelledError("upscaling cancelled")
                yield [partial(compute, index, cell) for cell in cells(tile)]

        for done in run_groups(groups(), workers):
            if progress is not None:
                progress(done + 1, total or len(work))

    def _ensemble(
        self,
        arr: np.ndarray,
        plan: Plan,
        progress: ProgressFn | None,
        cancel: CancelFn | None,
    ) -> np.ndarray:
        """The mean of the 8 flips and rotations of ``arr``, each upscaled and turned back
        (in float, rounded to the output dtype once at the end)."""
        lead = len(plan.planes_shape)
        axes = (lead, lead + 1)
        n_planes = int(np.prod(plan.planes_shape, dtype=np.int64))
        acc = np.zeros(plan.out_shape, dtype=np.float64)
        runs = []
        for k in range(8):
            turned = np.rot90(np.flip(arr, axes[1]) if k >= 4 else arr, k % 4, axes=axes)
            h, w = turned.shape[axes[0]], turned.shape[axes[1]]
            turned_shape = list(plan.out_shape)
            if k % 2:
                a, b = axes
                turned_shape[a], turned_shape[b] = turned_shape[b], turned_shape[a]
            runs.append((k, np.ascontiguousarray(turned), (h, w), tuple(turned_shape)))
        per_run = [
            n_planes * len(self._tiles(0, shape[axes[0]], 0, shape[axes[1]]))
            for _, _, _, shape in runs
        ]
        total = sum(per_run)
        done_before = 0
        # Each run in float, rounded once at the end: float32, or float64 where float32 would
        # lose the data (float64 beyond its range, integers wider than its 24-bit mantissa).
        dtype = plan.out_dtype
        work = (
            np.dtype("f8")
            if dtype.itemsize > 4 or dtype.kind in "ui" and dtype.itemsize >= 4
            else np.dtype("f4")
        )
        for (k, turned, lr_shape, out_shape), count in zip(runs, per_run, strict=True):
            sub = replace(plan, lr_shape=lr_shape, out_shape=out_shape, out_dtype=work)
            out = np.empty(out_shape, dtype=work)
            H, W = out_shape[axes[0]], out_shape[axes[1]]

            def report(done: int, _total: int, offset: int = done_before) -> None:
                if progress is not None:
                    progress(offset + done, total)

            self.render(turned, (0, 0), out, (0, H, 0, W), sub, report, cancel, count)
            back = np.rot90(out, -(k % 4), axes=axes)
            back = np.flip(back, axes[1]) if k >= 4 else back
            # Each run an eighth before the sum: eight values near float64's limit would
            # overflow their sum.
            acc += back * 0.125
            done_before += count
        if dtype.kind in "ui":
            info = np.iinfo(dtype)
            np.rint(acc, out=acc)
            np.clip(acc, info.min, info.max, out=acc)
            np.nan_to_num(acc, copy=False, nan=0.0)
        else:  # clipped at the dtype's limits only (NaN, missing data, stays)
            np.clip(acc, float(np.finfo(dtype).min), float(np.finfo(dtype).max), out=acc)
        return acc.astype(dtype)

    def _cell(
        self,
        plane: np.ndarray,
        origin: tuple[int, int],
        plan: Plan,
        box: tuple[int, int, int, int],
        norm: Normalization | None = None,
        strength: float = 1.0,
    ) -> torch.Tensor:
        return compute_cell(self.runner, plane, origin, plan, box, norm, strength)


def upscale(
    image: Any,
    model: str | LoadedModel | None = None,
    scale: float | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    **options: Any,
) -> Any:
    """Upscale an image with SRCNN.

    Parameters
    ----------
    image
        ``(..., H, W)`` array, or ``(..., H, W, 3|4)`` for RGB(A); uint8, uint16, other
        integers or float. Leading axes (z, t, channels) are processed plane by plane.
        A dask array (e.g. ``dask.array.from_zarr``) is upscaled lazily.
    model
        Registry name (see ``napari-srcnn models``), weights file, loaded model, or ``None``
        for the installed model nearest ``scale``.
    scale
        Up-sampling factor (``None``: the model's).
    progress, cancel
        Callbacks, see `Upscaler.__call__()`.
    **options
        Fields of [`UpscaleOptions`][napari_srcnn.engine.options.UpscaleOptions] (``channels``,
        ``channel_axis``, ``tile``, ``device``, ``normalization``, ``percentiles``, ``precision``).

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same dtype as ``image``; the last two spatial axes are ``ceil(n * scale)`` long.
        A dask input gives a lazy dask array (chunk-wise, exact seams).
    """
    unknown = sorted(set(options) - {f.name for f in fields(UpscaleOptions)} - {"scale"})
    if unknown:
        known = ", ".join(f.name for f in fields(UpscaleOptions) if f.name != "scale")
        raise InputError(f"unknown option {unknown[0]!r}; the options are {known}")
    opts = UpscaleOptions(scale=scale, **options)
    return Upscaler(model, opts)(image, progress=progress, cancel=cancel)
