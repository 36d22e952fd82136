"""What the widgets call things: their menu entries (label → engine value) and the
vocabulary their engine messages are told in (see `widget_message()`)."""

from __future__ import annotations

from ._messages import Vocabulary

__all__ = [
    "CHANNEL_LABELS",
    "COLOR_LABELS",
    "NORMALIZATION_LABELS",
    "TRAIN_VOCABULARY",
    "UPSCALE_VOCABULARY",
]

#: Colour-mode menu: label → ``UpscaleOptions.channels``.
CHANNEL_LABELS = {
    "auto": "auto",
    "Y (luminance; chroma bicubic)": "y",
    "RGB (3-channel model)": "rgb",
    "per channel": "per-channel",
}
#: Normalisation menu: label → ``UpscaleOptions.normalization``.
NORMALIZATION_LABELS = {
    "auto": "auto",
    "dtype range": "dtype",
    "percentiles": "percentile",
    "none (as stored)": "none",
}
#: How engine messages name the upscale widget's controls.
UPSCALE_VOCABULARY = Vocabulary(
    controls={
        "scale": "scale ×",
        "channels": "colour mode",
        "channel_axis": "channel axis",
        "tile": "tile (px)",
        "device": "device",
        "normalization": "normalisation",
        "percentiles": "percentiles",
        "precision": "precision",
        "weights": "weights file",
    },
    values={
        "channels": {value: label for label, value in CHANNEL_LABELS.items()},
        "normalization": {value: label for label, value in NORMALIZATION_LABELS.items()},
    },
    phrases=(
        (
            "pass a weights file (--weights) or train one (napari-srcnn train)",
            "pick “load weights file…” in the model menu, or train one in the "
            "“SRCNN train / fine-tune” widget",
        ),
        (" and rgb not False", ""),
        ("needs a last axis of 3 (RGB) or 4 (RGBA)", "needs an RGB layer"),
        (
            "use normalization 'dtype' or 'none'",
            "choose normalisation “dtype range” or “none (as stored)”",
        ),
    ),
)
#: Colour-mode menu: label → training-data colour mode (as the CLI's ``--channels``).
COLOR_LABELS = {"auto": "auto", "Y (luminance)": "y", "RGB": "rgb", "per channel": "per-channel"}
#: How engine messages name the training widget's controls.
TRAIN_VOCABULARY = Vocabulary(
    controls={
        "scale": "scale ×",
        "channels": "colour mode",
        "color_mode": "colour mode",
        "channel_axis": "channel axis",  # of an upscale: not a setting here, said alike
        "arch": "architecture",
        "init": "start model",
        "init_from": "start model",
        "steps": "steps",
        "lr": "learning rate",
        "batch_size": "batch size",
        "patch_size": "patch size",
        "val_fraction": "validation fraction",
        "val_every": "validate every",
        "checkpoint_every": "validate every",
        "device": "device",
        "output": "output file",
        "weights": "weights file",
    },
    values={
        "channels": {value: label for label, value in COLOR_LABELS.items()},
        "color_mode": {value: label for label, value in COLOR_LABELS.items()},
    },
    phrases=(
        (
            "use --channels y or per-channel",
            "choose colour mode “Y (luminance)” or “per channel”",
        ),
        ("lower --lr", "lower the “learning rate”"),
        ("smaller sub-image size", "smaller “patch size”"),
        (
            "pass a weights file (--weights) or train one (napari-srcnn train)",
            "pick another start model, or “from scratch”",
        ),
    ),
)
