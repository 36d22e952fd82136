"""Training checkpoints: the file format, and resuming a run exactly where it stopped.

A checkpoint is a safetensors file (``OUT.ckpt.safetensors`` by default) holding the network
(``model.*``), the optimiser's tensors (``optim.<param>.<name>``) and every rank's random-generator
state (``rng``, ``rng.<rank>``); its metadata holds ``kind`` (always `CHECKPOINT_KIND`), the
progress record ``state`` (step, best PSNR, history, …), the optimiser's parameter groups, the run's
[`run_fingerprint()`][napari_srcnn.engine.checkpoints.run_fingerprint] and the world size, all as
JSON. It is written atomically (`atomic_path()`), so a run killed at any moment leaves the previous
checkpoint intact. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import InputError, WeightsError
from .files import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from .data import TrainingData
    from .model import SRCNN, ArchSpec
    from .training import TrainConfig

__all__ = [
    "CHECKPOINT_KIND",
    "load_checkpoint",
    "read_checkpoint_state",
    "run_fingerprint",
    "save_checkpoint",
]

CHECKPOINT_KIND = "napari-srcnn-checkpoint"
# Settings a checkpoint must share with the run that resumes it (steps and lr may change).
_RESUME_KEYS = (
    "data",
    "scale",
    "recipe",
    "init",
    "batch_size",
    "patch_size",
    "grid_stride",
    "seed",
)


def run_fingerprint(config: TrainConfig, arch: ArchSpec, data: TrainingData) -> dict[str, Any]:
    """What a resumed run must share with the checkpoint to continue it exactly."""
    shapes = [list(p.hr.shape) for p in data.train] + [[-1]] + [list(p.hr.shape) for p in data.val]
    return {
        "data": {
            "color_mode": data.color_mode,
            "planes": f"{len(data.train)} training / {len(data.val)} validation",
            "shapes": _digest(shapes),
        },
        "arch": arch.to_dict(),
        "scale": float(config.scale),
        "recipe": config.recipe,
        "init": None if config.init_from is not None else config.start,
        "batch_size": config.batch_size,
        "patch_size": config.patch_size,
        "grid_stride": config.grid_stride,
        "seed": config.seed,
    }


def _digest(value: Any) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]


def save_checkpoint(
    path: Path,
    net: SRCNN,
    opt: torch.optim.Optimizer,
    rngs: list[torch.Tensor],
    state: dict,
    fingerprint: dict,
) -> None:
    """Write a checkpoint atomically.

    Parameters
    ----------
    path
        The checkpoint file (replaced only once the new one is complete).
    net, opt
        The network and its optimiser.
    rngs
        Every rank's generator state, in rank order.
    state
        The progress record (JSON-serialisable).
    fingerprint
        The run's [`run_fingerprint()`][napari_srcnn.engine.checkpoints.run_fingerprint], checked on
        resume.
    """
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    opt_state = opt.state_dict()
    for pid, pstate in opt_state["state"].items():
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = (
                    value.detach().cpu().contiguous().reshape(value.shape)
                )
    tensors["rng"] = rngs[0]
    for r, g in enumerate(rngs[1:], start=1):
        tensors[f"rng.{r}"] = g
    meta = {
        "kind": CHECKPOINT_KIND,
        "state": json.dumps(state),
        "groups": json.dumps(
            [{k: v for k, v in g.items() if k != "params"} for g in opt_state["param_groups"]]
        ),
        "config": json.dumps(fingerprint),
        "world": str(len(rngs)),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def read_checkpoint_state(path: str | os.PathLike) -> dict[str, Any]:
    """The progress record of a checkpoint (``step``, ``best_psnr``, ``history``, …)."""
    meta, _ = _read_checkpoint(Path(path), tensors=False)
    return json.loads(meta["state"])


def _read_checkpoint(
    path: Path, tensors: bool = True
) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    if not path.exists():
        raise WeightsError(
            f"checkpoint {str(path)!r} does not exist (nothing to resume; start without --resume)"
        )
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("kind") != CHECKPOINT_KIND:
                raise WeightsError(f"{str(path)!r} is not a napari-srcnn training checkpoint")
            loaded = {k: fh.get_tensor(k) for k in fh.keys()} if tensors else {}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"cannot read checkpoint {str(path)!r} ({exc})") from None
    try:
        for key, default in (("state", None), ("groups", "[]"), ("config", "{}")):
            json.loads(meta[key] if default is None else meta.get(key, default))
    except (KeyError, ValueError):
        raise WeightsError(
            f"checkpoint {str(path)!r} is corrupt: its progress record is missing or unreadable"
        ) from None
    return meta, loaded


def load_checkpoint(
    path: Path,
    net: SRCNN,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    fingerprint: dict,
    rank: int,
) -> dict:
    """Restore ``net``, ``opt`` and this rank's ``gen`` from a checkpoint.

    Returns the progress record. A rank the checkpoint has no generator state for (more
    processes than the run that wrote it) gets a fresh stream, still seeded.

    Raises
    ------
    InputError
        The checkpoint was written with other settings or data than ``fingerprint``'s.
    WeightsError
        A missing, unreadable or corrupt checkpoint, or one of another architecture.
    """
    meta, tensors = _read_checkpoint(path)
    saved = json.loads(meta.get("config", "{}"))
    for key in ("arch", *_RESUME_KEYS):
        if key in saved and saved[key] != fingerprint[key]:
            if key == "data":
                raise InputError(
                    f"checkpoint {str(path)!r} was made on other training data "
                    f"({saved[key]['planes']} plane(s), this run has {fingerprint[key]['planes']}); "
                    "resume with the same data, --val-fraction and --seed"
                )
            raise InputError(
                f"checkpoint {str(path)!r} was written with {key.replace('_', '-')} {saved[key]!r}, "
                f"this run has {fingerprint[key]!r}; resume with the same settings"
            )
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        net.load_state_dict(model_state)
    except RuntimeError:
        raise WeightsError(f"checkpoint {str(path)!r} is for another architecture") from None
    opt_state = opt.state_dict()
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            opt_state["state"].setdefault(int(pid), {})[name] = value
    for group, saved_group in zip(
        opt_state["param_groups"], json.loads(meta["groups"]), strict=True
    ):
        group.update(saved_group)
    opt.load_state_dict(opt_state)
    state = json.loads(meta["state"])
    key = "rng" if rank == 0 else f"rng.{rank}"
    if key in tensors:
        gen.set_state(tensors[key])
    else:  # more processes than the run that wrote it: a fresh, still seeded stream
        gen.manual_seed(fingerprint["seed"] + 1000 * rank + 7919 * int(state["step"]))
    return state
