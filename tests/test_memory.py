"""Memory estimates before work: the figures, the limit and its override, the one-line refusal."""

import tracemalloc

import numpy as np
import pytest

from napari_srcnn.engine import memory
from napari_srcnn.engine.memory import (
    Estimate,
    format_bytes,
    memory_limit,
    parse_size,
    training_data_estimate,
    training_step_estimate,
    upscale_estimate,
    zarr_estimate,
)
from napari_srcnn.errors import InputError


def test_sizes_parse_and_print():
    assert parse_size("512MiB") == 512 << 20
    assert parse_size("2G") == 2 * 10**9
    assert parse_size(" 1.5 gib ") == 3 << 29
    assert parse_size("1e9") == 10**9
    for bad in ("lots", "-1G", "1 parsec", ""):
        with pytest.raises(InputError, match="is not a size"):
            parse_size(bad)
    assert format_bytes(12) == "12 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(215 * 2**30) == "215 GiB"
    assert format_bytes(3.2 * 2**40) == "3.2 TiB"


def test_the_limit_is_the_available_memory_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv(memory.MEMORY_LIMIT_ENV, raising=False)
    assert (
        memory_limit() == memory.available_memory()
        or abs(memory_limit() - memory.available_memory()) < 2**28
    )  # the machine's own use moves it a little between the two calls
    monkeypatch.setenv(memory.MEMORY_LIMIT_ENV, "64MiB")
    assert memory_limit() == 64 << 20
    monkeypatch.setenv(memory.MEMORY_LIMIT_ENV, "plenty")
    with pytest.raises(InputError, match="NAPARI_SRCNN_MEMORY_LIMIT='plenty' is not a size"):
        memory_limit()


def test_available_memory_falls_back_without_psutil(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_psutil(name, *args, **kwargs):
        if name == "psutil":
            raise ImportError("no psutil here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psutil)
    assert memory.available_memory() > 0


def test_upscale_estimate_counts_the_result_and_the_working_memory():
    est = upscale_estimate((30000, 30000), np.uint8, 16)
    assert est.output_bytes == 480000**2  # ceil(30000 * 16) squared, one byte each
    assert est.output_bytes < est.peak_bytes < est.output_bytes + 2**30
    rgb = upscale_estimate((100, 100, 3), np.uint16, 2, spatial=(0, 1))
    assert rgb.output_bytes == 200 * 200 * 3 * 2
    plain = upscale_estimate((1000, 1000), np.float32, 3)
    assert upscale_estimate((1000, 1000), np.float32, 3, ensemble=True).peak_bytes > (
        plain.peak_bytes + 9e6 * 12
    )
    assert upscale_estimate((1000, 1000), np.float32, 3, workers=8).peak_bytes > plain.peak_bytes
    read = upscale_estimate((1000, 1000), np.float32, 3, input_bytes=4 * 10**6)
    assert read.peak_bytes == plain.peak_bytes + 4 * 10**6


def test_estimates_allocate_nothing():
    tracemalloc.start()
    try:
        upscale_estimate((10**6, 10**6, 3), np.float64, 16, spatial=(0, 1), ensemble=True)
        zarr_estimate((10**6, 10**6), np.uint8, 16, source_chunks=(1024, 1024))
        training_data_estimate([((10**5, 10**5), np.uint16)] * 100, 4, 4)
        training_step_estimate(10**9, 33, halo=8, widths=(64, 32))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_the_refusal_is_one_line_with_the_figures_and_the_way_out():
    est = upscale_estimate((30000, 30000), np.uint8, 16, advice="use a smaller --scale")
    with pytest.raises(InputError) as info:
        est.check(limit=16 << 30)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("upscaling a 30000×30000 uint8 image ×16 needs about 215 GiB")
    assert "(the result alone is 215 GiB), more than the 16 GiB allowed" in message
    assert message.endswith("use a smaller --scale")
    assert est.check(limit=est.peak_bytes) is est


def test_zarr_estimate_counts_the_graph_and_not_the_result():
    est = zarr_estimate((10**6, 10**6), np.uint8, 2, source_chunks=(1024, 1024))
    assert est.output_bytes == (2 * 10**6) ** 2 and not est.output_in_memory
    assert est.peak_bytes > 3.8e6 * memory.GRAPH_BYTES_PER_CHUNK  # 3.8 million output chunks
    with pytest.raises(InputError) as info:
        est.check(limit=8 << 30)
    assert "3818116 chunks" in str(info.value) and "result alone" not in str(info.value)
    small = zarr_estimate((4096, 4096), np.uint16, 2, source_chunks=(512, 512))
    assert small.peak_bytes < 1 << 30
    one_chunk = zarr_estimate((40000, 40000), np.uint16, 2, source_chunks=(40000, 40000))
    assert one_chunk.peak_bytes > 2 * 40000**2 * 2 and "rechunk" in one_chunk.advice


def test_training_estimates():
    data = training_data_estimate([((4, 512, 512), np.uint16)], 3, partners=3)
    assert data.peak_bytes > 4 * 512 * 512 * 4 * 4  # HR and three LR partners in float32
    step = training_step_estimate(64, 33, halo=8, widths=(64, 32))
    assert step.peak_bytes < 1 << 30
    with pytest.raises(InputError, match="training step of 100000000 sub-images"):
        training_step_estimate(10**8, 33, halo=8, widths=(64, 32)).check()


def test_check_disk(tmp_path, monkeypatch):
    memory.check_disk(tmp_path, 1, "writing", "free some")
    with pytest.raises(
        InputError, match=r"writes up to .* \(uncompressed\) and .* free; free some"
    ):
        memory.check_disk(tmp_path, 1 << 62, "writing", "free some")
    assert isinstance(Estimate("t", 1, 1, "a").check(), Estimate)
