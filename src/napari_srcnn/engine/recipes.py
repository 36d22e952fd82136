"""Training recipes: optimiser, learning-rate schedule, loss, and the starting model.

Two recipes (`train_config.RECIPES`):

- ``"adam"``: Adam over all parameters, a linear warm-up then cosine decay to 1 % of the
  base rate, loss = mean squared error per output pixel;
- ``"paper"`` (Dong et al.): SGD with momentum 0.9, the last layer at a tenth of the others'
  rate, a constant rate, and Caffe's Euclidean loss ``Σ(F(Y) − X)² / 2N``.

A run from scratch starts from one of `train_config.INITS`; a fine-tuning run from a model of the registry or a
weights file ([`start_model()`][napari_srcnn.engine.recipes.start_model]).
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..errors import InputError
from .model import SRCNN, init_identity, init_paper
from .model_info import ModelInfo
from .weights import load_model
from .weights_file import LoadedModel

if TYPE_CHECKING:  # pragma: no cover
    from .data import TrainingData
    from .train_config import TrainConfig

__all__ = [
    "batch_loss",
    "lr_factor",
    "optimizer",
    "param_groups",
    "start_model",
]


def param_groups(net: SRCNN, recipe: str, lr: float) -> list[dict[str, Any]]:
    """Optimiser groups: the paper gives the last layer a tenth of the others' rate."""
    convs = net.convs()
    if recipe == "paper":
        early = [p for c in convs[:-1] for p in c.parameters()]
        return [
            {"params": early, "lr": lr},
            {"params": list(convs[-1].parameters()), "lr": lr * 0.1},
        ]
    return [{"params": list(net.parameters()), "lr": lr}]


def optimizer(net: SRCNN, recipe: str, lr: float) -> torch.optim.Optimizer:
    """The recipe's optimiser over [`param_groups()`][napari_srcnn.engine.recipes.param_groups] (SGD
    with momentum 0.9, or Adam)."""
    groups = param_groups(net, recipe, lr)
    if recipe == "paper":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    return torch.optim.Adam(groups, lr=lr)


def lr_factor(step: int, total: int, recipe: str) -> float:
    """Multiplier of the base learning rates at ``step`` (0-based) of ``total``."""
    if recipe == "paper":
        return 1.0
    warmup = min(100, total // 20)
    if step < warmup:
        return (step + 1) / warmup
    # Cosine decay to 1 % of the base rate.
    t = (step - warmup) / max(1, total - warmup)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def batch_loss(
    pred: torch.Tensor, target: torch.Tensor, recipe: str, loss: str = "l2"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss to minimise, per-pixel MSE to report).

    The paper's learning rates belong to Caffe's ``EuclideanLoss``: squared error summed
    over the pixels of a sub-image, halved, averaged over the batch. With a per-pixel mean
    instead, SGD at 1e-4 would move several hundred times more slowly. ``loss="l1"`` (adam
    only) minimises the mean absolute error; the MSE is reported either way.
    """
    mse = F.mse_loss(pred, target)
    if recipe == "paper":
        return 0.5 * (pred - target).pow(2).sum() / pred.shape[0], mse.detach()
    if loss == "l1":
        return F.l1_loss(pred, target), mse.detach()
    return mse, mse.detach()


class WeightAverage:
    """An exponential moving average of a network's parameters (fp32, on the net's device).

    ``update()`` after each optimiser step; the decay ramps up as ``min(decay, (1 + t) /
    (10 + t))`` with the update count ``t``, so the starting weights fade within a few dozen
    steps. ``net()`` is a copy of the network holding the average, for validation and writing.
    """

    def __init__(self, net: SRCNN, decay: float, updates: int = 0) -> None:
        self.decay = decay
        self.updates = updates
        self._net = copy.deepcopy(net)
        for p in self._net.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, net: SRCNN) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, p in zip(self._net.parameters(), net.parameters(), strict=True):
            avg.lerp_(p.detach(), 1.0 - d)
        self.updates += 1

    def weight_of_before(self, updates: int) -> float:
        """How much the weights of the first ``updates`` updates still weigh in the average
        (an upper bound: the constant decay after the ramp)."""
        return self.decay ** max(0, self.updates - updates)

    def net(self) -> SRCNN:
        return self._net


def start_model(config: TrainConfig, data: TrainingData) -> tuple[SRCNN, ModelInfo | None]:
    """The network a run starts from (valid padding, on CPU) and, when fine-tuning, its info.

    Raises
    ------
    InputError
        A start model whose channel count is not the training data's.
    WeightsError
        An unreadable start model.
    """
    if config.init_from is not None:
        loaded: LoadedModel = load_model(config.init_from, scale=config.scale)
        if loaded.info.arch.channels != data.channels:
            raise InputError(
                f"start model {loaded.name!r} has {loaded.info.arch.channels} channel(s); the "
                f"training data has {data.channels} (colour mode {data.color_mode!r})"
            )
        net = SRCNN(loaded.info.arch, padding="valid")
        net.load_state_dict(loaded.net.state_dict())
        return net, loaded.info
    arch = replace(config.arch, channels=data.channels)
    # PyTorch's default init draws from the global generator: seed it without leaving a
    # trace in the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = SRCNN(arch, padding="valid")
    if config.start == "paper":
        init_paper(net, generator=torch.Generator().manual_seed(config.seed))
    elif config.start == "identity":
        init_identity(net, scale=1.0)
    return net, None
