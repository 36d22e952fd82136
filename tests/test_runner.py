"""The network runner: the plain network's result, in blocks, channels-last, OOM-halving."""

import numpy as np
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


# ------------------------------------------------------------------ precisions (issue 17)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize(
    ("arch", "channels"), [("9-1-5", 1), ("9-5-5", 1), ("9-3-5-5", 1), ("9-5-5", 3)]
)
@pytest.mark.parametrize("block", [24, 37, 100])
def test_blocks_are_bit_exact_in_every_precision(precision, arch, channels, block):
    """Exact seams in fp32 and in bf16: the blocks (narrow ones included, which oneDNN's
    bf16 kernels would otherwise round differently) give the one-block result bit for bit."""
    net = _random_net(arch, channels)
    h = net.spec.halo
    x = torch.rand(1, channels, 130 + 2 * h, 150 + 2 * h)
    whole = NetworkRunner(net, torch.device("cpu"), precision)
    whole.block = None
    blocked = NetworkRunner(net, torch.device("cpu"), precision)
    blocked.block = block
    ref = whole(x)
    assert ref.dtype == torch.float32 and whole.precision == precision
    assert torch.equal(blocked(x), ref)


@pytest.mark.filterwarnings("ignore::napari_srcnn.errors.ScaleMismatchWarning")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize(("scale", "tile"), [(2, 16), (3, 37), (2.5, 64)])
def test_tiled_equals_untiled_bit_for_bit_in_every_precision(precision, scale, tile, camera):
    from napari_srcnn.engine.inference import upscale
    from napari_srcnn.engine.model_info import ModelInfo
    from napari_srcnn.engine.weights_file import LoadedModel

    net = _random_net("9-5-5")
    model = LoadedModel(net, ModelInfo(name="r955", arch=net.spec, scale=3.0))
    image = camera[:70, :53].astype(np.float32) / 255
    whole = upscale(image, model, scale, tile=4096, precision=precision)
    tiled = upscale(image, model, scale, tile=tile, precision=precision)
    np.testing.assert_array_equal(whole, tiled)


@pytest.mark.parametrize(("arch", "channels"), [("9-1-5", 1), ("9-5-5", 1), ("9-5-5", 3)])
def test_cpu_bf16_is_close_to_fp32(arch, channels):
    net = _random_net(arch, channels)
    h = net.spec.halo
    x = torch.rand(1, channels, 40 + 2 * h, 90 + 2 * h)
    bf16 = NetworkRunner(net, torch.device("cpu"), "bf16")
    out = bf16(x)
    ref = NetworkRunner(net, torch.device("cpu"), "fp32")(x)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=2e-2 * ref.abs().max().item(), rtol=0)
    # The first layer runs in fp32 where it is a small share of the work (9-5-5: 9 %, RGB
    # 22 %), in bf16 where it is most of it (9-1-5: 65 %).
    assert bf16._bf16_first_fp32 is (arch == "9-5-5")


def test_bf16_weights_keep_every_kernels_sum():
    """Error-diffusion rounding: each kernel's sum is exact to half a bf16 step of its last
    (carried) tap, where rounding every tap to the nearest drifts by several steps; a tap moves
    by at most about one bf16 step (2**-7 relative: 8 significant bits) of the kernel's largest
    tap."""
    from napari_srcnn.engine.runner import _round_bf16_sum_preserving

    torch.manual_seed(0)
    w = torch.randn(32, 64, 5, 5) * 0.05
    q = _round_bf16_sum_preserving(w)
    assert q.dtype == torch.bfloat16 and q.shape == w.shape
    qf, wd = q.double(), w.double()
    err = (qf.sum((2, 3)) - wd.sum((2, 3))).abs()
    largest = wd.abs().amax((2, 3))
    assert (err <= largest * 2.0**-8).all()
    nearest = (w.to(torch.bfloat16).double().sum((2, 3)) - wd.sum((2, 3))).abs()
    assert err.mean() < nearest.mean() / 4
    assert ((qf - wd).abs() <= largest[..., None, None] * 2.0**-7 * 1.01).all()


def test_a_reduced_precision_on_mps_is_refused_before_anything_runs():
    from napari_srcnn.errors import InputError

    with pytest.raises(InputError, match="MPS"):
        NetworkRunner(_random_net("9-1-5"), torch.device("mps"), "bf16")


def _mps_available() -> bool:
    from napari_srcnn.engine.device import mps_available

    return mps_available()


@pytest.mark.mps
@pytest.mark.skipif(not _mps_available(), reason="needs an Apple GPU (MPS)")
@pytest.mark.parametrize(("arch", "channels"), [("9-1-5", 1), ("9-5-5", 3)])
def test_mps_runner_equals_the_cpu(arch, channels):
    net = _random_net(arch, channels)
    h = net.spec.halo
    x = torch.rand(1, channels, 70 + 2 * h, 65 + 2 * h)
    cpu = NetworkRunner(net, torch.device("cpu"), "fp32")(x)
    mps = NetworkRunner(net, torch.device("mps"), "auto")
    assert mps.precision == "fp32"
    blocked = NetworkRunner(net, torch.device("mps"), "fp32")
    blocked.block = 32
    for runner in (mps, blocked):
        out = runner(x.to("mps"))
        assert out.device.type == "mps"
        torch.testing.assert_close(out.cpu(), cpu, atol=1e-4, rtol=1e-4)


@pytest.mark.mps
@pytest.mark.skipif(not _mps_available(), reason="needs an Apple GPU (MPS)")
def test_mps_upscale_equals_the_cpu(camera):
    from napari_srcnn.engine.inference import upscale
    from napari_srcnn.engine.model_info import ModelInfo
    from napari_srcnn.engine.weights_file import LoadedModel

    net = _random_net("9-5-5")
    model = LoadedModel(net, ModelInfo(name="r955", arch=net.spec, scale=3.0))
    image = camera[:64, :48].astype(np.float32) / 255
    cpu = upscale(image, model, 2.5, device="cpu")
    np.testing.assert_allclose(upscale(image, model, 2.5, device="mps"), cpu, atol=1e-4)
    np.testing.assert_allclose(upscale(image, model, 2.5, device="auto", tile=32), cpu, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_auto_follows_the_models_bf16_check():
    net = _random_net("9-5-5")
    h = net.spec.halo
    x = torch.rand(1, 1, 200 + 2 * h, 190 + 2 * h)
    ref = NetworkRunner(net, torch.device("cpu"), "fp32")(x)
    cuda = torch.device("cuda", 0)
    failed = NetworkRunner(net, cuda, "auto", metrics={"bf16": {"ok": False}})
    unchecked = NetworkRunner(net, cuda, "auto")
    assert failed.precision == "fp32" and unchecked.precision == "bf16"
    torch.testing.assert_close(failed(x.to(cuda)).cpu(), ref, atol=1e-4, rtol=1e-4)
    scale = ref.abs().max().item()
    torch.testing.assert_close(unchecked(x.to(cuda)).cpu(), ref, atol=3e-2 * scale, rtol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_out_of_memory_under_a_memory_cap_halves_the_block():
    """A real out-of-memory (a 256 MB cap, which the free-memory estimate does not see):
    the block halves until the pass fits, and the result is the uncapped one."""
    net = _random_net("9-5-5")
    h = net.spec.halo
    cuda = torch.device("cuda", 0)
    x = torch.rand(1, 1, 1500 + 2 * h, 1500 + 2 * h, device=cuda)
    ref = NetworkRunner(net, cuda, "fp32")(x)
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(cuda).total_memory
    torch.cuda.set_per_process_memory_fraction(256 * 2**20 / total, cuda)
    try:
        runner = NetworkRunner(net, cuda, "fp32")
        runner.block = 4096  # what a big GPU's free memory suggests
        out = runner(x)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, cuda)
    assert runner.block < 1500
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
