"""napari sample data: low-resolution images and their high-resolution originals.

Three pairs ship in ``napari_srcnn/sample_data/`` (made by ``scripts/make_sample_data.py``
from images bundled with scikit-image; LR = MATLAB bicubic ×1/3 of HR): an RGB photo
(astronaut), a grayscale microscopy image (cell) and a 2-channel uint16 stack
(hematoxylin and DAB stains of an immunohistochemistry slide, one layer per channel).

An LR layer has pixel size 3 and is shifted by one HR pixel, so it overlays its original:
LR pixel ``i`` covers HR pixels ``3i … 3i+2``, centred on ``3i + 1``. Upscaling it ×3 with
the SRCNN widget gives a layer on the HR pixel grid, ready to compare.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from ._reader import layer_data_from_array

__all__ = [
    "astronaut_hr",
    "astronaut_lr",
    "cell_hr",
    "cell_lr",
    "ihc_hr",
    "ihc_lr",
]

FACTOR = 3
_CHANNELS = ("hematoxylin", "DAB")


def _load(stem: str, title: str, lr: bool) -> list[tuple[Any, dict[str, Any], str]]:
    from .engine.io import read_image

    suffix = f"lr_x{FACTOR}" if lr else "hr"
    ref = resources.files("napari_srcnn") / "sample_data" / f"{stem}_{suffix}.tif"
    with resources.as_file(ref) as path:
        data, meta = read_image(path)
        layers = layer_data_from_array(
            data,
            meta.axes,
            meta.spacing,
            meta.unit,
            name=f"{title} ({'LR ×1/3' if lr else 'HR'})",
            source=f"napari-srcnn sample {ref.name}",
        )
    for k, (_, kwargs, _) in enumerate(layers):
        if len(layers) > 1:
            kwargs["name"] = f"{title} {_CHANNELS[k]} ({'LR ×1/3' if lr else 'HR'})"
        if lr:
            # HR pixel units: LR pixel centres sit at 3i + 1 on the HR grid.
            offset = (FACTOR - 1) / 2
            kwargs["translate"] = tuple(
                0.0 if i < len(kwargs["scale"]) - 2 else offset for i in range(len(kwargs["scale"]))
            )
    return layers


def astronaut_lr():
    """RGB photo, low resolution (84×84, ×1/3 of the original)."""
    return _load("astronaut", "astronaut", lr=True)


def astronaut_hr():
    """RGB photo, high-resolution original (252×252)."""
    return _load("astronaut", "astronaut", lr=False)


def cell_lr():
    """Grayscale microscopy image, low resolution (84×84, ×1/3)."""
    return _load("cell", "cell", lr=True)


def cell_hr():
    """Grayscale microscopy image, high-resolution original (252×252)."""
    return _load("cell", "cell", lr=False)


def ihc_lr():
    """Two stain channels (uint16), low resolution (2 × 80×80, ×1/3)."""
    return _load("ihc", "IHC", lr=True)


def ihc_hr():
    """Two stain channels (uint16), high-resolution original (2 × 240×240)."""
    return _load("ihc", "IHC", lr=False)
