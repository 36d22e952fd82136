"""A timed 9-5-5 ×3 training probe: steps per second and held-out PSNR after a fixed time.

    python benchmarks/train_probe.py --seconds 180 --device cuda --json probe.json

It trains the shipped ×3 Y model's recipe (``scripts/train_shipped.sh srcnn-955-y-x3``: from
scratch, Adam, identity start, 48² sub-images, batch 32, 10 % of the images held out) on
SunHays80 (``$NAPARI_SRCNN_DATASETS/train/SunHays80``; scikit-image's photographs where the
datasets are absent) for about ``--seconds``: a short calibration run measures the step
rate, and the probe then asks for the steps that fill the time, so that the learning-rate
schedule runs to its end (a cancel stops it at 1.5x the time if the rate was misjudged).
It prints, and writes as JSON, the steady step rate (from the step events, validation
excluded), the wall time, the held-out PSNR of the written model and of bicubic, and, when
Set5 is there, the model's Set5 ×3 PSNR by the protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _datasets() -> Path | None:
    for root in (
        os.environ.get("NAPARI_SRCNN_DATASETS"),
        ROOT.parent / "shared" / "datasets",
        ROOT / "shared" / "datasets",
    ):
        if root and (Path(root) / "train" / "SunHays80").is_dir():
            return Path(root)
    return None


def _data(datasets: Path | None):
    from napari_srcnn.engine.data import training_data_from_arrays, training_data_from_paths

    if datasets is not None:
        folder = datasets / "train" / "SunHays80"
        data = training_data_from_paths([folder], 3.0, "y", patch_size=48, val_fraction=0.1)
        return data, f"SunHays80 ({folder}), 10 % held out"
    from skimage import data as samples

    photos = [samples.astronaut(), samples.chelsea(), samples.coffee(), samples.rocket()]
    photos += [np.stack([g] * 3, -1) for g in (samples.camera(), samples.brick(), samples.moon())]
    tdata = training_data_from_arrays(photos, 3.0, "y", patch_size=48, val_fraction=0.15)
    return tdata, "scikit-image photographs (SunHays80 not found), 15 % held out"


def _config(output: Path, steps: int, device: str):
    from napari_srcnn.engine.model import ArchSpec
    from napari_srcnn.engine.train_config import TrainConfig

    return TrainConfig(
        output=output,
        scale=3.0,
        arch=ArchSpec.parse("9-5-5"),
        steps=steps,
        batch_size=32,
        patch_size=48,
        lr=1e-3,
        val_every=max(1, steps // 6),
        checkpoint_every=10**9,  # the probe never resumes
        device=device,
        seed=0,
    )


def _run(tdata, config, seconds_cap: float):
    """train() with step timestamps and a cancel at ``seconds_cap``."""
    from napari_srcnn.engine.train_config import StepEvent
    from napari_srcnn.engine.training import train

    stamps: list[tuple[int, float]] = []

    def on_event(event) -> None:
        if isinstance(event, StepEvent):
            stamps.append((event.step, time.perf_counter()))

    start = time.perf_counter()
    result = train(
        tdata, config, on_event=on_event, cancel=lambda: time.perf_counter() - start > seconds_cap
    )
    return result, stamps, time.perf_counter() - start


def _steady_rate(stamps: list[tuple[int, float]]) -> float:
    """Steps per second over the middle of the run, without the steps that validated."""
    if len(stamps) < 20:
        return float("nan")
    gaps = np.diff([t for _, t in stamps])[len(stamps) // 10 :]
    # Validation steps take far longer than a training step: drop them.
    gaps = gaps[gaps < 5 * np.median(gaps)]
    return float(1.0 / gaps.mean())


def probe(seconds: float, device: str) -> dict:
    from napari_srcnn.engine.device import resolve_device

    dev = resolve_device(device)
    datasets = _datasets()
    tdata, described = _data(datasets)
    with tempfile.TemporaryDirectory() as tmp:
        # Calibration: the start-up (data to the device, cuDNN autotuning) and the step rate.
        calib, stamps, _ = _run(tdata, _config(Path(tmp) / "calib.safetensors", 300, device), 60)
        rate = _steady_rate(stamps)
        budget = max(10.0, seconds - 10.0)
        steps = max(100, int(rate * budget * 0.9)) if np.isfinite(rate) else 1000
        out = Path(tmp) / "probe-955-y-x3.safetensors"
        result, stamps, wall = _run(tdata, _config(out, steps, device), 1.5 * seconds)
        report = {
            "device": str(dev),
            "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev),
            "data": described,
            "recipe": "9-5-5 ×3 Y, adam from scratch (identity start), batch 32 of 48², lr 1e-3",
            "calibration_steps_per_s": rate,
            "steps_asked": steps,
            "steps_done": result.steps,
            "cancelled": result.cancelled,
            "wall_seconds": wall,
            "steps_per_s": _steady_rate(stamps),
            "steps_per_s_overall": result.steps / max(result.seconds, 1e-9),
            "patches_per_s": _steady_rate(stamps) * 32,
            "held_out_psnr": result.best_psnr,
            "held_out_bicubic_psnr": result.bicubic_psnr,
            "held_out_gain_db": result.best_psnr - result.bicubic_psnr,
            "calibration_held_out_psnr": calib.best_psnr,
        }
        if datasets is not None and (datasets / "eval" / "Set5").is_dir():
            from napari_srcnn.engine.evaluation import evaluate_files, protocol_upscaler, summarize

            up = protocol_upscaler(str(out), 3, device=device)
            mean = summarize(evaluate_files([datasets / "eval" / "Set5"], 3, up))
            report["set5_x3_psnr"] = mean["psnr"]
            report["set5_x3_bicubic_psnr"] = mean["bicubic_psnr"]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*trained for.*")
    report = probe(args.seconds, args.device)
    for key, value in report.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
