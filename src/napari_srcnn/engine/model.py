"""The SRCNN network (Dong et al., TPAMI 2016) built from an architecture spec.

The network works on an image that was already up-sampled bicubically to the target size:
patch extraction ``f1×f1, n1`` + ReLU, non-linear mapping ``f2×f2, n2`` + ReLU (optionally
repeated), reconstruction ``f3×f3, c``.

All convolutions are *valid* (unpadded). For inference at full size the input is padded once by
[`ArchSpec.halo`][napari_srcnn.engine.model.ArchSpec.halo] pixels (``padding="replicate"`` or
``"reflect"``), which is what makes tiled and untiled results identical and is faster than padding
in every layer. Training uses ``padding="valid"``: the loss is taken on the valid centre, as in the
paper.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

__all__ = ["PRESETS", "ArchSpec", "SRCNN", "init_identity", "init_paper"]

PADDINGS = ("replicate", "reflect", "valid")


@dataclass(frozen=True)
class ArchSpec:
    """Architecture of an SRCNN network.

    Parameters
    ----------
    f1, f2, f3
        Kernel sizes of patch extraction, non-linear mapping and reconstruction (odd).
    n1, n2
        Number of filters of the first and of the mapping layer(s).
    channels
        Image channels in and out: 1 (Y or a single scientific channel) or 3 (RGB).
    extra_layers
        Additional ``f2×f2, n2→n2`` mapping layers (the paper's deeper variants).
    """

    f1: int = 9
    f2: int = 5
    f3: int = 5
    n1: int = 64
    n2: int = 32
    channels: int = 1
    extra_layers: int = 0

    def __post_init__(self) -> None:
        for name in ("f1", "f2", "f3"):
            k = getattr(self, name)
            if not isinstance(k, int) or k < 1 or k % 2 == 0:
                raise InputError(f"kernel size {name}={k!r} must be a positive odd integer")
        for name in ("n1", "n2"):
            n = getattr(self, name)
            if not isinstance(n, int) or n < 1:
                raise InputError(f"filter count {name}={n!r} must be a positive integer")
        if self.channels not in (1, 3):
            raise InputError(f"channels={self.channels!r}: SRCNN models have 1 or 3 channels")
        if not isinstance(self.extra_layers, int) or self.extra_layers < 0:
            raise InputError(f"extra_layers={self.extra_layers!r} must be >= 0")

    @classmethod
    def parse(cls, text: str, channels: int = 1) -> ArchSpec:
        """Build a spec from a name such as ``"9-5-5"``, ``"9-5-5-5"`` or ``"9-5-5:128,64"``.

        Every kernel between the first and the last is a mapping layer, so ``9-5-5-5`` is
        the paper's four-layer network (one extra ``5×5`` mapping layer); the optional
        ``:n1,n2`` suffix sets the widths.
        """
        match = re.fullmatch(r"\s*(\d+(?:-\d+){2,})\s*(?::\s*(\d+)\s*,\s*(\d+)\s*)?", text)
        if match is None:
            raise InputError(f"architecture {text!r} is not of the form '9-5-5' or '9-5-5:64,32'")
        kernels = [int(k) for k in match.group(1).split("-")]
        widths = {}
        if match.group(2):
            widths = {"n1": int(match.group(2)), "n2": int(match.group(3))}
        return cls(
            f1=kernels[0],
            f2=kernels[1],
            f3=kernels[-1],
            extra_layers=len(kernels) - 3,
            channels=channels,
            **widths,
        )

    @property
    def name(self) -> str:
        """Short name, e.g. ``"9-5-5"`` (widths appended when not the paper's 64, 32)."""
        kernels = [self.f1, *[self.f2] * (1 + self.extra_layers), self.f3]
        text = "-".join(str(k) for k in kernels)
        if (self.n1, self.n2) != (64, 32):
            text += f":{self.n1},{self.n2}"
        return text

    @property
    def halo(self) -> int:
        """Receptive-field radius in pixels: how far context reaches into one output pixel."""
        return (
            (self.f1 - 1) // 2 + (self.f2 - 1) // 2 * (1 + self.extra_layers) + (self.f3 - 1) // 2
        )

    @property
    def num_parameters(self) -> int:
        """Number of weights and biases."""
        c, n1, n2 = self.channels, self.n1, self.n2
        total = c * n1 * self.f1**2 + n1
        total += n1 * n2 * self.f2**2 + n2
        total += self.extra_layers * (n2 * n2 * self.f2**2 + n2)
        total += n2 * c * self.f3**2 + c
        return total

    @property
    def macs_per_pixel(self) -> int:
        """Multiply-accumulates per output pixel (FLOPs per pixel = 2 × this)."""
        c, n1, n2 = self.channels, self.n1, self.n2
        macs = c * n1 * self.f1**2 + n1 * n2 * self.f2**2
        macs += self.extra_layers * n2 * n2 * self.f2**2
        return macs + n2 * c * self.f3**2

    def to_dict(self) -> dict[str, int]:
        """Plain dict, as stored in a weights file's metadata."""
        return {
            "f1": self.f1,
            "f2": self.f2,
            "f3": self.f3,
            "n1": self.n1,
            "n2": self.n2,
            "channels": self.channels,
            "extra_layers": self.extra_layers,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ArchSpec:
        """Inverse of `to_dict()`; unknown keys are an error."""
        unknown = set(data) - set(cls().to_dict())
        if unknown:
            raise InputError(f"unknown architecture keys: {sorted(unknown)}")
        return cls(**{k: int(v) for k, v in data.items()})


PRESETS: dict[str, ArchSpec] = {
    "9-1-5": ArchSpec(f1=9, f2=1, f3=5),
    "9-3-5": ArchSpec(f1=9, f2=3, f3=5),
    "9-5-5": ArchSpec(f1=9, f2=5, f3=5),
}


class SRCNN(nn.Module):
    """SRCNN network.

    Parameters
    ----------
    spec
        The architecture.
    padding
        ``"replicate"`` or ``"reflect"``: the input is padded once by ``spec.halo`` so the
        output has the input's size ("same" output). ``"valid"``: no padding, the output is
        ``2 * spec.halo`` pixels smaller on each axis (training).

    Notes
    -----
    Input and output are ``(N, C, H, W)`` float tensors with intensities in [0, 1]
    (C = ``spec.channels``). The output is not clamped, so that training sees the raw
    residual; callers clamp for display.
    """

    def __init__(self, spec: ArchSpec | None = None, padding: str = "replicate") -> None:
        super().__init__()
        self.spec = spec if spec is not None else ArchSpec()
        if padding not in PADDINGS:
            raise InputError(f"padding {padding!r} is not one of {PADDINGS}")
        self.padding = padding
        s = self.spec
        layers: list[nn.Module] = [nn.Conv2d(s.channels, s.n1, s.f1), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(s.n1, s.n2, s.f2), nn.ReLU(inplace=True)]
        for _ in range(s.extra_layers):
            layers += [nn.Conv2d(s.n2, s.n2, s.f2), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(s.n2, s.channels, s.f3))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding != "valid":
            h = self.spec.halo
            x = F.pad(x, (h, h, h, h), mode=self.padding)
        return self.body(x)

    def convs(self) -> list[nn.Conv2d]:
        """The convolution layers, first to last."""
        return [m for m in self.body if isinstance(m, nn.Conv2d)]


def init_paper(model: SRCNN, std: float = 1e-3, generator: torch.Generator | None = None) -> SRCNN:
    """Paper initialisation: weights ~ N(0, std²) (std = 0.001), biases 0. Returns ``model``."""
    with torch.no_grad():
        for conv in model.convs():
            conv.weight.normal_(0.0, std, generator=generator)
            assert conv.bias is not None
            conv.bias.zero_()
    return model


def init_identity(model: SRCNN, scale: float = 0.1) -> SRCNN:
    """Make ``model`` reproduce its (bicubic) input: a start that scores like bicubic.

    Channel ``i < c`` of every layer carries a centred delta of input channel ``i``, so the
    output equals the input (inputs are >= 0, so the ReLUs pass them); all other weights are
    multiplied by ``scale`` and start with no path to the output (the last layer's weights
    from them are zero). Training from here learns the residual over bicubic, which
    converges far faster than from a random start (the same trick as VDSR's global skip,
    inside the plain SRCNN architecture). Returns ``model``.
    """
    c = model.spec.channels
    with torch.no_grad():
        convs = model.convs()
        if any(conv.weight.shape[0] < c for conv in convs[:-1]):
            raise ValueError(f"identity init needs at least {c} filters per layer")
        for conv in convs:
            conv.weight.mul_(scale)
            k = conv.weight.shape[-1] // 2
            assert conv.bias is not None
            for i in range(c):
                conv.weight[i] = 0
                conv.weight[i, i, k, k] = 1
                conv.bias[i] = 0
        convs[-1].weight[:, c:] = 0
    return model
