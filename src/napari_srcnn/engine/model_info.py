"""What a weights file says about its network:
[`ModelInfo`][napari_srcnn.engine.model_info.ModelInfo] and its header format.

A weights file is a safetensors file whose header metadata holds everything needed to use the
network: ``format`` (always ``"napari-srcnn"``), ``format_version``, ``arch`` (JSON of
[`ArchSpec`][napari_srcnn.engine.model.ArchSpec]), ``scale``, ``color_mode`` (``"y"`` for a
single-channel model trained on luminance, ``"per-channel"`` for one trained on single-channel scientific
data, ``"rgb"`` for a 3-channel model), ``normalization`` and JSON blobs ``training`` (data, recipe,
steps, wall time, hardware) and ``metrics`` (measured PSNR/SSIM).
[`ModelInfo.to_metadata()`][napari_srcnn.engine.model_info.ModelInfo.to_metadata] writes that header
and [`ModelInfo.from_metadata()`][napari_srcnn.engine.model_info.ModelInfo.from_metadata] parses it.

The header is untrusted input: parsing it checks that the architecture is plausible (kernel sizes,
widths and depth far above any real SRCNN are refused) before anything is built, so a corrupt or
hostile header is a [`WeightsError`][napari_srcnn.errors.WeightsError] with a one-line message,
never a crash or a huge allocation. Reading and writing the files themselves is
[`napari_srcnn.engine.weights_file`][napari_srcnn.engine.weights_file].
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import WeightsError
from .files import one_line
from .model import ArchSpec

__all__ = [
    "COLOR_MODES",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_EXTRA_LAYERS",
    "MAX_KERNEL",
    "MAX_WIDTH",
    "ModelInfo",
    "check_plausible",
]

FORMAT = "napari-srcnn"
FORMAT_VERSION = 1
COLOR_MODES = ("y", "per-channel", "rgb")
# Files written before the mode had one name (0.1 pre-releases) say "gray" for "per-channel".
_LEGACY_MODES = {"gray": "per-channel"}
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
        ``"y"``, ``"per-channel"`` or ``"rgb"`` (see module docstring).
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
        """Parse a header written by `to_metadata()`; anything else is a WeightsError."""
        where = f" in {str(path)!r}" if path else ""
        if meta.get("format") != FORMAT:
            raise WeightsError(f"not a napari-srcnn weights file (no 'format' header){where}")
        try:
            version = int(meta.get("format_version", str(FORMAT_VERSION)))
            if version < 1:
                raise WeightsError(
                    f"weights format {version} is not a valid version (this napari-srcnn "
                    f"reads 1 to {FORMAT_VERSION}){where}"
                )
            if version > FORMAT_VERSION:
                raise WeightsError(
                    f"weights format {one_line(str(version), 20)} is newer than this napari-srcnn supports "
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
            check_plausible(spec, path or "weights metadata")
            return cls(
                name=printable(meta.get("name") or (path.stem if path else "model")),
                arch=spec,
                scale=float(meta["scale"]),
                color_mode=_LEGACY_MODES.get(
                    meta.get("color_mode", "y"), meta.get("color_mode", "y")
                ),
                normalization=printable(meta.get("normalization", "dtype")),
                description=printable(meta.get("description", "")),
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


def printable(text: str, limit: int = 200) -> str:
    """``text`` from an untrusted header, safe to print: control and format characters
    (terminal escapes, newlines, bidirectional overrides) become ``?``, at most ``limit``
    characters."""
    import unicodedata

    clean = "".join("?" if unicodedata.category(c)[0] == "C" else c for c in str(text))
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def check_plausible(arch: ArchSpec, path: Path | str | None) -> None:
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
