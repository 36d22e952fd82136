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
from .color import normalization_auto
from .degradation import (
    DEGRADATIONS,
    MAX_BLUR,
    PairedPlanes,
    arrays_per_plane,
    degradation_kinds,
    grid_step,
    level_grid,
    make_pair,
    modcrop_plane,
)
from .io import IMAGE_SUFFIXES, ImageMeta, read_image
from .memory import training_data_estimate
from .planes import (
    check_array,
    image_mode,
    planes_from_array,
    resolve_color_mode,
)
from .resize import imresize
from .sampling import grid_positions

# PatchSampler and grid_positions live in engine.sampling, the plane and degradation
# functions in engine.planes and engine.degradation; re-exported from here, where they
# used to be.
__all__ = [
    "LR_LEVELS",
    "TrainingData",
    "find_images",
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
class TrainingData:
    """Training and validation planes, ready for patch sampling.

    Attributes
    ----------
    train, val
        Disjoint lists of planes (a plane is either for training or for validation).
    channels
        Channels of every plane (3 for ``"rgb"``, else 1).
    color_mode
        ``"y"``, ``"rgb"`` or ``"per-channel"`` (recorded in the weights).
    scale
        The factor the LR planes were made for.
    description
        One line naming the data (recorded in the weights).
    normalization
        The intensity rule (``"auto"``, see
        [`normalization_auto()`][napari_srcnn.engine.color.normalization_auto]).
    blur_sigma
        Gaussian blur of the degradation (0 for none or for explicit pairs).
    degradation
        How LR partners were made (``"bicubic"``, ``"area"``, ``"mixed"`` or ``"explicit"``).
    lr_levels
        ``"stored"`` when every made LR partner was rounded onto its plane's own levels (and for
        explicit pairs, which are stored data), ``"float"`` when not (see `LR_LEVELS`).
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
    degradation: str = "bicubic"
    lr_levels: str = "float"
    skipped: int = 0

    @property
    def num_train_pixels(self) -> int:
        return sum(p.hr.shape[-1] * p.hr.shape[-2] for p in self.train)

    def grid_size(self, patch_size: int, stride: int = 14) -> int:
        """Number of sub-images on the paper's grid (``fsub`` = patch, stride 14) of the
        training planes: what one epoch means."""
        return sum(len(grid_positions(p.hr.shape[-2:], patch_size, stride)) for p in self.train)


#: How made LR partners are stored: ``"auto"`` (``"stored"`` for per-channel data, the
#: scientific images whose integer levels can be few; ``"float"`` for photo models, as in the
#: paper and the published protocol), ``"stored"`` (rounded onto the plane's own grid of levels,
#: as a camera or an integer file stores it) or ``"float"`` (not rounded).
LR_LEVELS = ("auto", "stored", "float")


def _check_fraction(val_fraction: float) -> None:
    if not (isinstance(val_fraction, (int, float)) and 0 <= val_fraction < 1):
        raise TrainingDataError(f"validation fraction {val_fraction!r} must be in [0, 1)")


def _split(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Whole planes for training and for validation (at least one of each when asked)."""
    _check_fraction(val_fraction)
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_val = int(round(n * val_fraction))
    if val_fraction > 0:
        n_val = max(1, n_val)
    return sorted(order[n_val:]), sorted(order[:n_val])


def _region_split(
    plane: np.ndarray, val_fraction: float, patch_size: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cut one plane in two along its longer axis: a training part and a validation strip.

    The strip holds about ``val_fraction`` of the plane (at least a sub-image, and at least
    48 pixels so that validation has a centre left after the shave); both parts end on the LR
    grid, so that each is degraded on its own like a whole plane.
    """
    step = grid_step(scale)
    axis = -1 if plane.shape[-1] >= plane.shape[-2] else -2
    length = plane.shape[axis]
    want = max(patch_size, 48, int(round(length * val_fraction)))
    cut = length - (-(-want // step) * step)
    if cut < patch_size:
        h, w = plane.shape[-2:]
        raise TrainingDataError(
            f"one plane of {h}×{w} pixels is too small to hold out a validation region of "
            f"{want} pixels and keep {patch_size}-pixel sub-images for training; use a larger "
            "image, more planes, or no validation (validation fraction 0)"
        )
    if axis == -1:
        return plane[..., :cut], plane[..., cut:]
    return plane[..., :cut, :], plane[..., cut:, :]


def _pairs_from_hr(
    planes: Sequence[np.ndarray],
    scale: float,
    kinds: Sequence[tuple[str, float]],
    cancel: Callable[[], bool] | None = None,
    lr_levels: str = "float",
) -> list[PairedPlanes]:
    """Every plane with the LR partner of every degradation in ``kinds`` (the HR array is
    shared, not copied); with ``lr_levels="stored"`` each LR partner is rounded onto its HR
    plane's own grid of levels (see [`level_grid()`][napari_srcnn.engine.degradation.level_grid])."""
    pairs = []
    for index, hr in enumerate(planes):
        hr = np.ascontiguousarray(modcrop_plane(hr, scale))
        levels = level_grid(hr) if lr_levels == "stored" else None
        for kind, sigma in kinds:
            if cancel is not None and cancel():
                raise CancelledError("cancelled while making the training pairs")
            pairs.append(make_pair(hr, scale, kind, sigma, levels, index))
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


def _planes_of(
    arrays: Sequence[np.ndarray],
    metas: Sequence[ImageMeta | None],
    color_mode: str,
    label: str,
    lr_arrays: Sequence[np.ndarray] | None = None,
    lr_metas: Sequence[ImageMeta | None] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Normalised HR planes of ``arrays`` (and of their explicit LR partners, if any)."""
    n_arr = len(arrays)
    hr_planes: list[np.ndarray] = []
    lr_planes: list[np.ndarray] = []
    lr_meta_list = list(lr_metas) if lr_metas is not None else [None] * n_arr
    for i, (arr, meta) in enumerate(zip(arrays, metas, strict=True)):
        name = label if n_arr == 1 else f"{label} {i + 1}"
        arr = np.asarray(arr)
        norm = None
        if lr_arrays is not None:
            lr = np.asarray(lr_arrays[i])
            lr_name = f"LR {name}"
            check_array(lr, lr_name)
            lr_norm = normalization_auto(lr, image_mode(lr.shape, lr_meta_list[i], color_mode))
            lr_planes += planes_from_array(lr, color_mode, lr_meta_list[i], lr_norm, what=lr_name)
            norm = lr_norm if lr.dtype == arr.dtype else None
        hr_planes += planes_from_array(arr, color_mode, meta, norm, what=name)
    return hr_planes, lr_planes


def training_data_from_arrays(
    arrays: Sequence[np.ndarray],
    scale: float,
    color_mode: str = "per-channel",
    *,
    metas: Sequence[ImageMeta | None] | None = None,
    lr_arrays: Sequence[np.ndarray] | None = None,
    lr_metas: Sequence[ImageMeta | None] | None = None,
    val_arrays: Sequence[np.ndarray] | None = None,
    val_metas: Sequence[ImageMeta | None] | None = None,
    patch_size: int = 33,
    val_fraction: float = 0.1,
    blur_sigma: float = 0.0,
    degradation: str = "bicubic",
    lr_levels: str = "auto",
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
        ``"y"``, ``"rgb"``, ``"per-channel"`` (per plane and channel, for scientific data) or
        ``"auto"`` (``"y"`` if the first array is RGB, else ``"per-channel"``).
    metas
        Axes of ``arrays`` (e.g. from napari's ``layer.rgb`` or a TIFF); default: a last
        axis of 3 or 4 is colour.
    lr_arrays, lr_metas
        Optional explicit LR partners of ``arrays`` (same number of planes; each LR plane smaller
        than its HR plane by ``scale`` or already on the HR grid). Without them, LR is made by
        [`degrade()`][napari_srcnn.engine.degradation.degrade]. Each LR array is normalised by
        [`normalization_auto()`][napari_srcnn.engine.color.normalization_auto], and its HR partner
        by the same map when both have the same dtype, as inference maps the model's output back
        with the input's map.
    val_arrays, val_metas
        Explicit validation images (e.g. whole held-out sources): every plane of them
        validates and ``val_fraction`` is not used.
    patch_size
        Sub-image size ``fsub``; planes smaller than it are skipped (error if none is left).
    val_fraction
        Share of planes held out for validation (at least one when > 0). With a single
        plane, a strip of about that share of the plane is held out instead (see
        `_region_split()`), so that one image can be fine-tuned and validated.
    blur_sigma
        Gaussian blur (HR pixels) of the degradation.
    degradation
        One of `degradation.DEGRADATIONS`: ``"bicubic"`` (the
        paper's), ``"area"`` (pixel binning) or ``"mixed"`` (every plane with both, with a
        mildly blurred bicubic partner, and oversampled: see
        [`oversample()`][napari_srcnn.engine.degradation.oversample]).
    lr_levels
        One of `LR_LEVELS`: whether made LR partners are rounded onto their plane's own grid of
        levels (``"auto"``: for per-channel data).
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
        or too little data to hold out a validation part.
    CancelledError
        If ``cancel()`` returned True.
    """
    if not arrays:
        raise TrainingDataError("no training images given")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 1):
        raise TrainingDataError(f"scale {scale!r} must be a number above 1")
    if not (math.isfinite(blur_sigma) and 0 <= blur_sigma <= MAX_BLUR):
        raise TrainingDataError(
            f"blur sigma {blur_sigma!r} must be from 0 to {MAX_BLUR:g} (HR pixels)"
        )
    try:
        shapes = [(np.shape(a), np.asarray(a).dtype) for a in arrays]
    except ValueError:  # a ragged list
        raise TrainingDataError("training images must be arrays (a ragged list is not)") from None
    made = (
        arrays_per_plane(degradation_kinds(degradation, 0.0)) if degradation in DEGRADATIONS else 1
    )
    partners = 1 if lr_arrays is not None else made
    # Before anything is allocated: one line saying how much is needed and how to reduce it.
    training_data_estimate(shapes, scale, partners).check()
    try:
        kinds = degradation_kinds(degradation, float(blur_sigma))
        if any(k == "area" for k, _ in kinds) and abs(scale - round(scale)) > 1e-9:
            raise ValueError(f"area binning needs an integer factor, got ×{scale:g}")
    except ValueError as exc:
        raise TrainingDataError(str(exc)) from None
    _check_fraction(val_fraction)
    if lr_levels not in LR_LEVELS:
        raise TrainingDataError(f"LR levels {lr_levels!r} is not one of {', '.join(LR_LEVELS)}")
    metas = list(metas) if metas is not None else [None] * len(arrays)
    if len(metas) != len(arrays):
        raise TrainingDataError(f"{len(metas)} metadata entries for {len(arrays)} arrays")
    first_shape = tuple(getattr(arrays[0], "shape", np.shape(arrays[0])))
    color_mode = resolve_color_mode(color_mode, first_shape, metas[0])
    if lr_levels == "auto":
        lr_levels = "stored" if color_mode == "per-channel" else "float"
    n_arr = len(arrays)
    if lr_arrays is not None and len(lr_arrays) != n_arr:
        raise TrainingDataError(f"{len(lr_arrays)} LR stack(s) for {n_arr} HR stack(s)")
    if lr_metas is not None and len(lr_metas) != n_arr:
        raise TrainingDataError(f"{len(lr_metas)} LR metadata entries for {n_arr} LR arrays")
    hr_planes, lr_planes = _planes_of(
        arrays, metas, color_mode, "training stack", lr_arrays, lr_metas
    )
    pairs: list[PairedPlanes] | None = None
    if lr_arrays is not None:
        if len(lr_planes) != len(hr_planes):
            raise TrainingDataError(
                f"LR and HR data hold different numbers of planes ({len(lr_planes)} vs {len(hr_planes)})"
            )
        pairs = [
            _explicit_pair(lr, hr, scale, i)
            for i, (lr, hr) in enumerate(zip(lr_planes, hr_planes, strict=True))
        ]
        blur_sigma, kinds, lr_levels = 0.0, [("explicit", 0.0)], "stored"
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
            f"{hmax}×{wmax}); use larger images or a smaller sub-image size"
        )
    skipped = len(hr_planes) - len(keep)
    val: list[PairedPlanes]
    if val_arrays is not None:
        vmetas = list(val_metas) if val_metas is not None else [None] * len(val_arrays)
        if len(vmetas) != len(val_arrays):
            raise TrainingDataError(
                f"{len(vmetas)} metadata entries for {len(val_arrays)} validation arrays"
            )
        val_hr, _ = _planes_of(val_arrays, vmetas, color_mode, "validation stack")
        val_hr = [p for p in val_hr if min(modcrop_plane(p, scale).shape[-2:]) >= patch_size]
        if not val_hr:
            raise TrainingDataError(f"every validation plane is smaller than {patch_size} pixels")
        if pairs is None:
            train = _pairs_from_hr([hr_planes[i] for i in keep], scale, kinds, cancel, lr_levels)
        else:
            train = [pairs[i] for i in keep]
        val_kinds = kinds if pairs is None else [("bicubic", 0.0)]
        val = _pairs_from_hr(val_hr, scale, val_kinds, cancel, lr_levels)
    elif len(keep) == 1 and val_fraction > 0:
        # One plane: hold out a strip of it (degraded on its own, as a whole plane is).
        if pairs is None:
            part, strip = _region_split(
                modcrop_plane(hr_planes[keep[0]], scale), val_fraction, patch_size, scale
            )
            train = _pairs_from_hr([part], scale, kinds, cancel, lr_levels)
            val = _pairs_from_hr([strip], scale, kinds, cancel, lr_levels)
        else:
            pair = pairs[keep[0]]
            hr_part, hr_strip = _region_split(pair.hr, val_fraction, patch_size, scale)
            lr_part, lr_strip = _region_split(pair.lr_up, val_fraction, patch_size, scale)
            train = [PairedPlanes(np.ascontiguousarray(lr_part), np.ascontiguousarray(hr_part))]
            val = [PairedPlanes(np.ascontiguousarray(lr_strip), np.ascontiguousarray(hr_strip))]
        description += f" (validation: a {val[0].hr.shape[-2]}×{val[0].hr.shape[-1]} region)"
    else:
        train_idx, val_idx = _split(len(keep), val_fraction, seed)
        if pairs is None:
            train = _pairs_from_hr(
                [hr_planes[keep[i]] for i in train_idx], scale, kinds, cancel, lr_levels
            )
            val = _pairs_from_hr(
                [hr_planes[keep[i]] for i in val_idx], scale, kinds, cancel, lr_levels
            )
        else:
            train = [pairs[keep[i]] for i in train_idx]
            val = [pairs[keep[i]] for i in val_idx]
    if skipped:
        description += f" ({skipped} plane(s) smaller than {patch_size} px skipped)"
    return TrainingData(
        train=train,
        val=val,
        channels=3 if color_mode == "rgb" else 1,
        color_mode=color_mode,
        scale=float(scale),
        description=description,
        blur_sigma=float(blur_sigma),
        degradation=degradation if lr_arrays is None else "explicit",
        lr_levels=lr_levels,
        skipped=skipped,
    )


def training_data_from_paths(
    paths: Sequence[str | os.PathLike],
    scale: float,
    color_mode: str = "per-channel",
    *,
    lr_paths: Sequence[str | os.PathLike] | None = None,
    val_paths: Sequence[str | os.PathLike] | None = None,
    patch_size: int = 33,
    val_fraction: float = 0.1,
    blur_sigma: float = 0.0,
    degradation: str = "bicubic",
    lr_levels: str = "auto",
    seed: int = 0,
) -> TrainingData:
    """Training data from image files, folders of images or TIFF stacks.

    Folders are searched recursively for PNG, JPEG, BMP and TIFF files (8 or 16 bit, grayscale or
    RGB); a TIFF may be a stack of any dimensionality (z, t, channels, ImageJ hyperstack, OME-TIFF),
    every 2-D plane of which is a training image. ``lr_paths`` are explicit LR partners, matched to
    ``paths`` in (sorted) order; ``val_paths`` are validation images (e.g. whole sources held out
    from training), which replace ``val_fraction``. Other parameters as in
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
    val_arrays = val_metas = None
    if val_paths is not None:
        val_files = find_images(val_paths)
        overlap = {f.resolve() for f in val_files} & {f.resolve() for f in files}
        if overlap:
            raise TrainingDataError(
                f"{len(overlap)} validation file(s) are also training files, e.g. "
                f"{sorted(overlap)[0].name}: validate on images the model is not trained on"
            )
        val_read = [read_image(f) for f in val_files]
        val_arrays = [a for a, _ in val_read]
        val_metas = [m for _, m in val_read]
    names = ", ".join(f.name for f in files[:3]) + (" …" if len(files) > 3 else "")
    return training_data_from_arrays(
        arrays,
        scale,
        color_mode,
        metas=metas,
        lr_arrays=lr_arrays,
        lr_metas=lr_metas,
        val_arrays=val_arrays,
        val_metas=val_metas,
        patch_size=patch_size,
        val_fraction=val_fraction,
        blur_sigma=blur_sigma,
        degradation=degradation,
        lr_levels=lr_levels,
        seed=seed,
        description=f"{len(files)} file(s): {names}"
        + (f"; validation: {len(val_arrays)} file(s)" if val_arrays is not None else ""),
    )
