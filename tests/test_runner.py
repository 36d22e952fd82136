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


# ------------------------------------------------------------------ run_groups


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def test_run_groups_yields_each_group_in_order_once_all_its_calls_are_done(two_threads):
    import threading
    import time

    from napari_srcnn.engine.runner import run_groups

    done: dict[int, list[int]] = {}
    lock = threading.Lock()
    seen_threads = set()

    def call(group: int, item: int) -> None:
        time.sleep(0.002 * ((group + item) % 3))  # finish out of order
        with lock:
            done.setdefault(group, []).append(item)
            seen_threads.add((threading.get_ident(), torch.get_num_threads()))

    groups = [[lambda g=g, i=i: call(g, i) for i in range(3)] for g in range(6)]
    order = []
    for index in run_groups(groups, workers=2):
        assert sorted(done[index]) == [0, 1, 2]  # the whole group is finished
        order.append(index)
    assert order == list(range(6))
    assert torch.get_num_threads() == 2
    assert {n for _, n in seen_threads} == {1} and len(seen_threads) == 2
    assert threading.get_ident() not in {t for t, _ in seen_threads}


def test_run_groups_stops_on_a_cancel_and_waits_for_running_calls(two_threads):
    """A cancel raised while groups are read skips the calls not started and returns only
    when no call is running any more (nothing writes into the caller's arrays later)."""
    import threading
    import time

    from napari_srcnn.engine.runner import run_groups
    from napari_srcnn.errors import CancelledError

    started, finished = [], []
    lock = threading.Lock()

    def call(i: int) -> None:
        with lock:
            started.append(i)
        time.sleep(0.02)
        with lock:
            finished.append(i)

    def groups():
        for g in range(50):
            if g == 3:
                raise CancelledError("upscaling cancelled")
            yield [lambda i=4 * g + k: call(i) for k in range(4)]

    with pytest.raises(CancelledError):
        for _ in run_groups(groups(), workers=2, ahead=2):
            pass
    assert sorted(started) == sorted(finished)  # nothing left running
    assert len(started) < 12  # queued calls were skipped
    assert torch.get_num_threads() == 2
    time.sleep(0.05)
    assert len(started) == len(finished) < 12  # and never start later


def test_run_groups_raises_a_call_error_and_runs_serially_on_one_worker(two_threads):
    import threading

    from napari_srcnn.engine.runner import run_groups

    def boom() -> None:
        raise MemoryError("no room")

    with pytest.raises(MemoryError, match="no room"):
        list(run_groups([[lambda: None], [boom, lambda: None], [lambda: None]], workers=2))
    assert torch.get_num_threads() == 2
    where = []
    groups = [[lambda: where.append(threading.get_ident())] for _ in range(3)]
    assert list(run_groups(groups, workers=1)) == [0, 1, 2]
    assert where == [threading.get_ident()] * 3
