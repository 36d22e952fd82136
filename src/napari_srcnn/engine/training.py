"""The trainer: recipes, validation, checkpoints and resume, callbacks, DDP.

``train(data, config)`` learns an SRCNN from :class:`~napari_srcnn.engine.data.TrainingData`
and writes the best model (by validation PSNR) as a weights file. A checkpoint (network,
optimiser, random-generator state, best score) is written atomically every
``checkpoint_every`` steps; ``resume=`` continues a run killed at any moment and, on CPU,
ends with exactly the result of the uninterrupted run.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the same code trains with
``DistributedDataParallel`` (NCCL on GPUs, gloo on CPU): every rank draws its own patches,
gradients are averaged, rank 0 validates and writes files.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import CancelledError, InputError, WeightsError
from .data import PatchSampler, TrainingData
from .device import resolve_device
from .files import atomic_path
from .model import SRCNN, ArchSpec, init_paper
from .weights import LoadedModel, ModelInfo, load_model, save_weights

__all__ = [
    "RECIPES",
    "StepEvent",
    "TrainConfig",
    "TrainResult",
    "ValidationEvent",
    "train",
    "validate",
]

RECIPES = ("adam", "paper")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (shared by the API, the CLI and the widget).

    Parameters
    ----------
    output
        Where the best weights go (``.safetensors``).
    arch
        Architecture for training from scratch (ignored when ``init_from`` is given).
    init_from
        Model name or weights file to fine-tune; ``None`` trains from scratch.
    recipe
        ``"adam"`` (default: Adam, cosine learning-rate decay, PyTorch's default init) or
        ``"paper"`` (SGD with momentum 0.9, lr 1e-4 for the first layers and a tenth of it
        for the last, weights ~ N(0, 0.001²), biases 0).
    steps
        Optimiser steps.
    batch_size
        Sub-images per step (per process under DDP).
    lr
        Base learning rate (default: 1e-3 for adam from scratch, 1e-4 for adam fine-tuning,
        1e-4 for paper).
    patch_size
        Sub-image size fed to the network (``fsub``, 33 in the paper); the loss is taken
        on the valid centre, ``patch_size - 2*halo`` wide.
    val_every, checkpoint_every
        Validation and checkpoint periods in steps (validation also runs at the end).
    val_crop
        Validation planes are centre-cropped to at most this size (keeps validation fast).
    amp
        bf16 autocast on CUDA (ignored on CPU).
    seed
        Seed of every random draw (reproducible on CPU).
    """

    output: Path
    scale: float = 3.0
    arch: ArchSpec = field(default_factory=ArchSpec)
    init_from: str | None = None
    recipe: str = "adam"
    steps: int = 2000
    batch_size: int = 64
    lr: float | None = None
    patch_size: int = 33
    augment: bool = True
    val_every: int = 200
    checkpoint_every: int = 200
    val_crop: int = 256
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    checkpoint: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "output", Path(self.output))
        if self.recipe not in RECIPES:
            raise InputError(f"recipe {self.recipe!r} is not one of {', '.join(RECIPES)}")
        for name in ("steps", "batch_size", "val_every", "checkpoint_every", "val_crop"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and 1 < self.scale <= 16):
            raise InputError(f"scale {self.scale!r} must be a number above 1 and at most 16")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"learning rate {self.lr!r} must be positive")
        if self.patch_size <= 2 * self.arch.halo:
            raise InputError(
                f"patch size {self.patch_size} leaves no output for {self.arch.name} "
                f"(needs > {2 * self.arch.halo})"
            )

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint or self.output.with_name(self.output.name.removesuffix(".safetensors") + ".ckpt.safetensors")


@dataclass(frozen=True)
class StepEvent:
    """Reported after every optimiser step."""

    step: int
    total: int
    loss: float
    lr: float


@dataclass(frozen=True)
class ValidationEvent:
    """Reported after every validation: PSNR in dB of the model and of bicubic."""

    step: int
    total: int
    psnr: float
    bicubic_psnr: float
    best_psnr: float
    improved: bool


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or cancelled) run produced."""

    output: Path
    steps: int
    best_psnr: float
    bicubic_psnr: float
    start_psnr: float
    seconds: float
    cancelled: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


EventFn = Callable[[StepEvent | ValidationEvent], Any]


# ----------------------------------------------------------------------------- helpers


def _distributed() -> tuple[int, int]:
    """(rank, world size), initialising the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def _param_groups(net: SRCNN, recipe: str, lr: float) -> list[dict[str, Any]]:
    convs = net.convs()
    if recipe == "paper":
        early = [p for c in convs[:-1] for p in c.parameters()]
        return [{"params": early, "lr": lr}, {"params": list(convs[-1].parameters()), "lr": lr * 0.1}]
    return [{"params": list(net.parameters()), "lr": lr}]


def _lr_factor(step: int, total: int, recipe: str) -> float:
    if recipe == "paper":
        return 1.0
    warmup = min(100, total // 20)
    if step < warmup:
        return (step + 1) / warmup
    # Cosine decay to 1 % of the base rate.
    t = (step - warmup) / max(1, total - warmup)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


@torch.inference_mode()
def validate(net: SRCNN, data: TrainingData, crop: int = 256, device: str | torch.device = "cpu") -> tuple[float, float]:
    """Mean PSNR (dB, intensities in [0, 1]) of ``net`` and of bicubic on the validation planes.

    Each plane is centre-cropped to at most ``crop`` pixels; ``scale`` pixels are shaved
    from the border, as in the evaluation protocol. With no validation planes, returns NaN.
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
        sr = net.body(F.pad(lr, (halo,) * 4, mode="replicate")).clamp(0, 1)
        cut = (..., slice(shave, ch - shave), slice(shave, cw - shave))
        scores.append(_psnr(sr[cut], hr[cut]))
        bicubic.append(_psnr(lr.clamp(0, 1)[cut], hr[cut]))
    net.train(was_training)
    return float(np.mean(scores)), float(np.mean(bicubic))


# -------------------------------------------------------------------------- checkpoints


def _save_checkpoint(path: Path, net: SRCNN, opt: torch.optim.Optimizer, gen: torch.Generator, state: dict) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    opt_state = opt.state_dict()
    for pid, pstate in opt_state["state"].items():
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous().reshape(value.shape)
    tensors["rng"] = gen.get_state()
    meta = {"kind": "napari-srcnn-checkpoint", "state": json.dumps(state),
            "groups": json.dumps([{k: v for k, v in g.items() if k != "params"} for g in opt_state["param_groups"]])}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _load_checkpoint(path: Path, net: SRCNN, opt: torch.optim.Optimizer, gen: torch.Generator) -> dict:
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("kind") != "napari-srcnn-checkpoint":
                raise WeightsError(f"{str(path)!r} is not a napari-srcnn training checkpoint")
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"cannot read checkpoint {str(path)!r} ({exc})") from None
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        net.load_state_dict(model_state)
    except RuntimeError:
        raise WeightsError(f"checkpoint {str(path)!r} is for another architecture") from None
    opt_state = opt.state_dict()
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            opt_state["state"].setdefault(int(pid), {})[name] = value
    for group, saved in zip(opt_state["param_groups"], json.loads(meta["groups"]), strict=True):
        group.update(saved)
    opt.load_state_dict(opt_state)
    gen.set_state(tensors["rng"])
    return json.loads(meta["state"])


# ------------------------------------------------------------------------------- train


def _start_model(config: TrainConfig, data: TrainingData, gen: torch.Generator) -> tuple[SRCNN, ModelInfo | None]:
    if config.init_from is not None:
        loaded: LoadedModel = load_model(config.init_from, scale=config.scale)
        if loaded.info.arch.channels != data.channels:
            raise InputError(
                f"start model {loaded.name!r} has {loaded.info.arch.channels} channel(s); the "
                f"training data has {data.channels}"
            )
        net = SRCNN(loaded.info.arch, padding="valid")
        net.load_state_dict(loaded.net.state_dict())
        return net, loaded.info
    arch = replace(config.arch, channels=data.channels)
    torch.manual_seed(config.seed)  # PyTorch's default init draws from the global generator
    net = SRCNN(arch, padding="valid")
    if config.recipe == "paper":
        init_paper(net, generator=gen)
    return net, None


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
        after each validation (rank 0 only under DDP).
    cancel
        Polled every step; when it returns True the run stops, keeping the best weights
        written so far (the result has ``cancelled=True``).
    resume
        A checkpoint written by an earlier run of the same config.

    Returns
    -------
    TrainResult
    """
    if abs(data.scale - config.scale) > 1e-9:
        raise InputError(f"training data was made for ×{data.scale:g}, config asks ×{config.scale:g}")
    if not data.train:
        raise InputError("no training planes")
    rank, world = _distributed()
    device = resolve_device(config.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    gen = torch.Generator().manual_seed(config.seed + 1000 * rank)
    net, start_info = _start_model(config, data, gen)
    arch = net.spec
    if config.patch_size <= 2 * arch.halo:
        raise InputError(f"patch size {config.patch_size} is too small for {arch.name}")
    net.to(device).to(memory_format=torch.channels_last)
    lr = config.lr or (1e-4 if config.recipe == "paper" or start_info is not None else 1e-3)
    groups = _param_groups(net, config.recipe, lr)
    if config.recipe == "paper":
        opt: torch.optim.Optimizer = torch.optim.SGD(groups, lr=lr, momentum=0.9)
    else:
        opt = torch.optim.Adam(groups, lr=lr)
    base_lrs = [g["lr"] for g in opt.param_groups]
    model: torch.nn.Module = net
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)

    sampler = PatchSampler(data.train, config.patch_size, augment=config.augment)
    state = {"step": 0, "best_psnr": -math.inf, "start_psnr": math.nan, "bicubic_psnr": math.nan,
             "history": [], "seconds": 0.0}
    if resume is not None:
        state = _load_checkpoint(Path(resume), net, opt, gen)
    elif rank == 0:
        psnr0, bic0 = validate(net, data, config.val_crop, device)
        state["start_psnr"], state["bicubic_psnr"] = psnr0, bic0
    halo = arch.halo
    use_amp = config.amp and device.type == "cuda"
    t0 = time.perf_counter() - state["seconds"]
    cancelled = False
    model.train()

    def finish_validation(step: int) -> None:
        psnr, bic = validate(net, data, config.val_crop, device)
        improved = not math.isnan(psnr) and psnr > state["best_psnr"]
        if improved or (math.isnan(psnr) and step == config.steps):
            state["best_psnr"] = psnr if improved else state["best_psnr"]
            _write_model(config, net, data, start_info, state, time.perf_counter() - t0, step)
        state["bicubic_psnr"] = bic
        state["history"].append({"step": step, "psnr": psnr, "bicubic_psnr": bic})
        if on_event is not None:
            on_event(ValidationEvent(step, config.steps, psnr, bic, state["best_psnr"], improved))

    while state["step"] < config.steps:
        if cancel is not None and cancel():
            cancelled = True
            break
        step = state["step"]
        factor = _lr_factor(step, config.steps, config.recipe)
        for g, base in zip(opt.param_groups, base_lrs, strict=True):
            g["lr"] = base * factor
        lr_batch, hr_batch = sampler.sample(config.batch_size, gen)
        lr_batch = lr_batch.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        target = hr_batch.to(device, non_blocking=True)[..., halo:-halo, halo:-halo]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            pred = model(lr_batch)
        loss = F.mse_loss(pred.float(), target)
        if not torch.isfinite(loss):
            raise InputError(f"training diverged at step {step} (loss {loss.item()}); lower --lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["step"] = step + 1
        if rank == 0:
            if on_event is not None:
                on_event(StepEvent(step + 1, config.steps, float(loss.item()), opt.param_groups[0]["lr"]))
            done = state["step"] == config.steps
            if state["step"] % config.val_every == 0 or done:
                finish_validation(state["step"])
            if state["step"] % config.checkpoint_every == 0 or done:
                state["seconds"] = time.perf_counter() - t0
                _save_checkpoint(config.checkpoint_path, net, opt, gen, state)
    if cancelled and rank == 0 and not config.output.exists():
        finish_validation(state["step"])
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    return TrainResult(
        output=config.output,
        steps=state["step"],
        best_psnr=state["best_psnr"],
        bicubic_psnr=state["bicubic_psnr"],
        start_psnr=state["start_psnr"],
        seconds=time.perf_counter() - t0,
        cancelled=cancelled,
        history=list(state["history"]),
    )


def _write_model(config: TrainConfig, net: SRCNN, data: TrainingData, start: ModelInfo | None,
                 state: dict, seconds: float, step: int) -> None:
    hardware = platform.processor() or platform.machine()
    if next(net.parameters()).is_cuda:
        hardware = torch.cuda.get_device_name(next(net.parameters()).device)
    info = ModelInfo(
        name=config.output.name.removesuffix(".safetensors"),
        arch=net.spec,
        scale=config.scale,
        color_mode=data.color_mode,
        normalization="dtype",
        description=(f"fine-tuned from {start.name}" if start else "trained from scratch")
        + f" on {data.description}",
        training={
            "data": data.description,
            "recipe": config.recipe,
            "steps": step,
            "batch_size": config.batch_size,
            "patch_size": config.patch_size,
            "seed": config.seed,
            "init_from": start.name if start else None,
            "wall_seconds": round(seconds, 1),
            "hardware": hardware,
            "device": str(next(net.parameters()).device),
            "config": json.loads(json.dumps(asdict(config), default=str)),
        },
        metrics={"validation": {"psnr": state["best_psnr"], "bicubic_psnr": state["bicubic_psnr"],
                                "start_psnr": state["start_psnr"], "step": step}},
    )
    save_weights(config.output, net, info)
