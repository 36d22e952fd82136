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
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import InputError, WeightsError
from .files import atomic_path, one_line
from .train_config import MAX_LR

if TYPE_CHECKING:  # pragma: no cover
    from .data import TrainingData
    from .model import SRCNN, ArchSpec
    from .train_config import TrainConfig

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
    "loss",
    "ema",
)


def run_fingerprint(config: TrainConfig, arch: ArchSpec, data: TrainingData) -> dict[str, Any]:
    """What a resumed run must share with the checkpoint to continue it exactly."""
    shapes = [list(p.hr.shape) for p in data.train] + [[-1]] + [list(p.hr.shape) for p in data.val]
    described: dict[str, Any] = {
        "color_mode": data.color_mode,
        "planes": f"{len(data.train)} training / {len(data.val)} validation",
        "shapes": _digest(shapes),
    }
    if data.lr_levels != "float":  # (checkpoints of unrounded runs predate the key)
        described["lr_levels"] = data.lr_levels
    return {
        "data": described,
        "arch": arch.to_dict(),
        "scale": float(config.scale),
        "recipe": config.recipe,
        "init": None if config.init_from is not None else config.start,
        "batch_size": config.batch_size,
        "patch_size": config.patch_size,
        "grid_stride": config.grid_stride,
        "seed": config.seed,
        "loss": config.loss,
        "ema": config.ema,
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
    averaged: SRCNN | None = None,
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
    averaged
        The network holding the run's weight average, if it keeps one (``ema.*`` tensors).
    """
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    if averaged is not None:
        for k, v in averaged.state_dict().items():
            tensors[f"ema.{k}"] = v.detach().cpu().contiguous()
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
    meta["sha256"] = _checksum(tensors, meta)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _checksum(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> str:
    """SHA-256 of the metadata (but this checksum) and of every tensor's name, dtype, shape and
    bytes: a flipped bit, which safetensors itself cannot see, makes a checkpoint corrupt
    instead of a silently different run."""
    import hashlib

    digest = hashlib.sha256()
    digest.update(
        json.dumps({k: v for k, v in meta.items() if k != "sha256"}, sort_keys=True).encode()
    )
    for key in sorted(tensors):
        value = tensors[key].detach().cpu().contiguous()
        digest.update(f"{key}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


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
    # Checkpoints written before the checksum existed have none: they are checked field by field.
    if tensors and "sha256" in meta and meta["sha256"] != _checksum(loaded, meta):
        raise _corrupt(path, "its contents do not match their checksum: the file is damaged")
    return meta, loaded


def load_checkpoint(
    path: Path,
    net: SRCNN,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    fingerprint: dict,
    rank: int,
    averaged: SRCNN | None = None,
) -> dict:
    """Restore ``net``, ``opt``, this rank's ``gen`` and the weight average ``averaged`` (when the
    run keeps one) from a checkpoint.

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
    if not isinstance(saved, dict):
        raise _corrupt(path, "its settings record is not a JSON object")
    for key in ("arch", *_RESUME_KEYS):
        if key in saved and saved[key] != fingerprint[key]:
            if key == "data" and isinstance(saved[key], dict) and "planes" in saved[key]:
                raise InputError(
                    f"checkpoint {str(path)!r} was made on other training data "
                    f"({saved[key]['planes']} plane(s), this run has {fingerprint[key]['planes']}); "
                    "resume with the same data, --val-fraction and --seed"
                )
            raise InputError(
                f"checkpoint {str(path)!r} was written with {key.replace('_', '-')} "
                f"{one_line(repr(saved[key]), 80)}, this run has {fingerprint[key]!r}; "
                "resume with the same settings"
            )
    state = _checked_state(json.loads(meta["state"]), path)
    groups = json.loads(meta.get("groups", "[]"))
    _check_groups(groups, opt, path)
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    for name, tensor in model_state.items():
        if not torch.is_floating_point(tensor) or not torch.isfinite(tensor).all():
            raise _corrupt(path, f"network tensor {name} is not finite floating point")
    ema_state = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
    for name, tensor in ema_state.items():
        if not torch.is_floating_point(tensor) or not torch.isfinite(tensor).all():
            raise _corrupt(path, f"weight-average tensor {name} is not finite floating point")
    try:
        net.load_state_dict(model_state)
        if averaged is not None:
            averaged.load_state_dict(ema_state or model_state)
    except RuntimeError:
        raise WeightsError(f"checkpoint {str(path)!r} is for another architecture") from None
    optim = _checked_optim_state(tensors, net, opt, int(state["step"]), path)
    key = "rng" if rank == 0 else f"rng.{rank}"
    rng = tensors.get(key)
    if rng is not None:
        expected = gen.get_state()
        if rng.dtype != expected.dtype or tuple(rng.shape) != tuple(expected.shape):
            raise _corrupt(path, f"random-generator state {key} is {tuple(rng.shape)} {rng.dtype}")
    opt_state = opt.state_dict()
    for pid, pstate in optim.items():
        opt_state["state"].setdefault(pid, {}).update(pstate)
    for group, saved_group in zip(opt_state["param_groups"], groups, strict=True):
        group.update(saved_group)
    try:
        opt.load_state_dict(opt_state)
        if rng is not None:
            gen.set_state(rng)
        else:  # more processes than the run that wrote it: a fresh, still seeded stream
            gen.manual_seed(fingerprint["seed"] + 1000 * rank + 7919 * int(state["step"]))
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise _corrupt(path, one_line(exc, 120)) from None
    return state


def _corrupt(path: Path, why: str) -> WeightsError:
    return WeightsError(
        f"checkpoint {str(path)!r} is corrupt ({why}); start without --resume or from an "
        "intact checkpoint"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _checked_state(state: Any, path: Path) -> dict[str, Any]:
    """The progress record, checked: a step count, scores, a history, a flag."""
    if not isinstance(state, dict):
        raise _corrupt(path, "its progress record is not a JSON object")
    step = state.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise _corrupt(path, f"step {one_line(repr(step), 40)} is not a non-negative integer")
    for name in ("best_psnr", "start_psnr", "bicubic_psnr"):
        if name in state and not _is_number(state[name]):
            raise _corrupt(path, f"{name} {one_line(repr(state[name]), 40)} is not a number")
    seconds = state.get("seconds", 0.0)
    if not _is_number(seconds) or not (math.isfinite(seconds) and seconds >= 0):
        raise _corrupt(path, f"seconds {one_line(repr(seconds), 40)} is not a duration")
    if not isinstance(state.get("history", []), list) or not all(
        isinstance(h, dict) for h in state.get("history", [])
    ):
        raise _corrupt(path, "its history is not a list of records")
    if not isinstance(state.get("written", False), bool):
        raise _corrupt(path, "'written' is not true or false")
    if "output" in state and not isinstance(state["output"], str):
        raise _corrupt(path, "'output' is not a file name")
    return state


def _plain(value: Any) -> Any:
    """A setting as JSON gives it back (tuples are lists)."""
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def _check_groups(groups: Any, opt: torch.optim.Optimizer, path: Path) -> None:
    """The optimiser's parameter groups: as many as this run's, with its settings. The recipe
    (which the fingerprint checks) fixes every setting but the learning rate, which the
    schedule sets again at every step: anything else that differs is damage."""
    current = opt.param_groups
    if not isinstance(groups, list) or len(groups) != len(current):
        raise _corrupt(path, "its optimiser groups do not match this run's optimiser")
    for saved, group in zip(groups, current, strict=True):
        if not isinstance(saved, dict):
            raise _corrupt(path, "an optimiser group is not a JSON object")
        for key, value in saved.items():
            if key in ("lr", "initial_lr"):  # what a run can have had: see TrainConfig
                ok = _is_number(value) and 0 < value <= MAX_LR
            else:
                ok = key != "params" and key in group and value == _plain(group[key])
            if not ok:
                raise _corrupt(
                    path,
                    f"optimiser setting {one_line(repr(key), 40)} is {one_line(repr(value), 40)}",
                )


def _checked_optim_state(
    tensors: dict[str, torch.Tensor],
    net: SRCNN,
    opt: torch.optim.Optimizer,
    step: int,
    path: Path,
) -> dict[int, dict[str, torch.Tensor]]:
    """The optimiser's per-parameter tensors, checked against this run's optimiser and network:
    every parameter has the same complete set, of its shape, finite."""
    params = list(net.parameters())
    names = _OPTIM_STATE.get(type(opt).__name__, set())
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if not key.startswith("optim."):
            continue
        _, pid_text, name = (key.split(".", 2) + ["", ""])[:3]
        if not pid_text.isdigit() or int(pid_text) >= len(params) or name not in names:
            raise _corrupt(path, f"unexpected optimiser tensor {one_line(key, 60)}")
        pid = int(pid_text)
        shape = () if name == "step" else tuple(params[pid].shape)
        if tuple(value.shape) != shape and not (name == "step" and value.numel() == 1):
            raise _corrupt(
                path, f"optimiser tensor {key} is {tuple(value.shape)}, expected {shape}"
            )
        if not torch.is_floating_point(value) or not torch.isfinite(value).all():
            raise _corrupt(path, f"optimiser tensor {key} is not finite floating point")
        if name != "step" and value.dtype != params[pid].dtype:
            raise _corrupt(
                path, f"optimiser tensor {key} is {value.dtype}, not {params[pid].dtype}"
            )
        if name == "step" and float(value.reshape(-1)[0]) < 0:
            raise _corrupt(path, f"optimiser tensor {key} is negative")
        state.setdefault(pid, {})[name] = value.reshape(shape)
    kinds = {frozenset(s) for s in state.values()}
    required = _OPTIM_REQUIRED.get(type(opt).__name__, frozenset())
    complete = len(state) == len(params) and len(kinds) == 1 and required <= next(iter(kinds))
    if state and not complete:
        raise _corrupt(path, "its optimiser state is incomplete")
    if step > 0 and not state and required:
        raise _corrupt(path, f"it is at step {step} but holds no optimiser state")
    return state


# What the optimisers of the recipes keep per parameter (Adam with amsgrad adds max_exp_avg_sq).
_OPTIM_STATE = {
    "Adam": {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    "SGD": {"momentum_buffer"},
}
_OPTIM_REQUIRED = {
    "Adam": frozenset({"step", "exp_avg", "exp_avg_sq"}),
    "SGD": frozenset({"momentum_buffer"}),
}
