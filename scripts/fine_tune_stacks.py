"""Fine-tune the microscopy model on single stacks and score it on their held-out planes.

Usage (from the repository root)::

    python scripts/fine_tune_stacks.py [--from runs/srcnn-955-micro-x2.safetensors]

For each stack below (both from the held-out sources, so the microscopy model never saw them),
runs ``napari-srcnn train STACK --scale 2`` with its defaults (the installed microscopy model is
fine-tuned; 10 % of the planes, at least one, are held out by plane) and records the held-out
PSNR of bicubic, of the starting model and of the fine-tuned one in ``docs/fine_tune.json``,
which ``scripts/ship_models.py`` turns into a table of ``docs/results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("NAPARI_SRCNN_DATASETS", ROOT.parent / "shared" / "datasets"))
MICROSCOPY = DATASETS / "train" / "microscopy"
STACKS = (
    "haase/data_membrane_2d_timelapse.tif",  # 5 time points, 16-bit
    "neubias/image_data_xyz_8bit_em_volume_tiff_series_c_elegans_em_z00*.tif",  # 21 EM z-planes
)
_HELD_OUT = re.compile(
    r"held-out PSNR on (\d+) plane\(s\): bicubic (\S+) dB, start model (\S+) dB, "
    r"fine-tuned (\S+) dB"
)
_PLANES = re.compile(r"(\d+) training / (\d+) validation plane")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="start", default=None, help="start model (default: installed)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "fine_tune.json")
    p.add_argument("--stacks", nargs="+", default=list(STACKS), help="paths under microscopy/")
    p.add_argument("--train-args", default="", help="more `train` options, e.g. '--lr 5e-4'")
    args = p.parse_args(argv)
    runs = []
    for stack in args.stacks:
        name = Path(stack).stem.replace("*", "")
        # A pattern names a stack stored one plane per file (a TIFF series).
        files = sorted(MICROSCOPY.glob(stack)) if "*" in stack else [MICROSCOPY / stack]
        cmd = [sys.executable, "-m", "napari_srcnn", "train", *map(str, files)]
        cmd += ["--scale", "2", "-o", str(ROOT / "runs" / f"ft-{name}.safetensors")]
        if args.start:
            cmd += ["--from", args.start]
        cmd += args.train_args.split()
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        m, planes = _HELD_OUT.search(r.stdout), _PLANES.search(r.stdout)
        if r.returncode or not m or not planes:
            print(r.stdout, r.stderr, file=sys.stderr)
            return 1
        _, bicubic, start, tuned = m.groups()
        run = {
            "stack": stack,
            "train": int(planes.group(1)),
            "val": int(planes.group(2)),
            "bicubic": float(bicubic),
            "start": float(start),
            "tuned": float(tuned),
        }
        print(f"{stack}: {run}")
        runs.append(run)
    args.out.write_text(json.dumps(runs, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
