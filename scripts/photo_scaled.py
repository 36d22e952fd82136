"""Scaled copies of the photo training split (FSRCNN's "scaling" augmentation, Dong et al. 2016):
every training image of runs/photo-split/train shrunk by 0.9, 0.8, 0.7 and 0.6 with MATLAB's
bicubic (antialiased), rounded back to 8 bits, written as PNG under
runs/photo-split/train-scaled/SOURCE/NAME_xF.png. More, and smoother, high-resolution content
for the photo models; the validation split is never scaled or trained on.

Usage: python scripts/photo_scaled.py   (from the repository root, after scripts/photo_split.sh)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from napari_srcnn.engine.io import read_image, write_image
from napari_srcnn.engine.resize import imresize

SPLIT = Path("runs/photo-split")
FACTORS = (0.9, 0.8, 0.7, 0.6)


def main() -> int:
    sources = sorted((SPLIT / "train").iterdir())
    if not sources:
        print("run scripts/photo_split.sh first", file=sys.stderr)
        return 2
    written = 0
    for source in sources:
        out = SPLIT / "train-scaled" / source.name
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted(source.iterdir()):
            image, _ = read_image(path)
            planes = image.astype(np.float64)
            channels_last = planes.ndim == 3
            if channels_last:
                planes = np.moveaxis(planes, -1, 0)
            for factor in FACTORS:
                target = out / f"{path.stem}_x{factor:g}.png"
                if target.exists():
                    continue
                small = imresize(planes, factor)
                small = np.moveaxis(small, 0, -1) if channels_last else small
                write_image(target, np.clip(np.round(small), 0, 255).astype(np.uint8))
                written += 1
    print(f"{written} scaled image(s) in {SPLIT / 'train-scaled'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
