"""The training recipes: parameter groups, initialisation and loss."""

import pytest
import torch

from napari_srcnn.engine.model import SRCNN, ArchSpec, init_paper
from napari_srcnn.engine.recipes import batch_loss, param_groups


def test_paper_recipe_groups_init_and_loss():
    net = SRCNN(ArchSpec.parse("9-5-5"), padding="valid")
    groups = param_groups(net, "paper", 1e-4)
    convs = net.convs()
    assert [g["lr"] for g in groups] == [1e-4, pytest.approx(1e-5)]
    assert {id(p) for p in groups[0]["params"]} == {
        id(p) for c in convs[:2] for p in c.parameters()
    }
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in convs[2].parameters()}
    assert len(param_groups(net, "adam", 1e-3)) == 1
    init_paper(net, generator=torch.Generator().manual_seed(0))
    w = torch.cat([c.weight.flatten() for c in convs])
    assert abs(w.std().item() - 1e-3) < 5e-5 and all((c.bias == 0).all() for c in convs)
    # Caffe's Euclidean loss (what the paper's learning rates are for) vs the mean.
    pred, target = torch.rand(4, 1, 21, 21), torch.rand(4, 1, 21, 21)
    paper, mse = batch_loss(pred, target, "paper")
    assert paper.item() == pytest.approx(((pred - target) ** 2).sum().item() / 2 / 4)
    assert mse.item() == pytest.approx(((pred - target) ** 2).mean().item())
    assert batch_loss(pred, target, "adam")[0].item() == pytest.approx(mse.item())


def test_default_learning_rates_follow_the_run():
    from napari_srcnn.engine.train_config import default_lr

    assert default_lr("adam", False, "y") == 1e-3  # from scratch
    assert default_lr("adam", True, "per-channel") == 5e-4  # a user's microscopy stack
    assert default_lr("adam", True, "y") == default_lr("adam", True, "rgb") == 1e-4
    assert default_lr("paper", True, "per-channel") == default_lr("paper", False, "y") == 1e-4
