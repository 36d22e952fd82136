"""docs/images/comparison.png: one Set14 crop up-sampled ×3 by bicubic and by SRCNN.

Usage: ``python scripts/make_figure.py [--image zebra.png] [--model NAME]`` from the repository
root, with ``../shared/datasets`` present. The HR image is degraded with MATLAB bicubic
(×1/3), then up-sampled by bicubic and by the shipped ×3 model (Y mode); the figure shows the
same crop of both, enlarged 2× with nearest-neighbour so pixels stay visible, with their
Y-PSNR against the original over the whole image.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from napari_srcnn.engine.evaluation import compare_to_reference
from napari_srcnn.engine.inference import upscale
from napari_srcnn.engine.io import read_image
from napari_srcnn.engine.resize import imresize

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("NAPARI_SRCNN_DATASETS", ROOT.parent / "shared" / "datasets"))


def _resize_rgb(rgb: np.ndarray, scale: float) -> np.ndarray:
    out = np.moveaxis(imresize(np.moveaxis(rgb.astype(np.float64), -1, 0), scale), 0, -1)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="zebra.png")
    parser.add_argument("--model", default=None, help="model name (default: the ×3 Y default)")
    parser.add_argument("--crop", default="60,180,150", help="y,x,size of the HR crop")
    parser.add_argument(
        "-o", "--output", type=Path, default=ROOT / "docs" / "images" / "comparison.png"
    )
    args = parser.parse_args()

    hr, _ = read_image(DATASETS / "eval" / "Set14" / args.image)
    hr = hr[: hr.shape[0] // 3 * 3, : hr.shape[1] // 3 * 3, :3]
    lr = _resize_rgb(hr, 1 / 3)
    bicubic = _resize_rgb(lr, 3.0)
    sr = upscale(lr, args.model, 3.0)
    scores = compare_to_reference(lr, sr, hr, 3.0)

    y, x, size = (int(v) for v in args.crop.split(","))
    panels = []
    for label, image in (
        (f"bicubic  {scores['bicubic_psnr']:.2f} dB", bicubic),
        (f"SRCNN  {scores['psnr']:.2f} dB", sr),
    ):
        crop = Image.fromarray(image[y : y + size, x : x + size]).resize(
            (2 * size, 2 * size), Image.NEAREST
        )
        canvas = Image.new("RGB", (2 * size, 2 * size + 24), "white")
        canvas.paste(crop, (0, 24))
        ImageDraw.Draw(canvas).text((6, 5), label, fill="black")
        panels.append(canvas)
    figure = Image.new("RGB", (sum(p.width for p in panels) + 8, panels[0].height), "white")
    figure.paste(panels[0], (0, 0))
    figure.paste(panels[1], (panels[0].width + 8, 0))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.save(args.output)
    print(
        f"wrote {args.output} ({args.image}, ×3, Y-PSNR bicubic {scores['bicubic_psnr']:.2f} dB, "
        f"SRCNN {scores['psnr']:.2f} dB)"
    )


if __name__ == "__main__":
    main()
