"""Speed and memory benchmarks of the napari-srcnn engine, against baselines of the same run.

One command prints one table::

    python benchmarks/run.py                  # everything (~3 min on 2 cores)
    python benchmarks/run.py --only inference --repeats 3

Machines are noisy (other processes, frequency changes), so every number that matters is a
*ratio* measured in the same run, in interleaved rounds: ours vs a naive PyTorch baseline,
and both vs the machine's fp32 peak measured between them. The table shows the median over
the rounds of each per-round ratio, and the spread (min-max) of the round values.

Sections
--------
inference
    Output megapixels per second for 9-1-5 and 9-5-5 in Y mode (RGB uint8 in, RGB uint8
    out) on a 1024² output: ``napari_srcnn.engine.inference.upscale`` end to end (bicubic
    pre-upsampling, colour and dtype conversion included), in fp32 and with
    ``precision="auto"`` for the same weights carrying a passed bf16 check (bf16 on CUDA and
    on CPUs with native bf16, fp32 elsewhere), side by side in the same rounds; vs a naive
    SRCNN (NCHW, ``torch.no_grad``, ``nn.Conv2d`` stack with 'same' padding, same weights) on
    the already up-sampled 1024² luma, i.e. the baseline gets its pre-processing for free.
    FLOPs per output pixel = 2 × MACs. Peak = the larger of a 4096² ``torch.mm`` (MKL) and a
    large channels-last 3×3 convolution (oneDNN), both fp32, same thread count; the bf16
    peak (with native bf16 or CUDA) the same in bf16. The notes under the table say whether
    tiled == untiled holds bit for bit in each precision.
strength
    What ``strength="auto"`` costs: a 512² uint16 image ×2 with the shipped microscopy model,
    measured strength vs ``strength=1``, interleaved (the ratio of the two times).
training
    33×33 sub-images per second: the trainer's machinery (``PatchSampler`` random crops with
    augmentation, valid convolutions, channels-last model, Adam, MSE on the valid centre) vs
    a naive loop (pre-extracted patches indexed at random, NCHW ``nn.Sequential``, same
    optimiser and loss), plus the trainer's step with a truly channels-last input batch.
memory
    Peak resident memory (VmHWM) of a fresh process upscaling a 4096² uint16 image ×3
    with the default 512-pixel tiles, vs the size of the output array.
gpu
    The same on CUDA (bf16 peak from a bf16 ``torch.mm``), ``torch.cuda.max_memory_allocated``
    of a 4096² uint16 ×3 upscale in fp32 and in bf16, and the out-of-memory halving forced by
    a small memory cap; reported as not measured when there is no CUDA device.

The first lines name the CPU and the flags that decide bf16 (``avx2``, ``avx512_bf16``,
``amx_bf16``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

warnings.filterwarnings("ignore", message=".*trained for.*")  # random nets used at another scale

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("NAPARI_SRCNN_DATASETS", ROOT.parent / "shared" / "datasets"))


# ----------------------------------------------------------------------------- helpers


def timed(fn: Callable[[], object], sync: Callable[[], None] | None = None) -> float:
    """Wall-clock seconds of one call."""
    if sync:
        sync()
    t = time.perf_counter()
    fn()
    if sync:
        sync()
    return time.perf_counter() - t


def rounds(
    cases: dict[str, Callable[[], object]], repeats: int, sync=None
) -> dict[str, list[float]]:
    """Interleaved timing: every round runs every case once (after one warm-up each)."""
    for fn in cases.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            times[name].append(timed(fn, sync))
    return times


def med(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    return f"{min(values):.3g}-{max(values):.3g}"


def random_net(arch: str, channels: int = 1, seed: int = 0):
    from napari_srcnn.engine.model import SRCNN, ArchSpec
    from napari_srcnn.engine.model_info import ModelInfo
    from napari_srcnn.engine.weights_file import LoadedModel

    torch.manual_seed(seed)
    net = SRCNN(ArchSpec.parse(arch, channels=channels)).eval()
    return LoadedModel(net, ModelInfo(name=f"random-{arch}", arch=net.spec, scale=3.0))


def checked_net(loaded):
    """``loaded`` with a passed bf16 check in its metadata (as ``scripts/check_precision.py``
    writes it): the model ``precision="auto"`` may run in bf16."""
    from dataclasses import replace

    from napari_srcnn.engine.weights_file import LoadedModel

    metrics = {**loaded.info.metrics, "bf16": {"set5_psnr_delta": 0.0, "ok": True}}
    return LoadedModel(loaded.net, replace(loaded.info, metrics=metrics))


def naive_body(loaded, padding: str = "same") -> nn.Sequential:
    """The usual PyTorch port: NCHW ``nn.Conv2d`` stack (same weights, 'same' padding)."""
    layers: list[nn.Module] = []
    convs = loaded.net.convs()
    for i, conv in enumerate(convs):
        k = conv.kernel_size[0]
        plain = nn.Conv2d(
            conv.in_channels, conv.out_channels, k, padding=k // 2 if padding == "same" else 0
        )
        plain.load_state_dict(conv.state_dict())
        layers.append(plain)
        if i < len(convs) - 1:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers).eval()


class CpuMeter:
    """How busy *other* processes kept the CPUs while a section ran, and how much CPU time
    the hypervisor gave to other virtual machines (``steal``), from /proc/stat.

    On a shared machine a 2-thread OpenMP run slows down far more than the share of CPU
    taken by others (every parallel region waits for its descheduled thread), and on a
    virtual machine steal makes whole rounds slower, so every section reports both next to
    its numbers.
    """

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float, float]:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
            # user nice system idle iowait irq softirq steal [guest guest_nice: inside user]
            values = [int(v) for v in fields[:8]]
            tick = os.sysconf("SC_CLK_TCK")
            steal = values[7] / tick if len(values) > 7 else 0.0
            busy = (sum(values) - values[3] - values[4]) / tick - steal
        except (OSError, ValueError, IndexError):
            busy = steal = float("nan")
        t = os.times()
        ours = t.user + t.system + t.children_user + t.children_system
        return busy, steal, ours, time.perf_counter()

    def _share(self, seconds: float) -> float:
        wall = time.perf_counter() - self.start[3]
        return max(0.0, seconds / max(1e-9, wall * (os.cpu_count() or 1)) * 100)

    def others_percent(self) -> float:
        busy, _steal, ours, _wall = self._read()
        return self._share((busy - self.start[0]) - (ours - self.start[2]))

    def steal_percent(self) -> float:
        """CPU time the hypervisor gave to other virtual machines (``steal``)."""
        return self._share(self._read()[1] - self.start[1])


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def section(self, title: str) -> None:
        self.rows.append(("", title))

    def add(self, *cells: object) -> None:
        self.rows.append(tuple(str(c) for c in cells))

    def note(self, text: str) -> None:
        """A line under the current section, outside its columns."""
        self.rows.append(("", "", text))

    def print(self) -> None:
        # Column widths per section: each section is its own small table.
        sections: list[list[tuple[str, ...]]] = []
        for row in self.rows:
            if (row[0] == "" and row[1] != "") or not sections:  # a section title
                sections.append([row])
            else:
                sections[-1].append(row)
        for rows in sections:
            body = [r for r in rows if r[0] != "" and r[:2] != ("", "")]
            widths: dict[int, int] = {}
            for row in body:
                for i, c in enumerate(row):
                    widths[i] = max(widths.get(i, 0), len(c))
            for row in rows:
                if row[:2] == ("", ""):
                    print(f"  {row[2]}")
                elif row[0] == "":
                    print(f"\n== {row[1]}")
                else:
                    print("  " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())


def cpu_line() -> str:
    """The CPU and the flags that decide bf16: native (AVX-512 BF16, AMX) or emulated."""
    from napari_srcnn.engine.device import cpu_flags, cpu_has_native_bf16, cpu_model

    flags = cpu_flags()
    listed = ", ".join(
        f"{f} {'yes' if f in flags else 'no'}"
        for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    )
    native = "yes" if cpu_has_native_bf16() else "no (bf16 would be emulated: never auto)"
    return f"CPU: {cpu_model()}; {listed}; native bf16: {native}"


# ------------------------------------------------------------------------------- peak


def peak_cases(
    device: str = "cpu", dtype=torch.float32
) -> dict[str, tuple[Callable[[], object], float]]:
    """Peak probes: name -> (call, FLOPs per call)."""
    n = 4096 if device == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    cases = {"peak mm": (lambda: torch.mm(a, b), 2.0 * n**3)}
    if device == "cpu":
        x = torch.randn(1, 256, 130, 130, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(256, 256, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
        conv = torch.nn.functional.conv2d
        cases["peak conv"] = (lambda: conv(x, w), 2.0 * 256 * 256 * 9 * 128 * 128)
    return cases


# -------------------------------------------------------------------------- inference


def bench_inference(table: Table, repeats: int, scale: float = 2.0, device: str = "cpu") -> dict:
    from napari_srcnn.engine.device import cpu_has_native_bf16
    from napari_srcnn.engine.inference import Upscaler, upscale
    from napari_srcnn.engine.options import UpscaleOptions

    out_edge = 1024
    lr_edge = int(round(out_edge / scale))
    rng = np.random.default_rng(0)
    # A real photo tiled to size when scikit-image is there (content does not change the
    # speed, but NaN/denormal-free realistic values are the honest case).
    try:
        from skimage import data

        photo = data.astronaut()
        reps = (lr_edge // photo.shape[0] + 1, lr_edge // photo.shape[1] + 1, 1)
        image = np.tile(photo, reps)[:lr_edge, :lr_edge].copy()
    except ImportError:  # pragma: no cover
        image = rng.integers(0, 256, (lr_edge, lr_edge, 3), dtype=np.uint8)
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    cases: dict[str, Callable[[], object]] = {}
    flops: dict[str, float] = {}
    for name, (fn, f) in peak_cases(device, torch.float32).items():
        cases[name], flops[name] = fn, f
    if device.startswith("cuda") or cpu_has_native_bf16():
        for name, (fn, f) in peak_cases(device, torch.bfloat16).items():
            cases[name + " bf16"], flops[name + " bf16"] = fn, f
    nets = {}
    auto_precision = {}
    for arch in ("9-1-5", "9-5-5"):
        loaded = random_net(arch)
        nets[arch] = loaded
        # The same weights with a passed bf16 check in their metadata, as a shipped model
        # carries it: what precision="auto" runs for it here (bf16 on CUDA and on CPUs
        # with native bf16, fp32 on others).
        checked = checked_net(loaded)
        auto_precision[arch] = Upscaler(checked, UpscaleOptions(scale=scale, device=device)).runner
        body = naive_body(loaded).to(device)
        halo_free = torch.rand(1, 1, out_edge, out_edge, device=device)
        px = out_edge * out_edge
        per_px = 2.0 * loaded.info.arch.macs_per_pixel

        def ours(loaded=loaded) -> object:
            return upscale(image, loaded, scale, device=device, precision="fp32")

        def ours_auto(loaded=checked) -> object:
            return upscale(image, loaded, scale, device=device, precision="auto")

        def naive(body=body, x=halo_free) -> object:
            with torch.no_grad():
                return body(x)

        # Our network alone on the padded up-sampled luma: the gap to "ours" is what the
        # bicubic step, colour and dtype conversion cost.
        runner = Upscaler(
            loaded, UpscaleOptions(scale=scale, device=device, precision="fp32")
        ).runner
        h = loaded.info.arch.halo
        padded = torch.rand(1, 1, out_edge + 2 * h, out_edge + 2 * h, device=device)

        def network(runner=runner, x=padded) -> object:
            return runner(x)

        if device == "cpu":  # the same pipeline with the network skipped (a halo crop)
            skipped = Upscaler(loaded, UpscaleOptions(scale=scale, device=device, precision="fp32"))
            skipped.runner._forward_cpu = lambda t, h=h: t[:, :, h:-h, h:-h].clone()

            def pre_post(upscaler=skipped) -> object:
                return upscaler(image)

            cases[f"prepost {arch}"], flops[f"prepost {arch}"] = pre_post, per_px * px
        cases[f"ours {arch}"], flops[f"ours {arch}"] = ours, per_px * px
        cases[f"auto {arch}"], flops[f"auto {arch}"] = ours_auto, per_px * px
        cases[f"naive {arch}"], flops[f"naive {arch}"] = naive, per_px * px
        cases[f"network {arch}"], flops[f"network {arch}"] = network, per_px * px
        if device == "cpu":  # the same network with its blocks one after another
            from napari_srcnn.engine.runner import NetworkRunner

            serial = NetworkRunner(loaded.net, torch.device("cpu"), "fp32", parallel_blocks=False)

            def serial_network(runner=serial, x=padded) -> object:
                return runner(x)

            cases[f"serial {arch}"], flops[f"serial {arch}"] = serial_network, per_px * px
    times = rounds(cases, repeats, sync)
    peak_names = [k for k in cases if k.startswith("peak") and not k.endswith("bf16")]
    peaks = [max(flops[k] / times[k][r] for k in peak_names) for r in range(repeats)]
    results: dict = {"peak_gflops": med(peaks) / 1e9}
    table.section(
        f"Inference, Y mode, {lr_edge}² RGB uint8 ×{scale:g} -> {out_edge}² output, "
        f"{device}, {torch.get_num_threads()} threads, {repeats} interleaved rounds"
    )
    table.add(
        "case",
        "time s (median)",
        "MP/s",
        "GFLOP/s",
        "% of fp32 peak",
        "range of % peak",
        "% of mm only",
        "best/best %",
        "ours/naive",
    )
    mm_peaks = [flops["peak mm"] / times["peak mm"][r] for r in range(repeats)]
    for k in peak_names:
        g = [flops[k] / t / 1e9 for t in times[k]]
        table.add(k, f"{med(times[k]):.3f}", "", f"{med(g):.1f}", "", spread(g), "", "", "")
    table.add(
        "peak (max of the two, per round)", "", "", f"{med(peaks) / 1e9:.1f}", "100", "", "", "", ""
    )
    bf16 = [k for k in cases if k.startswith("peak") and k.endswith("bf16")]
    for k in bf16:  # what bf16 runs against (tensor cores, AMX)
        g = [flops[k] / t / 1e9 for t in times[k]]
        table.add(k, f"{med(times[k]):.3f}", "", f"{med(g):.1f}", "", spread(g), "", "", "")
        results[f"{k} GFLOP/s"] = med(g)
    # Noise only ever adds time: the fastest round of each case against the fastest peak
    # round is the least disturbed estimate of the same ratio.
    best_peak = max(peaks)
    for arch in nets:
        o, n, a = times[f"ours {arch}"], times[f"naive {arch}"], times[f"auto {arch}"]
        speedup = med([n[r] / o[r] for r in range(repeats)])
        auto_speedup = med([n[r] / a[r] for r in range(repeats)])
        auto_gain = med([o[r] / a[r] for r in range(repeats)])  # same rounds: a fair ratio
        precision = auto_precision[arch].precision
        labels = {
            "ours": (f"ours fp32 {arch}", f"{speedup:.2f}x"),
            "auto": (
                f"ours auto ({precision}) {arch}",
                f"{auto_speedup:.2f}x; {auto_gain:.2f}x ours fp32",
            ),
            "naive": (f"naive fp32 {arch}", ""),
        }
        for who, t in (("ours", o), ("auto", a), ("naive", n)):
            frac = [flops[f"{who} {arch}"] / t[r] / peaks[r] * 100 for r in range(repeats)]
            frac_mm = [flops[f"{who} {arch}"] / t[r] / mm_peaks[r] * 100 for r in range(repeats)]
            table.add(
                labels[who][0],
                f"{med(t):.3f}",
                f"{out_edge * out_edge / med(t) / 1e6:.2f}",
                f"{flops[f'{who} {arch}'] / med(t) / 1e9:.1f}",
                f"{med(frac):.1f}",
                spread(frac),
                f"{med(frac_mm):.1f}",
                f"{flops[f'{who} {arch}'] / min(t) / best_peak * 100:.1f}",
                labels[who][1],
            )
            results[f"{who} {arch} % mm peak"] = med(frac_mm)
            results[f"{who} {arch} best/best %"] = flops[f"{who} {arch}"] / min(t) / best_peak * 100
            results[f"{who} {arch} % peak"] = med(frac)
            results[f"{who} {arch} MP/s"] = out_edge * out_edge / med(t) / 1e6
        results[f"speedup {arch}"] = speedup
        results[f"auto precision {arch}"] = precision
        results[f"auto / fp32 speedup {arch}"] = auto_gain
        net_t = times[f"network {arch}"]
        ratio = med([o[r] / net_t[r] for r in range(repeats)])
        frac = [flops[f"network {arch}"] / net_t[r] / peaks[r] * 100 for r in range(repeats)]
        table.add(
            f"  our network alone {arch}",
            f"{med(net_t):.3f}",
            f"{out_edge * out_edge / med(net_t) / 1e6:.2f}",
            f"{flops[f'network {arch}'] / med(net_t) / 1e9:.1f}",
            f"{med(frac):.1f}",
            spread(frac),
            "",
            f"{flops[f'network {arch}'] / min(net_t) / best_peak * 100:.1f}",
            f"ours takes {ratio:.2f}x its time",
        )
        results[f"ours / network alone {arch}"] = ratio
        if f"prepost {arch}" in times:
            pp_t = times[f"prepost {arch}"]
            share = med([pp_t[r] / o[r] for r in range(repeats)]) * 100
            table.add(
                f"  ours with the network skipped {arch}",
                f"{med(pp_t):.3f}",
                "",
                "",
                "",
                "",
                "",
                "",
                f"bicubic+colour+dtype = {share:.0f} % of ours",
            )
            results[f"pre/post share {arch} %"] = share
        if f"serial {arch}" in times:
            ser_t = times[f"serial {arch}"]
            frac = [flops[f"serial {arch}"] / ser_t[r] / peaks[r] * 100 for r in range(repeats)]
            gain = med([ser_t[r] / net_t[r] for r in range(repeats)])
            table.add(
                f"  network, blocks one after another {arch}",
                f"{med(ser_t):.3f}",
                f"{out_edge * out_edge / med(ser_t) / 1e6:.2f}",
                f"{flops[f'serial {arch}'] / med(ser_t) / 1e9:.1f}",
                f"{med(frac):.1f}",
                spread(frac),
                "",
                f"{flops[f'serial {arch}'] / min(ser_t) / best_peak * 100:.1f}",
                f"side-by-side blocks {gain:.2f}x faster",
            )
            results[f"parallel blocks gain {arch}"] = gain
        if bf16 and precision == "bf16":  # a share of the bf16 (tensor-core, AMX) peak
            peaks16 = [max(flops[k] / times[k][r] for k in bf16) for r in range(repeats)]
            frac16 = [flops[f"auto {arch}"] / a[r] / peaks16[r] * 100 for r in range(repeats)]
            table.add(
                f"  ours auto (bf16) {arch} vs bf16 peak",
                "",
                "",
                f"{med(peaks16) / 1e9:.0f} (bf16 peak)",
                f"{med(frac16):.1f} of bf16",
                spread(frac16),
                "",
                "",
                "",
            )
            results[f"auto {arch} % bf16 peak"] = med(frac16)
    # Exact tiling in every precision: a tile size that divides nothing equals one tile.
    for arch, loaded in nets.items():
        for label, model, precision in (
            ("fp32", loaded, "fp32"),
            (f"auto ({auto_precision[arch].precision})", checked_net(loaded), "auto"),
        ):
            whole = upscale(image, model, scale, device=device, precision=precision, tile=4096)
            tiled = upscale(image, model, scale, device=device, precision=precision, tile=200)
            same = bool(np.array_equal(whole, tiled))
            gap = int(np.abs(whole.astype(np.int16) - tiled.astype(np.int16)).max())
            if same:
                verdict = "yes, bit for bit"
            elif device == "cpu":
                verdict = f"NO (max difference {gap} of 255)"
            else:  # cuDNN autotuning picks kernels per tile shape: equal up to rounding
                verdict = f"max difference {gap} of 255 (cuDNN picks kernels per shape)"
            table.note(f"tiled (200) == untiled, {arch} {label}: {verdict}")
            results[f"tiled == untiled {arch} {label}"] = same
    return results


# -------------------------------------------------------------------------- training


def _training_data():
    from napari_srcnn.engine.data import training_data_from_arrays

    images = []
    folder = DATASETS / "train" / "SunHays80"
    if folder.is_dir():
        import imageio.v3 as iio

        for path in sorted(folder.iterdir())[:6]:
            rgb = iio.imread(path)
            images.append(rgb[..., :3].mean(-1).astype(np.uint8) if rgb.ndim == 3 else rgb)
    else:
        from skimage import data

        images = [data.camera(), data.coins(), data.moon()]
    return training_data_from_arrays(
        images, 3.0, "per-channel", patch_size=33, val_fraction=0.0, seed=0
    )


def bench_training(
    table: Table, repeats: int, steps: int, batch: int = 64, device: str = "cpu"
) -> dict:
    import torch.nn.functional as F

    from napari_srcnn.engine.model import SRCNN, ArchSpec
    from napari_srcnn.engine.sampling import PatchSampler

    tdata = _training_data()
    patch = 33
    grid_lr, grid_hr = PatchSampler.stride_grid(tdata.train, patch)
    table.section(
        f"Training throughput, 33×33 sub-images, batch {batch}, Adam, {device}, "
        f"{torch.get_num_threads()} threads, {steps} steps per round, {repeats} rounds"
    )
    table.add("case", "patches/s (median)", "range", "vs naive")
    results = {}
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    for arch in ("9-1-5", "9-5-5"):
        spec = ArchSpec.parse(arch)
        halo = spec.halo
        inner = slice(halo, patch - halo)

        def make_ours(true_cl: bool, spec=spec, inner=inner):
            torch.manual_seed(0)
            net = SRCNN(spec, padding="valid").to(device)
            net.to(memory_format=torch.channels_last)
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
            sampler = PatchSampler(tdata.train, patch, augment=True)
            gen = torch.Generator().manual_seed(0)

            def run() -> None:
                for _ in range(steps):
                    lr_b, hr_b = sampler.sample(batch, gen)
                    lr_b = lr_b.to(device)
                    if true_cl:  # what training.py could do (see docs/benchmarks.md)
                        x = torch.empty(
                            lr_b.shape, device=device, memory_format=torch.channels_last
                        )
                        lr_b = x.copy_(lr_b)
                    else:  # training.py today: a no-op for one channel
                        lr_b = lr_b.contiguous(memory_format=torch.channels_last)
                    target = hr_b.to(device)[..., inner, inner]
                    loss = F.mse_loss(net(lr_b).float(), target)
                    if not torch.isfinite(loss):
                        raise RuntimeError("diverged")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()

            return run

        def make_naive(spec=spec, inner=inner):
            torch.manual_seed(0)
            from napari_srcnn.engine.model_info import ModelInfo
            from napari_srcnn.engine.weights_file import LoadedModel

            ref = SRCNN(spec, padding="valid")
            body = (
                naive_body(LoadedModel(ref, ModelInfo("n", spec, 3.0)), padding="valid")
                .train()
                .to(device)
            )
            opt = torch.optim.Adam(body.parameters(), lr=1e-3)
            gen = torch.Generator().manual_seed(0)
            lr_all, hr_all = grid_lr.to(device), grid_hr.to(device)

            def run() -> None:
                for _ in range(steps):
                    idx = torch.randint(0, len(lr_all), (batch,), generator=gen).to(device)
                    loss = F.mse_loss(body(lr_all[idx]), hr_all[idx][..., inner, inner])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()

            return run

        cases = {
            "naive": make_naive(),
            "ours": make_ours(False),
            "ours, true channels-last batch": make_ours(True),
        }
        times = rounds(cases, repeats, sync)
        for name, t in times.items():
            rate = [steps * batch / x for x in t]
            ratio = med([times["naive"][r] / t[r] for r in range(repeats)])
            table.add(f"{name} {arch}", f"{med(rate):.0f}", spread(rate), f"{ratio:.2f}x")
            results[f"{name} {arch}"] = med(rate)
    return results


# ---------------------------------------------------------------------------- memory


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_child(arch: str, edge: int, scale: float, tile: int) -> None:
    """Run in a fresh process: peak RSS of one upscale, printed as JSON."""
    from napari_srcnn.engine.inference import upscale

    loaded = random_net(arch)
    rng = np.random.default_rng(0)
    image = (rng.random((edge, edge)) * 65535).astype(np.uint16)
    upscale(image[:64, :64], loaded, scale)  # load kernels, allocator warm-up
    before = _rss_mb("VmRSS")
    with contextlib.suppress(OSError):  # reset the high-water mark: measure this call only
        Path("/proc/self/clear_refs").write_text("5")
    t = time.perf_counter()
    out = upscale(image, loaded, scale, tile=tile)
    seconds = time.perf_counter() - t
    print(
        json.dumps(
            {
                "before_mb": before,
                "peak_mb": _rss_mb("VmHWM"),
                "output_mb": out.nbytes / 2**20,
                "input_mb": image.nbytes / 2**20,
                "seconds": seconds,
                "shape": list(out.shape),
            }
        )
    )


def bench_memory(table: Table, arch: str, edge: int, scale: float, tile: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--memory-child",
        arch,
        str(edge),
        str(scale),
        str(tile),
        "--threads",
        str(torch.get_num_threads()),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    r = json.loads(res.stdout.strip().splitlines()[-1])
    extra = r["peak_mb"] - r["before_mb"] - r["output_mb"]
    table.section(
        f"Peak memory (CPU RSS), {edge}² uint16 ×{scale:g} with {arch}, tile {tile}, fresh process"
    )
    table.add(
        "output array MB",
        "RSS before MB (torch, model, input)",
        "peak RSS MB",
        "peak - before - output MB",
        "target <= 300",
        "seconds",
    )
    table.add(
        f"{r['output_mb']:.0f}",
        f"{r['before_mb']:.0f}",
        f"{r['peak_mb']:.0f}",
        f"{extra:.0f}",
        "met" if extra <= 300 else "MISSED",
        f"{r['seconds']:.1f}",
    )
    return {"memory_extra_mb": extra, **r}


def bench_gpu(table: Table, repeats: int, memory_cap_mb: int = 512) -> dict:
    table.section("GPU")
    if not torch.cuda.is_available():
        table.note("not measured: no CUDA device on this machine")
        return {}
    table.note(
        f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    )
    res = bench_inference(table, repeats, device="cuda")
    from napari_srcnn.engine.inference import Upscaler
    from napari_srcnn.engine.options import UpscaleOptions

    image = (np.random.default_rng(0).random((4096, 4096)) * 65535).astype(np.uint16)
    loaded = random_net("9-5-5")
    table.section("GPU, 4096² uint16 ×3 (12288² output), 9-5-5, one call each")
    table.add("case", "seconds", "MP/s", "max_memory_allocated MB", "block edge")
    outputs = {}
    for precision in ("fp32", "bf16"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        up = Upscaler(loaded, UpscaleOptions(scale=3.0, device="cuda", precision=precision))
        up(image)  # cuDNN autotuning (per tile shape) and allocator warm-up, not timed
        torch.cuda.reset_peak_memory_stats()
        seconds = timed(lambda up=up, p=precision: outputs.__setitem__(p, up(image)))
        peak = torch.cuda.max_memory_allocated() / 2**20
        mps = outputs[precision].size / seconds / 1e6
        table.add(f"{precision}", f"{seconds:.2f}", f"{mps:.0f}", f"{peak:.0f}", up.runner.block)
        res[f"cuda 4096 x3 {precision} seconds"] = seconds
        res[f"cuda 4096 x3 {precision} MP/s"] = mps
        res[f"cuda_peak_mb {precision}"] = peak
    # Out-of-memory halving: a cap far below what the first block (sized from the free
    # memory, which the cap does not change) needs; the run must halve and still finish.
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(min(1.0, memory_cap_mb * 2**20 / total))
    try:
        up = Upscaler(loaded, UpscaleOptions(scale=3.0, device="cuda", precision="bf16"))
        first = up.runner.cuda_block()
        torch.cuda.reset_peak_memory_stats()
        capped: dict = {}
        seconds = timed(lambda: capped.__setitem__("out", up(image)))
        peak = torch.cuda.max_memory_allocated() / 2**20
        gap = int(np.abs(capped["out"].astype(np.int32) - outputs["bf16"].astype(np.int32)).max())
        table.add(
            f"bf16 under a {memory_cap_mb} MB cap",
            f"{seconds:.2f}",
            f"{capped['out'].size / seconds / 1e6:.0f}",
            f"{peak:.0f}",
            f"{first} -> {up.runner.block} (halved on out-of-memory)",
        )
        table.note(
            f"capped result vs uncapped bf16: max difference {gap} of 65535 (cuDNN picks its "
            "kernels per block shape)"
        )
        res.update(
            {
                "oom first block": first,
                "oom final block": up.runner.block,
                "oom seconds": seconds,
                "oom max difference": gap,
                "oom cap mb": memory_cap_mb,
            }
        )
    except torch.cuda.OutOfMemoryError as exc:
        table.note(f"out-of-memory halving FAILED under a {memory_cap_mb} MB cap: {exc}")
        res["oom failed"] = str(exc)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    return res


# ------------------------------------------------------------------------------ main


def bench_strength(table: Table, repeats: int, scale: float = 2.0) -> dict:
    """What measuring the strength costs: a 512² uint16 image (scikit-image's camera, 12-bit)
    upscaled ×2 by the shipped microscopy model with ``strength="auto"`` (measured on the image)
    and with ``strength=1`` (nothing measured), interleaved."""
    from skimage import data

    from napari_srcnn.engine.inference import Upscaler
    from napari_srcnn.engine.options import UpscaleOptions

    image = data.camera().astype(np.uint16) * 16
    runs = {
        name: Upscaler(None, UpscaleOptions(scale=scale, strength=value))
        for name, value in (("auto", "auto"), ("one", 1.0))
    }
    times = rounds({name: (lambda up=up: up(image)) for name, up in runs.items()}, repeats)
    ratios = [a / b for a, b in zip(times["auto"], times["one"], strict=True)]
    auto = runs["auto"].for_image(image.shape)
    table.section(f"Measured strength, {image.shape[0]}² uint16 ×{scale:g}, {auto.model.name}")
    table.add("strength auto s", "strength 1 s", "auto / 1 (median)", "measured strength")
    table.add(
        f"{med(times['auto']):.3f} ({spread(times['auto'])})",
        f"{med(times['one']):.3f} ({spread(times['one'])})",
        f"{med(ratios):.2f}",
        auto.last_plan.strength_summary() if auto.last_plan else "-",
    )
    return {"auto_s": med(times["auto"]), "one_s": med(times["one"]), "ratio": med(ratios)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("inference", "strength", "training", "memory", "gpu"),
        default=("inference", "strength", "training", "memory", "gpu"),
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=6)
    parser.add_argument("--memory-arch", default="9-5-5")
    parser.add_argument("--memory-edge", type=int, default=4096)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--memory-child", nargs=4, metavar=("ARCH", "EDGE", "SCALE", "TILE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_child:
        arch, edge, scale, tile = args.memory_child
        memory_child(arch, int(edge), float(scale), int(tile))
        return 0
    print(
        f"napari-srcnn benchmarks — torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, {args.threads} threads, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(cpu_line())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at start: {load:.2f}")
    table = Table()
    results: dict = {"cpu": cpu_line()}
    sections = {
        "inference": lambda: bench_inference(table, args.repeats),
        "strength": lambda: bench_strength(table, args.repeats),
        "training": lambda: bench_training(table, max(1, args.repeats // 2 + 1), args.train_steps),
        "memory": lambda: bench_memory(table, args.memory_arch, args.memory_edge, 3.0, 512),
        "gpu": lambda: bench_gpu(table, args.repeats),
    }
    for name, run_section in sections.items():
        if name in args.only:
            meter = CpuMeter()
            results[name] = run_section()
            busy, steal = meter.others_percent(), meter.steal_percent()
            results[name]["other_processes_cpu_percent"] = busy
            results[name]["hypervisor_steal_percent"] = steal
            table.note(
                f"(other processes kept the CPUs {busy:.0f} % busy and the hypervisor took "
                f"{steal:.0f} % of their time (steal) during this section)"
            )
    table.print()
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
