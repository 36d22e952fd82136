"""What the widgets run in their worker threads: one engine call each, with expected
failures turned into an outcome for the UI thread.

``SRCNNError``s (bad settings, a missing model, an unavailable device, unusable training
data) and cancellation are returned, not raised, so that napari's worker does not report
them as crashes; the widget shows them as one-line notifications. Any other exception is a
bug: it propagates and napari shows it with its traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.files import one_line
from ._common import AUTO_START, SCRATCH
from ._intensity import maps_metadata, normalization_maps, outside_limits

__all__ = ["TrainOutcome", "TrainRequest", "UpscaleOutcome", "run_training", "run_upscale"]


@dataclass
class UpscaleOutcome:
    """What a run hands back to the UI thread: a result, or why there is none."""

    result: Any = None  # numpy, or a lazy dask array
    error: str | None = None
    cancelled: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    maps: list[Any] = field(default_factory=list)  # the engine's Normalization(s)
    #: "above"/"below": the result, unlike its source, lies beyond the contrast limits.
    outside: str | None = None


def run_upscale(
    data: Any,
    model: str | None,
    options: dict[str, Any],
    progress: Any = None,
    cancel: Any = None,
    lazy: bool = False,
    limits: tuple[float, float] | None = None,
    plane_index: tuple[int, ...] | None = None,
) -> UpscaleOutcome:
    """Run the engine on ``data`` (worker thread). Expected failures become an outcome.

    ``SRCNNError``s (bad settings, missing model, unavailable device) and cancellation are
    returned, not raised, so that napari's worker does not report them as crashes; any
    other exception propagates and napari shows it with its traceback.

    With ``lazy``, ``data`` is a dask array and so is the result: the engine only plans
    the work, chunks are computed when napari displays them (no progress, no cancel).
    With ``plane_index`` (a preview), only that plane of the layer is computed, with the
    intensity map(s) of the whole layer: the preview is the full run's plane. Otherwise
    dask/zarr data is read into memory here, off the UI thread, and the engine runs tile by
    tile with progress and cancel.

    ``limits`` are the source layer's contrast limits: the outcome says when the result
    would show as one flat colour within them while the source does not (an intensity map
    that does not suit the data).
    """
    from ..engine.inference import Upscaler
    from ..engine.options import UpscaleOptions
    from ..errors import CancelledError, SRCNNError

    try:
        upscaler = Upscaler(model, UpscaleOptions(**options))
        start = time.perf_counter()
        if plane_index is not None:
            array = _planes_as_dask(data, len(plane_index))
            result = _preview(upscaler, array, plane_index, progress, cancel)
        else:
            array = data if lazy else np.asarray(data)
            result = upscaler(array, progress=progress, cancel=cancel)
        seconds = time.perf_counter() - start
        # What ran: with no model named, the engine picks one for the image (photo or
        # microscopy); its map(s) and strength(s), from the plan it ran.
        ran = upscaler.for_image(tuple(array.shape))
        plan = ran.last_plan or ran.plan(array)[1]
        maps = normalization_maps(plan)
    except CancelledError:
        return UpscaleOutcome(cancelled=True)
    except SRCNNError as exc:
        return UpscaleOutcome(error=one_line(exc))
    info = ran.model.info
    settings = {
        "model": ran.model.name,
        "model_file": str(info.path) if info.path else None,
        "arch": info.arch.name,
        "model_scale": info.scale,
        "model_color_mode": info.color_mode,
        "scale": ran.scale,
        "channels": ran.options.channels,
        "channel_axis": ran.options.channel_axis,
        "rgb": ran.options.rgb,
        "tile": ran.options.tile,
        "normalization": ran.options.normalization,
        "percentiles": list(ran.options.percentiles),
        "normalization_maps": maps_metadata(maps),
        "precision": ran.options.precision,
        "precision_used": getattr(ran.runner, "precision", ran.options.precision),
        "ensemble": ran.options.ensemble,
        "strength": ran.options.strength,
        "strengths": list(plan.strengths or (1.0,)),
        "strength_used": plan.strength_summary(),
        "device": str(ran.device),
        "seconds": round(seconds, 3),
        "lazy": lazy,
    }
    outside = outside_limits(result, limits)
    source = array if plane_index is None else np.asarray(array[plane_index])
    if outside is not None and outside_limits(source, limits) is not None:
        outside = None  # the source shows flat too: its limits are the user's choice
    return UpscaleOutcome(
        result=result, settings=settings, seconds=seconds, maps=maps, outside=outside
    )


def _planes_as_dask(data: Any, lead: int) -> Any:
    """``data`` as a dask array (numpy: a view; zarr & co: read on compute) with one
    plane of its ``lead`` leading axes per chunk."""
    import dask.array as da

    if hasattr(data, "dask"):
        return data
    return da.from_array(data, chunks=(1,) * lead + tuple(data.shape[lead:]))


def _preview(
    upscaler: Any, data: Any, plane_index: tuple[int, ...], progress: Any, cancel: Any
) -> np.ndarray:
    """Plane ``plane_index`` (over the leading axes) of the result of dask array ``data``.

    The engine's lazy path plans the whole layer (its intensity map from a seeded sample
    of the whole, exactly as a full run's) and only the plane's output chunks are
    computed, one by one, with progress and cancel between them.
    """
    from ..errors import CancelledError

    plane = upscaler(data)[plane_index]
    out = np.empty(plane.shape, dtype=plane.dtype)
    starts = [np.cumsum((0, *sizes)) for sizes in plane.chunks]
    blocks = list(np.ndindex(*plane.numblocks))
    for done, block in enumerate(blocks, 1):
        if cancel is not None and cancel():
            raise CancelledError("preview cancelled")
        where = tuple(slice(s[i], s[i + 1]) for s, i in zip(starts, block, strict=True))
        out[where] = plane.blocks[block].compute(scheduler="threads")
        if progress is not None:
            progress(done, len(blocks))
    return out


@dataclass
class TrainRequest:
    """Everything a training run needs, taken from the widget on the UI thread."""

    hr: list[Any]
    rgb: list[bool]
    names: list[str]
    lr: Any | None
    lr_rgb: bool
    scale: float
    color_mode: str
    start: str | None  # a model name or file, SCRATCH, or AUTO_START
    arch: str
    steps: int
    lr_rate: float | None
    batch_size: int
    patch_size: int
    val_fraction: float
    val_every: int
    device: str
    output: Path


@dataclass
class TrainOutcome:
    """What a run hands back to the UI thread."""

    result: Any = None
    error: str | None = None
    cancelled: bool = False  # before training started (while the pairs were made)
    init_from: str | None = None
    train_planes: int = 0
    val_planes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _train_leaving_a_core(data: Any, config: Any, on_event: Any, cancel: Any) -> Any:
    """``train()`` on all CPU threads but one, in a thread of its own at a lower scheduling
    priority (nice +10, Linux), so that the viewer's thread and the plot's drawing thread,
    which share the GIL, find a core at once: on 2 cores the UI stalled up to 130 ms while
    training used both, and a GIL holder descheduled by the training thread stalled it too."""
    import torch

    from ..engine.training import train

    outcome: dict[str, Any] = {}

    threads = torch.get_num_threads()

    def run() -> None:
        if sys.platform.startswith("linux"):  # per-thread nice; elsewhere the ID is no TID
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        torch.set_num_threads(max(1, threads - 1))
        try:
            outcome["result"] = train(data, config, on_event=on_event, cancel=cancel)
        except BaseException as exc:  # re-raised in the worker thread below
            outcome["error"] = exc
        finally:
            torch.set_num_threads(threads)

    runner = threading.Thread(target=run, name="srcnn-train")
    runner.start()
    runner.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def run_training(request: TrainRequest, on_event: Any = None, cancel: Any = None) -> TrainOutcome:
    """Build the training data and train (worker thread). ``SRCNNError`` → an outcome."""
    from ..engine.data import training_data_from_arrays
    from ..engine.io import ImageMeta
    from ..engine.model import ArchSpec
    from ..engine.train_config import TrainConfig
    from ..engine.weights import fine_tune_start
    from ..errors import CancelledError, SRCNNError

    try:
        arrays = [np.asarray(a) for a in request.hr]  # dask/zarr: computed off the UI thread
        metas = [
            ImageMeta.default(a.shape, rgb=rgb) for a, rgb in zip(arrays, request.rgb, strict=True)
        ]
        lr_arrays = lr_metas = None
        if request.lr is not None:
            lr = np.asarray(request.lr)
            lr_arrays, lr_metas = [lr], [ImageMeta.default(lr.shape, rgb=request.lr_rgb)]
        data = training_data_from_arrays(
            arrays,
            request.scale,
            request.color_mode,
            metas=metas,
            lr_arrays=lr_arrays,
            lr_metas=lr_metas,
            patch_size=request.patch_size,
            val_fraction=request.val_fraction,
            description="napari layer(s) " + ", ".join(request.names),
            cancel=cancel,
        )
        init_from = request.start
        if init_from == SCRATCH:
            init_from = None
        elif init_from == AUTO_START:
            init_from = fine_tune_start(request.scale, data.color_mode)
        config = TrainConfig(
            output=request.output,
            scale=request.scale,
            arch=ArchSpec.parse(request.arch),
            init_from=init_from,
            steps=request.steps,
            batch_size=request.batch_size,
            lr=request.lr_rate,
            patch_size=request.patch_size,
            val_every=request.val_every,
            checkpoint_every=request.val_every,
            device=request.device,
        )
        result = _train_leaving_a_core(data, config, on_event, cancel)
    except CancelledError:  # before the first step: nothing trained, nothing written
        return TrainOutcome(cancelled=True)
    except SRCNNError as exc:
        return TrainOutcome(error=one_line(exc))
    return TrainOutcome(
        result=result, init_from=init_from, train_planes=len(data.train), val_planes=len(data.val)
    )
