"""The recipe study of docs/training.md: short runs that differ in one setting each, scored on
the fixed held-out photo split (scripts/photo_split.sh), never on Set5/Set14.

Every run continues the shipped 9-5-5 Y ×3 model for the same number of steps on the same
training images; two runs at a time, one thread each (2 cores). Prints a Markdown table (the
held-out PSNR at the end, its gain over the start model, seconds) and writes it to
runs/study/table.md.

Usage: python scripts/recipe_study.py [--steps 3000] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

STUDY = Path("runs/study")
START = "src/napari_srcnn/weights/srcnn-955-y-x3.safetensors"
BASE = ["--patch", "48", "--batch", "32", "--lr", "2e-4", "--intensity-augment", "0.5"]
# name: (what differs, arguments replacing or adding to BASE)
RUNS = {
    "base": ("patch 48, batch 32, lr 2e-4, L2, intensity augmentation 0.5, bf16 autocast", []),
    "patch72": ("patch 72, batch 16 (≈ same time per step)", ["--patch", "72", "--batch", "16"]),
    "patch96": ("patch 96, batch 8 (≈ same time per step)", ["--patch", "96", "--batch", "8"]),
    "ema": ("EMA of the weights, decay 0.999", ["--ema", "0.999"]),
    "l1": ("L1 loss", ["--loss", "l1"]),
    "lr5e-4": ("lr 5e-4", ["--lr", "5e-4"]),
    "lr1e-4": ("lr 1e-4", ["--lr", "1e-4"]),
    "fp32": ("fp32 throughout (no bf16 autocast)", ["--fp32"]),
    "aug0.2": (
        "intensity augmentation on 20 % of sub-images (not 50 %)",
        ["--intensity-augment", "0.2"],
    ),
    "aug0": ("no intensity augmentation", ["--intensity-augment", "0"]),
    "scaled": ("+ scaled copies of the training images (0.9-0.6, scripts/photo_scaled.py)", []),
    "scaled-ema": ("+ scaled copies, EMA 0.999", ["--ema", "0.999"]),
}


def command(name: str, steps: int) -> list[str]:
    split = Path("runs/photo-split")
    args = dict(zip(BASE[::2], BASE[1::2], strict=True))
    extra: list[str] = []
    changes = RUNS[name][1]
    i = 0
    while i < len(changes):
        key = changes[i]
        if i + 1 < len(changes) and not changes[i + 1].startswith("--"):
            if key in args:
                args[key] = changes[i + 1]
            else:
                extra += [key, changes[i + 1]]
            i += 2
        else:
            extra.append(key)
            i += 1
    return [
        "napari-srcnn", "train", *sorted(str(p) for p in (split / "train").iterdir()),
        *(sorted(str(p) for p in (split / "train-scaled").iterdir()) if "scaled" in name else []),
        "--val-data", str(split / "val"), "--scale", "3", "--channels", "y", "--from", START,
        "--steps", str(steps), "--val-every", "1000", "--seed", "0",
        *[x for kv in args.items() for x in kv], *extra, "-o", str(STUDY / f"{name}.safetensors"),
    ]  # fmt: skip


def result(name: str) -> tuple[float, float, float] | None:
    """(start PSNR, PSNR after the last step, seconds) of a finished run, from its checkpoint's
    history (full precision; the log rounds to 0.01 dB)."""
    from napari_srcnn.engine.checkpoints import read_checkpoint_state

    ckpt = STUDY / f"{name}.ckpt.safetensors"
    log = STUDY / f"{name}.log"
    if not (ckpt.exists() and log.exists() and re.search(r"\d+ steps in \d+ s", log.read_text())):
        return None
    state = read_checkpoint_state(ckpt)
    history = state["history"]
    return history[0]["psnr"], history[-1]["psnr"], float(state["seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--only", nargs="+", choices=list(RUNS), default=list(RUNS))
    args = parser.parse_args()
    if not Path("runs/photo-split/val").is_dir():
        subprocess.run(["scripts/photo_split.sh"], check=True)
    STUDY.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    todo = [n for n in args.only if result(n) is None]
    for pair in (todo[i : i + 2] for i in range(0, len(todo), 2)):
        procs = []
        for name in pair:
            with open(STUDY / f"{name}.log", "w") as log:
                procs.append(
                    subprocess.Popen(command(name, args.steps), stdout=log, stderr=log, env=env)
                )
        for proc in procs:
            proc.wait()
    lines = [
        "| run | what differs | held-out PSNR after the run | vs start | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in RUNS:
        got = result(name)
        if got is not None:
            start, best, secs = got
            lines.append(
                f"| {name} | {RUNS[name][0]} | {best:.3f} | {best - start:+.3f} | {secs:.0f} |"
            )
    table = "\n".join(lines)
    (STUDY / "table.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
