"""The training set: training and validation pairs from image files, folders and user stacks.

[`training_data_from_paths()`][napari_srcnn.engine.data.training_data_from_paths] finds and reads
image files ([`find_images()`][napari_srcnn.engine.data.find_images]);
[`training_data_from_arrays()`][napari_srcnn.engine.data.training_data_from_arrays] cuts the images
into normalised planes ([`planes`][napari_srcnn.engine.planes]), skips planes smaller than a
sub-image, pairs every HR plane with its LR partner, and splits the pairs into
[`TrainingData`][napari_srcnn.engine.data.TrainingData]. LR partners are made by the paper's
degradation ([`degradation`][napari_srcnn.engine.degradation]), applied once to each whole plane;
patches are cut from the aligned (LR↑, HR) planes on the fly
([`PatchSampler`][napari_srcnn.engine.sampling.PatchSampler]). Explicit LR/HR pairs are taken as
they are (LR is up-sampled bicubically when it is smaller than HR).

Planes are split into training and validation *by plane*: a validation plane never
contributes a training patch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CancelledError, TrainingDataError
from .degradation import degrade, modcrop_plane
from .io import IMAGE_SUFFIXES, ImageMeta, read_image
from .planes import (
    COLOR_MODES,
    _check_array,
    normalization_auto,
    planes_from_array,
    resolve_color_mode,
)
from .resize import imresize
from .sampling import PatchSampler, grid_positions

# PatchSampler and grid_positions live in engine.sampling, the plane and degradation
# functions in engine.planes and engine.degradation; re-exported from here, where they
# used to be.
__all__ = [
    "COLOR_MODES",
    "PairedPlanes",
    "PatchSampler",
    "TrainingData",
    "degrade",
    "find_images",
    "grid_positions",
    "modcrop_plane",
    "normalization_auto",
    "planes_from_array",
    "resolve_color_mode",
    "training_data_from_arrays",
    "training_data_from_paths",
]

#: Name of the normalisation rule, as recorded in weights metadata.
NORMALIZATION_RULE = "auto"


def find_images(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand folders into their image files (sorted, recursively); files are kept as given.

    Raises
    ------
    TrainingDataError
        If a path does not exist or no image file is found.
    """
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not p.name.startswith(".")
                and p.name.lower().endswith(IMAGE_SUFFIXES)
            )
        elif path.exists():
            found.append(path)
        else:
            raise TrainingDataError(f"{str(path)!r} does not exist")
    if not found:
        names = ", ".join(str(p) for p in paths)
        raise TrainingDataError(f"no images (PNG, JPEG, BMP or TIFF) found in {names}")
    return found


@dataclass
class PairedPlanes:
    """Aligned planes: ``lr_up`` (bicubic-up-sampled LR) and ``hr``, both ``(C, H, W)`` float32."""

    lr_up: np.ndarray
    hr: np.ndarray


@dataclass
class TrainingData:
    """Training and validation planes, ready for patch sampling.

    Attributes
    ----------
    train, val
        Disjoint lists of planes (a plane is either for training or for validation).
    channels
        Channels of every plane (3 for ``"rgb"``, else 1).
    color_mode
        ``"y"``, ``"rgb"`` or ``"gray"`` (recorded in the weights).
    scale
        The factor the LR planes were made for.
    description
        One line naming the data (recorded in the weights).
    normalization
        The intensity rule (``"auto"``, see
        [`normalization_auto()`][napari_srcnn.engine.planes.normalization_auto]).
    blur_sigma
        Gaussian blur of the degradation (0 for none or for explicit pairs).
    skipped
        Planes left out because they are smaller than a sub-image.
    """

    train: list[PairedPlanes]
    val: list[PairedPlanes]
    channels: int
    color_mode: str
    scale: float
    description: str = ""
    normalization: str = NORMALIZATION_RULE
    blur_sigma: float = 0.0
    skipped: int = 0

    @property
    def num_train_pixels(self) -> int:
        return sum(p.hr.shape[-1] * p.hr.shape[-2] for p in self.train)

    def grid_size(self, patch_size: int, stride: int = 14) -> int:
        """Number of sub-images on the paper's grid (``fsub`` = patch, stride 14) of the
        training planes: what one epoch means."""
        return sum(len(grid_positions(p.hr.shape[-2:], patch_size, stride)) for p in self.train)


def _split(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    if not (isinstance(val_fraction, (int, float)) and 0 <= val_fraction < 1):
        raise TrainingDataError(f"validation fraction {val_fraction!r} must be in [0, 1)")
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_val = int(round(n * val_fraction))
    if val_fraction > 0:
        n_val = max(1, n_val)
    if n - n_val < 1:
        raise TrainingDataError(
            f"{n} usable plane(s) cannot be split into training and validation planes; "
            "give more planes or --val-fraction 0"
        )
    return sorted(order[n_val:]), sorted(order[:n_val])


def _pairs_from_hr(
    planes: Sequence[np.ndarray],
    scale: float,
    blur_sigma: float,
    cancel: Callable[[], bool] | None = None,
) -> list[PairedPlanes]:
    pairs = []
    for hr in planes:
        if cancel is not None and cancel():
            raise CancelledError("cancelled while making the training pairs")
        hr = np.ascontiguousarray(modcrop_plane(hr, scale))
        pairs.append(PairedPlanes(lr_up=degrade(hr, scale, blur_sigma), hr=hr))
    return pairs


def _explicit_pair(lr: np.ndarray, hr: np.ndarray, scale: float, index: int) -> PairedPlanes:
    """Bring an explicit LR plane onto the HR grid (bicubic), checking the shapes match."""
    h, w = hr.shape[-2:]
    lh, lw = lr.shape[-2:]
    if lr.shape[0] != hr.shape[0]:
        raise TrainingDataError(
            f"LR/HR pair {index}: LR has {lr.shape[0]} channel(s), HR has {hr.shape[0]}"
        )
    if (lh, lw) == (h, w):
        return PairedPlanes(lr_up=np.ascontiguousarray(lr), hr=np.ascontiguousarray(hr))
    # LR of an HR plane that is not a multiple of the factor is floor, round or ceil of H/s.
    if abs(lh * scale - h) < scale and abs(lw * scale - w) < scale and lh < h and lw < w:
        up = imresize(lr, output_shape=(h, w)).astype(np.float32)
        return PairedPlanes(lr_up=np.ascontiguousarray(up), hr=np.ascontiguousarray(hr))
    raise TrainingDataError(
        f"LR/HR pair {index}: LR plane {lh}×{lw} does not match HR plane {h}×{w} at ×{scale:g} "
        f"(expected {h}×{w} or about {h / scale:.0f}×{w / scale:.0f})"
    )


def training_data_from_arrays(
    arrays: Sequence[np.ndarray],
    scale: float,
    color_mode: str = "gray",
    *,
    metas: Sequence[ImageMeta | None] | None = None,
    lr_arrays: Sequence[np.ndarray] | None = None,
    lr_metas: Sequence[ImageMeta | None] | None = None,
    patch_size: int = 33,
    val_fraction: float = 0.1,
    blur_sigma: float = 0.0,
    seed: int = 0,
    description: str = "arrays",
    cancel: Callable[[], bool] | None = None,
) -> TrainingData:
    """Training data from in-memory images or stacks (the napari widget's entry point).

    Parameters
    ----------
    arrays
        HR images/stacks of any dimensionality; every 2-D plane is a training image.
    scale
        Up-sampling factor to learn (> 1).
    color_mode
        ``"y"``, ``"rgb"``, ``"gray"`` (per plane and channel, for scientific data) or
        ``"auto"`` (``"y"`` if the first array is RGB, else ``"gray"``).
    metas
        Axes of ``arrays`` (e.g. from napari's ``layer.rgb`` or a TIFF); default: a last
        axis of 3 or 4 is colour.
    lr_arrays, lr_metas
        Optional explicit LR partners of ``arrays`` (same number of planes; each LR plane smaller
        than its HR plane by ``scale`` or already on the HR grid). Without them, LR is made by
        [`degrade()`][napari_srcnn.engine.degradation.degrade]. Each LR array is normalised by
        [`normalization_auto()`][napari_srcnn.engine.planes.normalization_auto], and its HR partner
        by the same map when both have the same dtype, as inference maps the model's output back
        with the input's map.
    patch_size
        Sub-image size ``fsub``; planes smaller than it are skipped (error if none is left).
    val_fraction
        Share of planes held out for validation (at least one when > 0).
    blur_sigma
        Gaussian blur (HR pixels) of the degradation.
    seed
        Seed of the train/validation split.
    description
        One line naming the data, recorded in the weights.
    cancel
        Polled before each plane is degraded (the slow part for big stacks); returning True stops
        with [`CancelledError`][napari_srcnn.errors.CancelledError].

    Raises
    ------
    TrainingDataError
        Empty, NaN or non-numeric data, planes smaller than a sub-image, mismatched pairs,
        or too few planes to split.
    CancelledError
        If ``cancel()`` returned True.
    """
    if not arrays:
        raise TrainingDataError("no training images given")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 1):
        raise TrainingDataError(f"scale {scale!r} must be a number above 1")
    if blur_sigma < 0 or not math.isfinite(blur_sigma):
        raise TrainingDataError(f"blur sigma {blur_sigma!r} must be >= 0")
    metas = list(metas) if metas is not None else [None] * len(arrays)
    if len(metas) != len(arrays):
        raise TrainingDataError(f"{len(metas)} metadata entries for {len(arrays)} arrays")
    first_shape = tuple(getattr(arrays[0], "shape", np.shape(arrays[0])))
    color_mode = resolve_color_mode(color_mode, first_shape, metas[0])
    n_arr = len(arrays)
    hr_planes: list[np.ndarray] = []
    lr_planes: list[np.ndarray] = []
    if lr_arrays is not None and len(lr_arrays) != n_arr:
        raise TrainingDataError(f"{len(lr_arrays)} LR stack(s) for {n_arr} HR stack(s)")
    lr_meta_list: list[ImageMeta | None] = (
        list(lr_metas) if lr_metas is not None else [None] * n_arr
    )
    if len(lr_meta_list) != n_arr:
        raise TrainingDataError(f"{len(lr_meta_list)} LR metadata entries for {n_arr} LR arrays")
    for i, (arr, meta) in enumerate(zip(arrays, metas, strict=True)):
        name = "training stack" if n_arr == 1 else f"training stack {i + 1}"
        arr = np.asarray(arr)
        norm = None
        if lr_arrays is not None:
            lr = np.asarray(lr_arrays[i])
            lr_name = f"LR {name}"
            _check_array(lr, lr_name)
            lr_norm = normalization_auto(lr)
            lr_planes += planes_from_array(lr, color_mode, lr_meta_list[i], lr_norm, what=lr_name)
            norm = lr_norm if lr.dtype == arr.dtype else None
        hr_planes += planes_from_array(arr, color_mode, meta, norm, what=name)
    if lr_arrays is not None:
        if len(lr_planes) != len(hr_planes):
            raise TrainingDataError(
                f"LR and HR data hold different numbers of planes ({len(lr_planes)} vs {len(hr_planes)})"
            )
        pairs = [
            _explicit_pair(lr, hr, scale, i)
            for i, (lr, hr) in enumerate(zip(lr_planes, hr_planes, strict=True))
        ]
        blur_sigma = 0.0
    else:
        pairs = None
    # Planes too small for one sub-image are skipped (before degrading them).
    sizes = [p.shape[-2:] for p in hr_planes]
    keep = [i for i, (h, w) in enumerate(sizes) if min(h, w) >= patch_size]
    if pairs is None:
        keep = [i for i in keep if min(modcrop_plane(hr_planes[i], scale).shape[-2:]) >= patch_size]
    if not keep:
        hmax = max(s[0] for s in sizes)
        wmax = max(s[1] for s in sizes)
        raise TrainingDataError(
            f"every plane is smaller than a {patch_size}×{patch_size} sub-image (largest: "
            f"{hmax}×{wmax}); use larger images or a smaller --patch"
        )
    if pairs is None:
        pairs = _pairs_from_hr([hr_planes[i] for i in keep], scale, blur_sigma, cancel)
    else:
        pairs = [pairs[i] for i in keep]
    skipped = len(hr_planes) - len(keep)
    train_idx, val_idx = _split(len(pairs), val_fraction, seed)
    if skipped:
        description += f" ({skipped} plane(s) smaller than {patch_size} px skipped)"
    return TrainingData(
        train=[pairs[i] for i in train_idx],
        val=[pairs[i] for i in val_idx],
        channels=3 if color_mode == "rgb" else 1,
        color_mode=color_mode,
        scale=float(scale),
        description=description,
        blur_sigma=float(blur_sigma),
        skipped=skipped,
    )


def training_data_from_paths(
    paths: Sequence[str | os.PathLike],
    scale: float,
    color_mode: str = "gray",
    *,
    lr_paths: Sequence[str | os.PathLike] | None = None,
    patch_size: int = 33,
    val_fraction: float = 0.1,
    blur_sigma: float = 0.0,
    seed: int = 0,
) -> TrainingData:
    """Training data from image files, folders of images or TIFF stacks.

    Folders are searched recursively for PNG, JPEG, BMP and TIFF files (8 or 16 bit, grayscale or
    RGB); a TIFF may be a stack of any dimensionality (z, t, channels, ImageJ hyperstack, OME-TIFF),
    every 2-D plane of which is a training image. ``lr_paths`` are explicit LR partners, matched to
    ``paths`` in (sorted) order. Other parameters as in
    [`training_data_from_arrays()`][napari_srcnn.engine.data.training_data_from_arrays].
    """
    files = find_images(paths)
    arrays, metas = [], []
    for f in files:
        arr, meta = read_image(f)
        arrays.append(arr)
        metas.append(meta)
    lr_arrays = lr_metas = None
    if lr_paths is not None:
        lr_files = find_images(lr_paths)
        if len(lr_files) != len(files):
            raise TrainingDataError(f"{len(lr_files)} LR file(s) for {len(files)} HR file(s)")
        lr_read = [read_image(f) for f in lr_files]
        lr_arrays = [a for a, _ in lr_read]
        lr_metas = [m for _, m in lr_read]
    names = ", ".join(f.name for f in files[:3]) + (" …" if len(files) > 3 else "")
    return training_data_from_arrays(
        arrays,
        scale,
        color_mode,
        metas=metas,
        lr_arrays=lr_arrays,
        lr_metas=lr_metas,
        patch_size=patch_size,
        val_fraction=val_fraction,
        blur_sigma=blur_sigma,
        seed=seed,
        description=f"{len(files)} file(s): {names}",
    )
