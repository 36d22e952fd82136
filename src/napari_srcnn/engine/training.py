"""The trainer: settings, progress events, validation and the training loop.

``train(data, config)`` learns an SRCNN from :class:`~napari_srcnn.engine.data.TrainingData`
and writes the best model (by validation PSNR, the starting model included) as a weights
file. A checkpoint (network, optimiser, random-generator states, best score) is written
atomically every ``checkpoint_every`` steps; ``resume=`` continues a run killed at any
moment and, on CPU, ends with exactly the result of the uninterrupted run.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the same code trains with
``DistributedDataParallel`` (NCCL on GPUs, gloo on CPU): every rank draws its own patches,
gradients are averaged, rank 0 validates and writes files.

The recipes (optimiser, schedule, loss, starting model) live in
:mod:`~napari_srcnn.engine.recipes`, the checkpoint format and resume in
:mod:`~napari_srcnn.engine.checkpoints`, the DDP plumbing in
:mod:`~napari_srcnn.engine.distributed`.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .checkpoints import load_checkpoint, read_checkpoint_state, run_fingerprint, save_checkpoint
from .data import TrainingData
from .device import resolve_device
from .distributed import (
    barrier,
    end_distributed,
    gather_rng,
    init_distributed,
    rank_device,
    reduce_scalar,
    wrap_model,
)
from .model import SRCNN, ArchSpec
from .recipes import INITS, RECIPES, batch_loss, lr_factor, optimizer, start_model
from .sampling import PatchSampler
from .weights import ModelInfo, save_weights

__all__ = [
    "INITS",
    "RECIPES",
    "StepEvent",
    "TrainConfig",
    "TrainResult",
    "ValidationEvent",
    "read_checkpoint_state",
    "steps_for_epochs",
    "train",
    "validate",
]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (shared by the API, the CLI and the widget).

    Parameters
    ----------
    output
        Where the best weights go (``.safetensors``).
    scale
        The factor to learn; must be the training data's.
    arch
        Architecture for training from scratch (ignored when ``init_from`` is given).
    init_from
        Model name or weights file to fine-tune; ``None`` trains from scratch.
    recipe
        ``"adam"`` (default: Adam, linear warm-up then cosine decay to 1 %, loss = mean
        squared error) or ``"paper"`` (Dong et al.: SGD with momentum 0.9, lr 1e-4 for all
        layers but the last and 1e-5 for the last, Caffe's Euclidean loss
        ``Σ(F(Y) − X)² / 2N`` summed over the valid centre, constant learning rate).
    init
        Start of a run from scratch, one of :data:`INITS`; ``None`` (default) picks the
        recipe's: ``identity`` for adam (the untrained net equals bicubic and learns the
        residual: on SunHays80 ×3 it reaches in 750 steps the held-out PSNR a PyTorch-init
        start needed 7,000 for), ``paper`` for paper (weights ~ N(0, 0.001²), biases 0).
    steps
        Optimiser steps (see :func:`steps_for_epochs`).
    batch_size
        Sub-images per step (per process under DDP).
    lr
        Base learning rate (default: 1e-3 for adam from scratch, 1e-4 for adam fine-tuning,
        1e-4 for paper; the paper's last layer always gets a tenth of it).
    patch_size
        Sub-image size fed to the network (``fsub``, 33 in the paper); the loss is taken
        on the valid centre, ``patch_size - 2*halo`` wide.
    augment
        Random flips and 90° rotations of the sub-images.
    grid_stride
        ``None``: random crops; an integer: the paper's regular sub-image grid with this
        stride (14 in the paper), shuffled every epoch.
    val_every, checkpoint_every
        Validation and checkpoint periods in steps (both also run at the end).
    val_crop
        Validation planes are centre-cropped to at most this size (keeps validation fast).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    amp
        bf16 autocast on CUDA (ignored on CPU).
    seed
        Seed of every random draw (reproducible on CPU with the same thread count).
    checkpoint
        Checkpoint file (default ``OUT.ckpt.safetensors`` next to ``output``).
    """

    output: Path
    scale: float = 3.0
    arch: ArchSpec = field(default_factory=ArchSpec)
    init_from: str | None = None
    recipe: str = "adam"
    init: str | None = None
    steps: int = 2000
    batch_size: int = 64
    lr: float | None = None
    patch_size: int = 33
    augment: bool = True
    grid_stride: int | None = None
    val_every: int = 200
    checkpoint_every: int = 200
    val_crop: int = 256
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    checkpoint: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "output", Path(self.output))
        if self.checkpoint is not None:
            object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        if self.recipe not in RECIPES:
            raise InputError(f"recipe {self.recipe!r} is not one of {', '.join(RECIPES)}")
        if self.init is not None and self.init not in INITS:
            raise InputError(f"init {self.init!r} is not one of {', '.join(INITS)}")
        for name in (
            "steps",
            "batch_size",
            "val_every",
            "checkpoint_every",
            "val_crop",
            "patch_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(
                    f"{name.replace('_', '-')} must be a positive integer, got {value!r}"
                )
        if self.grid_stride is not None and (
            isinstance(self.grid_stride, bool)
            or not isinstance(self.grid_stride, int)
            or self.grid_stride < 1
        ):
            raise InputError(f"grid stride must be a positive integer, got {self.grid_stride!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not (
            isinstance(self.scale, (int, float))
            and math.isfinite(self.scale)
            and 1 < self.scale <= 16
        ):
            raise InputError(f"scale {self.scale!r} must be a number above 1 and at most 16")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"learning rate {self.lr!r} must be positive")
        if self.init_from is None and self.patch_size <= 2 * self.arch.halo:
            raise InputError(
                f"patch size {self.patch_size} leaves no output for {self.arch.name} "
                f"(needs > {2 * self.arch.halo})"
            )
        if not self.output.name.endswith(".safetensors"):
            raise InputError(f"output {str(self.output)!r} must end in .safetensors")

    @property
    def start(self) -> str:
        """How a run from scratch starts (``init``, or the recipe's default)."""
        return self.init or ("paper" if self.recipe == "paper" else "identity")

    @property
    def checkpoint_path(self) -> Path:
        """The checkpoint file (``OUT.ckpt.safetensors`` unless ``checkpoint`` is set)."""
        return self.checkpoint or self.output.with_name(
            self.output.name.removesuffix(".safetensors") + ".ckpt.safetensors"
        )


@dataclass(frozen=True)
class StepEvent:
    """Reported after every optimiser step.

    ``loss`` is the mean squared error per output pixel of the step's batch (averaged over
    ranks under DDP), whatever the recipe's loss convention; ``lr`` that of the first layer.
    """

    step: int
    total: int
    loss: float
    lr: float


@dataclass(frozen=True)
class ValidationEvent:
    """Reported after every validation (step 0 is the starting model).

    PSNRs are in dB on intensities in [0, 1] (NaN without validation planes);
    ``improved`` is True when these weights were just written as the new best.
    """

    step: int
    total: int
    psnr: float
    bicubic_psnr: float
    best_psnr: float
    improved: bool


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or cancelled) run produced.

    ``best_psnr`` is the validation PSNR of the written weights, ``start_psnr`` that of the
    starting model, ``bicubic_psnr`` that of bicubic up-sampling on the same planes (NaN
    without validation planes).
    """

    output: Path
    steps: int
    best_psnr: float
    bicubic_psnr: float
    start_psnr: float
    seconds: float
    cancelled: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoint: Path | None = None


EventFn = Callable[[StepEvent | ValidationEvent], Any]


# ----------------------------------------------------------------------------- helpers


def steps_for_epochs(
    data: TrainingData,
    epochs: float,
    batch_size: int,
    patch_size: int = 33,
    world: int | None = None,
) -> int:
    """Optimiser steps for ``epochs`` passes over the paper's stride-14 sub-image grid.

    One epoch is every sub-image of the stride-14 grid of the training planes once (also
    when training on random crops). Under DDP, ``world`` processes each take
    ``batch_size`` sub-images per step (default: ``$WORLD_SIZE`` or 1).
    """
    if not (isinstance(epochs, (int, float)) and math.isfinite(epochs) and epochs > 0):
        raise InputError(f"epochs {epochs!r} must be a positive number")
    if world is None:
        world = max(1, int(os.environ.get("WORLD_SIZE", "1")))
    grid = data.grid_size(patch_size, 14)
    return max(1, math.ceil(epochs * grid / (batch_size * world)))


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
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
        Training and validation planes (:mod:`napari_srcnn.engine.data`).
    config
        The run's settings.
    on_event
        Called with a :class:`StepEvent` after each step and a :class:`ValidationEvent`
        after each validation, step 0 (the starting model) included; rank 0 only under
        DDP. Called on the training thread: keep it short.
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
    net.to(device)
    net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    lr = config.lr or (1e-4 if config.recipe == "paper" or start_info is not None else 1e-3)
    opt = optimizer(net, config.recipe, lr)
    base_lrs = [g["lr"] for g in opt.param_groups]
    model = wrap_model(net, device, world)

    sampler = PatchSampler(
        data.train,
        config.patch_size,
        augment=config.augment,
        stride=config.grid_stride,
        seed=config.seed,
        rank=rank,
        world=world,
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
        state = {**state, **load_checkpoint(Path(resume), net, opt, gen, fingerprint, rank)}
        sampler.position = state["step"] * config.batch_size
    halo = arch.halo
    use_amp = config.amp and device.type == "cuda"
    t0 = time.perf_counter() - state["seconds"]
    cancelled = False

    def report_validation(step: int, final: bool) -> None:
        psnr, bic = validate(net, data, config.val_crop, device)
        state["bicubic_psnr"] = bic
        if step == 0:
            state["start_psnr"] = psnr
        if math.isnan(psnr):
            improved = final  # nothing to choose by: keep the last weights
        else:
            improved = psnr > state["best_psnr"]
            if improved:
                state["best_psnr"] = psnr
        if improved:
            _write_model(
                config, net, data, start_info, state, time.perf_counter() - t0, step, world
            )
            state["written"] = True
        state["history"].append({"step": step, "psnr": psnr, "bicubic_psnr": bic})
        if on_event is not None:
            best = state["best_psnr"] if math.isfinite(state["best_psnr"]) else math.nan
            on_event(ValidationEvent(step, config.steps, psnr, bic, best, improved))

    def write_checkpoint() -> None:
        rngs = gather_rng(gen, world, device)  # collective: every rank takes part
        if rank == 0:
            state["seconds"] = time.perf_counter() - t0
            save_checkpoint(config.checkpoint_path, net, opt, rngs, state, fingerprint)

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
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            pred = model(lr_batch)
        loss, mse = batch_loss(pred.float(), target, config.recipe)
        mse = reduce_scalar(mse, world)
        if not torch.isfinite(mse):
            raise InputError(
                f"training diverged at step {step + 1} (loss {mse.item()}); lower --lr"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
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
    )


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
    hardware = platform.processor() or platform.machine()
    if param.is_cuda:
        hardware = torch.cuda.get_device_name(param.device)
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
            "recipe": config.recipe,
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
