"""What the SRCNN widgets share: model and device choices, the model-registry signal, and
the arithmetic that makes an up-sampled layer overlay its source.

Nothing here imports torch at module import: the engine is imported inside the functions
that need it, so importing the widgets (or the reader, which registers weights files) stays
cheap until a widget is actually shown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from psygnal import Signal

from ..engine.files import one_line

__all__ = [
    "AUTO_MODEL",
    "AUTO_START",
    "MODEL_FILE",
    "SCRATCH",
    "LayerSnapshot",
    "device_choices",
    "image_layer_choices",
    "is_srcnn_result",
    "model_choices",
    "overlay_transform",
    "register_weights",
    "registry_events",
    "relay_warning",
    "result_layer_data",
    "selected_image_layers",
    "show_result",
]

#: Model-menu entries that are not registry names.
AUTO_MODEL = "auto (nearest scale)"
MODEL_FILE = "load weights file…"
SCRATCH = "from scratch"
AUTO_START = "installed model for the scale (else scratch)"


class _RegistryEvents:
    """Emitted (with the model name) when a weights file is registered at run time, so every
    open widget refreshes its model menu: the reader (a dropped ``.safetensors`` file) and
    the training widget (a finished run) both register models."""

    changed = Signal(str)


registry_events = _RegistryEvents()


def relay_warning(show_warn_args: tuple) -> None:
    """Show a warning raised in a worker (its ``warned`` signal) as a napari notification.

    napari's workers are meant to do this themselves, but their notifying mixin comes after
    ``QRunnable`` in the class hierarchy and its ``__init__`` never runs (napari 0.5-0.9).
    """
    from napari.utils.notifications import show_warning

    show_warning(one_line(show_warn_args[0]))


def register_weights(path: str | Path) -> str:
    """Register a weights file with the engine and tell the widgets. Returns its name."""
    from ..engine.weights import register_model

    info = register_model(path)
    registry_events.changed.emit(info.name)
    return info.name


def model_names() -> list[str]:
    """Names of the shipped and registered models (empty if the registry cannot be read)."""
    from ..engine.weights import list_models
    from ..errors import SRCNNError

    try:
        return [m.name for m in list_models()]
    except SRCNNError as exc:  # e.g. a registered file deleted since: keep the menu usable
        from napari.utils.notifications import show_warning

        show_warning(f"SRCNN model list incomplete: {one_line(exc)}")
        return []


def model_choices(first: str = AUTO_MODEL) -> list[str]:
    """Model menu: ``first`` (auto or from scratch), every named model, then a file."""
    return [first, *model_names(), MODEL_FILE]


def image_layer_choices(viewer: Any) -> list[tuple[str, Any]]:
    """``(name, layer)`` of every Image layer of ``viewer``, top of the layer list last."""
    from napari.layers import Image

    return [(layer.name, layer) for layer in viewer.layers if isinstance(layer, Image)]


def selected_image_layers(viewer: Any) -> list[Any]:
    """The Image layers selected in napari's layer list, in its order (top last)."""
    from napari.layers import Image

    selection = viewer.layers.selection
    return [layer for layer in viewer.layers if isinstance(layer, Image) and layer in selection]


def is_srcnn_result(layer: Any) -> bool:
    """Whether ``layer`` was made by an SRCNN widget (its metadata says so)."""
    metadata = getattr(layer, "metadata", None)
    return isinstance(metadata, dict) and "srcnn" in metadata


def device_choices() -> list[str]:
    """``auto`` and the devices this machine really has (``cpu``, ``cuda:0``, …)."""
    from ..engine.device import available_devices

    return ["auto", *available_devices()]


# ----------------------------------------------------------------------------- overlay


def overlay_transform(
    scale: Sequence[float],
    translate: Sequence[float],
    factor: float,
    linear: np.ndarray | None = None,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``scale`` and ``translate`` of a layer up-sampled by ``factor`` on its last two axes.

    napari puts pixel centres at integer data coordinates, so output pixel ``j`` sits at
    input coordinate ``j / f + (1/f - 1) / 2``: the two up-sampled axes get
    ``scale / f`` and ``translate + scale * (1/f - 1) / 2``; other axes are unchanged.

    Parameters
    ----------
    scale, translate
        The source layer's, one value per layer dimension (RGB samples excluded).
    factor
        Up-sampling factor (> 1).
    linear
        The source's rotation @ shear matrix (``ndim × ndim``), when not the identity: the
        half-pixel shift is then taken along the rotated/sheared axes.

    Returns
    -------
    (scale, translate)
        Tuples of floats, one per layer dimension.
    """
    scale_in = np.asarray(scale, dtype=float)
    ndim = scale_in.size
    if ndim < 2:
        raise ValueError(f"a layer with {ndim} dimension(s) has no Y/X plane to up-sample")
    shift = np.zeros(ndim)
    shift[-2:] = (1.0 / factor - 1.0) / 2.0
    out_scale = scale_in.copy()
    out_scale[-2:] /= factor
    offset = scale_in * shift
    if linear is not None:
        offset = np.asarray(linear, dtype=float) @ offset
    out_translate = np.asarray(translate, dtype=float) + offset
    return tuple(float(s) for s in out_scale), tuple(float(t) for t in out_translate)


@dataclass(frozen=True)
class LayerSnapshot:
    """The display state of a source layer, taken when a run starts (the layer may be
    changed or deleted while the run is under way)."""

    name: str
    ndim: int
    rgb: bool
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    linear: np.ndarray | None
    rotate: Any
    shear: Any
    affine: Any
    colormap: Any
    blending: str
    opacity: float
    gamma: float
    contrast_limits: tuple[float, float] | None
    units: Any
    axis_labels: Any
    metadata: dict = field(default_factory=dict)

    @classmethod
    def of(cls, layer: Any) -> LayerSnapshot:
        """Snapshot a napari Image layer."""
        from napari.utils.transforms import Affine

        linear = Affine(
            scale=np.ones(layer.ndim), rotate=layer.rotate, shear=layer.shear
        ).linear_matrix
        if np.allclose(linear, np.eye(layer.ndim)):
            linear = None
        return cls(
            name=layer.name,
            ndim=layer.ndim,
            rgb=bool(layer.rgb),
            scale=tuple(float(s) for s in layer.scale),
            translate=tuple(float(t) for t in layer.translate),
            linear=linear,
            rotate=np.asarray(layer.rotate),
            shear=np.asarray(layer.shear),
            affine=layer.affine.affine_matrix.copy(),
            colormap=layer.colormap,
            blending=layer.blending,
            opacity=float(layer.opacity),
            gamma=float(layer.gamma),
            contrast_limits=(float(layer.contrast_limits[0]), float(layer.contrast_limits[1])),
            units=getattr(layer, "units", None),
            axis_labels=getattr(layer, "axis_labels", None),
            metadata=dict(layer.metadata),
        )


def result_layer_data(
    source: LayerSnapshot,
    result: np.ndarray,
    factor: float,
    settings: dict[str, Any],
    plane_index: tuple[int, ...] | None = None,
) -> tuple[np.ndarray, dict[str, Any], str]:
    """The LayerDataTuple of an up-sampled result that overlays ``source``.

    Parameters
    ----------
    source
        The source layer's snapshot.
    result
        The engine's output: the whole layer up-sampled, or one plane of it (preview).
    factor
        The up-sampling factor.
    settings
        Model and run settings, stored under ``metadata["srcnn"]``.
    plane_index
        For a preview: the index of the plane over the layer's leading axes. The plane is
        given those axes back with length 1 and is translated to that index, so that it
        shows on its own slice only.

    Returns
    -------
    (data, kwargs, "image")
    """
    scale, translate = overlay_transform(source.scale, source.translate, factor, source.linear)
    if plane_index is not None:
        lead = len(plane_index)
        result = result.reshape((1,) * lead + result.shape)
        translate = tuple(
            t + i * s if ax < lead else t
            for ax, (t, s, i) in enumerate(
                zip(
                    translate,
                    source.scale,
                    (*plane_index, *(0,) * (source.ndim - lead)),
                    strict=True,
                )
            )
        )
    name = f"{source.name} ×{factor:g} SRCNN" + (" (preview)" if plane_index is not None else "")
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": scale,
        "translate": translate,
        "rotate": source.rotate,
        "shear": source.shear,
        "affine": source.affine,
        "rgb": source.rgb,
        "blending": source.blending,
        "opacity": source.opacity,
        "metadata": {**source.metadata, "srcnn": {"source": source.name, **settings}},
    }
    if not source.rgb:
        kwargs["colormap"] = source.colormap
        kwargs["gamma"] = source.gamma
        if source.contrast_limits is not None and all(map(math.isfinite, source.contrast_limits)):
            # Same dtype, same intensity scale: the source's limits show the result alike.
            lo, hi = source.contrast_limits
            kwargs["contrast_limits"] = (lo, hi) if hi > lo else None
    if source.units is not None:
        kwargs["units"] = source.units
    if source.axis_labels is not None:
        kwargs["axis_labels"] = source.axis_labels
    return result, kwargs, "image"


def show_result(viewer: Any, data: Any, kwargs: dict[str, Any]) -> None:
    """Add a result layer (`result_layer_data()`) to ``viewer``, or update an earlier result
    of the same name in place (removing a layer makes napari run a full garbage collection:
    ~0.5 s)."""
    from napari.layers import Image

    name = kwargs["name"]
    old = viewer.layers[name] if name in viewer.layers else None  # noqa: SIM401 (LayerList has no .get)
    if (
        isinstance(old, Image)
        and old.rgb == kwargs["rgb"]
        and old.ndim == data.ndim - kwargs["rgb"]
    ):
        old.data = data
        for key in (
            "scale",
            "translate",
            "rotate",
            "shear",
            "affine",
            "metadata",
            "blending",
            "opacity",
            "colormap",
            "gamma",
            "contrast_limits",
            "units",
            "axis_labels",
        ):
            if key in kwargs and kwargs[key] is not None:
                setattr(old, key, kwargs[key])
        return
    layer = Image(data, **kwargs)
    if old is not None:
        index = viewer.layers.index(old)
        viewer.layers.pop(index)
        viewer.layers.insert(index, layer)
    else:
        viewer.layers.append(layer)
