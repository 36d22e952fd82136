"""The sample images bundled in the package (no napari needed).

Each sample is a pair: a low-resolution image (MATLAB-bicubic ×1/3 of the original) and its
high-resolution original, so a result can be scored against the truth. The files live in
``napari_srcnn/sample_data/`` and are made by ``scripts/make_sample_data.py`` from images
bundled with scikit-image.
"""

from __future__ import annotations

import os
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
    layer_name: str  # napari layer names: "<layer_name> (LR ×1/3)"
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
        Sample("photo", "RGB photo (scikit-image astronaut)", "astronaut", "astronaut"),
        Sample("cell", "grayscale microscopy image (scikit-image cell)", "cell", "cell"),
        Sample("ihc", "2-channel uint16 stack (IHC stains)", "ihc", "IHC"),
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


def copy_samples(folder: str | Path, names: list[str] | str | None = None) -> list[Path]:
    """Copy sample pairs (all by default) into ``folder``; returns the written paths.

    ``names`` are sample keys (``"photo"``, ``"cell"``, ``"ihc"``), all checked before anything
    is copied. Every file is written atomically (a temporary file renamed into place): a full
    disk leaves no truncated file, and a symbolic link planted at a target's name is replaced,
    never followed.

    Raises
    ------
    InputError
        An unknown name, or a folder that does not exist.
    WriteError
        A file that cannot be written (the previous one, if any, is intact).
    """
    from .engine.files import atomic_path, check_output_path

    if not isinstance(folder, (str, os.PathLike)):
        raise InputError(f"folder {folder!r} is not a path (give a str or a pathlib.Path)")
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"folder {str(folder)!r} does not exist")
    keys = [names] if isinstance(names, str) else list(names or SAMPLES)  # one name, or several
    unknown = [k for k in keys if k not in SAMPLES]
    if unknown:
        raise InputError(f"no sample named {unknown[0]!r}; choose one of {', '.join(SAMPLES)}")
    pairs = []
    for key in keys:
        for kind in ("lr", "hr"):
            src = sample_path(f"{key}-{kind}")
            pairs.append((src, check_output_path(folder / src.name)))
    written = []
    for src, dst in pairs:
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        written.append(dst)
    return written
