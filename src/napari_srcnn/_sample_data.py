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

from typing import Any

from ._reader import layer_data_from_array
from .samples import SAMPLES, sample_path

__all__ = [
    "astronaut_hr",
    "astronaut_lr",
    "cell_hr",
    "cell_lr",
    "ihc_hr",
    "ihc_lr",
]

_CHANNELS = ("hematoxylin", "DAB")


def _load(key: str, lr: bool) -> list[tuple[Any, dict[str, Any], str]]:
    """The layers of sample ``key`` of [`SAMPLES`][napari_srcnn.samples.SAMPLES] (LR or HR)."""
    from .engine.io import read_image

    sample = SAMPLES[key]
    path = sample_path(f"{key}-{'lr' if lr else 'hr'}")
    data, meta = read_image(path)
    what = f"LR ×1/{sample.factor}" if lr else "HR"
    layers = layer_data_from_array(
        data,
        meta.axes,
        meta.spacing,
        meta.unit,
        name=f"{sample.layer_name} ({what})",
        source=f"napari-srcnn sample {path.name}",
    )
    for k, (_, kwargs, _) in enumerate(layers):
        if len(layers) > 1:
            kwargs["name"] = f"{sample.layer_name} {_CHANNELS[k]} ({what})"
        if lr:
            # HR pixel units: LR pixel centres sit at factor·i + (factor − 1)/2 on the HR grid.
            offset = (sample.factor - 1) / 2
            kwargs["translate"] = tuple(
                0.0 if i < len(kwargs["scale"]) - 2 else offset for i in range(len(kwargs["scale"]))
            )
    return layers


def astronaut_lr():
    """RGB photo, low resolution (84×84, ×1/3 of the original)."""
    return _load("photo", lr=True)


def astronaut_hr():
    """RGB photo, high-resolution original (252×252)."""
    return _load("photo", lr=False)


def cell_lr():
    """Grayscale microscopy image, low resolution (84×84, ×1/3)."""
    return _load("cell", lr=True)


def cell_hr():
    """Grayscale microscopy image, high-resolution original (252×252)."""
    return _load("cell", lr=False)


def ihc_lr():
    """Two stain channels (uint16), low resolution (2 × 80×80, ×1/3)."""
    return _load("ihc", lr=True)


def ihc_hr():
    """Two stain channels (uint16), high-resolution original (2 × 240×240)."""
    return _load("ihc", lr=False)
