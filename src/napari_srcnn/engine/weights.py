"""Weights files (safetensors + metadata) and the registry of models.

A weights file is a safetensors file whose header metadata holds everything needed to use
the network: ``format`` (always ``"napari-srcnn"``), ``format_version``, ``arch`` (JSON of
:class:`~napari_srcnn.engine.model.ArchSpec`), ``scale``, ``color_mode`` (``"y"`` for a
single-channel model trained on luminance, ``"gray"`` for one trained on single-channel
scientific data, ``"rgb"`` for a 3-channel model), ``normalization`` and JSON blobs
``training`` (data, recipe, steps, wall time, hardware) and ``metrics`` (measured PSNR/SSIM).

Nothing is ever unpickled: safetensors holds raw tensors only. Legacy PyTorch files
(``.pt``/``.pth``) are read with ``torch.load(weights_only=True)``, which refuses any
pickle payload that is not plain tensors.

Models have names: the files shipped in ``napari_srcnn/weights/`` (named by their stem),
plus any file registered at run time with :func:`register_model` (the napari reader does
this when a weights file is dropped on the viewer).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import WeightsError
from .files import atomic_path
from .model import SRCNN, ArchSpec

__all__ = [
    "COLOR_MODES",
    "LoadedModel",
    "ModelInfo",
    "default_model_name",
    "list_models",
    "load_model",
    "read_info",
    "register_model",
    "save_weights",
]

FORMAT = "napari-srcnn"
FORMAT_VERSION = 1
COLOR_MODES = ("y", "gray", "rgb")
SUFFIX = ".safetensors"


@dataclass(frozen=True)
class ModelInfo:
    """What a weights file says about its network (everything but the tensors).

    Attributes
    ----------
    name
        Registry name (the file stem for shipped models) or the file's name.
    arch
        Network architecture.
    scale
        Up-sampling factor the network was trained for.
    color_mode
        ``"y"``, ``"gray"`` or ``"rgb"`` (see module docstring).
    normalization
        How intensities were normalised in training (``"dtype"``, ``"percentile"``).
    description
        One line for humans.
    training, metrics
        Free-form JSON-compatible records of how the model was made and how it scores.
    path
        Where the file is, when it came from a file.
    """

    name: str
    arch: ArchSpec
    scale: float
    color_mode: str = "y"
    normalization: str = "dtype"
    description: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.color_mode not in COLOR_MODES:
            raise WeightsError(f"colour mode {self.color_mode!r} is not one of {COLOR_MODES}")
        if self.color_mode == "rgb" and self.arch.channels != 3:
            raise WeightsError("an 'rgb' model must have 3 channels")
        if self.color_mode != "rgb" and self.arch.channels != 1:
            raise WeightsError(f"a {self.color_mode!r} model must have 1 channel")
        if not (self.scale > 0):
            raise WeightsError(f"scale {self.scale!r} must be positive")

    def to_metadata(self) -> dict[str, str]:
        """The safetensors header metadata (all values are strings)."""
        from .. import __version__

        return {
            "format": FORMAT,
            "format_version": str(FORMAT_VERSION),
            "name": self.name,
            "arch": json.dumps(self.arch.to_dict()),
            "scale": repr(float(self.scale)),
            "color_mode": self.color_mode,
            "normalization": self.normalization,
            "description": self.description,
            "training": json.dumps(self.training),
            "metrics": json.dumps(self.metrics),
            "napari_srcnn_version": __version__,
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str], path: Path | None = None) -> ModelInfo:
        """Parse a header written by :meth:`to_metadata`; anything else is a WeightsError."""
        where = f" in {str(path)!r}" if path else ""
        if meta.get("format") != FORMAT:
            raise WeightsError(f"not a napari-srcnn weights file (no 'format' header){where}")
        try:
            version = int(meta.get("format_version", "0"))
            if version > FORMAT_VERSION:
                raise WeightsError(
                    f"weights format {version} is newer than this napari-srcnn supports "
                    f"({FORMAT_VERSION}); upgrade napari-srcnn{where}"
                )
            return cls(
                name=meta.get("name") or (path.stem if path else "model"),
                arch=ArchSpec.from_dict(json.loads(meta["arch"])),
                scale=float(meta["scale"]),
                color_mode=meta.get("color_mode", "y"),
                normalization=meta.get("normalization", "dtype"),
                description=meta.get("description", ""),
                training=json.loads(meta.get("training", "{}")),
                metrics=json.loads(meta.get("metrics", "{}")),
                path=path,
            )
        except WeightsError:
            raise
        except (KeyError, ValueError, TypeError) as exc:
            raise WeightsError(f"corrupt napari-srcnn metadata{where}: {exc}") from None


@dataclass
class LoadedModel:
    """A network with its metadata, ready to run."""

    net: SRCNN
    info: ModelInfo

    @property
    def name(self) -> str:
        return self.info.name


# ----------------------------------------------------------------------------- files


def save_weights(path: str | os.PathLike, net: SRCNN, info: ModelInfo) -> Path:
    """Write ``net``'s weights and ``info`` to a safetensors file, atomically.

    Returns the path written. The architecture in ``info`` must be ``net``'s.
    """
    if info.arch != net.spec:
        raise WeightsError(f"metadata architecture {info.arch} does not match the network's")
    path = Path(path)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=info.to_metadata())
    return path


def _check_file(path: Path) -> None:
    if not path.exists():
        raise WeightsError(f"weights file {str(path)!r} does not exist")
    if path.is_dir():
        raise WeightsError(f"weights path {str(path)!r} is a folder, not a file")
    if path.stat().st_size == 0:
        raise WeightsError(f"weights file {str(path)!r} is empty")


def read_info(path: str | os.PathLike) -> ModelInfo:
    """Read only the metadata of a safetensors weights file (cheap: no tensors loaded)."""
    path = Path(path)
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{str(path)!r} is not a valid safetensors weights file ({exc})") from None
    return ModelInfo.from_metadata(meta, path)


def _load_safetensors(path: Path) -> LoadedModel:
    info = read_info(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open has no iter)
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{str(path)!r} is truncated or corrupt ({exc})") from None
    return LoadedModel(_build(state, info.arch, path), info)


def _build(state: dict[str, torch.Tensor], arch: ArchSpec, path: Path) -> SRCNN:
    net = SRCNN(arch)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise WeightsError(
            f"weights in {str(path)!r} do not fit architecture {arch.name} ({detail})"
        ) from None
    for name, tensor in net.state_dict().items():
        if not torch.isfinite(tensor).all():
            raise WeightsError(f"weights in {str(path)!r} contain NaN or Inf ({name})")
    return net.eval()


def _load_legacy(path: Path, scale: float | None) -> LoadedModel:
    """A PyTorch state dict (``.pt``/``.pth``), read without executing any pickle code."""
    import pickle

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"refused to load {str(path)!r}: not a plain tensor file ({first[:160]})"
        ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{str(path)!r} does not hold a state dict of tensors")
    weights = [v for k, v in obj.items() if k.endswith("weight") and v.ndim == 4]
    biases = [v for k, v in obj.items() if k.endswith("bias") and v.ndim == 1]
    if len(weights) < 3 or len(biases) != len(weights):
        raise WeightsError(f"{str(path)!r} does not look like an SRCNN state dict")
    try:
        arch = ArchSpec(
            f1=weights[0].shape[-1],
            f2=weights[1].shape[-1],
            f3=weights[-1].shape[-1],
            n1=weights[0].shape[0],
            n2=weights[1].shape[0],
            channels=weights[0].shape[1],
            extra_layers=len(weights) - 3,
        )
    except Exception as exc:
        raise WeightsError(f"{str(path)!r}: cannot infer an SRCNN architecture ({exc})") from None
    if scale is None:
        raise WeightsError(f"{str(path)!r} has no metadata; give the scale it was trained for")
    info = ModelInfo(
        name=path.stem,
        arch=arch,
        scale=float(scale),
        color_mode="rgb" if arch.channels == 3 else "y",
        description="legacy PyTorch state dict",
        path=path,
    )
    state = {}
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        state[f"body.{2 * i}.weight"] = w
        state[f"body.{2 * i}.bias"] = b
    return LoadedModel(_build(state, arch, path), info)


# -------------------------------------------------------------------------- registry

_REGISTERED: dict[str, Path] = {}


def _shipped() -> dict[str, Path]:
    folder = resources.files("napari_srcnn") / "weights"
    found = {}
    for entry in folder.iterdir():
        if entry.name.endswith(SUFFIX):
            found[entry.name[: -len(SUFFIX)]] = Path(str(entry))
    return dict(sorted(found.items()))


def register_model(path: str | os.PathLike, name: str | None = None) -> ModelInfo:
    """Make a weights file selectable by name (e.g. in the napari widgets). Returns its info."""
    info = read_info(path)
    key = name or info.name or Path(path).stem
    _REGISTERED[key] = Path(path)
    return replace(info, name=key)


def _named() -> dict[str, Path]:
    return {**_shipped(), **_REGISTERED}


def list_models() -> list[ModelInfo]:
    """Info of every named model: the shipped ones first, then registered files."""
    infos = []
    for key, path in _named().items():
        infos.append(replace(read_info(path), name=key))
    return infos


def default_model_name(scale: float, color_mode: str = "y") -> str:
    """Name of the shipped/registered model to use for ``scale`` and ``color_mode``.

    Picks the model of that colour mode whose training scale is nearest ``scale`` (a ×3
    model serves ×2.5: SRCNN runs after bicubic up-sampling, so any factor works; the
    result is best at the trained factor). ``"gray"`` falls back to ``"y"`` models.
    Among equals the model with the most mapping capacity (9-5-5 over 9-1-5) wins.
    """
    modes = ("gray", "y") if color_mode == "gray" else (color_mode,)
    for mode in modes:
        candidates = [m for m in list_models() if m.color_mode == mode]
        if candidates:
            best = min(
                candidates,
                key=lambda m: (abs(m.scale - scale), -m.arch.macs_per_pixel, m.name),
            )
            return best.name
    raise WeightsError(
        f"no {color_mode!r} model is installed for ×{scale:g}; pass a weights file "
        "(--weights) or train one (napari-srcnn train)"
    )


def load_model(
    model: str | os.PathLike | LoadedModel,
    scale: float | None = None,
    device: str | torch.device = "cpu",
) -> LoadedModel:
    """Load a model by registry name or file path and move it to ``device``.

    Parameters
    ----------
    model
        A name from :func:`list_models`, a ``.safetensors`` file, a legacy ``.pt``/``.pth``
        state dict (read with ``weights_only=True``; needs ``scale``), or an already loaded
        model (returned as is, moved to ``device``).
    scale
        Only used for legacy files, which carry no metadata.
    """
    if isinstance(model, LoadedModel):
        model.net.to(device)
        return model
    named = _named()
    key = str(model)
    if key in named:
        loaded = _load_safetensors(named[key])
        loaded.info = replace(loaded.info, name=key)
    else:
        path = Path(model)
        if not path.exists() and not (path.suffix or os.sep in key):
            raise WeightsError(
                f"no model named {key!r}; choose one of {', '.join(named) or '(none installed)'}"
                " or give a weights file"
            )
        _check_file(path)
        if path.suffix.lower() in (".pt", ".pth"):
            loaded = _load_legacy(path, scale)
        else:
            loaded = _load_safetensors(path)
    loaded.net.to(device)
    return loaded
