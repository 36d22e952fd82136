"""Lazy dask upscaling, zarr streaming and running on a dask.distributed cluster."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from napari_srcnn.engine.inference import Upscaler, upscale
from napari_srcnn.engine.model import SRCNN, ArchSpec
from napari_srcnn.engine.model_info import ModelInfo
from napari_srcnn.engine.options import UpscaleOptions
from napari_srcnn.engine.weights_file import LoadedModel, save_weights
from napari_srcnn.errors import InputError

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")


@pytest.fixture(scope="module")
def model955():
    torch.manual_seed(0)
    net = SRCNN(ArchSpec.parse("9-5-5"))
    return LoadedModel(net.eval(), ModelInfo(name="r955", arch=net.spec, scale=2.0))


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    torch.manual_seed(3)
    net = SRCNN(ArchSpec.parse("9-1-5"))
    path = tmp_path_factory.mktemp("w") / "r915-x2.safetensors"
    save_weights(path, net, ModelInfo(name="r915-x2", arch=net.spec, scale=2.0))
    return path


@pytest.mark.parametrize("scale", [2, 3, 2.5])
@pytest.mark.parametrize("chunks", [(37, 50), (64, 64), (20, 130)])
def test_lazy_equals_in_memory_exactly(model955, camera, scale, chunks):
    """Chunk seams are exact: the lazy result is the in-memory result, bit for bit."""
    image = camera[:150, :130]
    lazy = upscale(da.from_array(image, chunks=chunks), model955, scale, tile=64)
    assert isinstance(lazy, da.Array) and lazy.dtype == image.dtype
    ref = upscale(image, model955, scale, tile=64)
    assert lazy.shape == ref.shape
    np.testing.assert_array_equal(lazy.compute(), ref)


def test_lazy_float_rgb_and_stacks(model955, camera, astronaut):
    f = camera[:90, :80].astype(np.float32) * 10 + 500  # auto: normalised by min/max
    np.testing.assert_array_equal(
        upscale(da.from_array(f, chunks=40), model955, 2).compute(), upscale(f, model955, 2)
    )
    rgb = astronaut[:70, :60]
    np.testing.assert_array_equal(
        upscale(da.from_array(rgb, chunks=(30, 30, 1)), model955, 2).compute(),
        upscale(rgb, model955, 2),
    )
    stack = np.stack([camera[:50, :60], camera[50:100, :60], camera[:50, 60:120]], -1)  # (y, x, c)
    lazy = upscale(da.from_array(stack, chunks=(25, 30, 2)), model955, 2, channel_axis=-1)
    assert lazy.shape == (100, 120, 3)
    np.testing.assert_array_equal(lazy.compute(), upscale(stack, model955, 2, channel_axis=-1))
    zstack = np.stack([camera[:40, :40], camera[40:80, :40]]).astype(np.uint16) * 250
    lazy = upscale(da.from_array(zstack, chunks=(2, 20, 20)), model955, 3)
    assert lazy.chunks[0] == (1, 1)  # one plane per chunk: bounded memory per task
    np.testing.assert_array_equal(lazy.compute(), upscale(zstack, model955, 3))


class _CountingArray:
    """An on-disk-like array that records which pieces are read."""

    def __init__(self, data):
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.reads = []

    def __getitem__(self, key):
        piece = self.data[key]
        if piece.size:
            self.reads.append(key)
        return piece


def test_nothing_is_read_until_computed_and_then_only_what_is_needed(model955, camera):
    source = _CountingArray(camera.astype(np.uint16))  # 128², dtype normalisation: no sample
    lazy = upscale(
        da.from_array(source, chunks=(32, 32), meta=np.empty((0, 0), np.uint16)),
        model955,
        2,
        normalization="dtype",
    )
    assert source.reads == []
    corner = lazy[:10, :10].compute()
    assert corner.shape == (10, 10)
    rows = [k[0] for k in source.reads]
    assert source.reads and all(r.start < 64 for r in rows)  # only chunks near the corner


def test_bad_dask_inputs_fail_before_computing(model955):
    with pytest.raises(InputError, match="dtype"):
        upscale(da.zeros((8, 8), dtype=bool), model955, 2)
    with pytest.raises(InputError, match="empty"):
        upscale(da.zeros((0, 8), dtype=np.uint8), model955, 2)


def test_distributed_local_cluster(model955, camera):
    """The same graph runs on two worker processes (the Upscaler is pickled to them)."""
    distributed = pytest.importorskip("distributed")
    image = camera[:96, :80]
    ref = upscale(image, model955, 2)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        lazy = upscale(da.from_array(image, chunks=(48, 40)), model955, 2)
        out = client.compute(lazy).result()
        workers = client.run(lambda: 1)
    assert len(workers) == 2
    np.testing.assert_array_equal(out, ref)


def test_zarr_to_zarr_streams_and_matches(tmp_path, model955, camera):
    from napari_srcnn.engine.lazy import upscale_zarr

    image = np.stack([camera[:100, :90], camera[28:128, 38:128]]).astype(np.uint16) * 257
    src = zarr.open_array(
        str(tmp_path / "in.zarr"),
        mode="w",
        shape=image.shape,
        chunks=(1, 40, 40),
        dtype=image.dtype,
    )
    src[:] = image
    src.attrs["note"] = "kept"
    calls = []
    up = Upscaler(model955, UpscaleOptions(scale=2))
    out = upscale_zarr(
        tmp_path / "in.zarr",
        tmp_path / "out.zarr",
        up,
        chunk=64,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert out.shape == (2, 200, 180) and out.chunks[0] == 1 and max(out.chunks[1:]) <= 64
    np.testing.assert_array_equal(
        zarr.open_array(str(tmp_path / "out.zarr"), mode="r")[:], up(image)
    )
    assert calls and calls[-1][0] == calls[-1][1]
    assert out.attrs["note"] == "kept" and out.attrs["napari_srcnn"]["scale"] == 2.0
    with pytest.raises(InputError, match="already exists"):
        upscale_zarr(tmp_path / "in.zarr", tmp_path / "out.zarr", up)


def test_zarr_output_appears_complete_or_not_at_all(tmp_path, model955, camera):
    """A run that fails (or is cancelled) half-way leaves no out.zarr and no temp folder;
    while it runs, out.zarr does not exist yet."""
    from napari_srcnn.engine.lazy import upscale_zarr

    src = zarr.open_array(
        str(tmp_path / "in.zarr"), mode="w", shape=(96, 96), chunks=(32, 32), dtype=np.uint8
    )
    src[:] = camera[:96, :96]
    up = Upscaler(model955, UpscaleOptions(scale=2))
    seen = []

    def progress(done, total):
        seen.append((tmp_path / "out.zarr").exists())
        if done == 3:
            raise KeyboardInterrupt  # what Ctrl+C does in the middle of the stream

    with pytest.raises(KeyboardInterrupt):
        upscale_zarr(tmp_path / "in.zarr", tmp_path / "out.zarr", up, chunk=32, progress=progress)
    assert seen == [False, False, False]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr"]
    out = upscale_zarr(tmp_path / "in.zarr", tmp_path / "out.zarr", up, chunk=32)
    np.testing.assert_array_equal(out[:], up(camera[:96, :96]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr", "out.zarr"]


def test_zarr_group_level_zero(tmp_path, model955, camera):
    from napari_srcnn.engine.lazy import open_zarr_array

    group = zarr.open_group(str(tmp_path / "ome.zarr"), mode="w")
    group.create_array("0", shape=(40, 40), chunks=(20, 20), dtype=np.uint8)[:] = camera[:40, :40]
    group.create_array("1", shape=(20, 20), chunks=(20, 20), dtype=np.uint8)
    assert open_zarr_array(tmp_path / "ome.zarr").shape == (40, 40)
    with pytest.raises(InputError, match="not a readable zarr"):
        open_zarr_array(tmp_path / "nothing.zarr")


def test_cli_streams_zarr(tmp_path, weights_file, camera):
    src = zarr.open_array(
        str(tmp_path / "big.zarr"), mode="w", shape=(120, 100), chunks=(50, 50), dtype=np.uint8
    )
    src[:] = camera[:120, :100]
    cmd = [
        sys.executable,
        "-m",
        "napari_srcnn",
        "upscale",
        str(tmp_path / "big.zarr"),
        "-o",
        str(tmp_path / "out.zarr"),
        "--weights",
        str(weights_file),
        "--tile",
        "64",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", **_env()})
    assert r.returncode == 0, r.stderr
    assert "-> " in r.stdout and "(240, 200)" in r.stdout
    out = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")[:]
    np.testing.assert_array_equal(out, upscale(camera[:120, :100], str(weights_file), 2, tile=64))
    again = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    assert again.returncode == 2 and "already exists" in again.stderr


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
