"""Malformed and hostile inputs, one table row each, through the Python API and the CLI.

Every row says how to build the input, which surfaces it goes through and what must
happen (the decisions are documented in docs/reliability.md):

- ``Err(type, fragment)``: the API raises ``type`` (an SRCNNError subclass) with a one-line
  message containing ``fragment``; the CLI prints exactly that one line on stderr, no
  traceback, and exits with code 2.
- ``Ok(check)``: the run succeeds and ``check(result, ctx)`` holds (the CLI's output file is
  read back and checked the same way).
- ``Warn(category, fragment, check)``: it succeeds with one warning (CLI: one
  ``napari-srcnn: warning:`` line, exit code 0).

Whatever the outcome, nothing that existed before the run changes (inputs, weights, and an
earlier result at the output path: checked with SHA-256 for every row) and no temporary
file is left behind.

The CLI is run in-process through ``napari_srcnn.cli.main`` (the console script's exact
code path) so that failures can be simulated with monkeypatch; ``tests/test_cli.py`` runs
the real entry point in a subprocess. A read-only folder cannot be made with chmod when the
tests run as root (root writes anyway), so it is simulated at both places the package
looks: ``os.access`` (the up-front check) and ``tempfile.mkstemp`` (the write itself).
"""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import struct
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import torch
from safetensors.torch import save_file

from napari_srcnn.cli import main
from napari_srcnn.engine.files import check_output_path
from napari_srcnn.engine.inference import upscale
from napari_srcnn.engine.io import read_image, write_image
from napari_srcnn.engine.model import SRCNN, ArchSpec
from napari_srcnn.engine.model_info import ModelInfo
from napari_srcnn.engine.resize import imresize
from napari_srcnn.engine.weights_file import save_weights
from napari_srcnn.errors import (
    DeviceError,
    InputError,
    ScaleMismatchWarning,
    SRCNNError,
    WeightsError,
    WriteError,
)

# ----------------------------------------------------------------------------- fixtures


def _random_model(folder: Path, name: str, arch: str, channels: int = 1, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    net = SRCNN(ArchSpec.parse(arch, channels=channels))
    mode = "rgb" if channels == 3 else "y"
    info = ModelInfo(name=name, arch=net.spec, scale=2.0, color_mode=mode)
    return save_weights(folder / f"{name}.safetensors", net, info)


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_model_path) -> dict[str, Path]:
    """Weights files: the tiny trained ×2 model, a random 9-5-5 (halo 8), a model whose
    halo (19) is larger than the smallest tile (16), and a random RGB model."""
    folder = tmp_path_factory.mktemp("models")
    return {
        "tiny": Path(tiny_model_path),
        "955": _random_model(folder, "r955", "9-5-5"),
        "wide": _random_model(folder, "wide", "21-5-15:8,4"),
        "rgb": _random_model(folder, "rgb", "9-1-5:8,4", channels=3),
    }


@pytest.fixture(scope="module")
def cam(camera) -> np.ndarray:
    """A 32×36 uint8 crop of the real photo (small: every row runs in well under a second)."""
    return camera[:32, :36].copy()


@pytest.fixture(scope="module")
def astro(astronaut) -> np.ndarray:
    """A 24×20×3 uint8 crop of the real RGB photo."""
    return astronaut[:24, :20].copy()


@dataclass
class Ctx:
    """What a row's builder gets: a fresh folder, the models, the test images."""

    tmp: Path
    models: dict[str, Path]
    camera: np.ndarray
    astronaut: np.ndarray
    monkeypatch: pytest.MonkeyPatch
    printed: str = ""  # what the CLI printed (stdout and stderr), for ``after`` checks


@dataclass
class Request:
    """One run: the image (a file or an array), the model, options and the output file."""

    image: Path | np.ndarray | Any
    model: Any = "tiny"  # key of ``models``, or a path/name given as is (API: any object)
    scale: Any = 2.0
    options: dict[str, Any] = field(default_factory=dict)
    output: Path | None = None  # default: <tmp>/out/result.tif (pre-filled: must survive)
    cli_extra: list[str] = field(default_factory=list)
    more_inputs: list[Path] = field(default_factory=list)  # CLI: further inputs after ``image``
    # Simulated failures, applied for the run only: (object, attribute, replacement).
    patches: list[tuple[Any, str, Any]] = field(default_factory=list)
    after: Callable[[Ctx], None] | None = None  # extra assertion after the run


@dataclass(frozen=True)
class Err:
    type: type[BaseException]
    fragment: str


@dataclass(frozen=True)
class Ok:
    check: Callable[[np.ndarray, Ctx], None] = lambda out, ctx: None


@dataclass(frozen=True)
class Warn:
    category: type[Warning]
    fragment: str
    check: Callable[[np.ndarray, Ctx], None] = lambda out, ctx: None


@dataclass(frozen=True)
class Row:
    id: str
    build: Callable[[Ctx], Request]
    surfaces: str  # "api", "cli" or "api cli"
    expect: Err | Ok | Warn
    xfail: str = ""  # a known engine bug (reported), with the failing input


# ----------------------------------------------------------------------------- builders


def _tif(ctx: Ctx, name: str, array: np.ndarray, **kwargs) -> Path:
    path = ctx.tmp / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tifffile warns about 0-size arrays
        tifffile.imwrite(path, array, **kwargs)
    return path


def _bytes(ctx: Ctx, name: str, content: bytes) -> Path:
    path = ctx.tmp / name
    path.write_bytes(content)
    return path


def _truncated(path: Path, keep: float | int) -> Path:
    data = path.read_bytes()
    n = keep if isinstance(keep, int) else int(len(data) * keep)
    path.write_bytes(data[:n])
    return path


def _png(ctx: Ctx, name: str, array: np.ndarray) -> Path:
    import imageio.v3 as iio

    path = ctx.tmp / name
    iio.imwrite(path, array)
    return path


def _big_camera(ctx: Ctx) -> np.ndarray:
    return np.tile(ctx.camera, (6, 6))


def _tiff_bomb(ctx: Ctx, side: int = 0xFFFFFFFF, name: str = "bomb.tif") -> Path:
    """A valid TIFF whose ImageWidth/ImageLength claim ``side`` pixels each (default
    4 294 967 295; the pixel data is the small image's)."""
    path = _tif(ctx, name, ctx.camera)
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tags = {t.code: t for t in tif.pages[0].tags.values()}
    for code in (256, 257):
        tag = tags[code]
        fmt = "<I" if tag.dtype == tifffile.DATATYPE.LONG else "<H"
        value = side if fmt == "<I" else min(side, 0xFFFF)
        data[tag.valueoffset : tag.valueoffset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(data))
    return path


def _zarr(ctx: Ctx, name: str, array: np.ndarray | None = None, **kwargs) -> Path:
    import zarr

    path = ctx.tmp / name
    z = zarr.open_array(str(path), mode="w", **kwargs)
    if array is not None:
        z[:] = array
    return path


def _zarr_with_a_garbage_chunk(ctx: Ctx) -> Path:
    """A zarr array of the photo, one of its chunk files overwritten by random bytes."""
    path = _zarr(ctx, "g.zarr", ctx.camera, shape=ctx.camera.shape, dtype="u1", chunks=(16, 18))
    chunks = sorted(p for p in path.rglob("*") if p.is_file() and p.name != "zarr.json")
    chunks[len(chunks) // 2].write_bytes(np.random.default_rng(0).bytes(200))
    return path


def _three_series(ctx: Ctx) -> Path:
    path = ctx.tmp / "series.tif"
    with tifffile.TiffWriter(path) as tw:
        for k in range(3):
            tw.write(ctx.camera + k)
    return path


def _system_pickle(ctx: Ctx) -> Path:
    """A ``torch.save`` file whose pickle calls ``os.system`` (as an attacker writes it)."""

    class System:
        def __reduce__(self):
            return (os.system, (f"touch {ctx.tmp / 'PWNED'}",))

    path = ctx.tmp / "system.pt"
    torch.save({"conv1.weight": torch.zeros(1), "payload": System()}, path)
    return path


def _protocol0_pickle(ctx: Ctx) -> Path:
    """A plain protocol-0 pickle calling ``os.system`` (torch's unpickler stops at an opcode)."""

    class System:
        def __reduce__(self):
            return (os.system, (f"touch {ctx.tmp / 'PWNED'}",))

    path = ctx.tmp / "proto0.pth"
    with open(path, "wb") as fh:
        pickle.dump({"conv1.weight": System()}, fh, protocol=0)
    return path


def _cmyk_jpeg(ctx: Ctx) -> Path:
    from PIL import Image

    path = ctx.tmp / "cmyk.jpg"
    Image.fromarray(ctx.astronaut).convert("CMYK").save(path)
    return path


def _still_white_is_zero(ctx: Ctx) -> None:
    """The result of a MINISWHITE TIFF is MINISWHITE too: it looks like its input."""
    with tifffile.TiffFile(ctx.tmp / "out" / "result.tif") as tif:
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.MINISWHITE


def _scaled_weights(ctx: Ctx, top: float) -> Path:
    """The tiny model with every tensor scaled so that the largest reaches ``top``."""
    tensors, _ = _tiny_parts(ctx)
    biggest = max(float(v.abs().max()) for v in tensors.values())
    scaled = {k: (v.double() * (top / biggest)).float() for k, v in tensors.items()}
    return _weights_with(ctx, "huge.safetensors", scaled)


def _no_raw_name(ctx: Ctx) -> None:
    """The hostile name reached the terminal as one line without its escapes."""
    assert not any(line.startswith("FAKE") for line in ctx.printed.splitlines()), ctx.printed


def _huge(shape: tuple[int, ...]) -> np.ndarray:
    """A read-only array of ``shape`` that takes no memory (a broadcast zero)."""
    return np.broadcast_to(np.uint8(0), shape)


def _low_memory(limit: int) -> list:
    from napari_srcnn.engine import memory

    return [(memory, "available_memory", lambda: limit)]


def _finite_float64(out: np.ndarray, ctx: Ctx) -> None:
    assert out.dtype == np.float64 and np.isfinite(out).all()
    assert out.min() < -1.6e308 and out.max() > 1.6e308


def _finite_float32(out: np.ndarray, ctx: Ctx) -> None:
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() < -3e38 and out.max() > 3e38  # the range kept, clipped at float32's limits


def _corrupt_png(ctx: Ctx) -> Path:
    path = _png(ctx, "bad.png", ctx.camera)
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 8
    data[start : start + 40] = b"\xff" * 40  # broken zlib stream, CRC no longer matches
    path.write_bytes(bytes(data))
    return path


def _weights_from(ctx: Ctx, name: str, tensors: dict, meta: dict) -> Path:
    path = ctx.tmp / name
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=meta)
    return path


def _tiny_parts(ctx: Ctx) -> tuple[dict, dict]:
    from safetensors import safe_open

    with safe_open(str(ctx.models["tiny"]), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata())  # noqa: SIM118


def _weights_with(ctx: Ctx, file_name: str, tensors=None, **meta) -> Path:
    base_t, base_m = _tiny_parts(ctx)
    return _weights_from(ctx, file_name, tensors or base_t, {**base_m, **meta})


class _Evil:
    """Unpickling this runs ``open(marker, "w")``: proof of code execution if it appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickle_bomb(ctx: Ctx) -> Path:
    path = ctx.tmp / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"conv1.weight": _Evil(ctx.tmp / "PWNED")}, fh, protocol=2)
    return path


def _torch_save_bomb(ctx: Ctx) -> Path:
    path = ctx.tmp / "evil.pt"
    state = {f"conv{i}.weight": torch.zeros(1) for i in (1, 2, 3)}
    state["payload"] = _Evil(ctx.tmp / "PWNED")
    torch.save(state, path)  # the zip format of torch >= 1.6, pickle inside
    return path


def _never_executed(ctx: Ctx) -> None:
    assert not (ctx.tmp / "PWNED").exists(), "the pickle payload was executed"


def _read_only_os_access(ctx: Ctx) -> list:
    folder = str(ctx.tmp / "out")
    real = os.access

    def access(path, mode, *args, **kwargs):
        if os.path.abspath(path) == os.path.abspath(folder) and mode & os.W_OK:
            return False
        return real(path, mode, *args, **kwargs)

    return [(os, "access", access)]


def _read_only_mkstemp(ctx: Ctx) -> list:
    folder = os.path.abspath(ctx.tmp / "out")
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and os.path.abspath(dir) == folder:
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real(*args, dir=dir, **kwargs)

    return [(tempfile, "mkstemp", mkstemp)]


def _disk_full(ctx: Ctx) -> list:
    real = tifffile.imwrite

    def imwrite(path, data, *args, **kwargs):
        real(path, data, *args, **kwargs)
        with open(path, "r+b") as fh:  # keep half of it, as a full disk would
            fh.truncate(os.path.getsize(path) // 2)
        raise OSError(errno.ENOSPC, "No space left on device")

    return [(tifffile, "imwrite", imwrite)]


# ----------------------------------------------------------------------------- checks


def _shape(*shape: int) -> Callable[[np.ndarray, Ctx], None]:
    def check(out: np.ndarray, ctx: Ctx) -> None:
        assert out.shape == shape, out.shape

    return check


def _close_to_bicubic(image: np.ndarray, tol: float) -> Callable[[np.ndarray, Ctx], None]:
    """Mean |SR - bicubic| below ``tol`` × the image's range (a real upscaling, not junk)."""

    def check(out: np.ndarray, ctx: Ctx) -> None:
        ref = imresize(image.astype(np.float64), 2.0)
        span = float(image.max()) - float(image.min())
        assert out.dtype == image.dtype and out.shape == ref.shape
        err = np.abs(out.astype(np.float64) - ref).mean()
        assert err < tol * span, f"mean error {err:.3g} for a range of {span:.3g}"

    return check


def _nan_check(out: np.ndarray, ctx: Ctx) -> None:
    """NaN is missing data: NaN where it lands (×2: a 2×2 block), computed as the low end of
    the range, so every other pixel is what the image with that value there gives."""
    from napari_srcnn.engine.color import normalization_auto

    assert out.dtype == np.float32
    hole = np.zeros(out.shape, bool)
    hole[14:16, 18:20] = True
    np.testing.assert_array_equal(np.isnan(out), hole)
    clean = _nan_image(ctx)
    clean[7, 9] = normalization_auto(clean).low
    ref = upscale(clean, str(ctx.models["955"]), 2.0)
    # (the percentiles of the clean image differ from those of the finite values in the last bits)
    np.testing.assert_allclose(out[~hole], ref[~hole], atol=1e-5)


def _nan_image(ctx: Ctx) -> np.ndarray:
    image = ctx.camera.astype(np.float32) / 255
    image[7, 9] = np.nan
    return image


def _inf_image(ctx: Ctx) -> np.ndarray:
    image = ctx.camera.astype(np.float32) * 4.0  # 0..1020: normalised by min/max
    image[3, 3], image[20, 30] = np.inf, -np.inf
    return image


def _inf_check(out: np.ndarray, ctx: Ctx) -> None:
    finite = _inf_image(ctx)[np.isfinite(_inf_image(ctx))]
    assert np.isfinite(out).all()
    span = finite.max() - finite.min()
    assert finite.min() - 0.5 * span <= out.min() and out.max() <= finite.max() + 0.5 * span


def _all_nan_check(out: np.ndarray, ctx: Ctx) -> None:
    assert out.shape == (20, 20) and np.isnan(out).all()  # missing stays missing


def _float16_check(out: np.ndarray, ctx: Ctx) -> None:
    assert out.dtype == np.float16 and out.shape == (64, 72)
    ref = upscale(ctx.camera.astype(np.float32) / 255, str(ctx.models["tiny"]), 2.0)
    assert np.abs(out.astype(np.float32) - ref).max() < 2e-3


def _big_endian_check(out: np.ndarray, ctx: Ctx) -> None:
    native = upscale(ctx.camera.astype(np.uint16) * 257, str(ctx.models["tiny"]), 2.0)
    np.testing.assert_array_equal(out.astype(np.uint16), native)


def _six_d(ctx: Ctx) -> np.ndarray:
    planes = [np.roll(ctx.camera[:12, :14], k, axis=1) for k in range(4)]
    return np.stack(planes).reshape(1, 2, 1, 2, 12, 14)


def _six_d_check(out: np.ndarray, ctx: Ctx) -> None:
    assert out.shape == (1, 2, 1, 2, 24, 28) and out.dtype == np.uint8
    plane = _six_d(ctx)[0, 1, 0, 0]
    alone = upscale(plane, str(ctx.models["tiny"]), 2.0)
    # The stack shares one intensity map (its own range), the plane alone has its own: the
    # two agree to the 8-bit rounding.
    assert np.abs(out[0, 1, 0, 0].astype(int) - alone).max() <= 1


def _rgba(ctx: Ctx) -> np.ndarray:
    alpha = np.full(ctx.astronaut.shape[:2] + (1,), 180, np.uint8)
    return np.concatenate([ctx.astronaut, alpha], axis=-1)


def _rgba_check(out: np.ndarray, ctx: Ctx) -> None:
    assert out.shape == (48, 40, 4) and out.dtype == np.uint8
    assert (out[..., 3] == 180).all()  # alpha: bicubic of a constant
    rgb = upscale(ctx.astronaut, str(ctx.models["tiny"]), 2.0)  # Y through the network
    np.testing.assert_array_equal(out[..., :3], rgb)


def _gray_alpha_check(out: np.ndarray, ctx: Ctx) -> None:
    assert out.shape == (64, 72, 2) and out.dtype == np.uint8
    # Both channels are upscaled on their own (per channel: the alpha as an intensity).
    gray = upscale(ctx.camera, str(ctx.models["tiny"]), 2.0)
    np.testing.assert_array_equal(out[..., 0], gray)
    alpha = upscale(np.full_like(ctx.camera, 255), str(ctx.models["tiny"]), 2.0)
    np.testing.assert_array_equal(out[..., 1], alpha)


def _tile_check(out: np.ndarray, ctx: Ctx) -> None:
    whole = upscale(ctx.camera.astype(np.float32) / 255, str(ctx.models["wide"]), 2.0, tile=4096)
    assert np.abs(out - whole).max() <= 1e-5


def _tiny_check(out: np.ndarray, ctx: Ctx) -> None:
    assert out.shape == (4, 4) and out.dtype == np.uint8


# ----------------------------------------------------------------------------- the table


ROWS: list[Row] = [
    # --- broken files -------------------------------------------------------------------
    Row(
        "tiff-truncated",
        lambda c: Request(_truncated(_tif(c, "t.tif", _big_camera(c)), 5000)),
        "api cli",
        Err(InputError, "cannot read"),
    ),
    Row(
        "tiff-corrupt-header",
        lambda c: Request(_bytes(c, "c.tif", b"II*\x00" + b"\x9a\x01" * 40)),
        "api cli",
        Err(InputError, "cannot read"),
    ),
    Row(
        "tiff-ifd-offset-past-end",
        lambda c: Request(
            _bytes(
                c,
                "o.tif",
                (lambda b: b[:4] + struct.pack("<I", 0xFFFFFF00) + b[8:])(
                    _tif(c, "v.tif", c.camera).read_bytes()
                ),
            )
        ),
        "api",
        Err(InputError, "cannot read"),
    ),
    Row(
        "tiff-header-claims-terabytes",
        lambda c: Request(_tiff_bomb(c)),
        "api cli",
        Err(InputError, "of memory available"),
    ),
    Row(
        "text-file-named-tif",
        lambda c: Request(_bytes(c, "notes.tif", b"hello, world\n" * 10)),
        "api",
        Err(InputError, "cannot read"),
    ),
    Row(
        "png-truncated",
        lambda c: Request(_truncated(_png(c, "t.png", _big_camera(c)), 0.5)),
        "api cli",
        Err(InputError, "cannot read"),
    ),
    Row(
        "png-corrupt-data",
        lambda c: Request(_corrupt_png(c)),
        "api cli",
        Err(InputError, "cannot read"),
    ),
    Row(
        "zero-byte-tiff",
        lambda c: Request(_bytes(c, "empty.tif", b"")),
        "api cli",
        Err(InputError, "is an empty file"),
    ),
    Row(
        "zero-byte-png",
        lambda c: Request(_bytes(c, "empty.png", b"")),
        "api",
        Err(InputError, "is an empty file"),
    ),
    Row(
        "directory-as-file",
        lambda c: Request((c.tmp / "stack.tif").mkdir() or c.tmp / "stack.tif"),
        "api cli",
        Err(InputError, "is a folder"),
    ),
    Row(
        "missing-file",
        lambda c: Request(c.tmp / "nope.tif"),
        "api cli",
        Err(InputError, "does not exist"),
    ),
    Row(
        "unsupported-suffix",
        lambda c: Request(_bytes(c, "anim.gif", b"GIF89a" + b"\0" * 20)),
        "api cli",
        Err(InputError, "unsupported file type"),
    ),
    # --- shapes ---------------------------------------------------------------------------
    Row(
        "one-dimensional-tiff",
        lambda c: Request(_tif(c, "line.tif", np.arange(50, dtype=np.uint8))),
        "api cli",
        Err(InputError, "not an image"),
    ),
    Row(
        "zero-size-tiff",
        lambda c: Request(_tif(c, "zero.tif", np.zeros((0, 5), np.uint8))),
        "api cli",
        Err(InputError, "empty image"),
    ),
    Row(
        "zero-size-array",
        lambda c: Request(np.zeros((0, 5), np.uint8)),
        "api",
        Err(InputError, "is empty"),
    ),
    Row(
        "1x1-image",
        lambda c: Request(_tif(c, "dot.tif", np.full((1, 1), 7, np.uint8))),
        "api cli",
        Err(InputError, "too small"),
    ),
    Row(
        "2x2-smaller-than-receptive-field",
        lambda c: Request(
            _tif(c, "two.tif", np.array([[0, 50], [100, 250]], np.uint8)), model="955"
        ),
        "api cli",
        Ok(_tiny_check),
    ),
    Row(
        "3-pixel-strip",
        lambda c: Request(c.camera[:3].copy(), model="955"),
        "api",
        Ok(_shape(6, 72)),
    ),
    Row("6-d-array", lambda c: Request(_tif(c, "six.tif", _six_d(c))), "api cli", Ok(_six_d_check)),
    Row(
        "7-d-array",
        lambda c: Request(np.zeros((1, 1, 2, 1, 2, 6, 7), np.uint8)),
        "api",
        Err(InputError, "at most 6"),
    ),
    Row(
        "7-d-tiff",
        lambda c: Request(_tif(c, "seven.tif", np.zeros((2, 1, 2, 1, 2, 6, 7), np.uint8))),
        "cli",
        Err(InputError, "at most 6"),
    ),
    Row("rgba", lambda c: Request(_png(c, "rgba.png", _rgba(c))), "api cli", Ok(_rgba_check)),
    Row(
        "gray-plus-alpha-png",
        lambda c: Request(
            _png(c, "la.png", np.stack([c.camera, np.full_like(c.camera, 255)], -1)),
            options={"channel_axis": -1},
            output=c.tmp / "out" / "result.png",
        ),
        "api cli",
        Ok(_gray_alpha_check),
    ),
    # --- pixel values and dtypes -----------------------------------------------------------
    Row(
        "nan-pixel",
        lambda c: Request(_tif(c, "nan.tif", _nan_image(c)), model="955"),
        "api cli",
        Ok(_nan_check),
    ),
    Row(
        "inf-pixels",
        lambda c: Request(_tif(c, "inf.tif", _inf_image(c))),
        "api cli",
        Ok(_inf_check),
    ),
    Row(
        "all-nan",
        lambda c: Request(np.full((10, 10), np.nan, np.float32)),
        "api",
        Ok(_all_nan_check),
    ),
    Row(
        "bool",
        lambda c: Request(_tif(c, "mask.tif", c.camera > 100)),
        "api cli",
        Err(InputError, "unsupported dtype bool"),
    ),
    Row(
        "complex",
        lambda c: Request(_tif(c, "fft.tif", c.camera.astype(np.complex64))),
        "api cli",
        Err(InputError, "unsupported dtype complex64"),
    ),
    Row(
        "float16",
        lambda c: Request(_tif(c, "half.tif", (c.camera / 255).astype(np.float16))),
        "api cli",
        Ok(_float16_check),
    ),
    Row(
        "int64",
        lambda c: Request(c.camera.astype(np.int64)),
        "api",
        Ok(lambda out, ctx: _close_to_bicubic(ctx.camera.astype(np.int64), 0.05)(out, ctx)),
    ),
    Row(
        "constant-huge-float",
        lambda c: Request(np.full((8, 8), 1e17, np.float64)),
        "api",
        Ok(lambda out, ctx: np.testing.assert_allclose(out, 1e17, rtol=0.1)),
    ),
    Row(
        "float64-beyond-float32-range",
        lambda c: Request(c.camera * 1e300),
        "api",
        Ok(lambda out, ctx: _close_to_bicubic(ctx.camera * 1e300, 0.05)(out, ctx)),
    ),
    Row(
        "int8-signed",
        lambda c: Request((c.camera // 2).astype(np.int8)),
        "api",
        Ok(lambda out, ctx: _close_to_bicubic((ctx.camera // 2).astype(np.int8), 0.05)(out, ctx)),
    ),
    Row(
        "big-endian-uint16",
        lambda c: Request(c.camera.astype(">u2") * 257),
        "api",
        Ok(_big_endian_check),
    ),
    # --- options ----------------------------------------------------------------------------
    Row(
        "absurd-scale",
        lambda c: Request(c.camera, scale=1e6, cli_extra=[]),
        "api cli",
        Err(InputError, "at most 16"),
    ),
    Row(
        "negative-scale",
        lambda c: Request(c.camera, scale=-3.0),
        "api cli",
        Err(InputError, "above 1"),
    ),
    Row(
        "nan-scale",
        lambda c: Request(c.camera, scale=float("nan")),
        "api cli",
        Err(InputError, "above 1"),
    ),
    Row("scale-one", lambda c: Request(c.camera, scale=1.0), "api cli", Err(InputError, "above 1")),
    Row(
        "tile-smaller-than-minimum",
        lambda c: Request(c.camera, options={"tile": 4}),
        "api cli",
        Err(InputError, "at least 16"),
    ),
    Row(
        "tile-negative",
        lambda c: Request(c.camera, options={"tile": -5}),
        "api cli",
        Err(InputError, "at least 16"),
    ),
    Row(
        "tile-smaller-than-halo",
        lambda c: Request(
            _tif(c, "f.tif", c.camera.astype(np.float32) / 255), model="wide", options={"tile": 16}
        ),
        "api cli",
        Ok(_tile_check),
    ),
    Row(
        "channel-axis-out-of-range",
        lambda c: Request(c.camera, options={"channel_axis": 5}),
        "api cli",
        Err(InputError, "out of range"),
    ),
    # --- weights -------------------------------------------------------------------------
    Row(
        "weights-wrong-shapes",
        lambda c: Request(
            c.camera,
            model=str(
                _weights_with(
                    c,
                    "shapes.safetensors",
                    arch='{"f1": 3, "f2": 1, "f3": 3, "n1": 16, "n2": 4, '
                    '"channels": 1, "extra_layers": 0}',
                )
            ),
        ),
        "api cli",
        Err(WeightsError, "do not fit architecture"),
    ),
    Row(
        "weights-truncated",
        lambda c: Request(
            c.camera, model=str(_truncated(_weights_with(c, "cut.safetensors"), 0.6))
        ),
        "api cli",
        Err(WeightsError, "safetensors"),
    ),
    Row(
        "weights-truncated-in-tensor-data",
        lambda c: Request(
            c.camera,
            model=str(
                _truncated(
                    _weights_with(c, "end.safetensors"),
                    len(_weights_with(c, "full.safetensors").read_bytes()) - 7,
                )
            ),
        ),
        "api cli",
        Err(WeightsError, "safetensors"),
    ),
    Row(
        "weights-zero-bytes",
        lambda c: Request(c.camera, model=str(_bytes(c, "z.safetensors", b""))),
        "api cli",
        Err(WeightsError, "is an empty file"),
    ),
    Row(
        "weights-random-bytes",
        lambda c: Request(
            c.camera, model=str(_bytes(c, "r.safetensors", np.random.default_rng(0).bytes(4096)))
        ),
        "api",
        Err(WeightsError, "not a valid safetensors"),
    ),
    Row(
        "weights-foreign-safetensors",
        lambda c: Request(
            c.camera,
            model=str(
                _weights_from(c, "hf.safetensors", {"weight": torch.zeros(3, 3)}, {"format": "pt"})
            ),
        ),
        "api cli",
        Err(WeightsError, "not a napari-srcnn weights file"),
    ),
    Row(
        "weights-nan",
        lambda c: Request(
            c.camera,
            model=str(
                _weights_with(
                    c,
                    "nan.safetensors",
                    {k: v.clone().fill_(float("nan")) for k, v in _tiny_parts(c)[0].items()},
                )
            ),
        ),
        "api",
        Err(WeightsError, "NaN or Inf"),
    ),
    Row(
        "weights-memory-bomb-architecture",
        lambda c: Request(
            c.camera,
            model=str(
                _weights_with(
                    c,
                    "bomb.safetensors",
                    arch='{"f1": 9, "f2": 5, "f3": 5, "n1": 200000, "n2": 200000, '
                    '"channels": 1, "extra_layers": 0}',
                )
            ),
        ),
        "api cli",
        Err(WeightsError, "implausible architecture"),
    ),
    Row(
        "weights-infinite-scale",
        lambda c: Request(
            c.camera, scale=None, model=str(_weights_with(c, "inf.safetensors", scale="inf"))
        ),
        "api",
        Err(WeightsError, "positive finite"),
    ),
    Row(
        "weights-newer-format",
        lambda c: Request(
            c.camera, model=str(_weights_with(c, "new.safetensors", format_version="99"))
        ),
        "api",
        Err(WeightsError, "newer"),
    ),
    Row(
        "weights-integer-tensors",
        lambda c: Request(
            c.camera,
            model=str(
                _weights_with(
                    c,
                    "int.safetensors",
                    {k: v.to(torch.int32) for k, v in _tiny_parts(c)[0].items()},
                )
            ),
        ),
        "api",
        Err(WeightsError, "not floating point"),
    ),
    Row(
        "legacy-pickle-that-runs-code",
        lambda c: Request(c.camera, model=str(_pickle_bomb(c)), after=_never_executed),
        "api cli",
        Err(WeightsError, "refused to load"),
    ),
    Row(
        "legacy-torch-save-that-runs-code",
        lambda c: Request(c.camera, model=str(_torch_save_bomb(c)), after=_never_executed),
        "api cli",
        Err(WeightsError, "refused to load"),
    ),
    Row(
        "legacy-not-a-state-dict",
        lambda c: Request(
            c.camera,
            model=str((lambda p: (torch.save([torch.zeros(2)], p), p)[1])(c.tmp / "list.pt")),
        ),
        "api",
        Err(WeightsError, "state dict of tensors"),
    ),
    Row(
        "legacy-truncated",
        lambda c: Request(
            c.camera,
            model=str(
                _truncated(
                    (lambda p: (torch.save({"w": torch.zeros(64, 64)}, p), p)[1])(
                        c.tmp / "cut.pth"
                    ),
                    0.5,
                )
            ),
        ),
        "api",
        Err(WeightsError, "refused to load"),
    ),
    Row(
        "weights-for-another-scale",
        lambda c: Request(c.camera, scale=3.0),
        "api cli",
        Warn(ScaleMismatchWarning, "trained for ×2", _shape(96, 108)),
    ),
    Row(
        "weights-for-another-colour-mode",
        lambda c: Request(c.camera, model="rgb"),
        "api cli",
        Err(InputError, "RGB model"),
    ),
    Row(
        "y-mode-on-grayscale",
        lambda c: Request(c.camera, options={"channels": "y"}),
        "api cli",
        Err(InputError, "needs a last axis of 3"),
    ),
    Row(
        "unknown-model-name",
        lambda c: Request(c.camera, model="no-such-model"),
        "api cli",
        Err(WeightsError, "no model named"),
    ),
    # --- device ----------------------------------------------------------------------------
    Row(
        "cuda-without-cuda",
        lambda c: Request(c.camera, options={"device": "cuda"}),
        "api cli",
        Err(DeviceError, "CUDA is not available"),
    ),
    Row(
        "unknown-device",
        lambda c: Request(c.camera, options={"device": "tpu"}),
        "api cli",
        Err(DeviceError, "'tpu'"),
    ),
    # --- outputs ---------------------------------------------------------------------------
    Row(
        "output-folder-missing",
        lambda c: Request(c.camera, output=c.tmp / "gone" / "r.tif"),
        "api cli",
        Err(InputError, "does not exist"),
    ),
    Row(
        "output-folder-read-only",
        lambda c: Request(c.camera, patches=_read_only_os_access(c)),
        "api cli",
        Err(InputError, "is not writable"),
    ),
    Row(
        "output-folder-read-only-at-write",
        lambda c: Request(c.camera, patches=_read_only_mkstemp(c)),
        "api cli",
        Err(WriteError, "Read-only file system"),
    ),
    Row(
        "output-disk-full-mid-write",
        lambda c: Request(c.camera, patches=_disk_full(c)),
        "api cli",
        Err(WriteError, "No space left on device"),
    ),
    Row(
        "output-overwrites-input",
        lambda c: Request(
            (lambda p: p)(_tif(c, "out/result.tif", c.camera)), output=c.tmp / "out" / "result.tif"
        ),
        "api cli",
        Err(InputError, "would overwrite the input"),
    ),
    Row(
        "output-hard-link-to-input",
        lambda c: Request(
            (lambda p: (os.link(p, c.tmp / "out" / "link.tif"), p)[1])(_tif(c, "in.tif", c.camera)),
            output=c.tmp / "out" / "link.tif",
        ),
        "api cli",
        Err(InputError, "would overwrite the input"),
    ),
    Row(
        "output-is-a-folder",
        lambda c: Request(
            c.camera, output=(c.tmp / "out" / "dir.tif").mkdir() or c.tmp / "out" / "dir.tif"
        ),
        "api",
        Err(InputError, "is a folder"),
    ),
    Row(
        "output-png-for-float-result",
        lambda c: Request(
            _tif(c, "f.tif", c.camera.astype(np.float32)), output=c.tmp / "out" / "r.png"
        ),
        "api cli",
        Err(InputError, "cannot store float32"),
    ),
    # --- second round (issue 15): what a hostile-input campaign found ---------------------
    Row(  # 4
        "zarr-with-a-garbage-chunk",
        lambda c: Request(_zarr_with_a_garbage_chunk(c), output=c.tmp / "out" / "r.zarr"),
        "api cli",
        Err(InputError, "a chunk is corrupt or unreadable"),
    ),
    Row(  # 5
        "zarr-declaring-10^12-pixels",
        lambda c: Request(
            _zarr(c, "big.zarr", shape=(10**6, 10**6), dtype="u1", chunks=(1024, 1024)),
            output=c.tmp / "out" / "r.zarr",
        ),
        "api cli",
        Err(InputError, "of memory"),
    ),
    Row(  # 6
        "float32-at-its-limits",
        lambda c: Request(np.array([[-3.4e38, 3.4e38]] * 8, np.float32)),
        "api cli",
        Ok(_finite_float32),
    ),
    Row(
        "float32-at-its-limits-self-ensemble",
        lambda c: Request(
            np.array([[-3.4e38, 3.4e38]] * 8, np.float32), options={"ensemble": True}
        ),
        "api",
        Ok(_finite_float32),
    ),
    Row(  # found by the fuzzer after the fix above: a range wider than float64 holds
        "float64-spanning-its-whole-range",
        lambda c: Request(np.array([[-1.7e308, 1.7e308]] * 8)),
        "api cli",
        Ok(_finite_float64),
    ),
    Row(
        "float64-spanning-its-whole-range-self-ensemble",
        lambda c: Request(np.array([[-1.7e308, 1.7e308]] * 8), options={"ensemble": True}),
        "api",
        Ok(_finite_float64),
    ),
    Row(
        "float64-constant-near-its-limit-self-ensemble",
        lambda c: Request(np.full((8, 8), 1.7e308), options={"ensemble": True}),
        "api",
        Ok(lambda out, ctx: np.testing.assert_allclose(out, 1.7e308, rtol=1e-6)),
    ),
    Row(  # 8
        "legacy-torch-save-calling-os-system",
        lambda c: Request(c.camera, model=str(_system_pickle(c)), after=_never_executed),
        "api cli",
        Err(WeightsError, "system, which a weights file never needs"),
    ),
    Row(  # found by the fresh campaign
        "legacy-protocol-0-pickle-calling-os-system",
        lambda c: Request(c.camera, model=str(_protocol0_pickle(c)), after=_never_executed),
        "api cli",
        Err(WeightsError, "Unsupported operand"),
    ),
    Row(  # 10
        "output-name-of-254-characters",
        lambda c: Request(c.camera, output=c.tmp / "out" / ("a" * 250 + ".tif")),
        "api cli",
        Ok(_shape(64, 72)),
    ),
    Row(
        "output-name-longer-than-the-file-system-allows",
        lambda c: Request(c.camera, output=c.tmp / "out" / ("a" * 252 + ".tif")),
        "api cli",
        Err(InputError, "more than the 255 the file system allows"),
    ),
    Row(  # 11
        "reference-missing",
        lambda c: Request(c.camera, cli_extra=["--reference", str(c.tmp / "gone.tif")]),
        "cli",
        Err(InputError, "does not exist"),
    ),
    Row(
        "reference-of-the-wrong-size",
        lambda c: Request(c.camera, cli_extra=["--reference", str(_tif(c, "hr.tif", c.camera))]),
        "cli",
        Err(InputError, "is not ×2 the input"),
    ),
    Row(
        "a-later-input-is-bad",
        lambda c: Request(
            _tif(c, "a.tif", c.camera),
            more_inputs=[_tif(c, "b.tif", c.camera), _bytes(c, "c.tif", b"II*\x00" + b"\x01" * 40)],
            output=c.tmp / "out",
        ),
        "cli",
        Err(InputError, "cannot read"),
    ),
    Row(
        "a-later-input-does-not-fit-in-memory",
        lambda c: Request(
            _tif(c, "a.tif", c.camera),
            more_inputs=[_tiff_bomb(c, 30000, "b.tif")],
            scale=16.0,
            output=c.tmp / "out",
        ),
        "cli",
        Err(InputError, "of memory"),
    ),
    Row(
        "a-later-input-does-not-fit-the-model",
        lambda c: Request(
            _png(c, "a.png", c.astronaut),
            more_inputs=[_png(c, "b.png", c.camera)],
            model="rgb",
            output=c.tmp / "out",
        ),
        "cli",
        Err(InputError, "RGB model"),
    ),
    Row(  # 12
        "tiff-with-three-series",
        lambda c: Request(_three_series(c)),
        "api cli",
        Err(InputError, "holds 3 images"),
    ),
    Row(
        "cmyk-tiff",
        lambda c: Request(
            _tif(
                c,
                "cmyk.tif",
                np.dstack([c.astronaut, c.astronaut[..., :1]]),
                photometric="separated",
            )
        ),
        "api cli",
        Err(InputError, "CMYK"),
    ),
    Row(
        "palette-tiff",
        lambda c: Request(
            _tif(
                c,
                "palette.tif",
                c.camera // 32,
                photometric="palette",
                colormap=np.tile(np.arange(256, dtype=np.uint16) * 257, (3, 1)),
            )
        ),
        "api cli",
        Err(InputError, "palette"),
    ),
    Row(  # found by the fresh campaign: Pillow reads a CMYK JPEG as 4 samples
        "cmyk-jpeg",
        lambda c: Request(_cmyk_jpeg(c)),
        "api cli",
        Err(InputError, "is a CMYK image"),
    ),
    Row(
        "tiff-white-is-zero",
        lambda c: Request(
            _tif(c, "mw.tif", c.camera, photometric="miniswhite"), after=_still_white_is_zero
        ),
        "api cli",
        Ok(_shape(64, 72)),
    ),
    Row(  # 13
        "weights-name-with-terminal-escapes-and-a-newline",
        lambda c: Request(
            c.camera,
            model=str(
                _weights_with(c, "ansi.safetensors", name="evil\x1b[2J\x1b[31m\nFAKE: all good")
            ),
            after=_no_raw_name,
        ),
        "api cli",
        Ok(_shape(64, 72)),
    ),
    Row(
        "weights-scaled-to-1e38",
        lambda c: Request(c.camera, model=str(_scaled_weights(c, 1e38))),
        "api cli",
        Err(WeightsError, "implausibly large"),
    ),
    Row(
        "weights-format-version-negative",
        lambda c: Request(
            c.camera, model=str(_weights_with(c, "v.safetensors", format_version="-5"))
        ),
        "api cli",
        Err(WeightsError, "not a valid version"),
    ),
    Row(  # 15
        "percentiles-three-numbers",
        lambda c: Request(c.camera, options={"percentiles": (1, 2, 3)}),
        "api",
        Err(InputError, "must be two numbers"),
    ),
    Row(
        "percentiles-none",
        lambda c: Request(c.camera, options={"percentiles": None}),
        "api",
        Err(InputError, "must be two numbers"),
    ),
    Row(
        "channel-axis-not-an-integer",
        lambda c: Request(c.camera, options={"channel_axis": 0.5}),
        "api",
        Err(InputError, "must be an integer"),
    ),
    Row(
        "model-of-the-wrong-type",
        lambda c: Request(c.camera, model=5),
        "api",
        Err(WeightsError, "must be a model name"),
    ),
    Row(
        "ragged-list",
        lambda c: Request([[1, 2], [3]]),
        "api",
        Err(InputError, "cannot make an image array"),
    ),
    Row(
        "numpy-float32-scale",
        lambda c: Request(c.camera, scale=np.float32(2.0)),
        "api",
        Ok(_shape(64, 72)),
    ),
    Row(
        "fraction-scale",
        lambda c: Request(c.camera, scale=Fraction(3, 2)),
        "api",
        Warn(ScaleMismatchWarning, "used at ×1.5", _shape(48, 54)),
    ),
    Row(
        "numpy-int64-tile",
        lambda c: Request(c.camera, options={"tile": np.int64(32)}),
        "api",
        Ok(_shape(64, 72)),
    ),
    Row(  # 16
        "array-30000-squared-x16",
        lambda c: Request(_huge((30000, 30000)), scale=16.0),
        "api",
        Err(InputError, "needs about 215 GiB of memory"),
    ),
    Row(
        "tiff-declaring-30000-squared-x16",
        lambda c: Request(_tiff_bomb(c, 30000), scale=16.0),
        "cli",
        Err(InputError, "needs about 215 GiB of memory"),
    ),
    Row(
        "tiff-declaring-30000-squared-with-512-mib-free",
        lambda c: Request(_tiff_bomb(c, 30000), patches=_low_memory(512 << 20)),
        "api cli",
        Err(InputError, "of memory available"),
    ),
    Row(
        "upscale-that-needs-more-than-is-free",
        lambda c: Request(_tif(c, "cam.tif", c.camera), patches=_low_memory(1 << 20)),
        "api cli",
        Err(InputError, "of memory, more than the 1 MiB available"),
    ),
    Row(
        "self-ensemble-that-needs-more-than-is-free",
        lambda c: Request(
            _huge((4000, 4000)), options={"ensemble": True}, patches=_low_memory(512 << 20)
        ),
        "api",
        Err(InputError, "of memory"),
    ),
    Row(
        "unknown-option",
        lambda c: Request(c.camera, options={"tiles": 32}),
        "api",
        Err(InputError, "unknown option 'tiles'"),
    ),
    Row(
        "zarr-self-ensemble",
        lambda c: Request(
            _zarr(c, "e.zarr", c.camera, shape=c.camera.shape, dtype="u1"),
            options={"ensemble": True},
            output=c.tmp / "out" / "r.zarr",
        ),
        "api",
        Err(InputError, "the self-ensemble needs the image in memory"),
    ),
    Row(
        "zarr-self-ensemble-cli",
        lambda c: Request(
            _zarr(c, "e.zarr", c.camera, shape=c.camera.shape, dtype="u1"),
            cli_extra=["--ensemble"],
            output=c.tmp / "out" / "r.zarr",
        ),
        "cli",
        Err(InputError, "--ensemble needs the image in memory"),
    ),
    Row(
        "zarr-the-same-input-twice",
        lambda c: Request(
            _zarr(c, "a.zarr", c.camera, shape=c.camera.shape, dtype="u1"),
            more_inputs=[c.tmp / "a.zarr"],
            output=c.tmp / "out",
        ),
        "cli",
        Err(InputError, "would both be written"),
    ),
    Row(
        "output-is-a-device",
        lambda c: Request(c.camera, output=Path("/dev/full")),
        "cli",
        Err(InputError, "neither an image file name"),
    ),
    Row(  # 17
        "output-of-an-unknown-type",
        lambda c: Request(c.camera, output=c.tmp / "out" / "x.gif"),
        "cli",
        Err(InputError, "neither an image file name"),
    ),
]

CASES = [
    pytest.param(
        row,
        surface,
        id=f"{surface}-{row.id}",
        marks=[pytest.mark.xfail(reason=row.xfail, strict=True)] if row.xfail else [],
    )
    for row in ROWS
    for surface in row.surfaces.split()
]


def test_the_table_is_big_enough():
    assert len(ROWS) >= 25 and len({r.id for r in ROWS}) == len(ROWS)
    assert sum("cli" in r.surfaces for r in ROWS) >= 25


# ----------------------------------------------------------------------------- running


def _snapshot(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (links included once per name)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _model_arg(req: Request, ctx: Ctx) -> Any:
    if not isinstance(req.model, str):
        return req.model  # a wrong type, given as is to the API
    return str(ctx.models.get(req.model, req.model))


def _run_api(req: Request, ctx: Ctx) -> np.ndarray:
    """What a Python user does: check the output, read, upscale, write (zarr: stream)."""
    path = req.image if isinstance(req.image, Path) else None
    if path is not None and path.name.endswith(".zarr"):
        from napari_srcnn.engine.inference import Upscaler
        from napari_srcnn.engine.lazy import upscale_zarr
        from napari_srcnn.engine.options import UpscaleOptions

        upscaler = Upscaler(_model_arg(req, ctx), UpscaleOptions(scale=req.scale, **req.options))
        return np.asarray(upscale_zarr(path, req.output, upscaler))
    check_output_path(req.output, inputs=(path,) if path else ())
    image, meta = read_image(path) if path else (req.image, None)
    result = upscale(image, _model_arg(req, ctx), req.scale, **req.options)
    scale = req.scale or 2.0
    write_image(req.output, result, meta.upscaled(scale) if meta else None)
    return result


def _cli_args(req: Request, ctx: Ctx) -> list[str]:
    if isinstance(req.image, Path):
        image = req.image
    else:
        image = ctx.tmp / "array.tif"
        tifffile.imwrite(image, req.image)
    args = ["upscale", str(image), *map(str, req.more_inputs), "-o", str(req.output)]
    model = _model_arg(req, ctx)
    args += ["--weights", model] if os.sep in model else ["--model", model]
    if req.scale is not None:
        args += ["--scale", repr(req.scale)]
    for key, value in req.options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args + req.cli_extra


@pytest.mark.parametrize(("row", "surface"), CASES)
def test_bad_input(row: Row, surface: str, tmp_path, models, cam, astro, monkeypatch, capsys):
    if row.id == "cuda-without-cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    ctx = Ctx(tmp_path, models, cam, astro, monkeypatch)
    (tmp_path / "out").mkdir()
    req = row.build(ctx)
    if req.output is None:
        req.output = tmp_path / "out" / "result.tif"
    try:
        fresh = not req.output.exists() and req.output.parent.is_dir()
    except OSError:  # a name longer than the file system allows
        fresh = False
    if fresh and req.output.suffix in (".tif", ".png"):
        write_image(req.output, np.full((3, 3), 42, np.uint8))  # an earlier result
    cli_args = _cli_args(req, ctx) if surface == "cli" else []
    before = _snapshot(tmp_path)
    with monkeypatch.context() as patched:
        for target, name, value in req.patches:
            patched.setattr(target, name, value)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if surface == "api":
                outcome, error = _call(lambda: _run_api(req, ctx))
            else:
                capsys.readouterr()
                outcome, error = _call(lambda: main(cli_args))
                captured = capsys.readouterr()
    ours = [w for w in caught if issubclass(w.category, ScaleMismatchWarning)]
    after = _snapshot(tmp_path)
    expect = row.expect

    if isinstance(expect, Err):
        if surface == "api":
            assert error is not None, f"expected {expect.type.__name__}, got a result"
            assert isinstance(error, expect.type) and isinstance(error, SRCNNError), repr(error)
            message = str(error)
        else:
            assert error is None, f"the CLI raised {error!r}"
            assert outcome == 2, (outcome, captured.err)
            lines = captured.err.strip().splitlines()
            assert len(lines) == 1, captured.err
            message = lines[0]
            assert message.startswith("napari-srcnn: error: ")
            assert "Traceback" not in captured.err
        assert "\n" not in message
        assert expect.fragment in message, message
        print(f"MSG {surface} {row.id}: {message}")
        assert after == before, "a failed run changed or created files"
    else:
        assert error is None, f"unexpected {error!r}"
        if surface == "api":
            result = outcome
            if isinstance(expect, Warn):
                assert len(ours) == 1 and expect.fragment in str(ours[0].message)
            else:
                assert not ours, [str(w.message) for w in ours]
        else:
            assert outcome == 0, captured.err
            lines = captured.err.strip().splitlines()
            if isinstance(expect, Warn):
                assert len(lines) == 1 and lines[0].startswith("napari-srcnn: warning: ")
                assert expect.fragment in lines[0]
            else:
                assert not lines, captured.err
            result, _ = read_image(req.output)
        expect.check(result, ctx)
        changed = {k for k in before if before[k] != after.get(k)}
        assert changed <= {str(req.output.relative_to(tmp_path))}, changed
    assert not [p for p in tmp_path.rglob(".*.tmp*")], "a temporary file was left behind"
    if surface == "cli":
        ctx.printed = captured.out + captured.err
        assert "\x1b" not in ctx.printed, "a terminal escape was printed"
    if req.after is not None:
        req.after(ctx)


def _call(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    try:
        return fn(), None
    except Exception as exc:  # noqa: BLE001 - the table decides what is acceptable
        return None, exc


# ----------------------------------------------------------------------------- resources


def test_cpu_only_machine_never_touches_cuda(models, cam, monkeypatch):
    """With no CUDA, 'auto' picks the CPU and no CUDA call is ever made."""

    def forbidden(*args, **kwargs):
        raise AssertionError("CUDA was initialised on a CPU-only machine")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "_lazy_init", forbidden)
    monkeypatch.setattr(torch.cuda, "init", forbidden)
    monkeypatch.setattr(torch.cuda, "empty_cache", forbidden)
    out = upscale(cam, str(models["tiny"]), 2.0, device="auto")
    assert out.shape == (64, 72)
    with pytest.raises(DeviceError, match="CUDA is not available"):
        upscale(cam, str(models["tiny"]), 2.0, device="cuda:0")


def test_cli_prints_one_line_for_unexpected_errors(monkeypatch, capsys, tmp_path):
    """A bug (not an SRCNNError) is one 'internal error' line, exit 1; --debug re-raises."""
    from napari_srcnn.cli import models as models_cli

    def broken(args):
        raise ZeroDivisionError("boom\nsecond line")

    monkeypatch.setattr(models_cli, "run", broken)
    assert main(["models"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error: ZeroDivisionError: boom second line" in err[0]
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "models"])


def test_cli_multi_line_library_errors_become_one_line(monkeypatch, capsys):
    from napari_srcnn.cli import models as models_cli

    def broken(args):
        raise WeightsError("first\nsecond\n\tthird")

    monkeypatch.setattr(models_cli, "run", broken)
    assert main(["models"]) == 2
    assert capsys.readouterr().err == "napari-srcnn: error: first second third\n"


def test_cli_out_of_memory_is_one_line(monkeypatch, capsys):
    from napari_srcnn.cli import models as models_cli

    def broken(args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20 GiB\nmore")

    monkeypatch.setattr(models_cli, "run", broken)
    assert main(["models"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of memory" in err[0] and "--tile" in err[0]


# ----------------------------------------------------------------------------- napari reader

READER_GARBAGE = {
    "zero-bytes.ome.tif": b"",
    "text.ome.tif": b"hello, world\n" * 20,
    "tiff-magic-only.ome.tif": b"II*\x00",
    "bad-ifd.ome.tiff": b"II*\x00" + struct.pack("<I", 0xFFFFFF00) + b"\x00" * 64,
    "big-endian-junk.ome.tif": b"MM\x00*" + b"\xff" * 200,
    "random.ome.tif": np.random.default_rng(1).bytes(3000),
    "zero-bytes.safetensors": b"",
    "random.safetensors": np.random.default_rng(2).bytes(3000),
    "huge-header.safetensors": struct.pack("<Q", 2**62) + b"{}",
    "not-json.safetensors": struct.pack("<Q", 8) + b"not json",
    "foreign.safetensors": struct.pack("<Q", 2) + b"{}",
}


def _reader_files(folder: Path, tiny: Path) -> list[Path]:
    paths = []
    for name, content in READER_GARBAGE.items():
        (folder / name).write_bytes(content)
        paths.append(folder / name)
    # Structurally valid files with hostile content.
    bomb = folder / "bomb.ome.tif"
    tifffile.imwrite(bomb, np.zeros((8, 8), np.uint8))
    data = bytearray(bomb.read_bytes())
    with tifffile.TiffFile(bomb) as tif:
        tags = {t.code: t for t in tif.pages[0].tags.values()}
    for code in (256, 257):
        fmt = "<I" if tags[code].dtype == tifffile.DATATYPE.LONG else "<H"
        off = tags[code].valueoffset
        data[off : off + struct.calcsize(fmt)] = struct.pack(
            fmt, 0xFFFFFFFF if fmt == "<I" else 0xFFFF
        )
    bomb.write_bytes(bytes(data))
    truncated = folder / "truncated.ome.tif"
    tifffile.imwrite(truncated, np.zeros((256, 256), np.uint16), ome=True)
    truncated.write_bytes(truncated.read_bytes()[:3000])
    paths += [bomb, truncated]
    base = tiny.read_bytes()
    (folder / "cut.safetensors").write_bytes(base[: len(base) // 2])
    (folder / "folder.ome.tif").mkdir()
    (folder / "folder.safetensors").mkdir()
    paths += [
        folder / "cut.safetensors",
        folder / "folder.ome.tif",
        folder / "folder.safetensors",
        folder / "missing.ome.tif",
    ]
    return paths


def test_the_reader_returns_none_for_garbage(tmp_path, tiny_model_path, monkeypatch):
    """``napari_get_reader`` never raises: ``None``, or a reader that returns ``None``
    (napari then tries its other readers). A hostile napari-srcnn weights header is
    refused with an error notification and registers nothing."""
    pytest.importorskip("napari")
    from napari.utils.notifications import notification_manager

    from napari_srcnn import _reader
    from napari_srcnn.engine import weights as W
    from napari_srcnn.engine.model_info import ModelInfo

    paths = _reader_files(tmp_path, Path(tiny_model_path))
    hostile = _weights_from(
        Ctx(tmp_path, {}, np.zeros(1), np.zeros(1), monkeypatch),
        "hostile.safetensors",
        {"w": torch.zeros(1)},
        {
            **ModelInfo(name="h", arch=ArchSpec.parse("9-5-5"), scale=2.0).to_metadata(),
            "arch": '{"f1": 9, "f2": 5, "f3": 5, "n1": 200000, "n2": 200000, "channels": 1, "extra_layers": 0}',
        },
    )
    paths.append(hostile)
    monkeypatch.setattr(W, "_REGISTERED", {})
    start = len(notification_manager.records)
    for path in paths:
        for arg in (str(path), path, [str(path)]):
            reader = _reader.napari_get_reader(arg)
            assert reader is None or reader(arg) is None, path.name
    assert _reader.napari_get_reader([str(paths[0]), str(paths[1])]) is None
    assert _reader.napari_get_reader(12345) is None  # not even a path
    assert W._REGISTERED == {}
    shown = [str(n.message) for n in notification_manager.records[start:]]
    assert any("hostile.safetensors" in m and "implausible" in m for m in shown), shown
    assert all("\n" not in m for m in shown)
    # and it still reads a good file
    good = tmp_path / "good.ome.tif"
    tifffile.imwrite(good, np.ones((8, 9), np.uint16), ome=True)
    layers = _reader.napari_get_reader(str(good))(str(good))
    assert layers and layers[0][0].shape == (8, 9)


def test_the_reliability_page_lists_every_row():
    """docs/reliability.md is made from this table: every row's message (or warning) is on it."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "reliability.md").read_text("utf-8")
    missing = [
        (row.id, row.expect.fragment)
        for row in ROWS
        if isinstance(row.expect, (Err, Warn)) and row.expect.fragment not in page
    ]
    assert not missing, missing
    assert "FUZZ_COUNTS" not in page
