"""Regenerate the plugin's sample data (``src/napari_srcnn/sample_data/``).

Every image comes from scikit-image's bundled data (nothing is downloaded) and each
low-resolution (LR) image is its high-resolution (HR) original shrunk ×1/3 with the
engine's MATLAB-compatible bicubic ``imresize`` (antialiased), exactly the degradation
SRCNN is trained and evaluated on. HR crops are multiples of 3 so LR and HR align:

==============  =====================================================  ==================
name            source                                                 HR → LR
==============  =====================================================  ==================
``astronaut``   ``skimage.data.astronaut()`` (photo, RGB uint8)        252×252 → 84×84
``cell``        ``skimage.data.cell()`` (microscopy, uint8)            252×252 → 84×84
``ihc``         ``skimage.data.immunohistochemistry()`` separated into 2×240×240 → 2×80×80
                hematoxylin and DAB stain channels (``rgb2hed``),
                uint16, ``CYX``: a small multichannel stack
==============  =====================================================  ==================

Files are ImageJ TIFFs written by the engine's ``write_image``. The pixel size of an HR
image is 1 and that of its LR image 3 (in HR pixels), so that in napari the LR layer sits
on top of its original and an SRCNN ×3 result lands exactly on the HR pixels.

Usage (from the repository root)::

    python scripts/make_sample_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import color, data

from napari_srcnn.engine.io import ImageMeta, write_image
from napari_srcnn.engine.resize import imresize

FACTOR = 3
OUT = Path(__file__).resolve().parents[1] / "src" / "napari_srcnn" / "sample_data"


def shrink(hr: np.ndarray, channel_last: bool = False) -> np.ndarray:
    """MATLAB bicubic ×1/FACTOR of the last two axes (or of Y/X of a ``(Y, X, S)`` image),
    rounded and clipped back to the input's integer dtype."""
    x = np.moveaxis(hr, -1, 0) if channel_last else hr
    lr = imresize(x.astype(np.float64), 1.0 / FACTOR)
    lr = np.moveaxis(lr, 0, -1) if channel_last else lr
    info = np.iinfo(hr.dtype)
    return np.clip(np.round(lr), info.min, info.max).astype(hr.dtype)


def stains(rgb: np.ndarray) -> np.ndarray:
    """Hematoxylin and DAB optical densities as a ``(2, Y, X)`` uint16 stack."""
    hed = color.rgb2hed(rgb)
    channels = []
    for k in (0, 2):  # hematoxylin, DAB (eosin is absent from this staining)
        od = hed[..., k]
        hi = np.percentile(od, 99.9)
        channels.append(np.clip(od / hi, 0, 1) * 65535)
    return np.round(np.stack(channels)).astype(np.uint16)


def save(name: str, hr: np.ndarray, axes: str) -> None:
    rgb = axes.endswith("S")
    lr = shrink(hr, channel_last=rgb)
    spatial = [i for i, a in enumerate(axes) if a in "YX"]
    for suffix, image, size in (("hr", hr, 1.0), (f"lr_x{FACTOR}", lr, float(FACTOR))):
        spacing = tuple(size if i in spatial else None for i in range(len(axes)))
        path = write_image(OUT / f"{name}_{suffix}.tif", image, ImageMeta(axes, spacing))
        print(
            f"{path.relative_to(OUT.parents[2])}: {image.shape} {image.dtype}, "
            f"{path.stat().st_size / 1024:.0f} KiB"
        )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    save("astronaut", data.astronaut()[20:272, 120:372], "YXS")
    save("cell", data.cell()[249:501, 298:550], "YX")
    save("ihc", stains(data.immunohistochemistry()[150:390, 240:480]), "CYX")
    total = sum(p.stat().st_size for p in OUT.glob("*.tif"))
    print(f"total {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
