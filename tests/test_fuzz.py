"""Fuzzing the image reader, the weights loader and ``upscale`` with hypothesis (``slow``).

Each target runs for a bounded time (``NAPARI_SRCNN_FUZZ_SECONDS`` per target, default 20)
in batches of hypothesis examples, and prints how many cases ran. The property is always
the same: a hostile input gives a result that makes sense or the documented exception
(``InputError`` / ``WeightsError``) with a one-line message, never another exception, a
crash, a hang or a huge allocation.

Memory safety on a shared machine: the reader's memory ceiling (``max_image_bytes``) is
lowered to 256 MiB and the address space is capped a few GiB above its current size while
fuzzing, so a header that claims terabytes fails fast instead of swapping the machine.

Longer campaigns: ``NAPARI_SRCNN_FUZZ_SECONDS=600 pytest -m slow tests/test_fuzz.py -s``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pickle
import struct
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from napari_srcnn.engine import io as image_io  # noqa: E402
from napari_srcnn.engine.inference import upscale  # noqa: E402
from napari_srcnn.engine.model import SRCNN, ArchSpec  # noqa: E402
from napari_srcnn.engine.model_info import ModelInfo  # noqa: E402
from napari_srcnn.engine.options import output_shape  # noqa: E402
from napari_srcnn.engine.weights import load_model  # noqa: E402
from napari_srcnn.engine.weights_file import LoadedModel, save_weights  # noqa: E402
from napari_srcnn.errors import InputError, WeightsError  # noqa: E402

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("NAPARI_SRCNN_FUZZ_SECONDS", "20"))
BATCH = 50  # examples per hypothesis run; runs repeat with new seeds until time is up
INTERESTING = [
    0,
    1,
    2,
    3,
    7,
    8,
    16,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x10000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFE,
    0xFFFFFFFF,
]
COUNTS: dict[str, int] = {}


# ----------------------------------------------------------------------------- harness


@contextlib.contextmanager
def _memory_cap(headroom: int = 4 << 30) -> Iterator[None]:
    """Cap the address space at its current size + ``headroom`` (Linux), then restore it."""
    try:
        import resource

        with open("/proc/self/statm") as fh:
            size = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        old = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        yield
        return
    cap = size + headroom
    if old[1] != resource.RLIM_INFINITY:
        cap = min(cap, old[1])
    resource.setrlimit(resource.RLIMIT_AS, (cap, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)


def _fuzz(name: str, strategy: st.SearchStrategy, check: Callable, seconds: float = SECONDS) -> int:
    """Run ``check(example)`` on examples of ``strategy`` for ``seconds``; return the count."""
    count = 0
    deadline = time.monotonic() + seconds
    batch = 0
    while time.monotonic() < deadline:

        @settings(
            max_examples=BATCH,
            deadline=None,
            database=None,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis_seed(batch)
        @given(strategy)
        def run(example):
            nonlocal count
            count += 1
            check(example)

        run()
        batch += 1
    COUNTS[name] = count
    print(f"\nfuzz {name}: {count} cases in {seconds:g} s")
    report = os.environ.get("NAPARI_SRCNN_FUZZ_REPORT")
    if report:
        with open(report, "a") as fh:
            fh.write(json.dumps({"target": name, "cases": count, "seconds": seconds}) + "\n")
    return count


def _one_line(exc: BaseException) -> None:
    assert "\n" not in str(exc) and str(exc), repr(exc)


# mutations: (kind, position, value)
_POSITION = st.one_of(st.integers(0, 600), st.integers(0, 1 << 20))
_MUTATION = st.one_of(
    st.tuples(st.just("xor"), _POSITION, st.integers(1, 255)),
    st.tuples(st.just("set16"), _POSITION, st.sampled_from(INTERESTING)),
    st.tuples(st.just("set32"), _POSITION, st.sampled_from(INTERESTING)),
    st.tuples(st.just("truncate"), _POSITION, st.just(0)),
    st.tuples(st.just("insert"), _POSITION, st.binary(min_size=1, max_size=16)),
)


def _mutate(data: bytes, mutations: list) -> bytes:
    buf = bytearray(data)
    for kind, pos, value in mutations:
        if not buf:
            break
        pos %= len(buf)
        if kind == "xor":
            buf[pos] ^= value
        elif kind == "set16":
            buf[pos : pos + 2] = struct.pack("<H", value & 0xFFFF)
        elif kind == "set32":
            buf[pos : pos + 4] = struct.pack("<I", value & 0xFFFFFFFF)
        elif kind == "truncate":
            del buf[pos:]
        else:
            buf[pos:pos] = value
    return bytes(buf)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="srcnn-fuzz-") as folder:
        yield Path(folder)


# ----------------------------------------------------------------------------- images


def _image_seeds(folder: Path) -> list[tuple[str, bytes]]:
    """Small valid files of every flavour the reader handles."""
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 255, (16, 20), dtype=np.uint8)
    seeds = []

    def tif(name: str, data: np.ndarray, **kwargs) -> None:
        buf = io.BytesIO()
        tifffile.imwrite(buf, data, **kwargs)
        seeds.append((".tif", buf.getvalue()))

    tif("plain", u8)
    tif(
        "imagej",
        rng.integers(0, 4000, (2, 3, 12, 10), dtype=np.uint16),
        imagej=True,
        metadata={"axes": "ZCYX", "spacing": 2.0, "unit": "micron"},
        resolution=(4.0, 4.0),
    )
    tif(
        "ome",
        rng.random((2, 8, 8), dtype=np.float32),
        ome=True,
        metadata={"axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5},
    )
    tif("rgb", rng.integers(0, 255, (10, 12, 3), dtype=np.uint8), photometric="rgb")
    tif("zlib", u8, compression="zlib")
    tif("tiled", rng.integers(0, 255, (32, 32), dtype=np.uint8), tile=(16, 16))
    tif("big-endian", u8.astype(">u2"), byteorder=">")
    tif("bigtiff", u8, bigtiff=True)
    for name, data in (
        ("gray", u8),
        ("rgba", rng.integers(0, 255, (8, 8, 4), dtype=np.uint8)),
        ("u16", u8.astype(np.uint16) * 200),
    ):
        path = folder / f"seed-{name}.png"
        iio.imwrite(path, data)
        seeds.append((".png", path.read_bytes()))
    return seeds


def test_fuzz_image_reader(workdir, monkeypatch):
    seeds = _image_seeds(workdir)
    monkeypatch.setattr(image_io, "max_image_bytes", lambda: 256 << 20)
    strategy = st.tuples(
        st.sampled_from(range(len(seeds))), st.lists(_MUTATION, min_size=1, max_size=6)
    )
    outcomes = {"read": 0, "refused": 0}

    def check(example) -> None:
        index, mutations = example
        suffix, data = seeds[index]
        path = workdir / f"case{suffix}"
        path.write_bytes(_mutate(data, mutations))
        try:
            array, meta = image_io.read_image(path)
        except InputError as exc:
            _one_line(exc)
            outcomes["refused"] += 1
            return
        outcomes["read"] += 1
        assert isinstance(array, np.ndarray) and array.ndim == len(meta.axes) >= 2
        assert "Y" in meta.axes and "X" in meta.axes and 0 not in array.shape
        assert len(meta.spacing) == array.ndim

    logging.getLogger("tifffile").setLevel(logging.CRITICAL)
    with _memory_cap(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        count = _fuzz("image reader (TIFF/PNG)", strategy, check)
    print(f"  outcomes: {outcomes}")
    assert count >= 100 and outcomes["read"] > 0 and outcomes["refused"] > 0


# ----------------------------------------------------------------------------- weights


def _weights_seeds(folder: Path) -> list[tuple[str, bytes]]:
    torch.manual_seed(0)
    net = SRCNN(ArchSpec.parse("3-1-3:4,2"))
    path = save_weights(
        folder / "seed.safetensors", net, ModelInfo(name="s", arch=net.spec, scale=2.0)
    )
    seeds = [(".safetensors", path.read_bytes())]
    legacy = {
        f"conv{i + 1}.{k}": getattr(c, k).detach().clone()
        for i, c in enumerate(net.convs())
        for k in ("weight", "bias")
    }
    buf = io.BytesIO()
    torch.save(legacy, buf)  # zip format
    seeds.append((".pt", buf.getvalue()))
    buf = io.BytesIO()
    torch.save(legacy, buf, _use_new_zipfile_serialization=False)  # the pre-1.6 pickle format
    seeds.append((".pth", buf.getvalue()))
    return seeds


def _header(data: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _with_header(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


_JSON_INT = st.one_of(
    st.integers(-3, 70), st.sampled_from(INTERESTING), st.integers(-(2**70), 2**70)
)
_JSON_VALUE = st.one_of(
    _JSON_INT,
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.lists(_JSON_INT, max_size=5),
)
_ARCH_KEYS = ["f1", "f2", "f3", "n1", "n2", "channels", "extra_layers", "bogus"]
_HEADER_MUTATION = st.one_of(
    # a metadata field gets another string (a mutated arch, another scale, JSON junk)
    st.tuples(
        st.just("arch"), st.dictionaries(st.sampled_from(_ARCH_KEYS), _JSON_VALUE, max_size=8)
    ),
    st.tuples(
        st.just("meta"),
        st.tuples(
            st.sampled_from(
                [
                    "scale",
                    "color_mode",
                    "format",
                    "format_version",
                    "training",
                    "metrics",
                    "name",
                    "arch",
                ]
            ),
            st.one_of(
                st.sampled_from(
                    [
                        "inf",
                        "nan",
                        "-1",
                        "0",
                        "1e308",
                        "[]",
                        "{}",
                        "[[[[[[[[",
                        "null",
                        "1" * 400,
                        "y",
                        "rgb",
                        "per-channel",
                        "napari-srcnn",
                    ]
                ),
                st.text(max_size=20),
            ),
        ),
    ),
    # a tensor entry gets another dtype, shape or offsets, or disappears
    st.tuples(
        st.just("tensor"),
        st.tuples(
            st.integers(0, 10),
            st.sampled_from(["dtype", "shape", "data_offsets", "delete"]),
            st.one_of(
                st.sampled_from(["F32", "F16", "BF16", "F64", "I64", "U8", "BOOL", "F8_E4M3", "x"]),
                st.lists(_JSON_INT, max_size=5),
            ),
        ),
    ),
)


def _mutate_header(data: bytes, mutation) -> bytes:
    header, body = _header(data)
    kind, value = mutation
    if kind == "arch":
        header["__metadata__"]["arch"] = json.dumps(value)
    elif kind == "meta":
        key, text = value
        header["__metadata__"][key] = text
    else:
        index, field, new = value
        names = sorted(k for k in header if k != "__metadata__")
        name = names[index % len(names)]
        if field == "delete":
            del header[name]
        else:
            header[name][field] = new
    return _with_header(header, body)


def test_fuzz_weights_loader(workdir):
    seeds = _weights_seeds(workdir)
    strategy = st.one_of(
        st.tuples(
            st.just("bytes"),
            st.sampled_from(range(len(seeds))),
            st.lists(_MUTATION, min_size=1, max_size=6),
        ),
        st.tuples(
            st.just("header"), st.just(0), st.lists(_HEADER_MUTATION, min_size=1, max_size=3)
        ),
    )
    outcomes = {"loaded": 0, "refused": 0}
    marker = workdir / "PWNED"
    probe = torch.rand(1, 1, 12, 12)

    def check(example) -> None:
        kind, index, mutations = example
        suffix, data = seeds[index]
        if kind == "bytes":
            data = _mutate(data, mutations)
        else:
            try:
                for mutation in mutations:
                    data = _mutate_header(data, mutation)
            except (KeyError, ValueError, TypeError, OverflowError):
                return  # the mutation itself did not apply (e.g. deleted everything)
        path = workdir / f"case{suffix}"
        path.write_bytes(data)
        try:
            loaded = load_model(path, scale=2.0)
        except WeightsError as exc:
            _one_line(exc)
            outcomes["refused"] += 1
            return
        outcomes["loaded"] += 1
        assert isinstance(loaded, LoadedModel)
        for tensor in loaded.net.state_dict().values():
            assert torch.isfinite(tensor).all()
        with torch.inference_mode():
            channels = loaded.info.arch.channels
            loaded.net(probe.expand(1, channels, 12, 12))

    with _memory_cap(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        count = _fuzz("weights loader (safetensors/.pt/.pth)", strategy, check)
    print(f"  outcomes: {outcomes}")
    assert not marker.exists()
    assert count >= 100 and outcomes["loaded"] > 0 and outcomes["refused"] > 0


# ----------------------------------------------------------------------------- upscale

_DTYPES = [
    np.uint8,
    np.uint16,
    np.uint32,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.float16,
    np.float32,
    np.float64,
    np.bool_,
    np.complex64,
]


@st.composite
def _arrays(draw) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(_DTYPES)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7))
    if dtype.kind == "f":
        # Every finite value, the dtype's limits included (float64 beyond float32's range,
        # float32 at ±3.4e38), and NaN/±Inf.
        width = min(dtype.itemsize * 8, 64)
        info = np.finfo(dtype)
        finite = st.one_of(
            st.floats(allow_nan=False, allow_infinity=False, width=width),
            st.sampled_from([float(info.max), float(info.min), float(info.tiny)]),
        )
        elements = st.one_of(finite, st.sampled_from([np.nan, np.inf, -np.inf]))
        return draw(hnp.arrays(dtype, shape, elements=elements))
    return draw(hnp.arrays(dtype, shape))


def test_fuzz_upscale_api():
    torch.manual_seed(0)
    net = SRCNN(ArchSpec.parse("3-1-3:4,2"))
    model = LoadedModel(net, ModelInfo(name="f", arch=net.spec, scale=2.0))
    strategy = st.tuples(
        _arrays(),
        st.one_of(st.sampled_from([2.0, 3.0, 2.5, 1.5, 16.0, 16.5]), st.floats(-5, 5)),
        st.sampled_from([16, 17, 64]),
        st.sampled_from(["auto", "per-channel", "y"]),
        st.sampled_from([False, False, False, True]),  # the self-ensemble, now and then
    )
    outcomes = {"upscaled": 0, "refused": 0}

    def check(example) -> None:
        image, scale, tile, channels, ensemble = example
        try:
            out = upscale(
                image, model, scale, tile=tile, channels=channels, device="cpu", ensemble=ensemble
            )
        except InputError as exc:
            _one_line(exc)
            outcomes["refused"] += 1
            return
        outcomes["upscaled"] += 1
        assert out.dtype == image.dtype
        color = image.ndim >= 3 and image.shape[-1] in (3, 4)  # a colour/channel axis: kept
        axes = (image.ndim - 3, image.ndim - 2) if color else (image.ndim - 2, image.ndim - 1)
        assert out.shape == output_shape(image.shape, scale, axes)
        if image.dtype.kind == "f":
            # NaN is missing data and comes back where it lands; nothing else is non-finite.
            assert not np.isinf(out).any(), "infinite output"
            if not np.isnan(image).any():
                assert not np.isnan(out).any(), "NaN output from an image without NaN"

    with _memory_cap(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        count = _fuzz("upscale API (dtypes, shapes, NaN/Inf, scales, tiles)", strategy, check)
    print(f"  outcomes: {outcomes}")
    assert count >= 100 and outcomes["upscaled"] > 0 and outcomes["refused"] > 0


# ----------------------------------------------------------------------------- checkpoints

_JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def test_fuzz_checkpoint_resume(workdir, camera):
    """A mutated checkpoint (bytes of the file, fields of its progress record, optimiser
    groups and settings record, tensors dropped or replaced) is restored and a training step
    runs on it, or it is one WeightsError / InputError line; never another exception."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from napari_srcnn.engine.checkpoints import load_checkpoint, run_fingerprint
    from napari_srcnn.engine.data import training_data_from_arrays
    from napari_srcnn.engine.recipes import optimizer
    from napari_srcnn.engine.train_config import TrainConfig
    from napari_srcnn.engine.training import train

    planes = [camera[y : y + 64, x : x + 64] for y in (0, 64) for x in (0, 64)]
    data = training_data_from_arrays(planes, 2.0, "per-channel", patch_size=21, val_fraction=0.25)
    config = TrainConfig(
        output=workdir / "ck.safetensors",
        scale=2.0,
        arch=ArchSpec.parse("3-1-3:8,4"),
        steps=4,
        batch_size=4,
        patch_size=21,
        val_every=2,
        checkpoint_every=2,
        device="cpu",
    )
    train(data, config)
    original = config.checkpoint_path.read_bytes()
    with safe_open(str(config.checkpoint_path), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        meta = dict(fh.metadata())
    fingerprint = run_fingerprint(config, config.arch, data)
    bad = workdir / "bad.ckpt.safetensors"
    fields = st.sampled_from(["state", "groups", "config"])
    keys = st.sampled_from(sorted(tensors))
    strategy = st.one_of(
        st.tuples(st.just("bytes"), st.lists(_MUTATION, min_size=1, max_size=4)),
        st.tuples(st.just("field"), st.tuples(fields, st.text(max_size=6), _JSON_VALUES)),
        st.tuples(st.just("drop"), keys),
        st.tuples(
            st.just("replace"), st.tuples(keys, st.sampled_from(["zeros3", "nan", "int", "scalar"]))
        ),
        st.tuples(st.just("checksum"), st.booleans()),
    )
    outcomes = {"resumed": 0, "refused": 0}

    def check(example) -> None:
        kind, what = example
        if kind == "bytes":
            bad.write_bytes(_mutate(original, what))
        else:
            t, m = dict(tensors), dict(meta)
            if kind == "field":
                name, key, value = what
                record = json.loads(m[name])
                if isinstance(record, dict):
                    record[key or "step"] = value
                elif record:
                    record[0] = {key or "lr": value}
                m[name] = json.dumps(record)
            elif kind == "drop":
                t.pop(what)
            elif kind == "replace":
                key, how = what
                t[key] = {
                    "zeros3": torch.zeros(3),
                    "nan": torch.full_like(t[key].float(), float("nan")),
                    "int": t[key].to(torch.int32),
                    "scalar": torch.tensor(1.0),
                }[how]
            if kind != "checksum" and what is not True:
                m.pop("sha256", None)  # field by field, as before the checksum existed
            save_file({k: v.contiguous() for k, v in t.items()}, str(bad), metadata=m)
        net = SRCNN(config.arch)
        opt = optimizer(net, "adam", 1e-3)
        gen = torch.Generator().manual_seed(0)
        try:
            state = load_checkpoint(bad, net, opt, gen, fingerprint, 0)
        except (WeightsError, InputError) as exc:
            _one_line(exc)
            outcomes["refused"] += 1
            return
        assert isinstance(state["step"], int) and state["step"] >= 0
        loss = net.body(torch.rand(2, 1, 21, 21, generator=gen)).pow(2).mean()
        loss.backward()
        opt.step()  # the restored optimiser works
        assert all(torch.isfinite(p).all() for p in net.parameters())
        outcomes["resumed"] += 1

    with _memory_cap(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        count = _fuzz("checkpoint resume (bytes, fields, tensors)", strategy, check)
    print(f"  outcomes: {outcomes}")
    assert count >= 50 and outcomes["resumed"] > 0 and outcomes["refused"] > 0


def test_fuzz_pickle_payloads_never_run(workdir):
    """Pickles that call builtins (open, exec via eval, os.system) are refused, never run."""
    marker = workdir / "PWNED-pickle"
    calls = [
        (open, (str(marker), "w")),
        (eval, (f"open({str(marker)!r}, 'w')",)),
        (os.system, (f"touch {marker}",)),
    ]

    class Payload:
        def __init__(self, call):
            self.call = call

        def __reduce__(self):
            return self.call

    strategy = st.tuples(
        st.sampled_from(range(len(calls))),
        st.sampled_from([0, 2, 4, 5]),
        st.booleans(),
        st.sampled_from(["dict", "list", "nested"]),
    )

    def check(example) -> None:
        which, protocol, zipped, shape = example
        payload = Payload(calls[which])
        obj = {"conv1.weight": payload} if shape == "dict" else [payload]
        if shape == "nested":
            obj = {"state_dict": {"conv1.weight": torch.zeros(1), "x": payload}}
        path = workdir / "payload.pth"
        if zipped:
            torch.save(obj, path, pickle_protocol=max(protocol, 2))
        else:
            with open(path, "wb") as fh:
                pickle.dump(obj, fh, protocol=protocol)
        with pytest.raises(WeightsError, match="refused"):
            load_model(path, scale=2.0)
        assert not marker.exists(), "a pickle payload was executed"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _fuzz("legacy pickle payloads", strategy, check, seconds=min(SECONDS, 5.0))
