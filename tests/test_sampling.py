"""Sub-image sampling: random crops and the stride grid, aligned, seeded, sharded, resumable."""

import numpy as np
import torch

from napari_srcnn.engine.degradation import PairedPlanes
from napari_srcnn.engine.sampling import PatchSampler, grid_positions


def _tagged_planes():
    rng = np.random.default_rng(0)
    hr = [rng.random((1, h, w), dtype=np.float32) for h, w in ((40, 50), (33, 61), (70, 45))]
    # lr_up = 2·hr lets us check LR and HR stay aligned through every flip/rotation.
    return [PairedPlanes(lr_up=2 * p, hr=p) for p in hr]


def test_random_patches_are_aligned_seeded_and_augmented():
    planes = _tagged_planes()
    sampler = PatchSampler(planes, 33, augment=True)
    lr, hr = sampler.sample(64, torch.Generator().manual_seed(0))
    assert lr.shape == hr.shape == (64, 1, 33, 33) and lr.dtype == torch.float32
    torch.testing.assert_close(lr, 2 * hr)
    lr2, hr2 = PatchSampler(planes, 33).sample(64, torch.Generator().manual_seed(0))
    torch.testing.assert_close(hr, hr2)
    # Without augmentation every patch is a plain crop of some plane.
    _, plain = PatchSampler(planes, 33, augment=False).sample(16, torch.Generator().manual_seed(1))
    crops = {
        tuple(p.hr[0, y, x : x + 3].round(6))
        for p in planes
        for y in range(p.hr.shape[1])
        for x in range(p.hr.shape[2] - 2)
    }
    assert all(tuple(np.round(patch[0, 0, :3].numpy(), 6)) in crops for patch in plain)
    # With it, some patches are flipped/rotated: not every top-left row is a crop row.
    assert not all(tuple(np.round(patch[0, 0, :3].numpy(), 6)) in crops for patch in hr)


def test_grid_covers_every_sub_image_once_per_epoch_and_shards():
    planes = _tagged_planes()
    n = sum(len(grid_positions(p.hr.shape, 33, 14)) for p in planes)
    assert n == 1 * 2 + 1 * 3 + 3 * 1
    assert len(PatchSampler(planes, 33, stride=14)) == n
    _, grid = PatchSampler.stride_grid(planes, 33, 14)
    key = lambda t: tuple(np.round(t[0, 0, :4].numpy(), 6))  # noqa: E731
    want = sorted(key(t) for t in grid)
    sampler = PatchSampler(planes, 33, augment=False, stride=14, seed=5)
    gen = torch.Generator().manual_seed(0)
    _, epoch1 = sampler.sample(n, gen)
    _, epoch2 = sampler.sample(n, gen)
    assert sorted(key(t) for t in epoch1) == want == sorted(key(t) for t in epoch2)
    assert [key(t) for t in epoch1] != [key(t) for t in epoch2]  # reshuffled
    # Two DDP ranks split each epoch between them.
    r0 = PatchSampler(planes, 33, augment=False, stride=14, seed=5, rank=0, world=2)
    r1 = PatchSampler(planes, 33, augment=False, stride=14, seed=5, rank=1, world=2)
    _, a = r0.sample(n // 2, gen)
    _, b = r1.sample(n // 2, gen)
    assert sorted([key(t) for t in a] + [key(t) for t in b]) == want
    # Restoring the position continues the same sequence.
    again = PatchSampler(planes, 33, augment=False, stride=14, seed=5)
    again.load_state_dict({"position": n})
    _, cont = again.sample(n, torch.Generator().manual_seed(0))
    assert [key(t) for t in cont] == [key(t) for t in epoch2]
