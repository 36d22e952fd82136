"""``napari-srcnn train``: train or fine-tune on image folders or your own stacks."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from ..errors import InputError
from ._common import add_device_arg

CHANNELS = {"y": "y", "rgb": "rgb", "per-channel": "gray"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train or fine-tune a model on images or stacks",
        description="Learn SRCNN from high-resolution data (every 2-D plane of every file "
        "is a training image; LR is made by blur + bicubic down-sampling + bicubic "
        "up-sampling), or from explicit LR/HR pairs (--lr-data). With no --from/--scratch, "
        "the installed model for the scale is fine-tuned (from scratch if there is none). "
        "Runs under torchrun for several GPUs/machines (DistributedDataParallel).",
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="HR images, TIFF stacks or folders")
    p.add_argument("--lr-data", nargs="+", metavar="LR", default=None,
                   help="LR partners of DATA, in the same order (explicit pairs)")
    p.add_argument("--scale", type=float, default=3.0, metavar="S", help="factor (default 3)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--from", dest="init_from", metavar="NAME|FILE",
                       help="model to fine-tune (default: the installed one for the scale)")
    start.add_argument("--scratch", action="store_true", help="train from scratch")
    p.add_argument("--arch", default="9-5-5", help="architecture from scratch (default 9-5-5; "
                   "e.g. 9-1-5, 9-3-5, 9-5-5-5, 9-5-5:128,64)")
    p.add_argument("--channels", choices=("auto", *CHANNELS), default="auto",
                   help="auto (default): y for RGB images, per-channel otherwise")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, metavar="N",
                        help="optimiser steps (default 2000)")
    length.add_argument("--epochs", type=float, default=None, metavar="N",
                        help="passes over the stride-14 sub-image grid")
    p.add_argument("--batch", type=int, default=64, metavar="N", help="sub-images per step")
    p.add_argument("--patch", type=int, default=33, metavar="N", help="sub-image size (33)")
    p.add_argument("--lr", type=float, default=None, metavar="X",
                   help="learning rate (default 1e-3 from scratch, 1e-4 fine-tuning)")
    p.add_argument("--recipe", choices=("adam", "paper"), default="adam")
    p.add_argument("--blur", type=float, default=0.0, metavar="SIGMA",
                   help="Gaussian blur before down-sampling (default 0)")
    p.add_argument("--no-augment", action="store_true", help="no flips/rotations")
    p.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                   help="share of planes held out for validation (default 0.1)")
    p.add_argument("--val-every", type=int, default=200, metavar="N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default=None, metavar="OUT.safetensors",
                   help="weights file to write (default: <data>_x<scale>.safetensors)")
    p.add_argument("--resume", metavar="CKPT", default=None,
                   help="continue from a checkpoint (OUT.ckpt.safetensors)")
    add_device_arg(p)
    p.set_defaults(run=run)


def _color_mode(args: argparse.Namespace) -> str:
    if args.channels != "auto":
        return CHANNELS[args.channels]
    from ..engine.data import find_images
    from ..engine.io import read_image

    first = find_images(args.data)[0]
    _, meta = read_image(first)
    return "y" if meta.rgb else "gray"


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..engine.data import training_data_from_paths
    from ..engine.files import check_output_path
    from ..engine.model import ArchSpec
    from ..engine.training import StepEvent, TrainConfig, train
    from ..engine.weights import WeightsError, default_model_name

    rank = int(os.environ.get("RANK", "0"))
    mode = _color_mode(args)
    output = Path(args.output) if args.output else Path(
        f"{Path(args.data[0]).name.split('.')[0]}_x{args.scale:g}.safetensors")
    if not output.name.endswith(".safetensors"):
        raise InputError(f"output {str(output)!r} must end in .safetensors")
    check_output_path(output, inputs=tuple(args.data))
    init_from = args.init_from
    if not args.scratch and init_from is None:
        try:
            init_from = default_model_name(args.scale, mode)
        except WeightsError:
            init_from = None  # nothing installed for this mode: train from scratch
    data = training_data_from_paths(
        args.data, args.scale, mode, lr_paths=args.lr_data, patch_size=args.patch,
        val_fraction=args.val_fraction, blur_sigma=args.blur, seed=args.seed,
    )
    steps = args.steps or 2000
    if args.epochs is not None:
        grid = sum(((p.hr.shape[-2] - args.patch) // 14 + 1) * ((p.hr.shape[-1] - args.patch) // 14 + 1)
                   for p in data.train)
        steps = max(1, math.ceil(args.epochs * grid / args.batch))
    config = TrainConfig(
        output=output, scale=args.scale, arch=ArchSpec.parse(args.arch), init_from=init_from,
        recipe=args.recipe, steps=steps, batch_size=args.batch, lr=args.lr,
        patch_size=args.patch, augment=not args.no_augment, val_every=args.val_every,
        checkpoint_every=args.val_every, device=args.device, seed=args.seed,
    )
    if rank == 0:
        start = f"fine-tuning {init_from}" if init_from else f"training {args.arch} from scratch"
        print(f"{start} ×{args.scale:g} ({mode}) on {data.description}: "
              f"{len(data.train)} training / {len(data.val)} validation plane(s), {steps} steps")
    bar = tqdm(total=steps, unit="step", disable=None if rank == 0 else True)
    last = {"psnr": float("nan")}

    def on_event(event) -> None:
        if isinstance(event, StepEvent):
            bar.n = event.step
            bar.set_postfix(loss=f"{event.loss:.2e}", val_psnr=f"{last['psnr']:.2f}", refresh=False)
            bar.update(0)
        else:
            last["psnr"] = event.psnr

    try:
        result = train(data, config, on_event=on_event, resume=args.resume)
    finally:
        bar.close()
    if rank == 0:
        print(f"held-out PSNR over {len(data.val)} plane(s): bicubic {result.bicubic_psnr:.2f} dB, "
              f"start {result.start_psnr:.2f} dB, trained {result.best_psnr:.2f} dB "
              f"({result.best_psnr - result.bicubic_psnr:+.2f} dB vs bicubic) "
              f"after {result.steps} steps in {result.seconds:.0f} s")
        print(f"wrote {result.output}")
    return 0
