"""The sample images bundled in the package (no napari needed).

Each sample is a pair: a low-resolution image (MATLAB-bicubic ×1/3 of the original) and its
high-resolution original, so a result can be scored against the truth. The files live in
``napari_srcnn/sample_data/`` and are made by ``scripts/make_sample_data.py`` from images
bundled with scikit-image.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import InputError

__all__ = ["SAMPLES", "Sample", "copy_samples", "sample_path"]


@dataclass(frozen=True)
class Sample:
    """One bundled low-/high-resolution pair."""

    key: str
    title: str
    stem: str
    factor: int = 3

    @property
    def lr_file(self) -> str:
        return f"{self.stem}_lr_x{self.factor}.tif"

    @property
    def hr_file(self) -> str:
        return f"{self.stem}_hr.tif"


SAMPLES: dict[str, Sample] = {
    s.key: s
    for s in (
        Sample("photo", "RGB photo (scikit-image astronaut)", "astronaut"),
        Sample("cell", "grayscale microscopy image (scikit-image cell)", "cell"),
        Sample("ihc", "2-channel uint16 stack (IHC stains)", "ihc"),
    )
}


def sample_path(name: str) -> Path:
    """Path of a bundled sample file: ``"photo-lr"``, ``"photo-hr"``, ``"cell-lr"``, …"""
    key, _, kind = name.rpartition("-")
    if key not in SAMPLES or kind not in ("lr", "hr"):
        names = ", ".join(f"{k}-lr, {k}-hr" for k in SAMPLES)
        raise InputError(f"no sample named {name!r}; choose one of {names}")
    sample = SAMPLES[key]
    ref = (
        resources.files("napari_srcnn")
        / "sample_data"
        / (sample.lr_file if kind == "lr" else sample.hr_file)
    )
    return Path(str(ref))


def copy_samples(folder: str | Path, names: list[str] | None = None) -> list[Path]:
    """Copy sample pairs (all by default) into ``folder``; returns the written paths."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"folder {str(folder)!r} does not exist")
    written = []
    for key in names or list(SAMPLES):
        for kind in ("lr", "hr"):
            src = sample_path(f"{key}-{kind}")
            dst = folder / src.name
            shutil.copyfile(src, dst)
            written.append(dst)
    return written
