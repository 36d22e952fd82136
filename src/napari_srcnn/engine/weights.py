"""The registry of models: names for weights files, and
[`load_model()`][napari_srcnn.engine.weights.load_model].

Models have names: the files shipped in ``napari_srcnn/weights/`` (named by their stem), plus any
file registered at run time with [`register_model()`][napari_srcnn.engine.weights.register_model]
(the napari reader does this when a weights file is dropped on the viewer).
[`load_model()`][napari_srcnn.engine.weights.load_model] loads a model by name or by file path, and
warns when it is used at another scale than it was trained for.

The file format is defined elsewhere: the header metadata in
[`napari_srcnn.engine.model_info`][napari_srcnn.engine.model_info]
([`ModelInfo`][napari_srcnn.engine.model_info.ModelInfo]), reading and writing the files in
[`napari_srcnn.engine.weights_file`][napari_srcnn.engine.weights_file]
([`save_weights()`][napari_srcnn.engine.weights_file.save_weights],
[`read_info()`][napari_srcnn.engine.weights_file.read_info]). Their names are re-exported here, so
``napari_srcnn.engine.weights`` stays the one import for the CLI, the widgets and scripts.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import replace
from importlib import resources
from pathlib import Path

import torch

from ..errors import ScaleMismatchWarning, SRCNNWarning, WeightsError
from .model_info import (
    ModelInfo,
)
from .weights_file import (
    SUFFIX,
    LoadedModel,
    load_file,
    read_info,
)

__all__ = [
    "default_model_name",
    "fine_tune_start",
    "list_models",
    "load_model",
    "register_model",
    "unregister_model",
]

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
    """Forget a model added by [`register_model()`][napari_srcnn.engine.weights.register_model]
    (shipped models stay).

    Returns ``True`` if ``name`` was registered. A shipped model that a registration
    shadowed becomes visible again under its name.
    """
    return _REGISTERED.pop(name, None) is not None


def _named() -> dict[str, Path]:
    return {**_shipped(), **_REGISTERED}


def list_models() -> list[ModelInfo]:
    """Info of every named model: the shipped ones first, then registered files.

    A file that cannot be read (deleted since it was registered, corrupt) is left out with an
    [`SRCNNWarning`][napari_srcnn.errors.SRCNNWarning] instead of breaking the whole list.
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
    result is best at the trained factor). ``"per-channel"`` falls back to ``"y"`` models.
    Among equals the model with the most mapping capacity (9-5-5 over 9-1-5) wins.
    """
    modes = ("per-channel", "y") if color_mode == "per-channel" else (color_mode,)
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


def fine_tune_start(scale: float, color_mode: str) -> str | None:
    """The installed model a fine-tuning run starts from when none is named: the
    [`default_model_name()`][napari_srcnn.engine.weights.default_model_name] for the factor and
    colour mode, or ``None`` (train from scratch) when none is installed for that mode. The CLI
    (``train`` without ``--from``) and the train widget ("installed model") both ask here."""
    try:
        return default_model_name(scale, color_mode)
    except WeightsError:
        return None


def load_model(
    model: str | os.PathLike | LoadedModel,
    scale: float | None = None,
    device: str | torch.device = "cpu",
) -> LoadedModel:
    """Load a model by registry name or file path and move it to ``device``.

    Parameters
    ----------
    model
        A name from [`list_models()`][napari_srcnn.engine.weights.list_models], a ``.safetensors``
        file, a legacy ``.pt``/``.pth`` state dict (read with ``weights_only=True``; needs
        ``scale``), or an already loaded model (returned as is, moved to ``device``).
    scale
        The factor the model will be used at. Legacy files, which carry no metadata, need it. For
        other models a factor different from the trained one emits a
        [`ScaleMismatchWarning`][napari_srcnn.errors.ScaleMismatchWarning] (it works, SRCNN runs
        after bicubic up-sampling, but results are best at the trained factor).
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
    if not isinstance(model, (str, os.PathLike)):
        raise WeightsError(
            f"model {model!r} must be a model name, a weights file path or a LoadedModel"
        )
    named = _named()
    key = str(model)
    if key in named:
        loaded = load_file(named[key])
        loaded.info = replace(loaded.info, name=key)
    else:
        path = Path(model)
        if not path.exists() and not (path.suffix or os.sep in key):
            raise WeightsError(
                f"no model named {key!r}; choose one of {', '.join(named) or '(none installed)'}"
                " or give a weights file"
            )
        loaded = load_file(path, scale)
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
