"""The trainer: settings, progress events, validation and the training loop.

``train(data, config)`` learns an SRCNN from [`TrainingData`][napari_srcnn.engine.data.TrainingData]
and writes the best model (by validation PSNR, the starting model included) as a weights file. A
checkpoint (network, optimiser, random-generator states, best score) is written atomically every
``checkpoint_every`` steps; ``resume=`` continues a run killed at any moment and, on CPU, ends with
exactly the result of the uninterrupted run.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the same code trains with
``DistributedDataParallel`` (NCCL on GPUs, gloo on CPU): every rank draws its own patches,
gradients are averaged, rank 0 validates and writes files.

The settings and events live in [`train_config`][napari_srcnn.engine.train_config], the recipes
(optimiser, schedule, loss, starting model) in [`recipes`][napari_srcnn.engine.recipes], the
checkpoint format and resume in [`checkpoints`][napari_srcnn.engine.checkpoints], the DDP plumbing
in `distributed`.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .checkpoints import load_checkpoint, run_fingerprint, save_checkpoint
from .data import TrainingData
from .device import cpu_has_native_bf16, resolve_device
from .distributed import (
    barrier,
    end_distributed,
    gather_rng,
    init_distributed,
    rank_device,
    reduce_scalar,
    wrap_model,
)
from .evaluation import FLAT_MAX_ERROR_255, check_flat, flat_error_255
from .files import check_output_path
from .memory import training_step_estimate
from .model import SRCNN
from .model_info import ModelInfo
from .recipes import WeightAverage, batch_loss, lr_factor, optimizer, start_model
from .sampling import PatchSampler
from .train_config import (
    EventFn,
    StepEvent,
    TrainConfig,
    TrainResult,
    ValidationEvent,
    default_lr,
)
from .weights_file import save_weights

__all__ = ["train", "validate"]


# ----------------------------------------------------------------------------- helpers


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.device.type == "mps":  # MPS has no float64
        a, b = a.cpu(), b.cpu()
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


@torch.inference_mode()
def validate(
    net: SRCNN, data: TrainingData, crop: int = 256, device: str | torch.device = "cpu"
) -> tuple[float, float]:
    """Mean PSNR (dB, intensities in [0, 1]) of ``net`` and of bicubic on the validation planes.

    Each plane is centre-cropped to at most ``crop`` pixels and run as inference runs it
    (replicate padding by the halo, output clamped to [0, 1]); ``ceil(scale)`` pixels are
    shaved from the border, as in the evaluation protocol. With no validation planes,
    returns ``(nan, nan)``.
    """
    if not data.val:
        return float("nan"), float("nan")
    shave = int(math.ceil(data.scale))
    halo = net.spec.halo
    device = torch.device(device)
    scores, bicubic = [], []
    was_training = net.training
    net.eval()
    for pair in data.val:
        h, w = pair.hr.shape[-2:]
        ch, cw = min(h, crop), min(w, crop)
        y, x = (h - ch) // 2, (w - cw) // 2
        lr = torch.from_numpy(pair.lr_up[:, y : y + ch, x : x + cw]).to(device)[None]
        hr = torch.from_numpy(pair.hr[:, y : y + ch, x : x + cw]).to(device)[None]
        sr = net.body(F.pad(lr, (halo,) * 4, mode="replicate")).float().clamp(0, 1)
        cut = (..., slice(shave, ch - shave), slice(shave, cw - shave))
        scores.append(_psnr(sr[cut], hr[cut]))
        bicubic.append(_psnr(lr.clamp(0, 1)[cut], hr[cut]))
    net.train(was_training)
    return float(np.mean(scores)), float(np.mean(bicubic))


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


# ------------------------------------------------------------------------------- train


def train(
    data: TrainingData,
    config: TrainConfig,
    *,
    on_event: EventFn | None = None,
    cancel: Callable[[], bool] | None = None,
    resume: str | os.PathLike | None = None,
) -> TrainResult:
    """Train (or fine-tune) an SRCNN and write the best weights to ``config.output``.

    Parameters
    ----------
    data
        Training and validation planes ([`napari_srcnn.engine.data`][napari_srcnn.engine.data]).
    config
        The run's settings.
    on_event
        Called with a [`StepEvent`][napari_srcnn.engine.train_config.StepEvent] after each step and
        a [`ValidationEvent`][napari_srcnn.engine.train_config.ValidationEvent] after each
        validation, step 0 (the starting model) included; rank 0 only under DDP. Called on the
        training thread: keep it short.
    cancel
        Polled before every step; when it returns True the run stops after writing a
        checkpoint (so it can be resumed), keeping the best weights written so far; the
        result has ``cancelled=True``. Without validation planes, the current weights are
        written.
    resume
        A checkpoint written by an earlier run of the same config (steps and lr may
        differ). The resumed run draws the same patches as the uninterrupted one.

    Returns
    -------
    TrainResult

    Raises
    ------
    InputError
        Inconsistent settings, a checkpoint of other settings, or a diverging loss.
    WeightsError
        An unreadable start model or checkpoint.
    """
    if abs(data.scale - config.scale) > 1e-9:
        raise InputError(
            f"training data was made for ×{data.scale:g}, config asks ×{config.scale:g}"
        )
    if not data.train:
        raise InputError("no training planes")
    # Both files are checked before any work: a folder in the checkpoint's place must not
    # end a run of hours (the weights are written first, the checkpoint after them).
    check_output_path(config.output)
    check_output_path(config.checkpoint_path)
    device = resolve_device(config.device)
    rank, world, created_group = init_distributed(device)
    try:
        return _train(data, config, device, rank, world, on_event, cancel, resume)
    finally:
        end_distributed(created_group)


def _train(
    data: TrainingData,
    config: TrainConfig,
    device: torch.device,
    rank: int,
    world: int,
    on_event: EventFn | None,
    cancel: Callable[[], bool] | None,
    resume: str | os.PathLike | None,
) -> TrainResult:
    device = rank_device(device, world)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed patch shapes: pick the fastest kernels
    gen = torch.Generator().manual_seed(config.seed + 1000 * rank)
    net, start_info = start_model(config, data)
    arch = net.spec
    if config.patch_size <= 2 * arch.halo:
        raise InputError(
            f"patch size {config.patch_size} leaves no output for {arch.name} (needs > {2 * arch.halo})"
        )
    training_step_estimate(
        config.batch_size,
        config.patch_size,
        halo=arch.halo,
        widths=(arch.n1, arch.n2 * (1 + arch.extra_layers)),
        channels=arch.channels,
    ).check()
    net.to(device)
    net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    lr = config.lr or default_lr(config.recipe, start_info is not None, data.color_mode)
    opt = optimizer(net, config.recipe, lr)
    base_lrs = [g["lr"] for g in opt.param_groups]
    model = wrap_model(net, device, world)
    average = WeightAverage(net, config.ema) if config.ema > 0 else None

    def scored() -> SRCNN:
        """The network that is validated and written: the weight average when there is one."""
        return average.net() if average is not None else net

    sampler = PatchSampler(
        data.train,
        config.patch_size,
        augment=config.augment,
        stride=config.grid_stride,
        seed=config.seed,
        rank=rank,
        world=world,
        intensity=config.intensity_augment,
    )
    fingerprint = run_fingerprint(config, arch, data)
    state: dict[str, Any] = {
        "step": 0,
        "best_psnr": -math.inf,
        "start_psnr": math.nan,
        "bicubic_psnr": math.nan,
        "history": [],
        "seconds": 0.0,
        "written": False,
    }
    if resume is not None:
        state = {
            **state,
            **load_checkpoint(
                Path(resume),
                net,
                opt,
                gen,
                fingerprint,
                rank,
                averaged=None if average is None else average.net(),
            ),
        }
        if average is not None:
            average.updates = state["step"]
        if state["step"] >= config.steps:
            raise InputError(
                f"checkpoint {str(resume)!r} is at step {state['step']} already; give more "
                f"steps than that to continue (this run has {config.steps})"
            )
        sampler.position = state["step"] * config.batch_size
        recorded = state.get("output")
        if not config.output.exists() or (
            recorded is not None and recorded != str(config.output.resolve())
        ):
            # Resumed into another (or a deleted) output: its best weights are elsewhere, so
            # this file gets the best of the resumed steps.
            state["written"], state["best_psnr"] = False, -math.inf
    halo = arch.halo
    use_amp = config.amp and (
        device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())
    )
    tail_start = math.ceil(config.steps * (1.0 - config.fp32_tail))  # first fp32 step
    t0 = time.perf_counter() - state["seconds"]
    cancelled = False
    # The starting model is written only once a step has gone well (the next validation or
    # checkpoint): a run that fails at once (diverges, is out of memory) leaves no file.
    pending: dict[str, Any] = {}

    def write_best(model_net: SRCNN, record: dict, seconds: float, step: int) -> None:
        _write_model(config, model_net, data, start_info, record, seconds, step, world)
        state["written"], state["output"] = True, str(config.output.resolve())

    def flush_pending() -> None:
        if pending:
            write_best(pending["net"], pending["state"], pending["seconds"], 0)
            pending.clear()

    def report_validation(step: int, final: bool) -> None:
        psnr, bic = validate(scored(), data, config.val_crop, device)
        flat = flat_error_255(scored())
        state["bicubic_psnr"] = bic
        if step == 0:
            state["start_psnr"], state["start_flat"] = psnr, flat
        # A fine-tune never writes weights that move flat images further than
        # FLAT_MAX_ERROR_255 (or than its starting model did): black stays black. (A run from
        # scratch starts from a bicubic-equivalent net; its result is checked when it ends.)
        flat_ok = (
            start_info is None
            or step == 0
            or flat <= max(FLAT_MAX_ERROR_255, state.get("start_flat", 0.0))
        )
        # Weights still fitted to bf16 arithmetic (before the fp32 tail) are never written:
        # in fp32 use they would be off by a fraction of a percent (see TrainConfig.fp32_tail).
        # An average still carries the bf16 steps until their weight has decayed below 5 %.
        fp32_fitted = step > tail_start and (
            average is None or average.weight_of_before(tail_start) <= 0.05
        )
        eligible = step == 0 or final or not use_amp or fp32_fitted
        if math.isnan(psnr):
            improved = final  # nothing to choose by: keep the last weights
        else:
            improved = eligible and flat_ok and psnr > state["best_psnr"]
            if improved:
                state["best_psnr"] = psnr
        if improved and step == 0 and not final:
            pending.update(net=copy.deepcopy(scored()), state=dict(state), seconds=0.0)
        elif improved:
            pending.clear()
            write_best(scored(), state, time.perf_counter() - t0, step)
        else:
            flush_pending()  # the starting model stays the best
        state["history"].append({"step": step, "psnr": psnr, "bicubic_psnr": bic, "flat": flat})
        if on_event is not None:
            best = state["best_psnr"] if math.isfinite(state["best_psnr"]) else math.nan
            rejected = eligible and not flat_ok and psnr > state["best_psnr"]
            on_event(
                ValidationEvent(step, config.steps, psnr, bic, best, improved, flat, not rejected)
            )

    def write_checkpoint() -> None:
        rngs = gather_rng(gen, world, device)  # collective: every rank takes part
        if rank == 0:
            flush_pending()  # a checkpoint never points at weights that are not written
            state["seconds"] = time.perf_counter() - t0
            save_checkpoint(
                config.checkpoint_path,
                net,
                opt,
                rngs,
                state,
                fingerprint,
                averaged=None if average is None else average.net(),
            )

    if resume is None and rank == 0:
        report_validation(0, final=False)
    model.train()
    while state["step"] < config.steps:
        stop = bool(cancel is not None and cancel())
        if world > 1:  # every rank must stop at the same step
            stop = bool(
                reduce_scalar(torch.tensor(float(stop), device=device), world, "max").item()
            )
        if stop:
            cancelled = True
            if rank == 0 and not state["written"]:
                report_validation(state["step"], final=True)
            write_checkpoint()
            break
        step = state["step"]
        factor = lr_factor(step, config.steps, config.recipe)
        for g, base in zip(opt.param_groups, base_lrs, strict=True):
            g["lr"] = base * factor
        lr_batch, hr_batch = sampler.sample(config.batch_size, gen)
        lr_batch = lr_batch.to(device, non_blocking=True).contiguous(
            memory_format=torch.channels_last
        )
        inner = slice(halo, config.patch_size - halo)
        target = hr_batch.to(device, non_blocking=True)[..., inner, inner]
        amp_now = use_amp and step < tail_start
        # No autocast context at all when off: older torch has none for MPS, even disabled.
        amp = torch.autocast(device.type, dtype=torch.bfloat16) if amp_now else nullcontext()
        with amp:
            pred = model(lr_batch)
        loss, mse = batch_loss(pred.float(), target, config.recipe, config.loss)
        mse = reduce_scalar(mse, world)
        if not torch.isfinite(mse):
            raise InputError(
                f"training diverged at step {step + 1} (loss {mse.item()}); lower --lr"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if average is not None:
            average.update(net)
        state["step"] = step + 1
        done = state["step"] == config.steps
        if rank == 0:
            if on_event is not None:
                on_event(
                    StepEvent(step + 1, config.steps, float(mse.item()), opt.param_groups[0]["lr"])
                )
            if state["step"] % config.val_every == 0 or done:
                report_validation(state["step"], final=done)
        if state["step"] % config.checkpoint_every == 0 or done:
            write_checkpoint()
    flat = math.nan
    if rank == 0:
        flush_pending()
        if not config.output.exists():  # never report a file that is not there
            report_validation(state["step"], final=True)
        flat = _record_flat(config.output)
    barrier(world)
    best = state["best_psnr"] if math.isfinite(state["best_psnr"]) else math.nan
    return TrainResult(
        output=config.output,
        steps=state["step"],
        best_psnr=best,
        bicubic_psnr=state["bicubic_psnr"],
        start_psnr=state["start_psnr"],
        seconds=time.perf_counter() - t0,
        cancelled=cancelled,
        history=list(state["history"]),
        checkpoint=config.checkpoint_path,
        flat_max_error_255=flat,
    )


def _precision(device: torch.device, config: TrainConfig) -> str:
    native = device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())
    if not (config.amp and native):
        return "fp32"
    return f"bf16 autocast, fp32 for the last {config.fp32_tail:.0%} of steps"


def _hardware(device: torch.device, world: int) -> str:
    """What ran the training, for the weights' metadata: GPU name, or CPU model, core count
    and torch threads (e.g. ``"AMD EPYC, 2 CPUs, 1 torch thread"``)."""
    procs = f" × {world} processes" if world > 1 else ""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device) + procs
    if device.type == "mps":
        return f"Apple GPU (MPS), {platform.machine()}{procs}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    threads = torch.get_num_threads()
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {threads} torch thread{'s' if threads > 1 else ''}{procs}"
    )


def _record_flat(path: Path) -> float:
    """Check the written model on flat images ([`check_flat()`][napari_srcnn.engine.evaluation.check_flat])
    and store its worst error in the file's ``metrics["flat_max_error_255"]``: whether the run
    kept black black and flat regions flat (the weights are rewritten unchanged)."""
    from .weights_file import load_file

    with torch.random.fork_rng(devices=[]):  # building the net draws its init: not the caller's RNG
        loaded = load_file(path)
        error = float(check_flat(loaded)["max_error_255"])
    metrics = {**loaded.info.metrics, "flat_max_error_255": error}
    save_weights(path, loaded.net, replace(loaded.info, metrics=metrics))
    return error


def _write_model(
    config: TrainConfig,
    net: SRCNN,
    data: TrainingData,
    start: ModelInfo | None,
    state: dict,
    seconds: float,
    step: int,
    world: int,
) -> None:
    param = next(net.parameters())
    hardware = _hardware(param.device, world)
    start_name = None
    if start is not None:
        start_name = start.name if start.path is None else str(start.path)
    info = ModelInfo(
        name=config.output.name.removesuffix(".safetensors"),
        arch=net.spec,
        scale=config.scale,
        color_mode=data.color_mode,
        normalization=data.normalization,
        description=(f"fine-tuned from {start.name}" if start else "trained from scratch")
        + f" on {data.description}",
        training={
            "data": data.description,
            "train_planes": len(data.train),
            "val_planes": len(data.val),
            "normalization": data.normalization,
            "blur_sigma": data.blur_sigma,
            "degradation": data.degradation,
            "lr_levels": data.lr_levels,
            "intensity_augment": config.intensity_augment,
            "recipe": config.recipe,
            "loss": config.loss,
            "ema": config.ema,
            "steps": step,
            "batch_size": config.batch_size,
            "world_size": world,
            "patch_size": config.patch_size,
            "augment": config.augment,
            "grid_stride": config.grid_stride,
            "seed": config.seed,
            "init_from": start_name,
            "wall_seconds": round(seconds, 1),
            "hardware": hardware,
            "precision": _precision(param.device, config),
            "device": str(param.device),
            "config": json.loads(json.dumps(asdict(config), default=str)),
        },
        metrics={
            "validation": {
                "psnr": _finite_or_none(state["best_psnr"]),
                "bicubic_psnr": _finite_or_none(state["bicubic_psnr"]),
                "start_psnr": _finite_or_none(state["start_psnr"]),
                "step": step,
                "planes": len(data.val),
            }
        },
    )
    save_weights(config.output, net, info)
