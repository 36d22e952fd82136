"""Training data: planes from image folders and user stacks, degradation, patch sampling.

Every 2-D plane of the data is one training image (HR). Its low-resolution partner is made
as in the paper: optional Gaussian blur, MATLAB-bicubic down-sampling by the factor, and
bicubic up-sampling back to the HR grid. The degradation is applied once to each whole
plane (so patches see true image-level degradation, not per-patch border effects) and
patches are cut from aligned (LR↑, HR) planes on the fly. Explicit LR/HR pairs are taken
as they are (LR is up-sampled bicubically when it is smaller than HR).

Planes are split into training and validation *by plane*: a validation plane never
contributes a training patch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import TrainingDataError
from .color import Normalization, normalization_for, normalize, rgb_to_ycbcr
from .io import IMAGE_SUFFIXES, ImageMeta, read_image
from .resize import imresize, output_size

__all__ = [
    "PairedPlanes",
    "PatchSampler",
    "TrainingData",
    "degrade",
    "find_images",
    "planes_from_array",
    "training_data_from_arrays",
    "training_data_from_paths",
]


def find_images(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand folders into their image files (sorted); files are kept as given."""
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.name.lower().endswith(IMAGE_SUFFIXES))
        elif path.exists():
            found.append(path)
        else:
            raise TrainingDataError(f"training data {str(path)!r} does not exist")
    if not found:
        raise TrainingDataError("no training images found (PNG, JPEG, BMP or TIFF)")
    return found


def planes_from_array(
    array: np.ndarray,
    color_mode: str,
    meta: ImageMeta | None = None,
    norm: Normalization | None = None,
) -> list[np.ndarray]:
    """Split an image or stack into normalised float32 planes ``(C, H, W)``.

    ``color_mode``: ``"y"`` (RGB → luminance, grayscale used as is), ``"rgb"`` (RGB kept as
    3 channels) or ``"gray"`` (every 2-D plane of every channel is a plane, with C = 1).
    """
    arr = np.asarray(array)
    if arr.size == 0:
        raise TrainingDataError(f"training stack of shape {arr.shape} is empty")
    if arr.dtype == bool or arr.dtype.kind not in "uif":
        raise TrainingDataError(f"training data of dtype {arr.dtype} is not supported")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise TrainingDataError("training data contains NaN or Inf values; clean it first")
    meta = meta or ImageMeta.default(arr.shape)
    norm = norm or normalization_for(arr, "dtype" if arr.dtype.kind in "ui" else "percentile",
                                     percentiles=(0.0, 100.0) if arr.dtype.kind == "f" else (0.1, 99.9))
    if arr.dtype.kind == "f" and 0 <= float(arr.min()) and float(arr.max()) <= 1:
        norm = normalization_for(arr, "dtype")
    if meta.rgb and arr.shape[-1] in (3, 4):
        rgb = normalize(arr[..., :3], norm)
        rgb = rgb.reshape(-1, *rgb.shape[-3:])
        if color_mode == "rgb":
            return [np.ascontiguousarray(p.transpose(2, 0, 1)) for p in rgb]
        if color_mode == "y":
            return [rgb_to_ycbcr(p, channel_axis=-1)[None, ..., 0].astype(np.float32) for p in rgb]
        # gray: each colour sample is a plane of its own
        return [np.ascontiguousarray(p[..., c])[None] for p in rgb for c in range(3)]
    if color_mode == "rgb":
        raise TrainingDataError(f"an RGB model needs RGB images; got shape {arr.shape}")
    planes = normalize(arr, norm).reshape(-1, *arr.shape[-2:])
    return [p[None] for p in planes]


def degrade(hr: np.ndarray, scale: float, blur_sigma: float = 0.0) -> np.ndarray:
    """The paper's degradation of a ``(C, H, W)`` plane: blur, bicubic ↓scale, bicubic ↑.

    The HR plane must be mod-cropped so that ``H / scale`` is an integer (see
    :func:`modcrop_plane`); the result has the HR plane's shape.
    """
    x = hr
    if blur_sigma > 0:
        from scipy.ndimage import gaussian_filter

        x = gaussian_filter(x, sigma=(0, blur_sigma, blur_sigma), mode="reflect")
    h, w = x.shape[-2:]
    lr = imresize(x, output_shape=(round(h / scale), round(w / scale)))
    return imresize(lr, output_shape=(h, w)).astype(np.float32)


def modcrop_plane(plane: np.ndarray, scale: float) -> np.ndarray:
    """Crop H and W so that they are whole multiples of the LR grid (exact for integers)."""
    h, w = plane.shape[-2:]
    step = _grid(scale)
    return plane[..., : h - h % step, : w - w % step]


def _grid(scale: float) -> int:
    """Smallest HR length that maps to a whole number of LR pixels (3 for ×3, 5 for ×2.5)."""
    for k in range(1, 101):
        if abs(k / scale - round(k / scale)) < 1e-6:
            return k
    return max(1, math.ceil(scale))


@dataclass
class PairedPlanes:
    """Aligned planes: ``lr_up`` (bicubic-up-sampled LR) and ``hr``, both ``(C, H, W)``."""

    lr_up: np.ndarray
    hr: np.ndarray


@dataclass
class TrainingData:
    """Training and validation planes, ready for patch sampling."""

    train: list[PairedPlanes]
    val: list[PairedPlanes]
    channels: int
    color_mode: str
    scale: float
    description: str = ""

    @property
    def num_train_pixels(self) -> int:
        return sum(p.hr.shape[-1] * p.hr.shape[-2] for p in self.train)


def _split(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    if not 0 <= val_fraction < 1:
        raise TrainingDataError(f"validation fraction {val_fraction} must be in [0, 1)")
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_val = int(round(n * val_fraction))
    if val_fraction > 0:
        n_val = max(1, n_val)
    if n - n_val < 1:
        raise TrainingDataError(
            f"{n} plane(s) cannot be split into training and validation; give more planes "
            "or --val-fraction 0"
        )
    return sorted(order[n_val:]), sorted(order[:n_val])


def _pairs_from_hr(
    planes: Sequence[np.ndarray], scale: float, blur_sigma: float, min_size: int
) -> list[PairedPlanes]:
    pairs = []
    for hr in planes:
        hr = modcrop_plane(hr, scale)
        if min(hr.shape[-2:]) < min_size:
            continue
        pairs.append(PairedPlanes(lr_up=degrade(hr, scale, blur_sigma), hr=np.ascontiguousarray(hr)))
    return pairs


def training_data_from_arrays(
    arrays: Sequence[np.ndarray],
    scale: float,
    color_mode: str = "gray",
    *,
    metas: Sequence[ImageMeta | None] | None = None,
    lr_arrays: Sequence[np.ndarray] | None = None,
    patch_size: int = 33,
    val_fraction: float = 0.1,
    blur_sigma: float = 0.0,
    seed: int = 0,
    description: str = "arrays",
) -> TrainingData:
    """Training data from in-memory images or stacks (the napari widget's entry point).

    Parameters
    ----------
    arrays
        HR images/stacks; every 2-D plane is a training image.
    scale
        Up-sampling factor to learn.
    color_mode
        ``"y"``, ``"rgb"`` or ``"gray"`` (per plane, for scientific data).
    lr_arrays
        Optional explicit LR partners of ``arrays`` (same number of planes; LR smaller
        than HR by ``scale`` or already on the HR grid). Without them, LR is made by
        :func:`degrade`.
    patch_size
        Sub-image size ``fsub``; planes smaller than it are skipped (error if none is left).
    """
    metas = list(metas) if metas is not None else [None] * len(arrays)
    if not arrays:
        raise TrainingDataError("no training images given")
    hr_planes: list[np.ndarray] = []
    for arr, meta in zip(arrays, metas, strict=True):
        hr_planes += planes_from_array(arr, color_mode, meta)
    if lr_arrays is not None:
        lr_planes: list[np.ndarray] = []
        for arr, meta in zip(lr_arrays, metas, strict=True):
            lr_planes += planes_from_array(arr, color_mode, meta)
        pairs = _explicit_pairs(lr_planes, hr_planes, scale, patch_size)
    else:
        pairs = _pairs_from_hr(hr_planes, scale, blur_sigma, patch_size)
    if not pairs:
        raise TrainingDataError(
            f"every plane is smaller than a {patch_size}×{patch_size} sub-image "
            f"(largest plane: {max(p.shape[-2] for p in hr_planes)}×{max(p.shape[-1] for p in hr_planes)})"
        )
    train_idx, val_idx = _split(len(pairs), val_fraction, seed)
    return TrainingData(
        train=[pairs[i] for i in train_idx],
        val=[pairs[i] for i in val_idx],
        channels=3 if color_mode == "rgb" else 1,
        color_mode=color_mode,
        scale=float(scale),
        description=description,
    )


def _explicit_pairs(
    lr_planes: list[np.ndarray], hr_planes: list[np.ndarray], scale: float, patch_size: int
) -> list[PairedPlanes]:
    if len(lr_planes) != len(hr_planes):
        raise TrainingDataError(
            f"LR and HR stacks hold different numbers of planes ({len(lr_planes)} vs {len(hr_planes)})"
        )
    pairs = []
    for lr, hr in zip(lr_planes, hr_planes, strict=True):
        h, w = hr.shape[-2:]
        if lr.shape[-2:] == (h, w):
            up = lr
        elif (output_size(lr.shape[-2], scale), output_size(lr.shape[-1], scale)) == (h, w):
            up = imresize(lr, output_shape=(h, w)).astype(np.float32)
        else:
            raise TrainingDataError(
                f"LR plane {lr.shape[-2:]} does not match HR plane {(h, w)} at ×{scale:g}"
            )
        if min(h, w) >= patch_size:
            pairs.append(PairedPlanes(lr_up=np.ascontiguousarray(up), hr=np.ascontiguousarray(hr)))
    return pairs


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
    """Training data from image files, folders of images or TIFF stacks."""
    files = find_images(paths)
    arrays, metas = [], []
    for f in files:
        arr, meta = read_image(f)
        arrays.append(arr)
        metas.append(meta)
    lr_arrays = None
    if lr_paths is not None:
        lr_files = find_images(lr_paths)
        if len(lr_files) != len(files):
            raise TrainingDataError(f"{len(lr_files)} LR files for {len(files)} HR files")
        lr_arrays = [read_image(f)[0] for f in lr_files]
    names = ", ".join(f.name for f in files[:3]) + (" …" if len(files) > 3 else "")
    return training_data_from_arrays(
        arrays,
        scale,
        color_mode,
        metas=metas,
        lr_arrays=lr_arrays,
        patch_size=patch_size,
        val_fraction=val_fraction,
        blur_sigma=blur_sigma,
        seed=seed,
        description=f"{len(files)} file(s): {names}",
    )


class PatchSampler:
    """Random aligned ``patch × patch`` crops of (LR↑, HR) training planes.

    Planes are drawn with probability proportional to their area, so every pixel is equally
    likely. All randomness comes from the given ``torch.Generator``, whose state is saved in
    checkpoints: a resumed run draws exactly the patches the uninterrupted run would have.
    """

    def __init__(self, planes: Sequence[PairedPlanes], patch_size: int, augment: bool = True):
        self.planes = list(planes)
        self.patch = patch_size
        self.augment = augment
        areas = torch.tensor(
            [(p.hr.shape[-2] - patch_size + 1) * (p.hr.shape[-1] - patch_size + 1) for p in self.planes],
            dtype=torch.float64,
        )
        self.weights = areas / areas.sum()
        self.lr = [torch.from_numpy(p.lr_up) for p in self.planes]
        self.hr = [torch.from_numpy(p.hr) for p in self.planes]

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lr_up, hr)`` batches of shape ``(batch, C, patch, patch)``, float32, CPU."""
        k = self.patch
        which = torch.multinomial(self.weights, batch, replacement=True, generator=generator)
        u = torch.rand(batch, 2, generator=generator, dtype=torch.float64)
        ops = torch.randint(0, 8, (batch,), generator=generator)
        lrs, hrs = [], []
        for i in range(batch):
            j = int(which[i])
            h, w = self.hr[j].shape[-2:]
            y = int(u[i, 0] * (h - k + 1))
            x = int(u[i, 1] * (w - k + 1))
            lr = self.lr[j][:, y : y + k, x : x + k]
            hr = self.hr[j][:, y : y + k, x : x + k]
            if self.augment:
                op = int(ops[i])
                if op & 4:
                    lr, hr = lr.flip(-1), hr.flip(-1)
                if op & 3:
                    lr, hr = torch.rot90(lr, op & 3, (-2, -1)), torch.rot90(hr, op & 3, (-2, -1))
            lrs.append(lr)
            hrs.append(hr)
        return torch.stack(lrs), torch.stack(hrs)

    @staticmethod
    def stride_grid(planes: Sequence[PairedPlanes], patch_size: int, stride: int = 14) -> tuple[torch.Tensor, torch.Tensor]:
        """All sub-images on the paper's regular grid (``fsub`` = patch, stride 14)."""
        lrs, hrs = [], []
        for p in planes:
            h, w = p.hr.shape[-2:]
            for y in range(0, h - patch_size + 1, stride):
                for x in range(0, w - patch_size + 1, stride):
                    lrs.append(p.lr_up[:, y : y + patch_size, x : x + patch_size])
                    hrs.append(p.hr[:, y : y + patch_size, x : x + patch_size])
        return torch.from_numpy(np.stack(lrs)), torch.from_numpy(np.stack(hrs))
