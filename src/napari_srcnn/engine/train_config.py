"""Training settings and what a run reports:
[`TrainConfig`][napari_srcnn.engine.train_config.TrainConfig], the progress events
([`StepEvent`][napari_srcnn.engine.train_config.StepEvent],
[`ValidationEvent`][napari_srcnn.engine.train_config.ValidationEvent]) and
[`TrainResult`][napari_srcnn.engine.train_config.TrainResult].

Plain frozen data classes, shared by the API, the CLI and the napari widget; the loop that uses them
is [`napari_srcnn.engine.training.train()`][napari_srcnn.engine.training.train].
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .model import ArchSpec
from .options import MAX_SCALE

if TYPE_CHECKING:  # pragma: no cover
    from .data import TrainingData

__all__ = [
    "INITS",
    "LOSSES",
    "MAX_LR",
    "default_lr",
    "MAX_SEED",
    "RECIPES",
    "EventFn",
    "StepEvent",
    "TrainConfig",
    "TrainResult",
    "ValidationEvent",
    "check_seed",
    "checkpoint_path_for",
    "steps_for_epochs",
]


#: Largest seed: every rank and resumed step derives its generator's seed from it, and
#: PyTorch's generators take 64-bit seeds.
MAX_SEED = 2**63 - 1
#: The training recipes (see [`recipes`][napari_srcnn.engine.recipes]).
RECIPES = ("adam", "paper")
#: Starts from scratch: ``identity`` (the net reproduces its bicubic input, see
#: ``init_identity()``), ``pytorch`` (PyTorch's default) and ``paper`` (N(0, 0.001²)).
INITS = ("identity", "pytorch", "paper")
#: Losses of the adam recipe: per-pixel mean squared (``l2``) or absolute (``l1``) error.
LOSSES = ("l2", "l1")
#: Largest learning rate: far above any that trains an SRCNN (1e-3 from scratch, 1e-4 to
#: fine-tune); anything bigger diverges at once.
MAX_LR = 1.0


def _as_plain(config: object, name: str, kind: type, plain: type) -> None:
    """Store ``config.name`` as a plain ``int``/``float`` when it is a number of ``kind`` (not a
    bool); anything else is left for the field's own check."""
    value = getattr(config, name)
    if isinstance(value, kind) and not isinstance(value, (bool, plain)):
        with contextlib.suppress(OverflowError, ValueError):  # the field's check will say
            object.__setattr__(config, name, plain(value))


def checkpoint_path_for(output: str | os.PathLike) -> Path:
    """The default checkpoint of a run writing ``output``: ``OUT.ckpt.safetensors`` beside it."""
    output = Path(output)
    return output.with_name(output.name.removesuffix(".safetensors") + ".ckpt.safetensors")


def check_seed(seed: object) -> int:
    """``seed`` if it is an integer from 0 to `MAX_SEED`, else an InputError."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"seed {seed!r} must be an integer from 0 to 2**63 - 1")
    return seed


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
        Start of a run from scratch, one of `INITS`; ``None`` (default) picks the
        recipe's: ``identity`` for adam (the untrained net equals bicubic and learns the
        residual: on SunHays80 ×3 it reaches in 750 steps the held-out PSNR a PyTorch-init
        start needed 7,000 for), ``paper`` for paper (weights ~ N(0, 0.001²), biases 0).
    steps
        Optimiser steps (see
        [`steps_for_epochs()`][napari_srcnn.engine.train_config.steps_for_epochs]).
    batch_size
        Sub-images per step (per process under DDP).
    lr
        Base learning rate (default: `default_lr()`: 1e-3 for adam from scratch, 5e-4 for adam
        fine-tuning on per-channel data, 1e-4 for adam fine-tuning on photographs and for paper;
        the paper's last layer always gets a tenth of it).
    patch_size
        Sub-image size fed to the network (``fsub``, 33 in the paper); the loss is taken
        on the valid centre, ``patch_size - 2*halo`` wide.
    augment
        Random flips and 90° rotations of the sub-images.
    intensity_augment
        Share of sub-images (0..1) whose intensities go through a random affine map (contrast,
        offset, sign; see [`intensity_affine()`][napari_srcnn.engine.sampling.intensity_affine]):
        the network sees black, white and faint content, so that it keeps flat regions flat at
        every level, which natural-image luma alone (``[16/255, 235/255]``) never shows it.
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
        bf16 autocast on CUDA, and on CPUs with native bf16 (AVX-512 BF16 or AMX, see
        [`cpu_has_native_bf16()`][napari_srcnn.engine.device.cpu_has_native_bf16]); fp32
        elsewhere.
    loss
        ``"l2"`` (default, the paper's: mean squared error) or ``"l1"`` (mean absolute error, as
        EDSR trains); the adam recipe only (the paper's recipe is defined by Caffe's Euclidean loss).
    ema
        Decay of an exponential moving average of the weights (e.g. 0.999; 0, the default, keeps
        none). When set, validation scores the average and the average is what gets written;
        the decay ramps up as ``min(ema, (1 + t) / (10 + t))`` so the start does not linger.
    fp32_tail
        Share of the last steps run in fp32 even with ``amp``. A network fitted in bf16 is
        fitted to bf16's rounding of its weights: measured, its fp32 response to a flat image
        was 0.57 % too low (1.45/255 at white); the fp32 tail fits it to the arithmetic it
        is used with.
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
    intensity_augment: float = 0.5
    grid_stride: int | None = None
    val_every: int = 200
    checkpoint_every: int = 200
    val_crop: int = 256
    device: str = "auto"
    amp: bool = True
    loss: str = "l2"
    ema: float = 0.0
    fp32_tail: float = 0.15
    seed: int = 0
    checkpoint: Path | None = None

    def __post_init__(self) -> None:
        # NumPy scalars and Fractions are numbers too: stored as plain int / float.
        for name in ("steps", "batch_size", "val_every", "checkpoint_every", "val_crop"):
            _as_plain(self, name, numbers.Integral, int)
        for name in ("patch_size", "grid_stride", "seed"):
            _as_plain(self, name, numbers.Integral, int)
        for name in ("scale", "lr", "intensity_augment", "fp32_tail", "ema"):
            _as_plain(self, name, numbers.Real, float)
        for name in ("output", "checkpoint"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise InputError(f"{name} {value!r} is not a file path")
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
        if isinstance(self.intensity_augment, bool) or not (
            isinstance(self.intensity_augment, (int, float)) and 0 <= self.intensity_augment <= 1
        ):
            raise InputError(
                f"intensity augmentation {self.intensity_augment!r} must be a share from 0 to 1"
            )
        if isinstance(self.fp32_tail, bool) or not (
            isinstance(self.fp32_tail, (int, float)) and 0 <= self.fp32_tail <= 1
        ):
            raise InputError(f"fp32 tail {self.fp32_tail!r} must be a share from 0 to 1")
        if self.loss not in LOSSES:
            raise InputError(f"loss {self.loss!r} is not one of {', '.join(LOSSES)}")
        if self.recipe == "paper" and self.loss != "l2":
            raise InputError("the paper recipe trains on the Euclidean (l2) loss; use recipe adam")
        if isinstance(self.ema, bool) or not (
            isinstance(self.ema, (int, float)) and 0 <= self.ema < 1
        ):
            raise InputError(f"EMA decay {self.ema!r} must be from 0 (off) to below 1")
        check_seed(self.seed)
        if not (
            isinstance(self.scale, (int, float))
            and math.isfinite(self.scale)
            and 1 < self.scale <= MAX_SCALE
        ):
            raise InputError(
                f"scale {self.scale!r} must be a number above 1 and at most {MAX_SCALE:g}"
            )
        if self.lr is not None and not (
            isinstance(self.lr, (int, float))
            and not isinstance(self.lr, bool)
            and math.isfinite(self.lr)
            and 0 < self.lr <= MAX_LR
        ):
            raise InputError(f"learning rate {self.lr!r} must be above 0 and at most {MAX_LR:g}")
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
        return self.checkpoint or checkpoint_path_for(self.output)


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
    ``improved`` is True when these weights were just written as the new best. ``flat_255`` is
    how far these weights move a flat image ([`flat_error_255()`][napari_srcnn.engine.evaluation.flat_error_255]);
    ``flat_ok`` is False when that kept them from being written although they scored better.
    """

    step: int
    total: int
    psnr: float
    bicubic_psnr: float
    best_psnr: float
    improved: bool
    flat_255: float = math.nan
    flat_ok: bool = True


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
    #: The written model's worst error on flat images, in 1/255 of the range
    #: ([`check_flat()`][napari_srcnn.engine.evaluation.check_flat]; NaN on other ranks).
    flat_max_error_255: float = math.nan


EventFn = Callable[[StepEvent | ValidationEvent], Any]


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


def default_lr(recipe: str, fine_tuning: bool, color_mode: str) -> float:
    """The base learning rate when none is given.

    Fine-tuning on per-channel data (a user's microscopy stack) takes 5e-4: measured on two
    held-out stacks with 2,000 steps, 5e-4 gained +1.06 and +0.22 dB over the microscopy model
    where 1e-4 gained +0.72 and +0.18 (haase membrane time-lapse, C. elegans EM series); the start
    model is kept unless beaten, so a larger step cannot leave a worse model behind.
    """
    if recipe == "paper":
        return 1e-4
    if not fine_tuning:
        return 1e-3
    return 5e-4 if color_mode == "per-channel" else 1e-4
