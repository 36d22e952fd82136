"""Reading and writing weights files: safetensors, and legacy PyTorch state dicts.

[`save_weights()`][napari_srcnn.engine.weights_file.save_weights] writes a network and its
[`ModelInfo`][napari_srcnn.engine.model_info.ModelInfo] to a safetensors file, atomically;
[`read_info()`][napari_srcnn.engine.weights_file.read_info] reads only the header. The loaders
behind [`napari_srcnn.engine.weights.load_model()`][napari_srcnn.engine.weights.load_model] turn a
file into a [`LoadedModel`][napari_srcnn.engine.weights_file.LoadedModel]: ``_load_safetensors`` for
napari-srcnn files, ``_load_legacy`` for plain PyTorch state dicts.

Nothing is ever unpickled: safetensors holds raw tensors only. Legacy PyTorch files
(``.pt``/``.pth``) are read with ``torch.load(weights_only=True)``, which refuses any pickle payload
that is not plain tensors (a file that would run code is a
[`WeightsError`][napari_srcnn.errors.WeightsError], and the code never runs).

A weights file is untrusted input: its header is checked before anything is allocated (the
architecture must be plausible and the tensors' names, shapes and dtypes must be the ones it
implies), so a corrupt or hostile file is a [`WeightsError`][napari_srcnn.errors.WeightsError] with
a one-line message, never a crash, a huge allocation or a half-loaded network.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import WeightsError
from .files import atomic_path, check_readable_file, one_line
from .model import SRCNN, ArchSpec
from .model_info import ModelInfo, check_plausible

__all__ = [
    "FLOAT_DTYPES",
    "MAX_ABS_WEIGHT",
    "SUFFIX",
    "LoadedModel",
    "load_file",
    "read_info",
    "save_weights",
]

SUFFIX = ".safetensors"
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
#: Largest weight or bias accepted. Trained SRCNNs stay near 1 (the shipped ones: at most
#: 1.16); weights scaled far beyond saturate the network (0/255 output) or make it inf/NaN.
MAX_ABS_WEIGHT = 1e3


@dataclass
class LoadedModel:
    """A network with its metadata, ready to run."""

    net: SRCNN
    info: ModelInfo

    @property
    def name(self) -> str:
        """The model's registry name (or file name)."""
        return self.info.name


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


def load_file(path: str | os.PathLike, scale: float | None = None) -> LoadedModel:
    """Load one weights file, checked: safetensors, or a legacy PyTorch state dict (``.pt`` /
    ``.pth``, read without executing pickle code; ``scale`` is needed for those, which do not
    record it).

    Raises
    ------
    WeightsError
        A missing, empty, truncated, corrupt or unsafe file, tensors that do not fit the declared
        architecture, NaN/Inf weights, or a legacy file without ``scale``.
    """
    path = Path(path)
    check_readable_file(path, "weights file", WeightsError)
    if path.suffix.lower() in (".pt", ".pth"):
        return _load_legacy(path, scale)
    return _load_safetensors(path)


def read_info(path: str | os.PathLike) -> ModelInfo:
    """Read only the metadata of a safetensors weights file (cheap: no tensors loaded).

    Parameters
    ----------
    path
        A ``.safetensors`` file written by
        [`save_weights()`][napari_srcnn.engine.weights_file.save_weights].

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
    check_readable_file(path, "weights file", WeightsError)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:  # SafetensorError, OSError, MemoryError, ...: never a crash
        raise WeightsError(
            f"{str(path)!r} is not a valid safetensors weights file ({one_line(exc, 160)})"
        ) from None
    return ModelInfo.from_metadata(meta, path)


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
    check_plausible(info.arch, path)
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
    check_plausible(arch, path)
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
        biggest = float(tensor.abs().max()) if tensor.numel() else 0.0
        if biggest > MAX_ABS_WEIGHT:
            raise WeightsError(
                f"weights in {str(path)!r} are implausibly large ({name} reaches {biggest:.3g}; "
                f"SRCNN weights are near 1, at most {MAX_ABS_WEIGHT:g} is accepted): the file "
                "is corrupt or not an SRCNN"
            )
    return net.eval()


def _legacy_reason(exc: BaseException) -> str:
    """The useful part of ``torch.load``'s refusal, without its advice to unpickle anyway."""
    text = str(exc)
    # "Unsupported global: GLOBAL builtins.eval" (torch < 2.13), "Trying to load unsupported
    # GLOBAL posix.system whose module posix is blocked" (2.13): the name is what matters.
    found = re.search(r"\bGLOBAL\s+([\w.]+)", text, flags=re.IGNORECASE)
    if found:
        return f"it asks for {found.group(1)}, which a weights file never needs"
    found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    if found:  # "Unsupported operand 100": a pickle instruction tensors never need
        return one_line(found.group(1), 160) + ", which a weights file never needs"
    # Anything else: the first line, without PyTorch's advice to unpickle anyway.
    first = re.split(r"\bRe-running `torch\.load`|\bIn PyTorch 2\.6", text)[0]
    first = first.replace("Weights only load failed.", "").strip(" .")
    return one_line(first, 160) or type(exc).__name__


def _load_legacy(path: Path, scale: float | None) -> LoadedModel:
    """A PyTorch state dict (``.pt``/``.pth``), read without executing any pickle code."""
    try:
        # weights_only=True: the restricted unpickler builds tensors and plain containers
        # only; any other global (os.system, eval, a custom class) is refused, not called.
        with warnings.catch_warnings():  # PyTorch's own warnings are not the user's business
            warnings.simplefilter("ignore")
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
    check_plausible(arch, path)
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
