"""The network runner: the plain network's result, in blocks, channels-last, OOM-halving."""

import pytest
import torch

from napari_srcnn.engine.model import SRCNN, ArchSpec
from napari_srcnn.engine.runner import NetworkRunner, _true_channels_last


def _random_net(arch: str, channels: int = 1, seed: int = 0) -> SRCNN:
    """An SRCNN with random (non-trivial) weights: blocking must be exact for any weights."""
    torch.manual_seed(seed)
    return SRCNN(ArchSpec.parse(arch, channels=channels)).eval()


@pytest.mark.parametrize(
    ("arch", "channels"),
    [("9-1-5", 1), ("9-5-5", 1), ("9-3-5-5", 1), ("5-1-3:16,8", 1), ("9-1-5", 3)],
)
@pytest.mark.parametrize("block", [None, 24])
def test_cpu_runner_equals_the_plain_network(arch, channels, block):
    """Channels-last convolutions, the GEMM + shifted-adds last layer and the cache blocks
    compute the network exactly (up to float rounding), also across block seams."""
    net = _random_net(arch, channels)
    runner = NetworkRunner(net, torch.device("cpu"), "auto")
    runner.block = block
    h = net.spec.halo
    x = torch.rand(2, channels, 61 + 2 * h, 50 + 2 * h)
    with torch.no_grad():
        ref = net.body(x)
    out = runner(x)
    assert out.shape == ref.shape and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_one_channel_tensors_are_made_truly_channels_last():
    """contiguous(channels_last) is a no-op for one channel; oneDNN then runs NCHW (3x slower)."""
    x = torch.rand(2, 1, 9, 7)
    assert x.contiguous(memory_format=torch.channels_last).stride(1) != 1  # the pitfall
    y = _true_channels_last(x)
    assert y.stride(1) == 1 and y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, y)
    assert _true_channels_last(y) is y


def test_out_of_memory_halves_the_block_and_remembers_it():
    net = _random_net("9-5-5")
    runner = NetworkRunner(net, torch.device("cpu"), "fp32")
    runner.block = 128
    sizes = []

    def forward(x):
        sizes.append(x.shape[-1] - 2 * runner.halo)
        if x.shape[-1] - 2 * runner.halo > 40:
            raise torch.cuda.OutOfMemoryError("simulated")
        return runner._forward_cpu(x)

    x = torch.rand(1, 1, 100 + 16, 90 + 16)
    out = runner._run_halving(x, forward)
    assert runner.block == 32 and max(sizes) == 90 and out.shape == (1, 1, 100, 90)
    with torch.no_grad():
        torch.testing.assert_close(out, net.body(x), atol=1e-5, rtol=1e-5)
    runner.block = 32
    with pytest.raises(torch.cuda.OutOfMemoryError):
        runner._run_halving(x, lambda t: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("x")))


def test_cuda_block_is_sized_once_then_kept(monkeypatch):
    """The first call sizes the block from the free memory; later calls keep it (and what
    out-of-memory halvings made of it)."""
    runner = NetworkRunner(_random_net("9-1-5"), torch.device("cpu"), "fp32")
    runner.block = None  # as on CUDA before the first call
    calls = []
    monkeypatch.setattr(runner, "_block_from_free_memory", lambda: calls.append(1) or 640)
    assert runner.cuda_block() == 640 and runner.cuda_block() == 640 and len(calls) == 1
    runner.block = 320
    assert runner.cuda_block() == 320 and len(calls) == 1


@pytest.mark.parametrize("arch", ["9-1-5", "9-5-5"])
def test_parallel_blocks_run_side_by_side_and_equal_the_serial_run(arch, monkeypatch):
    """With two torch threads the blocks run on two threads of one torch thread each; the
    result is the serial one (up to float rounding) and torch's thread count is restored."""
    import threading

    net = _random_net(arch)
    h = net.spec.halo
    x = torch.rand(1, 1, 70 + 2 * h, 65 + 2 * h)
    serial = NetworkRunner(net, torch.device("cpu"), "fp32", parallel_blocks=False)
    parallel = NetworkRunner(net, torch.device("cpu"), "fp32")
    serial.block = parallel.block = 24
    seen = []
    forward = parallel._forward_cpu

    def spy(t):
        seen.append((threading.get_ident(), torch.get_num_threads()))
        return forward(t)

    monkeypatch.setattr(parallel, "_forward_cpu", spy)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = parallel(x)
        assert torch.get_num_threads() == 2
        ref = serial(x)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert len(seen) == 9  # 3 × 3 blocks
    assert {n for _, n in seen} == {1} and len({ident for ident, _ in seen}) == 2
    assert threading.get_ident() not in {ident for ident, _ in seen}


def test_an_error_in_a_parallel_block_reaches_the_caller_and_restores_threads(monkeypatch):
    runner = NetworkRunner(_random_net("9-1-5"), torch.device("cpu"), "fp32")
    runner.block = 16
    monkeypatch.setattr(runner, "_forward_cpu", lambda t: (_ for _ in ()).throw(MemoryError()))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(MemoryError):
            runner(torch.rand(1, 1, 60, 60))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
