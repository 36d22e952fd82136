"""``napari-srcnn train``: train or fine-tune on image folders or your own stacks."""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

from ..errors import InputError
from ._common import add_device_arg, start_work

CHANNELS = ("auto", "y", "rgb", "per-channel")  # engine.planes.COLOR_MODES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train or fine-tune a model on images or stacks",
        description="Learn SRCNN from high-resolution data (every 2-D plane of every file "
        "is a training image; LR is made by optional blur + bicubic down-sampling + bicubic "
        "up-sampling), or from explicit LR/HR pairs (--lr-data). With no --from/--scratch, "
        "the installed model for the scale is fine-tuned (from scratch if there is none). "
        "Ends by printing the held-out PSNR of bicubic, of the starting model and of the "
        "trained one. Runs under torchrun for several GPUs/machines "
        "(DistributedDataParallel).",
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="HR images, TIFF stacks or folders")
    p.add_argument(
        "--lr-data",
        nargs="+",
        metavar="LR",
        default=None,
        help="LR partners of DATA, in the same (sorted) order: explicit pairs",
    )
    p.add_argument("--scale", type=float, default=3.0, metavar="S", help="factor (default 3)")
    start = p.add_mutually_exclusive_group()
    start.add_argument(
        "--from",
        dest="init_from",
        metavar="NAME|FILE",
        help="model to fine-tune (default: the installed one for the scale)",
    )
    start.add_argument("--scratch", action="store_true", help="train from scratch")
    p.add_argument(
        "--arch",
        default=None,
        help="architecture from scratch (default 9-5-5; e.g. 9-1-5, 9-3-5, 9-5-5-5, 9-5-5:128,64)",
    )
    p.add_argument(
        "--channels",
        choices=CHANNELS,
        default="auto",
        help="auto (default): y for RGB images, per-channel otherwise",
    )
    length = p.add_mutually_exclusive_group()
    length.add_argument(
        "--steps", type=int, default=None, metavar="N", help="optimiser steps (default 2000)"
    )
    length.add_argument(
        "--epochs",
        type=float,
        default=None,
        metavar="N",
        help="passes over the stride-14 sub-image grid of the training planes",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=64,
        metavar="N",
        help="sub-images per step (per process under torchrun; default 64)",
    )
    p.add_argument("--patch", type=int, default=33, metavar="N", help="sub-image size (33)")
    p.add_argument(
        "--grid",
        nargs="?",
        type=int,
        const=14,
        default=None,
        metavar="STRIDE",
        help="the paper's sub-image grid (stride 14, or STRIDE) shuffled every "
        "epoch, instead of random crops",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        metavar="X",
        help="learning rate (default 1e-3 from scratch, 5e-4 fine-tuning per-channel data, "
        "1e-4 fine-tuning photo models and paper)",
    )
    p.add_argument(
        "--recipe",
        choices=("adam", "paper"),
        default="adam",
        help="adam (default) or paper (SGD as in Dong et al.)",
    )
    p.add_argument(
        "--init",
        choices=("identity", "pytorch", "paper"),  # engine.train_config.INITS
        default=None,
        help="start from scratch as: identity (= bicubic, learn the residual; adam's "
        "default), pytorch (PyTorch's default init) or paper (N(0, 0.001²); paper's default)",
    )
    p.add_argument(
        "--blur",
        type=float,
        default=0.0,
        metavar="SIGMA",
        help="Gaussian blur (HR pixels) before down-sampling (default 0)",
    )
    p.add_argument(
        "--degradation",
        choices=("bicubic", "area", "mixed"),  # engine.degradation.DEGRADATIONS
        default="bicubic",
        help="how LR is made from DATA: bicubic (default, the paper's), area (pixel binning, "
        "integer factors), mixed (each plane five ways: bicubic, area, mildly blurred, "
        "oversampled, and a dim recording of a few levels)",
    )
    p.add_argument(
        "--lr-levels",
        choices=("auto", "stored", "float"),  # engine.data.LR_LEVELS
        default="auto",
        help="round made LR onto the data's own integer levels, as a camera stores it: auto "
        "(default: for per-channel data), stored, or float (never, as the paper)",
    )
    p.add_argument("--no-augment", action="store_true", help="no flips/rotations")
    p.add_argument(
        "--intensity-augment",
        type=float,
        default=0.5,
        metavar="P",
        help="share of sub-images given a random contrast, offset and sign (default 0.5): "
        "keeps black black and flat regions flat at every level",
    )
    p.add_argument(
        "--val-data",
        nargs="+",
        metavar="VAL",
        default=None,
        help="validation images or folders (e.g. whole sources not trained on); replaces "
        "--val-fraction",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        metavar="F",
        help="share of planes held out for validation (default 0.1)",
    )
    p.add_argument(
        "--val-every",
        type=int,
        default=200,
        metavar="N",
        help="validate every N steps (default 200)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help="write a checkpoint every N steps (default: --val-every)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="OUT.safetensors",
        help="weights file to write (default: <data>_x<scale>.safetensors); the "
        "checkpoint goes next to it (OUT.ckpt.safetensors)",
    )
    p.add_argument(
        "--resume",
        metavar="CKPT",
        default=None,
        help="continue a run from its checkpoint (same data and settings)",
    )
    p.add_argument(
        "--loss",
        choices=("l2", "l1"),  # engine.train_config.LOSSES
        default="l2",
        help="l2 (default, mean squared error, the paper's) or l1 (mean absolute error); adam only",
    )
    p.add_argument(
        "--ema",
        type=float,
        default=0.0,
        metavar="DECAY",
        help="keep an exponential moving average of the weights with this decay (e.g. 0.999) "
        "and validate and write it (default 0: none)",
    )
    p.add_argument(
        "--fp32",
        action="store_true",
        help="train in fp32 even where bf16 autocast is used (CUDA, CPUs with native bf16)",
    )
    add_device_arg(p)
    p.set_defaults(run=run)


def _check_args(args: argparse.Namespace) -> Path:
    """Every option, the output, the checkpoint and the resumed checkpoint, checked before any
    data is read; returns the output path."""
    from ..engine.checkpoints import read_checkpoint_state
    from ..engine.files import check_output_path
    from ..engine.train_config import MAX_LR, check_seed, checkpoint_path_for

    for name in ("batch", "patch", "val_every", "checkpoint_every", "steps", "grid"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    from ..engine.options import MAX_SCALE

    if not 1 < args.scale <= MAX_SCALE:
        raise InputError(f"--scale {args.scale:g} must be above 1 and at most {MAX_SCALE:g}")
    try:
        check_seed(args.seed)
    except InputError:
        raise InputError(f"--seed {args.seed} must be an integer from 0 to 2**63 - 1") from None
    from ..engine.degradation import MAX_BLUR

    if not 0 <= args.blur <= MAX_BLUR:
        raise InputError(f"--blur {args.blur:g} must be from 0 to {MAX_BLUR:g} (HR pixels)")
    if args.lr is not None and not 0 < args.lr <= MAX_LR:
        raise InputError(f"--lr {args.lr:g} must be above 0 and at most {MAX_LR:g}")
    if not 0 <= args.intensity_augment <= 1:
        raise InputError(
            f"--intensity-augment {args.intensity_augment:g} must be a share from 0 to 1"
        )
    if not 0 <= args.ema < 1:  # NaN fails too
        raise InputError(f"--ema {args.ema:g} must be from 0 (off) to below 1, e.g. 0.999")
    if args.loss != "l2" and args.recipe == "paper":
        raise InputError("--loss l1 needs --recipe adam (the paper's recipe is its l2 loss)")
    if args.epochs is not None and not (math.isfinite(args.epochs) and args.epochs > 0):
        raise InputError(f"--epochs {args.epochs:g} must be a positive number")
    output = (
        Path(args.output)
        if args.output
        else Path(f"{Path(args.data[0]).name.split('.')[0]}_x{args.scale:g}.safetensors")
    )
    if not output.name.endswith(".safetensors"):
        raise InputError(f"output {str(output)!r} must end in .safetensors")
    # Never write over the data or over the model being fine-tuned (nor the checkpoint resumed).
    inputs = (*args.data, *(args.lr_data or []), *(args.val_data or []))
    check_output_path(output, inputs=(*inputs, *([args.init_from] if args.init_from else [])))
    check_output_path(checkpoint_path_for(output), inputs=inputs)
    if args.resume is not None:
        if not Path(args.resume).is_file():
            raise InputError(f"checkpoint {args.resume!r} does not exist; start without --resume")
        step = read_checkpoint_state(args.resume).get("step")
        steps = args.steps or 2000  # with --epochs, train() checks once the data is made
        if args.epochs is None and isinstance(step, int) and steps <= step:
            raise InputError(
                f"checkpoint {args.resume!r} is at step {step} already; give --steps above "
                f"{step} to continue"
            )
    return output


def _start_arch(model: str):
    """The architecture of the model to fine-tune, from its header (None for a legacy file)."""
    from ..engine.weights import list_models
    from ..engine.weights_file import read_info
    from ..errors import WeightsError

    for info in list_models():
        if info.name == model:
            return info.arch
    try:
        return read_info(model).arch
    except WeightsError:  # a legacy .pt, or unreadable: train() will say
        return None


def _check_data_memory(args: argparse.Namespace) -> None:
    """Refuse, from the files' headers, training data that would not fit in memory."""
    from ..engine.data import find_images
    from ..engine.degradation import arrays_per_plane, degradation_kinds
    from ..engine.io import read_header
    from ..engine.memory import training_data_estimate

    kinds = degradation_kinds(args.degradation, args.blur)
    partners = 1 if args.lr_data else arrays_per_plane(kinds)
    images = []
    for group in (args.data, args.lr_data, args.val_data):
        for path in find_images(group) if group else []:
            header = read_header(path)
            images.append((header.shape, header.dtype))
    training_data_estimate(images, args.scale, partners).check()


def _fmt(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2f} dB"


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..engine.data import training_data_from_paths
    from ..engine.evaluation import FLAT_MAX_ERROR_255
    from ..engine.memory import training_step_estimate
    from ..engine.model import ArchSpec
    from ..engine.train_config import StepEvent, TrainConfig, steps_for_epochs
    from ..engine.training import train
    from ..engine.weights import fine_tune_start

    rank = int(os.environ.get("RANK", "0"))
    output = _check_args(args)
    arch = ArchSpec.parse(args.arch or "9-5-5")
    _check_data_memory(args)
    data = training_data_from_paths(
        args.data,
        args.scale,
        args.channels,
        lr_paths=args.lr_data,
        val_paths=args.val_data,
        patch_size=args.patch,
        val_fraction=args.val_fraction,
        blur_sigma=args.blur,
        degradation=args.degradation,
        lr_levels=args.lr_levels,
        seed=args.seed,
    )
    init_from = args.init_from
    if not args.scratch and init_from is None:
        init_from = fine_tune_start(args.scale, data.color_mode)
    if init_from is not None and args.arch is not None and rank == 0:
        print(f"note: --arch {args.arch} is ignored when fine-tuning {init_from} (use --scratch)")
    steps = args.steps or 2000
    if args.epochs is not None:
        steps = steps_for_epochs(data, args.epochs, args.batch, args.patch)
    config = TrainConfig(
        output=output,
        scale=args.scale,
        arch=arch,
        init_from=init_from,
        recipe=args.recipe,
        init=args.init,
        steps=steps,
        batch_size=args.batch,
        lr=args.lr,
        patch_size=args.patch,
        augment=not args.no_augment,
        intensity_augment=args.intensity_augment,
        grid_stride=args.grid,
        val_every=args.val_every,
        checkpoint_every=args.checkpoint_every or args.val_every,
        device=args.device,
        amp=not args.fp32,
        loss=args.loss,
        ema=args.ema,
        seed=args.seed,
    )
    # The step's memory, before anything is printed (train() checks it again).
    spec = arch if init_from is None else _start_arch(init_from)
    if spec is not None:
        estimate = training_step_estimate(
            args.batch,
            args.patch,
            halo=spec.halo,
            widths=(spec.n1, spec.n2 * (1 + spec.extra_layers)),
            channels=spec.channels,
        )
        replace(estimate, advice="use a smaller --batch or --patch").check()
    start_work()
    if rank == 0:
        what = f"fine-tuning {init_from}" if init_from else f"training {arch.name} from scratch"
        print(
            f"{what} ×{args.scale:g} ({data.color_mode}) on {data.description}: "
            f"{len(data.train)} training / {len(data.val)} validation plane(s), {steps} steps"
            + (f", resuming {args.resume}" if args.resume else ""),
            flush=True,
        )
    bar = tqdm(
        total=steps,
        unit="step",
        file=sys.stderr,
        disable=None if rank == 0 else True,
        dynamic_ncols=True,
    )
    # Without a terminal the bar is off: log one line per validation instead (also when
    # stdout goes to a file while the bar shows on the terminal).
    log_lines = rank == 0 and (bool(bar.disable) or not sys.stdout.isatty())
    last = {"psnr": float("nan"), "loss_sum": 0.0, "loss_n": 0}

    def on_event(event) -> None:
        if isinstance(event, StepEvent):
            last["loss_sum"] += event.loss
            last["loss_n"] += 1
            bar.n = event.step
            bar.set_postfix(loss=f"{event.loss:.2e}", val_psnr=f"{last['psnr']:.2f}", refresh=False)
            bar.update(0)
            return
        last["psnr"] = event.psnr
        if log_lines:
            loss = last["loss_sum"] / last["loss_n"] if last["loss_n"] else float("nan")
            text = f"step {event.step}/{event.total}"
            if event.step:
                text += f"  loss {loss:.3e}"
            text += (
                f"  val PSNR {_fmt(event.psnr)}  bicubic {_fmt(event.bicubic_psnr)}"
                f"  best {_fmt(event.best_psnr)}" + ("  *" if event.improved and event.step else "")
            )
            if not event.flat_ok:
                text += f"  (not kept: moves flat images by {event.flat_255:.2f}/255)"
            print(text, flush=True)
        last["loss_sum"], last["loss_n"] = 0.0, 0

    try:
        result = train(data, config, on_event=on_event, resume=args.resume)
    finally:
        bar.close()
    if rank == 0:
        label = "fine-tuned" if init_from else "trained"
        start = f", start model {_fmt(result.start_psnr)}" if init_from else ""
        if data.val:
            gain = result.best_psnr - result.bicubic_psnr
            print(
                f"held-out PSNR on {len(data.val)} plane(s): bicubic {_fmt(result.bicubic_psnr)}"
                f"{start}, {label} {_fmt(result.best_psnr)} ({gain:+.2f} dB vs bicubic)"
            )
        else:
            print("no validation planes (--val-fraction 0): wrote the last weights, unscored")
        flat = result.flat_max_error_255
        if flat <= FLAT_MAX_ERROR_255:
            print(f"flat images stay flat within {flat:.2f}/255 at every level")
        else:
            print(
                f"warning: the model moves flat images by up to {flat:.2f}/255 (more than "
                f"{FLAT_MAX_ERROR_255}/255): black backgrounds will not stay black; train with "
                "a larger --intensity-augment",
                file=sys.stderr,
            )
        print(
            f"{result.steps} steps in {result.seconds:.0f} s; wrote {result.output} "
            f"(checkpoint {result.checkpoint})",
            flush=True,
        )
    return 0
