"""How an array will be upscaled: the plan is the same for NumPy and dask, and names the
moved channel axis."""

import numpy as np
import pytest
import torch

from napari_srcnn.engine.color import normalization_auto
from napari_srcnn.engine.model import SRCNN, ArchSpec
from napari_srcnn.engine.model_info import ModelInfo
from napari_srcnn.engine.options import UpscaleOptions
from napari_srcnn.engine.planning import plan_array
from napari_srcnn.engine.weights_file import LoadedModel
from napari_srcnn.errors import InputError


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = SRCNN(ArchSpec.parse("3-1-3:8,4"))
    return LoadedModel(net, ModelInfo(name="tiny", arch=net.spec, scale=2.0))


def test_numpy_and_dask_get_the_same_plan(model, camera):
    import dask.array as da

    stack = np.stack([camera[:40, :50], camera[40:80, :50]]).astype(np.uint16)  # (C, Y, X)
    options = UpscaleOptions(scale=2.5, channel_axis=0)
    moved, plan = plan_array(options, model, stack)
    lazy, lazy_plan = plan_array(options, model, da.from_array(stack, chunks=(1, 20, 25)))
    assert plan == lazy_plan and moved.shape == lazy.shape == (2, 40, 50)
    assert plan.mode == "per-channel" and plan.channel_axis == 0 and plan.out_shape == (2, 100, 125)
    # uint16 microscopy is mapped by its own robust range, one map per channel.
    assert plan.norm.kind == "percentile" and len(plan.channel_norms) == 2
    assert plan.norm_at((1,)) == normalization_auto(stack[1]) != plan.norm_at((0,))

    last = np.moveaxis(stack, 0, -1)  # (Y, X, C) with C = 2: not colour
    moved, plan = plan_array(UpscaleOptions(scale=2, channel_axis=-1), model, last)
    assert moved.shape == (2, 40, 50) and plan.channel_axis == -1


def test_bad_combinations_are_one_input_error(model, camera):
    with pytest.raises(InputError, match="out of range"):
        plan_array(UpscaleOptions(scale=2, channel_axis=3), model, camera[:20, :20, None])
    with pytest.raises(InputError, match="too small"):
        plan_array(UpscaleOptions(scale=2), model, camera[:1, :20])
