"""Device choice: the order ``auto`` tries (CUDA, MPS, CPU), validation, the CPU's flags."""

import pytest
import torch

from napari_srcnn.engine import device as dev
from napari_srcnn.errors import DeviceError


@pytest.fixture
def machine(monkeypatch):
    """Fake which accelerators this machine has: ``machine(cuda=2, mps=True)``."""

    def fake(cuda: int = 0, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(dev, "mps_available", lambda: mps)

    return fake


@pytest.fixture
def flags(monkeypatch):
    """Fake the CPU's flags (``cpu_flags`` is cached: cleared before and after)."""

    def fake(text: str) -> None:
        monkeypatch.setenv("NAPARI_SRCNN_CPU_FLAGS", text)
        dev.cpu_flags.cache_clear()

    dev.cpu_flags.cache_clear()
    yield fake
    monkeypatch.delenv("NAPARI_SRCNN_CPU_FLAGS", raising=False)
    dev.cpu_flags.cache_clear()


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(1, True, "cuda:0"), (2, False, "cuda:0"), (0, True, "mps"), (0, False, "cpu")],
)
def test_auto_picks_cuda_then_mps_then_the_cpu(machine, cuda, mps, expected):
    machine(cuda=cuda, mps=mps)
    assert dev.resolve_device("auto") == torch.device(expected)
    assert dev.resolve_device("") == torch.device(expected)


def test_available_devices_list_what_exists_in_the_order_auto_tries(machine):
    machine(cuda=2, mps=True)
    assert dev.available_devices() == ["cpu", "cuda:0", "cuda:1", "mps"]
    machine(cuda=0, mps=True)
    assert dev.available_devices() == ["cpu", "mps"]
    machine(cuda=0, mps=False)
    assert dev.available_devices() == ["cpu"]


def test_mps_is_accepted_where_it_exists_and_refused_clearly_elsewhere(machine):
    machine(mps=True)
    assert dev.resolve_device("mps") == torch.device("mps")
    assert dev.resolve_device("MPS") == torch.device("mps")
    assert dev.resolve_device("mps:0") == torch.device("mps")
    assert dev.resolve_device(torch.device("mps")) == torch.device("mps")
    with pytest.raises(DeviceError, match="only one MPS device"):
        dev.resolve_device("mps:1")
    machine(mps=False)
    with pytest.raises(DeviceError, match="MPS .* is not available"):
        dev.resolve_device("mps")


def test_cuda_requests_are_validated(machine):
    machine(cuda=1)
    assert dev.resolve_device("cuda") == torch.device("cuda", 0)
    with pytest.raises(DeviceError, match="only 1 CUDA device"):
        dev.resolve_device("cuda:1")
    machine(cuda=0, mps=True)
    with pytest.raises(DeviceError, match="CUDA is not available"):
        dev.resolve_device("cuda")
    with pytest.raises(DeviceError, match="unknown device"):
        dev.resolve_device("gpu please")
    with pytest.raises(DeviceError, match="not supported; use auto, cpu, cuda, cuda:N or mps"):
        dev.resolve_device("meta")


def test_mps_available_is_false_without_the_backend(monkeypatch):
    monkeypatch.delattr(torch.backends, "mps", raising=False)
    assert dev.mps_available() is False


def test_cpu_flags_can_be_faked_and_decide_native_bf16(flags):
    flags("fpu sse avx2 fma")
    assert dev.cpu_flags() == {"fpu", "sse", "avx2", "fma"}
    assert not dev.cpu_has_native_bf16()
    flags("avx2 avx512f avx512_bf16")
    assert dev.cpu_has_native_bf16()
    flags("avx2 amx_tile amx_bf16")
    assert dev.cpu_has_native_bf16()
    flags("")
    assert dev.cpu_flags() == frozenset() and not dev.cpu_has_native_bf16()


def test_cpu_model_names_the_processor():
    assert isinstance(dev.cpu_model(), str)
