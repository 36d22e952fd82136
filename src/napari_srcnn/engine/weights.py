"""Weights files (safetensors + metadata) and the registry of models.

A weights file is a safetensors file whose header metadata holds everything needed to use
the network: ``format`` (always ``"napari-srcnn"``), ``format_version``, ``arch`` (JSON of
:class:`~napari_srcnn.engine.model.ArchSpec`), ``scale``, ``color_mode`` (``"y"`` for a
single-channel model trained on luminance, ``"gray"`` for one trained on single-channel
scientific data, ``"rgb"`` for a 3-channel model), ``normalization`` and JSON blobs
``training`` (data, recipe, steps, wall time, hardware) and ``metrics`` (measured PSNR/SSIM).

Nothing is ever unpickled: safetensors holds raw tensors only. Legacy PyTorch files
(``.pt``/``.pth``) are read with ``torch.load(weights_only=True)``, which refuses any
pickle payload that is not plain tensors (a file that would run code is a
:class:`~napari_srcnn.errors.WeightsError`, and the code never runs).

A weights file is untrusted input: its header is checked before anything is allocated
(the architecture must be plausible and the tensors' names, shapes and dtypes must be the
ones it implies), so a corrupt or hostile file is a :class:`WeightsError` with a one-line
message, never a crash, a huge allocation or a half-loaded network.

Models have names: the files shipped in ``napari_srcnn/weights/`` (named by their stem),
plus any file registered at run time with :func:`register_model` (the napari reader does
this when a weights file is dropped on the viewer).
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import ScaleMismatchWarning, SRCNNWarning, WeightsError
from .files import atomic_path, check_readable_file, one_line
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
    "unregister_model",
]

FORMAT = "napari-srcnn"
FORMAT_VERSION = 1
COLOR_MODES = ("y", "gray", "rgb")
SUFFIX = ".safetensors"
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
# Plausibility limits for architectures read from files (the paper's largest network is
# 9-5-5-5 with n1 = 64; these are orders of magnitude above any real SRCNN).
MAX_KERNEL = 63
MAX_WIDTH = 4096
MAX_EXTRA_LAYERS = 64


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
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)):
            raise WeightsError(f"scale {self.scale!r} must be a number")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise WeightsError(f"scale {self.scale!r} must be a positive finite number")

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
            arch = json.loads(meta["arch"])
            if not isinstance(arch, dict):
                raise ValueError("'arch' is not a JSON object")
            training = json.loads(meta.get("training", "{}"))
            metrics = json.loads(meta.get("metrics", "{}"))
            if not isinstance(training, dict) or not isinstance(metrics, dict):
                raise ValueError("'training' and 'metrics' must be JSON objects")
            spec = ArchSpec.from_dict(arch)
            _check_plausible(spec, path or "weights metadata")
            return cls(
                name=meta.get("name") or (path.stem if path else "model"),
                arch=spec,
                scale=float(meta["scale"]),
                color_mode=meta.get("color_mode", "y"),
                normalization=meta.get("normalization", "dtype"),
                description=meta.get("description", ""),
                training=training,
                metrics=metrics,
                path=path,
            )
        except WeightsError:
            raise
        # KeyError, ValueError (json, ArchSpec), TypeError, OverflowError (int(1e400)),
        # RecursionError (deeply nested JSON): a hostile header must not escape as a crash.
        except Exception as exc:
            raise WeightsError(
                f"corrupt napari-srcnn metadata{where}: {one_line(exc, 160)}"
            ) from None


@dataclass
class LoadedModel:
    """A network with its metadata, ready to run."""

    net: SRCNN
    info: ModelInfo

    @property
    def name(self) -> str:
        """The model's registry name (or file name)."""
        return self.info.name


# ----------------------------------------------------------------------------- files


def save_weights(path: str | os.PathLike, net: SRCNN, info: ModelInfo) -> Path:
    """Write ``net``'s weights and ``info`` to a safetensors file, atomically.

    Parameters
    ----------
    path
        The ``.safetensors`` file to write (its folder must exist).
    net
        The network; its tensors are stored as float32.
    info
        Its metadata; ``info.arch`` must be ``net.spec``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    WeightsError
        If ``info`` does not describe ``net``.
    WriteError
        If the file cannot be written; an existing file at ``path`` is then unchanged.
    """
    if info.arch != net.spec:
        raise WeightsError(f"metadata architecture {info.arch} does not match the network's")
    path = Path(path)
    tensors = {
        k: v.detach().to("cpu", torch.float32).contiguous() for k, v in net.state_dict().items()
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=info.to_metadata())
    return path


def _check_file(path: Path) -> None:
    check_readable_file(path, "weights file", WeightsError)


def read_info(path: str | os.PathLike) -> ModelInfo:
    """Read only the metadata of a safetensors weights file (cheap: no tensors loaded).

    Parameters
    ----------
    path
        A ``.safetensors`` file written by :func:`save_weights`.

    Returns
    -------
    ModelInfo
        The file's metadata.

    Raises
    ------
    WeightsError
        If the file is missing, empty, not safetensors, not a napari-srcnn weights file,
        from a newer napari-srcnn, or its metadata is corrupt.
    """
    path = Path(path)
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:  # SafetensorError, OSError, MemoryError, ...: never a crash
        raise WeightsError(
            f"{str(path)!r} is not a valid safetensors weights file ({one_line(exc, 160)})"
        ) from None
    return ModelInfo.from_metadata(meta, path)


def _check_plausible(arch: ArchSpec, path: Path | str | None) -> None:
    """Refuse architectures no real SRCNN has before building anything (memory bombs)."""
    if (
        max(arch.f1, arch.f2, arch.f3) > MAX_KERNEL
        or max(arch.n1, arch.n2) > MAX_WIDTH
        or arch.extra_layers > MAX_EXTRA_LAYERS
    ):
        # Not arch.name: it lists every layer, and a hostile count would exhaust memory.
        raise WeightsError(
            f"{str(path)!r} declares an implausible architecture (kernels {arch.f1}/{arch.f2}/"
            f"{arch.f3}, widths {arch.n1}/{arch.n2}, {arch.extra_layers} extra layers); "
            "the file is corrupt or not an SRCNN"
        )


def _expected_shapes(arch: ArchSpec) -> dict[str, tuple[int, ...]]:
    """Names and shapes of ``SRCNN(arch)``'s tensors, computed without allocating them."""
    with torch.device("meta"):
        net = SRCNN(arch)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _check_shapes(shapes: dict[str, tuple[int, ...]], arch: ArchSpec, path: Path) -> None:
    expected = _expected_shapes(arch)
    problem = ""
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing:
        problem = f"missing {', '.join(missing[:3])}"
    elif unexpected:
        problem = f"unexpected {', '.join(unexpected[:3])}"
    else:
        for key, shape in expected.items():
            if tuple(shapes[key]) != shape:
                problem = f"{key} is {tuple(shapes[key])}, expected {shape}"
                break
    if problem:
        raise WeightsError(
            f"weights in {str(path)!r} do not fit architecture {arch.name} ({problem})"
        )


def _load_safetensors(path: Path) -> LoadedModel:
    info = read_info(path)
    _check_plausible(info.arch, path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            keys = list(fh.keys())
            slices = {k: fh.get_slice(k) for k in keys}
            shapes = {k: tuple(sl.get_shape()) for k, sl in slices.items()}
            dtypes = {k: str(sl.get_dtype()) for k, sl in slices.items()}
            _check_shapes(shapes, info.arch, path)
            bad = [k for k, d in dtypes.items() if d not in FLOAT_DTYPES]
            if bad:
                raise WeightsError(
                    f"weights in {str(path)!r} are not floating point ({bad[0]}: {dtypes[bad[0]]})"
                )
            state = {k: fh.get_tensor(k) for k in keys}
    except WeightsError:
        raise
    except Exception as exc:  # SafetensorError, OSError, MemoryError, ...
        raise WeightsError(
            f"{str(path)!r} is truncated or corrupt ({one_line(exc, 160)})"
        ) from None
    return LoadedModel(_build(state, info.arch, path), info)


def _build(state: dict[str, torch.Tensor], arch: ArchSpec, path: Path) -> SRCNN:
    _check_plausible(arch, path)
    _check_shapes({k: tuple(v.shape) for k, v in state.items()}, arch, path)
    net = SRCNN(arch)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise WeightsError(
            f"weights in {str(path)!r} do not fit architecture {arch.name} ({one_line(detail, 160)})"
        ) from None
    for name, tensor in net.state_dict().items():
        if not torch.isfinite(tensor).all():
            raise WeightsError(f"weights in {str(path)!r} contain NaN or Inf ({name})")
    return net.eval()


def _legacy_reason(exc: BaseException) -> str:
    """The useful part of ``torch.load``'s refusal, without its advice to unpickle anyway."""
    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return f"it asks for {found.group(1)}, which a weights file never needs"
    found = re.search(r"WeightsUnpickler error: ([^\n]+)", text)
    if found:
        return one_line(found.group(1), 160)
    return one_line(text, 160) or type(exc).__name__


def _load_legacy(path: Path, scale: float | None) -> LoadedModel:
    """A PyTorch state dict (``.pt``/``.pth``), read without executing any pickle code."""
    try:
        # weights_only=True: the restricted unpickler builds tensors and plain containers
        # only; any other global (os.system, eval, a custom class) is refused, not called.
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, zip errors, MemoryError, ...
        raise WeightsError(
            f"refused to load {str(path)!r}: not a plain tensor file ({_legacy_reason(exc)}); "
            "nothing in it was executed"
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
    _check_plausible(arch, path)
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
    """Make a weights file selectable by name (e.g. in the napari widgets).

    Parameters
    ----------
    path
        A napari-srcnn ``.safetensors`` file (its metadata is checked now).
    name
        Registry name; default the name in its metadata, else the file stem.

    Returns
    -------
    ModelInfo
        The file's metadata under its registry name.

    Raises
    ------
    WeightsError
        If the file is not a readable napari-srcnn weights file.
    """
    info = read_info(path)
    key = name or info.name or Path(path).stem
    _REGISTERED[key] = Path(path)
    return replace(info, name=key)


def unregister_model(name: str) -> bool:
    """Forget a model added by :func:`register_model` (shipped models stay).

    Returns ``True`` if ``name`` was registered. A shipped model that a registration
    shadowed becomes visible again under its name.
    """
    return _REGISTERED.pop(name, None) is not None


def _named() -> dict[str, Path]:
    return {**_shipped(), **_REGISTERED}


def list_models() -> list[ModelInfo]:
    """Info of every named model: the shipped ones first, then registered files.

    A file that cannot be read (deleted since it was registered, corrupt) is left out with
    an :class:`~napari_srcnn.errors.SRCNNWarning` instead of breaking the whole list.
    """
    infos = []
    for key, path in _named().items():
        try:
            infos.append(replace(read_info(path), name=key))
        except WeightsError as exc:
            warnings.warn(SRCNNWarning(f"model {key!r} left out: {exc}"), stacklevel=2)
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
        The factor the model will be used at. Legacy files, which carry no metadata, need
        it. For other models a factor different from the trained one emits a
        :class:`~napari_srcnn.errors.ScaleMismatchWarning` (it works, SRCNN runs after
        bicubic up-sampling, but results are best at the trained factor).
    device
        Where to put the network.

    Returns
    -------
    LoadedModel
        The network in eval mode, on ``device``, with its metadata.

    Raises
    ------
    WeightsError
        For an unknown name, a missing, empty, truncated, corrupt or unsafe file (a pickle
        that is not plain tensors is refused, never executed), tensors that do not fit the
        declared architecture, NaN/Inf weights, or a legacy file without ``scale``.
    """
    if isinstance(model, LoadedModel):
        model.net.to(device)
        _check_scale(model.info, scale)
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
    _check_scale(loaded.info, scale)
    loaded.net.to(device)
    return loaded


def _check_scale(info: ModelInfo, scale: float | None) -> None:
    """Warn when a model is used at another factor than it was trained for."""
    if scale is None or isinstance(scale, bool) or not isinstance(scale, (int, float)):
        return
    if not math.isfinite(scale) or math.isclose(float(scale), info.scale, rel_tol=1e-6):
        return
    warnings.warn(
        ScaleMismatchWarning(
            f"model {info.name!r} was trained for ×{info.scale:g} and is used at ×{scale:g}: "
            "this works (SRCNN refines a bicubic up-sampling) but is best at the trained factor"
        ),
        stacklevel=3,
    )
