"""One cell of an upscaling run: the dtype store and how tiles are cut into cells."""

import numpy as np
import pytest
import torch

from napari_srcnn.engine.cells import cell_split, store
from napari_srcnn.engine.color import Normalization, denormalize


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int8, np.uint16, np.int16, np.float32, np.float16, np.float64, np.int32]
)
@pytest.mark.parametrize("norm", [(0.0, 1.0), (3.5, 1000.25), (-7.0, 9.0)])
def test_store_equals_denormalize(dtype, norm):
    """The in-place torch store is color.denormalize, bit for bit (rounding, clipping, NaN)."""
    n = Normalization("percentile", *norm)
    rng = np.random.default_rng(0)
    values = rng.uniform(-0.5, 1.5, (37, 23)).astype(np.float32)
    values[0, :5] = [np.nan, np.inf, -np.inf, 0.5 / 255, 1.5 / 255]
    target = np.zeros(values.shape, dtype)
    store(target, torch.from_numpy(values.copy()), n)
    np.testing.assert_array_equal(target, denormalize(values, n, dtype))


def test_cells_keep_every_block_thread_busy():
    big = (0, 512, 0, 512)
    assert cell_split(4, 2, big) == 1  # whole tiles: an even share
    assert cell_split(1, 2, big) == 2  # one tile -> 2×2 cells
    assert cell_split(3, 2, big) == 2  # 12 cells
    assert cell_split(5, 16, big) == 4  # 80 cells for 16 threads
    assert cell_split(3, 2, (0, 100, 0, 100)) == 1  # no cells under 64 pixels
    assert cell_split(7, 1, big) == 1
