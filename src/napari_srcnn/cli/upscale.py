"""``napari-srcnn upscale``: upscale image files (TIFF keeps axes and pixel size)."""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ._common import (
    add_device_arg,
    add_model_args,
    add_strength_arg,
    model_arg,
    progress_bar,
    start_work,
)

if TYPE_CHECKING:  # the engine (torch) is imported only when a command runs
    from ..engine.inference import Upscaler
    from ..engine.options import UpscaleOptions


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="upscale images with SRCNN",
        description="Upscale TIFF/PNG/JPEG images. TIFF axes and pixel size are kept (the "
        "pixel size shrinks by the factor). Several inputs need an existing output folder. "
        "Zarr arrays (IN.zarr -o OUT.zarr) are streamed chunk by chunk, never loaded whole.",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="input image files or .zarr arrays")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file or folder")
    p.add_argument(
        "--scale",
        type=float,
        default=None,
        metavar="S",
        help="up-sampling factor, e.g. 2, 3, 4 or 2.5 (default: the model's)",
    )
    add_model_args(p)
    p.add_argument(
        "--channels",
        default="auto",
        choices=("auto", "y", "rgb", "per-channel"),
        help="colour handling (default auto: RGB via the model's colour mode, other "
        "images plane by plane)",
    )
    p.add_argument(
        "--channel-axis",
        type=int,
        default=None,
        metavar="AX",
        help="axis of a stacked channel dimension (default: from the TIFF axes)",
    )
    p.add_argument(
        "--normalization",
        default="auto",
        choices=("auto", "dtype", "percentile", "none"),
        help="intensity normalisation (default auto)",
    )
    p.add_argument(
        "--tile",
        type=int,
        default=512,
        metavar="N",
        help="output tile size in pixels (default 512; results do not depend on it)",
    )
    add_device_arg(p)
    p.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="arithmetic of the network (default auto: bf16 on CUDA, and on CPUs with native "
        "bf16 for models whose bf16 check passed; fp32 otherwise). The line before the "
        "results says which ran",
    )
    p.add_argument(
        "--ensemble",
        action="store_true",
        help="self-ensemble (SRCNN+): average the results of the 8 flips and rotations "
        "(8x the time; not for zarr inputs)",
    )
    add_strength_arg(p)
    p.add_argument(
        "--reference",
        metavar="HR",
        default=None,
        help="a high-resolution original: print the PSNR of bicubic and of SRCNN",
    )
    p.set_defaults(run=run)


def _output_paths(inputs: list[Path], output: Path, scale: float) -> list[Path]:
    from ..engine.files import check_output_path
    from ..engine.io import IMAGE_SUFFIXES

    try:
        is_dir = output.is_dir()
    except (OSError, ValueError):  # a name too long, a NUL: check_output_path says which
        check_output_path(output)
        raise
    as_file = output.name.lower().endswith(IMAGE_SUFFIXES) and not is_dir
    if as_file:
        if len(inputs) > 1:
            raise InputError(f"{len(inputs)} inputs need an output folder, not a file name")
        return [output]
    if not is_dir:
        if output.suffix or output.exists():  # x.gif, or a device or other non-folder
            raise InputError(
                f"output {str(output)!r} is neither an image file name "
                f"({', '.join(IMAGE_SUFFIXES)}) nor an existing folder"
            )
        raise InputError(f"output folder {str(output)!r} does not exist")
    targets = []
    for path in inputs:
        tiff = path.name.lower().endswith((".tif", ".tiff"))
        stem = path.name.split(".")[0]
        targets.append(output / f"{stem}_x{scale:g}{'.tif' if tiff else '.png'}")
    return _distinct(inputs, targets)


def _distinct(inputs: list[Path], targets: list[Path]) -> list[Path]:
    """``targets`` (one per input), refused when two inputs would be written to one file:
    a.png and a.jpg (or a.png twice) would silently lose the first result."""
    for i, target in enumerate(targets):
        first = targets.index(target)
        if first < i:
            raise InputError(
                f"{inputs[i].name} and {inputs[first].name} would both be written "
                f"to {target.name}; upscale them in separate runs or rename one"
            )
    return targets


def _options(args: argparse.Namespace) -> UpscaleOptions:
    """The command line's [`UpscaleOptions`][napari_srcnn.engine.options.UpscaleOptions]."""
    from ..engine.options import UpscaleOptions

    return UpscaleOptions(
        scale=args.scale,
        channels=args.channels,
        channel_axis=args.channel_axis,
        tile=args.tile,
        device=args.device,
        normalization=args.normalization,
        precision=args.precision,
        ensemble=args.ensemble,
        strength=args.strength,
    )


def _is_zarr(path: Path) -> bool:
    return path.name.lower().endswith(".zarr")


def _zarr_output_paths(inputs: list[Path], output: Path, scale: float) -> list[Path]:
    if not all(_is_zarr(p) for p in inputs):
        raise InputError("zarr inputs cannot be mixed with image files in one run")
    if _is_zarr(output):
        if len(inputs) > 1:
            raise InputError(f"{len(inputs)} inputs need an output folder, not a .zarr name")
        return [output]
    if not output.is_dir():
        raise InputError(f"output folder {str(output)!r} does not exist")
    targets = [output / f"{p.name[: -len('.zarr')]}_x{scale:g}.zarr" for p in inputs]
    return _distinct(inputs, targets)


# How a CLI upscale that does not fit in memory can need less.
_ADVICE = (
    "use a smaller --scale, crop the image, or save it as zarr and upscale IN.zarr -o OUT.zarr "
    "(computed chunk by chunk)"
)


def run(args: argparse.Namespace) -> int:
    from ..engine.inference import Upscaler
    from ..engine.io import read_image, write_image

    inputs = [Path(p) for p in args.inputs]
    if any(_is_zarr(p) for p in inputs) or _is_zarr(Path(args.output)):
        return _run_zarr(args, inputs)
    upscaler = Upscaler(model_arg(args), _options(args))
    options = upscaler.options
    outputs = _output_paths(inputs, Path(args.output), upscaler.scale)
    # Everything that can be checked is checked before any work: a bad third input, a missing
    # reference or a run that does not fit in memory must not leave two results behind.
    runs = _check_runs(args, upscaler, inputs, outputs)
    start_work()
    _print_banner(upscaler)
    for src, dst, run_options in runs:
        image, meta = read_image(src)
        upscaler.options = run_options
        update, close = progress_bar(src.name)
        start = time.perf_counter()
        try:
            result = upscaler(image, progress=update)
        finally:
            close()
        write_image(dst, result, meta.upscaled(upscaler.scale))
        seconds = time.perf_counter() - start
        ran = upscaler.for_image(image.shape)  # the model that ran (auto picks per image)
        plan = ran.last_plan or ran.plan(image)[1]
        print(
            f"{src} {image.shape} {image.dtype} -> {dst} {result.shape} in {seconds:.2f} s "
            f"({ran.model.name}, {ran.runner.precision}; intensities: "
            f"{plan.intensity_summary()}; strength {plan.strength_summary()})"
        )
        if args.reference:
            _report_reference(Path(args.reference), image, result, upscaler.scale)
    upscaler.options = options
    return 0


def _check_runs(
    args: argparse.Namespace, upscaler: Upscaler, inputs: list[Path], outputs: list[Path]
) -> list[tuple[Path, Path, UpscaleOptions]]:
    """Check every input, output and the reference from their headers (nothing is read in
    full): each run's options, and an InputError for the first problem."""
    from ..engine.files import check_output_path
    from ..engine.io import check_writable, read_header
    from ..engine.options import output_shape

    for dst in outputs:
        check_output_path(dst, inputs=tuple(inputs))
    reference = read_header(args.reference) if args.reference else None
    options = upscaler.options
    runs = []
    for src, dst in zip(inputs, outputs, strict=True):
        header = read_header(src)
        axis = args.channel_axis
        if axis is None and not header.meta.rgb:
            axis = header.meta.channel_axis  # a TIFF 'C' axis is never up-sampled
        # The file's axes say whether the last one is colour (a stack 3 pixels wide is not).
        run_options = replace(options, channel_axis=axis, rgb=header.meta.rgb)
        upscaler.options = run_options
        try:
            out = output_shape(header.shape, upscaler.scale, header.meta.spatial_axes)
            extra = 0
            if reference is not None:
                _check_reference(reference, header.shape, out, upscaler.scale)
                # The reference, and the float64 Y planes and SSIM maps of the comparison.
                extra = reference.nbytes + 12 * 8 * out[0] * out[1]
            upscaler.check(
                header.shape,
                header.dtype,
                input_bytes=header.nbytes,
                extra_bytes=extra,
                advice=_ADVICE,
            )
            check_writable(dst, out, header.dtype)
        finally:
            upscaler.options = options
        runs.append((src, dst, run_options))
    return runs


def _check_reference(reference, shape: tuple[int, ...], out: tuple[int, ...], scale: float) -> None:
    """The reference must be the high-resolution original of an input of ``shape``: the same
    kind of image (2-D, or RGB(A)), ``out`` pixels big to within the factor."""
    where = f"reference {str(reference.path)!r} of shape {reference.shape}"
    color = len(shape) == 3 and shape[-1] in (3, 4)
    if not (len(shape) == 2 or color):
        raise InputError(
            f"--reference compares 2-D images and RGB photographs; the input has shape {shape}"
        )
    if len(reference.shape) != len(shape) or (color and reference.shape[-1] != shape[-1]):
        raise InputError(f"{where} is not the same kind of image as the input {shape}")
    if any(abs(reference.shape[i] - out[i]) > math.ceil(scale) for i in (0, 1)):
        raise InputError(
            f"{where} is not ×{scale:g} the input {shape} (expected about {out[0]}×{out[1]})"
        )


def _run_zarr(args: argparse.Namespace, inputs: list[Path]) -> int:
    """Stream zarr arrays into upscaled zarr arrays (bounded memory, see engine.lazy)."""
    from ..engine.inference import Upscaler
    from ..engine.lazy import check_zarr_run, open_zarr_array, upscale_zarr

    if args.reference:
        raise InputError("--reference is not supported for zarr inputs")
    if args.ensemble:
        raise InputError(
            "--ensemble needs the image in memory; it is not supported for zarr inputs"
        )
    if not _is_zarr(Path(args.output)) and not all(_is_zarr(p) for p in inputs):
        raise InputError("a zarr output needs zarr inputs")
    for src in inputs:
        if not src.exists():
            raise InputError(f"input {str(src)!r} does not exist")
    upscaler = Upscaler(model_arg(args), _options(args))
    outputs = _zarr_output_paths(inputs, Path(args.output), upscaler.scale)
    # Every source opens, every output is new, and every run fits, before the first starts.
    sources = [open_zarr_array(src) for src in inputs]
    for source, dst in zip(sources, outputs, strict=True):
        check_zarr_run(source, dst, upscaler)
    start_work()
    _print_banner(upscaler)
    for src, dst, source in zip(inputs, outputs, sources, strict=True):
        update, close = progress_bar(src.name, unit="task")
        start = time.perf_counter()
        try:
            result = upscale_zarr(src, dst, upscaler, progress=update)
        finally:
            close()
        seconds = time.perf_counter() - start
        print(f"{src} {source.shape} {source.dtype} -> {dst} {result.shape} in {seconds:.2f} s")
    return 0


def _print_banner(upscaler: Upscaler) -> None:
    """The model, the device and the precision that runs (``auto`` resolved, and why)."""
    info = upscaler.model.info
    runner = upscaler.runner
    model = f"model {upscaler.model.name} ({info.arch.name}, ×{info.scale:g} {info.color_mode})"
    if upscaler.auto_model and upscaler.options.channels == "auto":
        from ..engine.weights import default_model_name

        other = default_model_name(upscaler.scale, "per-channel")
        if other != upscaler.model.name:
            model = (
                f"model picked per image: {upscaler.model.name} for RGB photographs, "
                f"{other} for other images"
            )
    print(f"{model} on {upscaler.device}, precision {runner.precision_reason}")


def _report_reference(path: Path, lr, sr, scale: float) -> None:
    """Print Y-PSNR of bicubic and SRCNN against a high-resolution original."""
    from ..engine.evaluation import compare_to_reference
    from ..engine.io import read_image

    hr, _ = read_image(path)
    scores = compare_to_reference(lr, sr, hr, scale)
    print(
        f"PSNR vs {path.name} (Y, shave {scores['shave']}): bicubic {scores['bicubic_psnr']:.2f} dB, "
        f"SRCNN {scores['psnr']:.2f} dB ({scores['psnr'] - scores['bicubic_psnr']:+.2f} dB); "
        f"SSIM bicubic {scores['bicubic_ssim']:.4f}, SRCNN {scores['ssim']:.4f}"
    )
