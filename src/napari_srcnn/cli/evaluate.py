"""``napari-srcnn eval``: PSNR/SSIM of bicubic and SRCNN, by the literature's protocol for
8-bit photographs and over the data's range for scientific images."""

from __future__ import annotations

import argparse
import json

from ._common import (
    add_device_arg,
    add_model_args,
    add_strength_arg,
    model_arg,
    progress_bar,
    start_work,
)

SCORINGS = ("auto", "protocol", "data-range")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score bicubic and a model on HR images (Set5/Set14 protocol, or your own stacks)",
        description="Each image is a high-resolution original: it is shrunk by the factor, "
        "up-sampled by bicubic and by SRCNN, and both are scored against it with `scale` "
        "pixels shaved. 8-bit photographs follow the literature's protocol (Y channel, 0..255); "
        "16-bit, float and multichannel TIFF stacks are scored per plane over each channel's "
        "own data range, upscaled as `napari-srcnn upscale` would.",
    )
    p.add_argument("inputs", nargs="+", metavar="DIR_OR_FILE", help="images or folders of images")
    p.add_argument("--scale", type=int, required=True, metavar="S", help="integer factor")
    p.add_argument(
        "--scoring",
        choices=SCORINGS,
        default="auto",
        help="protocol (Y-PSNR of 8-bit images), data-range (any dtype, stacks, channels), "
        "or auto (default): protocol when every input is an 8-bit image, else data-range",
    )
    p.add_argument(
        "--degradation",
        choices=("bicubic", "area"),
        default="bicubic",
        help="data-range scoring: shrink by MATLAB bicubic (default) or by area binning "
        "(a camera with bigger pixels)",
    )
    p.add_argument(
        "--ensemble",
        action="store_true",
        help="score the self-ensemble (SRCNN+: the mean of the 8 flips and rotations)",
    )
    add_model_args(p, bicubic=True)
    add_device_arg(p)
    add_strength_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Score bicubic (and the model) on the inputs; print a table or JSON. Returns 0."""
    from ..engine.data import find_images
    from ..engine.evaluation import evaluate_files, protocol_upscaler, summarize
    from ..engine.inference import Upscaler
    from ..engine.options import MAX_SCALE, UpscaleOptions
    from ..engine.scoring import is_photo_file, score_files
    from ..errors import InputError

    if not 2 <= args.scale <= MAX_SCALE:
        raise InputError(f"--scale {args.scale} must be an integer from 2 to {MAX_SCALE:g}")
    scoring = args.scoring
    if scoring == "auto":
        photos = all(is_photo_file(f) for f in find_images(args.inputs))
        scoring = "protocol" if photos else "data-range"
    if scoring == "protocol" and args.degradation != "bicubic":
        raise InputError(
            "the protocol shrinks by bicubic; --degradation needs --scoring data-range"
        )
    if scoring == "protocol" and args.strength != "auto":
        raise InputError(
            "the protocol scores the plain model; --strength needs --scoring data-range"
        )
    upscaler = None
    if not args.bicubic:
        if scoring == "protocol":
            upscaler = protocol_upscaler(
                model_arg(args), args.scale, args.device, ensemble=args.ensemble
            )
        else:
            options = UpscaleOptions(
                scale=float(args.scale),
                device=args.device,
                ensemble=args.ensemble,
                strength=args.strength,
            )
            upscaler = Upscaler(model_arg(args), options)
    start_work()
    update, close = progress_bar("eval", unit="image")
    try:
        if scoring == "protocol":
            rows = evaluate_files(args.inputs, args.scale, upscaler, progress=update)
        else:
            rows = score_files(args.inputs, args.scale, upscaler, args.degradation, update)
    finally:
        close()
    mean = summarize([{k: v for k, v in r.items() if k != "model"} for r in rows])
    models = sorted({r["model"] for r in rows if "model" in r})
    if upscaler is not None and scoring == "protocol":
        models = [upscaler.model.name]
    if args.json:
        model = {
            "model": ", ".join(models) or "bicubic",
            "scoring": scoring,
            "ensemble": bool(args.ensemble and upscaler is not None),
        }
        if upscaler is not None and scoring == "protocol":
            model["arch"] = upscaler.model.info.arch.name
        print(json.dumps({"scale": args.scale, **model, "images": rows, "mean": mean}, indent=2))
        return 0
    plus = "+ (self-ensemble)" if args.ensemble else ""
    title = (
        "bicubic only"
        if upscaler is None
        else f"model {', '.join(models)}{plus} on {upscaler.device}"
    )
    if scoring == "protocol":
        print(f"×{args.scale}, {title}; Y channel, {args.scale} px shaved")
    else:
        print(
            f"×{args.scale}, {title}; {args.degradation}-shrunk, every plane over its channel's "
            f"data range, {args.scale} px shaved"
        )
    header = f"{'image':<24}{'bicubic PSNR':>14}{'SSIM':>8}"
    if upscaler is not None:
        name = "SRCNN+ PSNR" if args.ensemble else "SRCNN PSNR"
        header += f"{name:>13}{'SSIM':>8}{'gain':>8}"
        if scoring == "data-range":
            header += f"{'strength':>10}"
    print(header)
    for row in [*rows, {"name": "mean", **mean}]:
        line = f"{row['name']:<24}{row['bicubic_psnr']:>14.2f}{row['bicubic_ssim']:>8.4f}"
        if upscaler is not None:
            line += (
                f"{row['psnr']:>13.2f}{row['ssim']:>8.4f}{row['psnr'] - row['bicubic_psnr']:>+8.2f}"
            )
            if "strength" in row:
                line += f"{row['strength']:>10.2f}"
        print(line)
    return 0
