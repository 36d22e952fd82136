"""Training on several processes: the process group, DDP and the collectives the trainer needs.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the trainer runs one process per GPU (NCCL) or per
CPU worker (gloo), wraps the network in ``DistributedDataParallel`` and uses the helpers
below; with one process every helper returns at once without touching
``torch.distributed``. Functions documented as collective must be called by every rank.
"""

from __future__ import annotations

import os
from typing import Any

import torch

__all__ = [
    "barrier",
    "end_distributed",
    "gather_rng",
    "init_distributed",
    "rank_device",
    "reduce_scalar",
    "wrap_model",
]


def init_distributed(device: torch.device) -> tuple[int, int, bool]:
    """(rank, world size, whether this call initialised the process group)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, False
    import torch.distributed as dist

    created = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        created = True
    return dist.get_rank(), dist.get_world_size(), created


def end_distributed(created: bool) -> None:
    """Destroy the process group if `init_distributed()` created it."""
    if created:
        import torch.distributed as dist

        dist.destroy_process_group()


def rank_device(device: torch.device, world: int) -> torch.device:
    """This process's GPU (``$LOCAL_RANK``, made current) under DDP on CUDA, else ``device``."""
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def wrap_model(net: torch.nn.Module, device: torch.device, world: int) -> torch.nn.Module:
    """``net`` in ``DistributedDataParallel`` under DDP (gradients averaged), else ``net``."""
    if world <= 1:
        return net
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        net, device_ids=[device.index] if device.type == "cuda" else None
    )


def gather_rng(gen: torch.Generator, world: int, device: torch.device) -> list[torch.Tensor]:
    """Every rank's generator state, in rank order (a collective call under DDP)."""
    if world == 1:
        return [gen.get_state()]
    import torch.distributed as dist

    states: list[Any] = [None] * world
    dist.all_gather_object(states, gen.get_state())
    return [torch.as_tensor(s) for s in states]


def reduce_scalar(value: torch.Tensor, world: int, op: str = "mean") -> torch.Tensor:
    """All-reduce a scalar over ranks (a collective call under DDP)."""
    if world == 1:
        return value
    import torch.distributed as dist

    value = value.detach().clone().float()
    if op == "max":
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return value
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / world


def barrier(world: int) -> None:
    """Wait for every rank (a collective call under DDP)."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
