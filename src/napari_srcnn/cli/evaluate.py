"""``napari-srcnn eval``: PSNR/SSIM of bicubic and SRCNN by the literature's protocol."""

from __future__ import annotations

import argparse
import json

from ._common import add_device_arg, add_model_args, model_arg, progress_bar


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score bicubic and a model on HR images (Y-PSNR/SSIM, Set5/Set14 protocol)",
        description="Each image is a high-resolution original: its Y channel is mod-cropped, "
        "degraded with MATLAB bicubic, up-sampled by bicubic and by SRCNN, and scored with "
        "`scale` pixels shaved.",
    )
    p.add_argument("inputs", nargs="+", metavar="DIR_OR_FILE", help="images or folders of images")
    p.add_argument("--scale", type=int, required=True, metavar="S", help="integer factor")
    add_model_args(p, bicubic=True)
    add_device_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


MAX_SCALE = 16


def run(args: argparse.Namespace) -> int:
    """Score bicubic (and the model) on the inputs; print a table or JSON. Returns 0."""
    from ..engine.evaluation import evaluate_files, protocol_upscaler, summarize
    from ..errors import InputError

    if not 2 <= args.scale <= MAX_SCALE:
        raise InputError(f"--scale {args.scale} must be an integer from 2 to {MAX_SCALE}")
    upscaler = None
    if not args.bicubic:
        upscaler = protocol_upscaler(model_arg(args), args.scale, args.device)
    update, close = progress_bar("eval", unit="image")
    try:
        rows = evaluate_files(args.inputs, args.scale, upscaler, progress=update)
    finally:
        close()
    mean = summarize(rows)
    if args.json:
        if upscaler is not None:
            model = {"model": upscaler.model.name, "arch": upscaler.model.info.arch.name}
        else:
            model = {"model": "bicubic"}
        print(json.dumps({"scale": args.scale, **model, "images": rows, "mean": mean}, indent=2))
        return 0
    title = (
        "bicubic only" if upscaler is None else f"model {upscaler.model.name} on {upscaler.device}"
    )
    print(f"×{args.scale}, {title}; Y channel, {args.scale} px shaved")
    header = f"{'image':<24}{'bicubic PSNR':>14}{'SSIM':>8}"
    if upscaler is not None:
        header += f"{'SRCNN PSNR':>13}{'SSIM':>8}{'gain':>8}"
    print(header)
    for row in [*rows, {"name": "mean", **mean}]:
        line = f"{row['name']:<24}{row['bicubic_psnr']:>14.2f}{row['bicubic_ssim']:>8.4f}"
        if upscaler is not None:
            line += (
                f"{row['psnr']:>13.2f}{row['ssim']:>8.4f}{row['psnr'] - row['bicubic_psnr']:>+8.2f}"
            )
        print(line)
    return 0
