"""Sub-images of training planes: the paper's stride grid and random crops.

[`PatchSampler`][napari_srcnn.engine.sampling.PatchSampler] cuts aligned ``patch × patch`` crops
from (LR↑, HR) planes ([`PairedPlanes`][napari_srcnn.engine.degradation.PairedPlanes]) on the fly, either
at random positions or on the paper's stride-14 grid
([`grid_positions()`][napari_srcnn.engine.sampling.grid_positions]), with optional flips and
rotations, and an optional intensity augmentation
([`intensity_affine()`][napari_srcnn.engine.sampling.intensity_affine]) that teaches the network the
whole ``[0, 1]`` range. Its randomness comes from a ``torch.Generator`` and a seed, and its position
is part of a checkpoint, so a resumed training run draws exactly the sub-images of an uninterrupted
one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import TrainingDataError

if TYPE_CHECKING:  # pragma: no cover
    from .degradation import PairedPlanes

__all__ = ["INTENSITY_RANGE", "PatchSampler", "grid_positions", "intensity_affine"]

#: Where intensity-augmented sub-images land: a little beyond [0, 1] on both sides, as data
#: mapped by robust percentiles does (a few pixels below the low and above the high one).
INTENSITY_RANGE = (-0.05, 1.1)
# Span of an augmented sub-image as a share of INTENSITY_RANGE (log-uniform): from faint
# (3 %: dim fluorescence) to the whole range; its own contrast is stretched at most
# _MAX_GAIN times (more would turn 8-bit steps of flat regions into false edges).
_CONTRAST = (0.03, 1.0)
_MAX_GAIN = 4.0


def intensity_affine(
    lr: torch.Tensor, hr: torch.Tensor, u: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map an aligned (LR↑, HR) sub-image by one random affine map ``a·x + b``, the same for both.

    Bicubic resizing, blur and area binning are linear with weights summing to one, so the LR
    partner of ``a·HR + b`` is exactly ``a·LR + b``: the pair stays a true pair. The map sends
    the HR sub-image's range ``[lo, hi]`` to a span of ``c · (INTENSITY_RANGE width)``, ``c``
    log-uniform in `_CONTRAST` (a gain of at most `_MAX_GAIN`), at a uniformly drawn position inside `INTENSITY_RANGE`, and
    negates it half of the time (dark on bright becomes bright on dark). Natural images
    (luma in [16/255, 235/255]) thereby show the network black, white and faint content; a flat
    sub-image only moves to a random level.

    ``u`` holds four uniform draws in [0, 1) (contrast, position, sign, unused).
    """
    lo_t, hi_t = INTENSITY_RANGE
    width = hi_t - lo_t
    lo, hi = float(hr.min()), float(hr.max())
    span = hi - lo
    c0, c1 = math.log(_CONTRAST[0]), math.log(_CONTRAST[1])
    target = width * math.exp(c0 + (c1 - c0) * float(u[0]))
    a = min(target / span, _MAX_GAIN) if span > 1e-6 else 0.0
    target = a * span
    start = lo_t + (width - target) * float(u[1])
    if float(u[2]) < 0.5:  # negate: x -> start + target - a (x - lo)
        return (start + target) - a * (lr - lo), (start + target) - a * (hr - lo)
    return start + a * (lr - lo), start + a * (hr - lo)


def grid_positions(
    shape: Sequence[int], patch_size: int, stride: int = 14
) -> list[tuple[int, int]]:
    """Top-left corners of the sub-images on a regular grid (the paper's stride 14)."""
    h, w = int(shape[-2]), int(shape[-1])
    return [
        (y, x)
        for y in range(0, h - patch_size + 1, stride)
        for x in range(0, w - patch_size + 1, stride)
    ]


class PatchSampler:
    """Aligned ``patch × patch`` crops of (LR↑, HR) training planes.

    Two ways to pick sub-images:

    * random crops (default): planes are drawn with probability proportional to their
      number of crop positions, so every pixel is about equally likely;
    * the paper's grid (``stride`` given): every sub-image of a stride-``stride`` grid once
      per epoch, in an order shuffled anew each epoch (seeded by ``seed`` and the epoch).
      Under DDP, rank ``r`` of ``world`` takes every ``world``-th sub-image of that order.

    Flips and rotations (8 dihedral variants, ``augment=True``) apply the same operation to
    LR and HR; so does the intensity augmentation, a random affine map (see
    [`intensity_affine()`][napari_srcnn.engine.sampling.intensity_affine]) applied to a share
    ``intensity`` of the sub-images. All randomness comes from the ``torch.Generator`` given to `sample()`
    (and, on the grid, from ``seed``), whose state the trainer saves in checkpoints with
    `state_dict()`: a resumed run draws exactly the patches the uninterrupted run would.

    Parameters
    ----------
    planes
        Training planes.
    patch_size
        Sub-image size (``fsub``).
    augment
        Random flips/rotations.
    intensity
        Share of sub-images (0..1) whose intensities are mapped by a random affine map.
    stride
        ``None`` for random crops, else the grid stride (14 in the paper).
    seed, rank, world
        Grid order seed and this process's share of it.
    """

    def __init__(
        self,
        planes: Sequence[PairedPlanes],
        patch_size: int,
        augment: bool = True,
        stride: int | None = None,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        intensity: float = 0.0,
    ):
        self.planes = list(planes)
        if not self.planes:
            raise TrainingDataError("no training planes to sample sub-images from")
        small = [p.hr.shape[-2:] for p in self.planes if min(p.hr.shape[-2:]) < patch_size]
        if small:
            raise TrainingDataError(
                f"a training plane of {small[0]} is smaller than the {patch_size}-pixel sub-image"
            )
        if stride is not None and stride < 1:
            raise TrainingDataError(f"grid stride {stride} must be a positive integer")
        if not 0.0 <= intensity <= 1.0:
            raise TrainingDataError(f"intensity augmentation share {intensity!r} must be in [0, 1]")
        self.patch = patch_size
        self.augment = augment
        self.intensity = float(intensity)
        self.stride = stride
        self.seed, self.rank, self.world = seed, rank, world
        self.position = 0  # sub-images this rank has drawn (grid mode)
        areas = torch.tensor(
            [
                (p.hr.shape[-2] - patch_size + 1) * (p.hr.shape[-1] - patch_size + 1)
                for p in self.planes
            ],
            dtype=torch.float64,
        )
        self.weights = areas / areas.sum()
        self.lr = [torch.from_numpy(p.lr_up) for p in self.planes]
        self.hr = [torch.from_numpy(p.hr) for p in self.planes]
        self._grid: torch.Tensor | None = None
        if stride is not None:
            cells = [
                (j, y, x)
                for j, p in enumerate(self.planes)
                for y, x in grid_positions(p.hr.shape, patch_size, stride)
            ]
            self._grid = torch.tensor(cells, dtype=torch.int64)
        self._order: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        """Sub-images per epoch on the grid (all ranks together); crop positions otherwise."""
        if self._grid is not None:
            return len(self._grid)
        return int(
            sum((h.shape[-2] - self.patch + 1) * (h.shape[-1] - self.patch + 1) for h in self.hr)
        )

    def state_dict(self) -> dict[str, int]:
        """What a checkpoint must keep besides the generator (the grid position)."""
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.position = int(state.get("position", 0))

    def _grid_cells(self, batch: int) -> torch.Tensor:
        assert self._grid is not None
        n = len(self._grid)
        out = []
        for k in range(self.position, self.position + batch):
            g = k * self.world + self.rank
            epoch, i = divmod(g, n)
            if self._order is None or self._order[0] != epoch:
                gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
                self._order = (epoch, torch.randperm(n, generator=gen))
            out.append(self._grid[self._order[1][i]])
        self.position += batch
        return torch.stack(out)

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lr_up, hr)`` batches of shape ``(batch, C, patch, patch)``, float32, CPU."""
        k = self.patch
        which = torch.multinomial(self.weights, batch, replacement=True, generator=generator)
        u = torch.rand(batch, 2, generator=generator, dtype=torch.float64)
        ops = torch.randint(0, 8, (batch,), generator=generator)
        # Drawn only when used, so that runs without it draw what they always drew.
        gains = torch.rand(batch, 5, generator=generator) if self.intensity > 0 else None
        cells = self._grid_cells(batch) if self._grid is not None else None
        lrs, hrs = [], []
        for i in range(batch):
            if cells is not None:
                j, y, x = (int(v) for v in cells[i])
            else:
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
            if gains is not None and float(gains[i, 4]) < self.intensity:
                lr, hr = intensity_affine(lr, hr, gains[i, :4])
            lrs.append(lr)
            hrs.append(hr)
        return torch.stack(lrs).contiguous(), torch.stack(hrs).contiguous()

    @staticmethod
    def stride_grid(
        planes: Sequence[PairedPlanes], patch_size: int, stride: int = 14
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All sub-images on the paper's regular grid (``fsub`` = patch, stride 14), stacked."""
        lrs, hrs = [], []
        for p in planes:
            for y, x in grid_positions(p.hr.shape, patch_size, stride):
                lrs.append(p.lr_up[:, y : y + patch_size, x : x + patch_size])
                hrs.append(p.hr[:, y : y + patch_size, x : x + patch_size])
        if not lrs:
            raise TrainingDataError(f"no {patch_size}-pixel sub-image fits the planes")
        return torch.from_numpy(np.stack(lrs)), torch.from_numpy(np.stack(hrs))
