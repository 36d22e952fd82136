"""Sub-images of training planes: the paper's stride grid and random crops.

[`PatchSampler`][napari_srcnn.engine.sampling.PatchSampler] cuts aligned ``patch × patch`` crops
from (LR↑, HR) planes ([`PairedPlanes`][napari_srcnn.engine.data.PairedPlanes]) on the fly, either
at random positions or on the paper's stride-14 grid
([`grid_positions()`][napari_srcnn.engine.sampling.grid_positions]), with optional flips and
rotations. Its randomness comes from a ``torch.Generator`` and a seed, and its position is part of a
checkpoint, so a resumed training run draws exactly the sub-images of an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import TrainingDataError

if TYPE_CHECKING:  # pragma: no cover
    from .data import PairedPlanes

__all__ = ["PatchSampler", "grid_positions"]


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
    LR and HR. All randomness comes from the ``torch.Generator`` given to `sample()`
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
        self.patch = patch_size
        self.augment = augment
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
