"""Score models on whole microscopy sources held out from training (data-range PSNR/SSIM).

Usage (from the repository root)::

    python scripts/microscopy_eval.py --scale 2 --degradation bicubic [--model NAME|FILE] \
        [--sources haase neubias] [--strength auto|A] [--json runs/eval.json]

Every image of every source folder in ``../shared/datasets/train/microscopy`` is shrunk by the
factor (MATLAB bicubic or area binning), upscaled as ``napari-srcnn upscale`` would (its defaults:
the intensity map by the data's own range, and without ``--model`` the installed model it picks)
and scored with [`score_image()`][napari_srcnn.engine.scoring.score_image]. Prints one line per
source (mean gain over bicubic, the worst image) and optionally writes every row as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from napari_srcnn.engine.data import find_images
from napari_srcnn.engine.inference import Upscaler
from napari_srcnn.engine.io import read_image
from napari_srcnn.engine.options import UpscaleOptions
from napari_srcnn.engine.scoring import score_image

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("NAPARI_SRCNN_DATASETS", ROOT.parent / "shared" / "datasets"))
MICROSCOPY = DATASETS / "train" / "microscopy"
#: Sources never trained on: the microscopy models are selected and reported on them.
HELD_OUT = ("haase", "neubias")
# Planes beyond this many per image are not scored (a 51-slice EM stack would dominate).
MAX_PLANES = 8


def score_sources(
    model: str | None,
    scale: int,
    degradation: str,
    sources=HELD_OUT,
    quiet: bool = False,
    strength: float | str = "auto",
) -> list[dict]:
    """One row per image of ``sources``: bicubic's and the model's data-range PSNR/SSIM."""
    options = UpscaleOptions(scale=float(scale), precision="fp32", strength=strength)
    upscaler = Upscaler(model, options)
    rows = []
    for source in sources:
        for path in find_images([MICROSCOPY / source]):
            image, meta = read_image(path)
            image, meta = first_planes(image, meta)
            try:
                row = score_image(image, scale, upscaler, meta, degradation)
            except Exception as exc:  # noqa: BLE001 - a report line, not a crash
                if not quiet:
                    print(f"  skipped {source}/{path.name}: {exc}", file=sys.stderr)
                continue
            row.update(source=source, name=path.name, dtype=str(image.dtype), shape=image.shape)
            row["gain"] = row["psnr"] - row["bicubic_psnr"]
            rows.append(row)
    return rows


def per_source(rows: list[dict]) -> dict[str, dict]:
    """Mean bicubic and model PSNR, mean and smallest gain, and images worse than bicubic."""
    out = {}
    for source in dict.fromkeys(r["source"] for r in rows):
        mine = [r for r in rows if r["source"] == source]
        gains = np.array([r["gain"] for r in mine])
        worst = mine[int(np.argmin(gains))]
        out[source] = {
            "images": len(mine),
            "bicubic_psnr": round(float(np.mean([r["bicubic_psnr"] for r in mine])), 3),
            "psnr": round(float(np.mean([r["psnr"] for r in mine])), 3),
            "gain": round(float(gains.mean()), 3),
            "min_gain": round(float(gains.min()), 3),
            "worst": worst["name"],
            "worse_than_bicubic": int((gains < 0).sum()),
            "strength": round(float(np.mean([r["strength"] for r in mine])), 3),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--degradation", choices=("bicubic", "area"), default="bicubic")
    p.add_argument("--model", default=None, help="name or file (default: what upscale picks)")
    p.add_argument("--sources", nargs="+", default=list(HELD_OUT))
    p.add_argument("--strength", default="auto", help="auto (default) or a number in [0, 1]")
    p.add_argument("--json", default=None, help="write every row here")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    strength = args.strength if args.strength == "auto" else float(args.strength)
    rows = score_sources(args.model, args.scale, args.degradation, args.sources, strength=strength)
    print(
        f"×{args.scale} {args.degradation}, {len(rows)} images, "
        f"{time.perf_counter() - t0:.0f} s; model(s): {sorted({r['model'] for r in rows})}"
    )
    for source, s in per_source(rows).items():
        print(
            f"  {source:<10} {s['images']:>3} images  bicubic {s['bicubic_psnr']:6.2f}"
            f"  model {s['psnr']:6.2f} dB  gain mean {s['gain']:+.2f}"
            f"  min {s['min_gain']:+.2f} ({s['worst']})  worse than bicubic: {s['worse_than_bicubic']}"
            f"  strength {s['strength']:.2f}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                rows, indent=1, default=lambda o: list(o) if isinstance(o, tuple) else str(o)
            )
        )
    return 0


def first_planes(image: np.ndarray, meta):
    """At most `MAX_PLANES` planes per leading non-channel axis (z, t) of a stack."""
    from napari_srcnn.engine.io import ImageMeta

    axes = meta.axes
    index = []
    for i, letter in enumerate(axes):
        if letter in "YXCS" or image.shape[i] <= MAX_PLANES:
            index.append(slice(None))
        else:
            step = -(-image.shape[i] // MAX_PLANES)
            index.append(slice(None, None, step))
    return image[tuple(index)], ImageMeta(axes=axes)


if __name__ == "__main__":
    raise SystemExit(main())
