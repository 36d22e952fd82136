"""Running the SRCNN network on one device, as fast as that device allows.

[`NetworkRunner`][napari_srcnn.engine.runner.NetworkRunner] computes the SRCNN body (valid
convolutions) on bicubic-up-sampled tiles grown by the network's halo;
[`Upscaler`][napari_srcnn.engine.inference.Upscaler] cuts an image into those tiles and puts the
results back together. The result is the plain network's up to float rounding; only the speed
depends on the device (measured in ``benchmarks/``, see ``docs/benchmarks.md``):

- On the CPU the network runs in cache-sized blocks (`CPU_BLOCK`) in true
  channels-last layout (oneDNN's fast direct convolutions), and the last layer (``n2 → 1``
  or ``→ 3`` channels, which oneDNN runs at ~5 % of peak) as one matrix product followed by
  shifted adds.
- In bf16 on the CPU (``precision="auto"`` on CPUs with native bf16 for models that pass
  their bf16 check, see [`napari_srcnn.engine.precision`][napari_srcnn.engine.precision]): the
  same blocks, the weights rounded to bf16 once (error diffusion keeps every kernel's sum),
  the activations in bf16, the last layer (and a first layer that is a small share of the
  work) in fp32; blocks narrower than `CPU_MIN_WIDTH` are widened (in fp32 too) so that every
  block runs the same oneDNN kernels.
- On CUDA: bf16 autocast (NaN check, fp32 fallback), channels-last, cuDNN autotuning; the
  block size comes from the free device memory and is halved on out-of-memory.
- On an Apple GPU (MPS): the plain network in fp32, in blocks of `MPS_BLOCK`.

Valid convolutions make the blocks' seams exact: the block size never changes the result (on
the CPU bit for bit, in fp32 and in bf16).

[`run_groups()`][napari_srcnn.engine.runner.run_groups] runs independent pieces of work (blocks, or
the upscaler's cells) side by side on the block threads, each with a single-threaded torch.
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from .precision import choose_precision

if TYPE_CHECKING:  # pragma: no cover
    from .model import SRCNN

__all__ = ["NetworkRunner", "run_groups", "split_range"]


# Output edge of one CPU forward pass. Blocks keep the activations in the last-level
# cache and under glibc's mmap threshold (fresh multi-megabyte buffers are page-faulted on
# every call): whole 512-pixel tiles ran 1.15-1.9x slower on a 2-core EPYC. A 1×1 mapping
# layer (9-1-5) is memory-bound and prefers small blocks; a wider one (9-5-5) is
# compute-bound and prefers larger ones, whose halo is recomputed less.
CPU_BLOCK = 128
CPU_BLOCK_WIDE_MAPPING = 256
# On the CPU oneDNN takes another reduction order (other rounding) for narrow outputs: its AMX
# bf16 convolutions below ~50 output columns (measured for every SRCNN layer shape, widths
# 1-600), its AVX2 fp32 ones below ~30 (9-3-5-5 at 24 columns, on a 2-core AMD EPYC).
# Narrower blocks are run this wide and cropped, so a pixel's value never depends on its block.
CPU_MIN_WIDTH = 64
# bf16 on the CPU: the first layer stays fp32 when it is at most this share of the work.
BF16_FP32_FIRST_SHARE = 0.25
# Apple GPU: one forward pass per block of this many output pixels per side (the tile bounds
# it too): ~0.4 GB of fp32 activations for 9-5-5.
MPS_BLOCK = 1024
# Share of the free GPU memory that one forward pass may plan to use, and the bytes one
# output pixel needs per activation channel (fp32 activations, the bf16 copies autocast
# makes, cuDNN workspace: a generous 8).
GPU_MEMORY_FRACTION = 0.5
_GPU_BYTES_PER_CHANNEL = 8
_MIN_BLOCK = 32


def _true_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last layout, also when it has one channel.

    With one channel the NCHW and NHWC strides coincide, so ``contiguous(channels_last)``
    returns ``x`` unchanged and oneDNN then picks its NCHW kernels for the whole network:
    3-4x slower for 9-1-5. A tensor allocated channels-last carries the NHWC strides.
    """
    if x.stride(1) == 1 and x.is_contiguous(memory_format=torch.channels_last):
        return x
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    return out.copy_(x)


def _round_bf16_sum_preserving(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` (out, in, kh, kw) in bf16, each kernel's taps rounded with error diffusion:
    the rounding error carried from tap to tap keeps every kernel's sum (its response to a
    smooth input) exact to half a bf16 step, where rounding each tap to the nearest loses
    up to ``taps / 2`` steps. Set5 ×3 9-5-5: -0.02 dB against fp32 instead of -0.05."""
    out_ch, in_ch = weight.shape[:2]
    taps = weight.detach().to("cpu", torch.float64).reshape(out_ch * in_ch, -1)
    rounded = torch.empty_like(taps)
    carry = torch.zeros(taps.shape[0], dtype=torch.float64)
    for j in range(taps.shape[1]):
        wanted = taps[:, j] + carry
        rounded[:, j] = wanted.to(torch.bfloat16).to(torch.float64)
        carry = wanted - rounded[:, j]
    return rounded.reshape(weight.shape).to(weight.device, torch.bfloat16)


# (process id, workers, pool)
_POOL: tuple[int, int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()


def _block_pool(workers: int) -> ThreadPoolExecutor:
    """The process's block threads (made once; again after a fork or a thread-count change).

    Each thread runs torch with one thread of its own: OpenMP teams of two on a core that
    something else is using spin at every barrier (a 9-1-5 run on two busy cores was 10x
    slower than with single-threaded blocks).
    """
    global _POOL

    with _POOL_LOCK:
        pid = os.getpid()
        if _POOL is None or _POOL[0] != pid or _POOL[1] != workers:
            if _POOL is not None and _POOL[0] == pid:
                _POOL[2].shutdown(wait=False)
            pool = ThreadPoolExecutor(
                max_workers=workers,
                thread_name_prefix="srcnn-block",
            )
            _POOL = (pid, workers, pool)
        return _POOL[2]


def run_groups(
    groups: Iterable[list[Callable[[], None]]], workers: int, ahead: int = 2
) -> Iterator[int]:
    """Run every call of every group; yield each group's index, in order, once all its calls
    are done.

    With ``workers`` >= 2 the calls run side by side on the process's block threads, each
    with a single-threaded torch (an idle 2-core machine runs 9-5-5 as fast as one block on
    all cores, 9-1-5 up to ~10 % slower; with another process on a core both run about 2x
    faster, ``docs/benchmarks.md``), and at most ``ahead`` groups are in flight, so that a
    consumer reporting progress per group never leaves a core idle at a group's end. With
    fewer workers they run here, one after another.

    ``groups`` is read lazily: an exception it raises (a cancel) or one a call raises
    stops the run; calls not yet started are skipped, running ones are waited for (nothing
    writes into the caller's arrays afterwards) and the exception reaches the caller.
    torch's thread count is global: the caller's is restored afterwards.
    """
    if workers < 2:
        for index, group in enumerate(groups):
            for call in group:
                call()
            yield index
        return

    threads = torch.get_num_threads()
    stop = threading.Event()

    def one(call: Callable[[], None]) -> None:
        if stop.is_set():
            return
        # Checked per call: torch may re-apply the process-wide count to a thread lazily.
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
        with torch.inference_mode():
            call()

    pool = _block_pool(workers)
    pending: deque[list[Future[None]]] = deque()
    done = 0
    try:
        for group in groups:
            pending.append([pool.submit(one, call) for call in group])
            while len(pending) > ahead:
                _finish_oldest(pending)
                yield done
                done += 1
        while pending:
            _finish_oldest(pending)
            yield done
            done += 1
    finally:
        stop.set()
        for futures in pending:
            wait(futures)
        torch.set_num_threads(threads)


def _finish_oldest(pending: deque[list[Future[None]]]) -> None:
    """Wait for the oldest group and drop it. Its error, if any, is raised with the group
    still pending, so the caller waits for its other calls."""
    for future in pending[0]:
        future.result()
    pending.popleft()


def split_range(n: int, block: int) -> list[tuple[int, int]]:
    """``[0, n)`` cut into equal pieces of at most ``block`` (equal sizes reuse kernels)."""
    parts = max(1, math.ceil(n / block))
    size = math.ceil(n / parts)
    return [(a, min(n, a + size)) for a in range(0, n, size)]


class NetworkRunner:
    """The SRCNN body (valid convolutions) on one device, as fast as that device allows.

    Call with ``(N, c, H, W)`` float32 on the device; returns ``(N, c, H - 2 halo,
    W - 2 halo)`` float32. The result is split into blocks of at most `block` output
    pixels per side; valid convolutions make the blocks' seams exact.

    Parameters
    ----------
    net
        The network (weights are copied: later changes to ``net`` are not seen).
    device
        Where to run.
    precision
        ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"`` (see
        [`UpscaleOptions`][napari_srcnn.engine.options.UpscaleOptions]).
    parallel_blocks
        On the CPU, run the blocks of one call side by side, one per torch thread (each
        with a single-threaded torch), instead of one after the other on all threads.
    metrics
        The model's ``metrics`` metadata: its bf16 check decides what ``"auto"`` means on a
        CPU with native bf16 (without it: fp32). See
        [`choose_precision()`][napari_srcnn.engine.precision.choose_precision].

    Attributes
    ----------
    requested
        The precision asked for (``"auto"`` included): a caller compares it with its options
        to know when to build a new runner.
    precision
        The precision in use, ``"fp32"``, ``"bf16"`` or ``"fp16"`` (``"auto"`` resolved by
        [`choose_precision()`][napari_srcnn.engine.precision.choose_precision]).
    precision_reason
        Why: one line for humans (``"fp32 (auto: this CPU has no native bf16)"``).
    halo
        Receptive-field radius: output pixels lost on each side.
    block
        Largest output block edge of one forward pass: `CPU_BLOCK` or
        `CPU_BLOCK_WIDE_MAPPING` on the CPU, `MPS_BLOCK` on MPS; on CUDA ``None`` until
        `cuda_block()` sizes it from the free memory, halved on out-of-memory.
    """

    def __init__(
        self,
        net: SRCNN,
        device: torch.device,
        precision: str,
        parallel_blocks: bool = True,
        metrics: Mapping[str, Any] | None = None,
    ):
        self.requested = precision
        self.parallel_blocks = parallel_blocks
        self.precision, self.precision_reason = choose_precision(precision, device, metrics)
        self.device = device
        self.halo = net.spec.halo
        self.body = net.body
        spec = net.spec
        self._channels_per_px = 2 * spec.channels + spec.n1 + 2 * spec.n2
        # CPU: cache-sized blocks; CUDA: chosen from free memory at the first call.
        cpu_block = CPU_BLOCK if spec.f2 == 1 else CPU_BLOCK_WIDE_MAPPING
        blocks = {"cpu": cpu_block, "mps": MPS_BLOCK}
        self.block: int | None = blocks.get(device.type)
        convs = net.convs()
        with torch.no_grad():
            if device.type == "mps":  # the plain network, NCHW, fp32
                self._plain = [
                    (
                        c.weight.detach().to(torch.float32).contiguous().to(device),
                        None if c.bias is None else c.bias.detach().to(torch.float32).to(device),
                    )
                    for c in convs
                ]
            self._layers = [
                (
                    _true_channels_last(c.weight.detach().to(device, torch.float32)),
                    None if c.bias is None else c.bias.detach().to(device, torch.float32),
                )
                for c in convs[:-1]
            ]
            last = convs[-1]
            c, n, k = last.weight.shape[0], last.weight.shape[1], last.weight.shape[-1]
            # Rows (channel, dy, dx) of the last kernel: one GEMM gives every tap's
            # contribution, shifted adds then sum them (see _last_layer).
            self._last_w = last.weight.detach().float().permute(0, 2, 3, 1).reshape(c * k * k, n)
            self._last_w = self._last_w.contiguous().to(device)
            bias = torch.zeros(c) if last.bias is None else last.bias.detach()
            self._last_b = bias.float().to(device)
            self._last_k = k
            # bf16 on the CPU: weights rounded once (autocast would convert them at every
            # call). A first layer that is a small share of the work (9-5-5: 9 %) stays fp32
            # and sees the input at full precision (Set5 ×2: -0.03 instead of -0.05 dB).
            self._bf16_first_fp32 = False
            self._layers_bf16: list[tuple[torch.Tensor, torch.Tensor | None]] = []
            if device.type == "cpu" and self.precision == "bf16":
                macs = [w.numel() for w, _ in self._layers] + [self._last_w.numel()]
                self._bf16_first_fp32 = macs[0] <= BF16_FP32_FIRST_SHARE * sum(macs)
                self._layers_bf16 = [
                    (
                        _true_channels_last(_round_bf16_sum_preserving(w)),
                        None if b is None else b.to(torch.bfloat16),
                    )
                    for w, b in self._layers[1 if self._bf16_first_fp32 else 0 :]
                ]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            if self.device.type == "cuda":
                return self._run_cuda(x)
            if self.device.type == "mps":
                return self._blocked(x, self._forward_plain, self.block)
            if self.precision == "bf16":
                return self._blocked(x, self._forward_cpu_bf16, self.block)
            if self.precision == "fp16":  # asked for on the CPU: slow, but honoured
                return self._blocked(x, self._forward_autocast, self.block)
            return self._blocked(x, self._forward_cpu, self.block)

    # ------------------------------------------------------------------ blocks

    def _blocked(
        self, x: torch.Tensor, forward: Callable[[torch.Tensor], torch.Tensor], block: int | None
    ) -> torch.Tensor:
        n, c, h, w = x.shape
        halo = self.halo
        ho, wo = h - 2 * halo, w - 2 * halo
        if block is None or (ho <= block and wo <= block):
            return forward(x)
        out = torch.empty((n, c, ho, wo), dtype=torch.float32, device=x.device)
        cells = [(ys, xs) for ys in split_range(ho, block) for xs in split_range(wo, block)]

        def run(cell: tuple[tuple[int, int], tuple[int, int]]) -> None:
            (y0, y1), (x0, x1) = cell
            out[:, :, y0:y1, x0:x1] = forward(x[:, :, y0 : y1 + 2 * halo, x0 : x1 + 2 * halo])

        threads = torch.get_num_threads()
        if not self.parallel_blocks or x.device.type != "cpu" or min(len(cells), threads) < 2:
            for cell in cells:
                run(cell)
            return out
        for _ in run_groups([[partial(run, cell) for cell in cells]], threads):
            pass
        return out

    # ------------------------------------------------------------------ CPU

    def _widened(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` padded on the right to `CPU_MIN_WIDTH` output columns (the zeros reach only
        outputs that are cropped off), so that every block runs the same oneDNN kernels."""
        wo = x.shape[-1] - 2 * self.halo
        return F.pad(x, (0, CPU_MIN_WIDTH - wo)) if wo < CPU_MIN_WIDTH else x

    def _forward_cpu(self, x: torch.Tensor) -> torch.Tensor:
        wo = x.shape[-1] - 2 * self.halo
        h = _true_channels_last(self._widened(x))
        for weight, bias in self._layers:
            h = F.conv2d(h, weight, bias).relu_()
        return self._last_layer(h)[..., :wo]

    def _last_layer(self, h: torch.Tensor) -> torch.Tensor:
        """The reconstruction layer as a GEMM plus shifted adds (~8x oneDNN's conv with
        one or three output channels)."""
        n, ch, hh, ww = h.shape
        k = self._last_k
        c = self._last_b.numel()
        flat = h.permute(0, 2, 3, 1).reshape(-1, ch)  # a view when h is channels-last
        taps = torch.mm(self._last_w, flat.t()).view(c, k, k, n, hh, ww)
        ho, wo = hh - k + 1, ww - k + 1
        out = taps[:, 0, 0, :, :ho, :wo] + self._last_b.view(c, 1, 1, 1)
        for dy in range(k):
            for dx in range(k):
                if dy or dx:
                    out += taps[:, dy, dx, :, dy : dy + ho, dx : dx + wo]
        return out.permute(1, 0, 2, 3)

    def _forward_cpu_bf16(self, x: torch.Tensor) -> torch.Tensor:
        """`_forward_cpu` with bf16 activations and weights (fp32 accumulation inside
        oneDNN), the reconstruction layer (and a cheap first layer) in fp32: on a 2-core AMX
        CPU 2-2.7x faster than fp32 end to end for 9-5-5, 1.4x for 9-1-5."""
        wo = x.shape[-1] - 2 * self.halo
        h = _true_channels_last(self._widened(x))
        if self._bf16_first_fp32:
            weight, bias = self._layers[0]
            h = F.conv2d(h, weight, bias).relu_()
        h = h.to(torch.bfloat16)
        for weight, bias in self._layers_bf16:
            h = F.conv2d(h, weight, bias).relu_()
        return self._last_layer(h.float())[..., :wo]

    def _forward_autocast(self, x: torch.Tensor) -> torch.Tensor:
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        x = _true_channels_last(x)
        with torch.autocast(x.device.type, dtype=dtype):
            y = self.body(x)
        if not torch.isfinite(y).all():  # fp16 overflow: never hand back black/NaN tiles
            y = self.body(x) if x.device.type == "cuda" else self._forward_cpu(x)
        return y.float()

    # ------------------------------------------------------------------ MPS

    def _forward_plain(self, x: torch.Tensor) -> torch.Tensor:
        """The network as written (NCHW fp32 convolutions): what every backend runs right."""
        h = x.contiguous()
        last = len(self._plain) - 1
        for i, (weight, bias) in enumerate(self._plain):
            h = F.conv2d(h, weight, bias)
            if i < last:
                h = h.relu_()
        return h

    # ------------------------------------------------------------------ CUDA

    def cuda_block(self) -> int:
        """The block edge on CUDA, sized from the free device memory at the first call (the
        caller grows its tiles to it) and halved on out-of-memory later."""
        if self.block is None:
            self.block = self._block_from_free_memory()
        return self.block

    def _run_cuda(self, x: torch.Tensor) -> torch.Tensor:
        self.cuda_block()
        return self._run_halving(x, self._forward_cuda)

    def _run_halving(
        self, x: torch.Tensor, forward: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """Run in blocks; on out-of-memory halve the block (for this and every later call:
        the memory is not coming back) and try again, down to `_MIN_BLOCK`."""
        while True:
            try:
                return self._blocked(x, forward, self.block)
            except torch.cuda.OutOfMemoryError:
                if self.block is None or self.block <= _MIN_BLOCK:
                    raise
                if x.is_cuda:
                    torch.cuda.empty_cache()
                self.block = max(_MIN_BLOCK, self.block // 2)

    def _block_from_free_memory(self) -> int:
        free, _total = torch.cuda.mem_get_info(self.device)
        pixels = free * GPU_MEMORY_FRACTION / (_GPU_BYTES_PER_CHANNEL * self._channels_per_px)
        return int(min(8192, max(_MIN_BLOCK, math.isqrt(int(pixels)))))

    def _forward_cuda(self, x: torch.Tensor) -> torch.Tensor:
        x = _true_channels_last(x)
        # Autotuning finds the fastest cuDNN algorithm once per block shape (tiles mostly
        # share one). TF32 only when the caller accepted reduced precision.
        with torch.backends.cudnn.flags(
            enabled=True, benchmark=True, deterministic=False, allow_tf32=self.precision != "fp32"
        ):
            if self.precision == "fp32":
                return self.body(x).float()
            return self._forward_autocast(x)
