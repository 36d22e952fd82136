"""Engine messages in the words of a widget.

The engine speaks to three audiences at once (the Python API, the CLI, the widgets), so a
message may name a setting as a keyword (``channels='rgb'``), a command-line flag
(``--val-fraction``) or a command (``napari-srcnn train``). A widget user knows none of
these: `widget_message()` names the widget's own controls and menu entries instead
(``colour mode “RGB (3-channel model)”``). Each widget states its `Vocabulary`;
``tests/napari/test_messages.py`` passes every message the engine can raise through it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Vocabulary", "widget_message"]

#: Commands of the CLI → where the same job is done in napari (the package's name, as in
#: "a napari-srcnn weights file", stays).
COMMANDS = {
    "train": "the “SRCNN train / fine-tune” widget",
    "upscale": "the “SRCNN upscale” widget",
}

_QUOTED = r"'([^']*)'|\"([^\"]*)\"|([\w.+-]+)"
#: Quoted paths (the engine writes them as ``'/a/b.tif'``): never rewritten.
_PATH = re.compile(r"'[^']*[/\\][^']*'|\"[^\"]*[/\\][^\"]*\"")
#: What every widget says alike: the architecture's parts, napari's RGB flag.
COMMON_PATTERNS = (
    (r"\bkernel size \w+=(\S+)", r"kernel size \1"),
    (r"\bfilter count \w+=(\S+)", r"filter count \1"),
    (r"\bextra_layers=(\S+)", r"extra layers \1"),
    (
        r"\brgb=True needs a last axis of 3 \(RGB\) or 4 \(RGBA\)",
        "an RGB layer needs 3 or 4 colours",
    ),
)


@dataclass(frozen=True)
class Vocabulary:
    """How engine messages name one widget's controls.

    Attributes
    ----------
    controls
        Engine parameter name (``val_fraction``; also matched as ``val-fraction``,
        ``--val-fraction`` and ``val_fraction=``) → the control's label.
    values
        Engine parameter name → {engine value → the menu entry a user picks}.
    phrases
        Whole phrases replaced first, for advice that names several things at once.
    """

    controls: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    phrases: tuple[tuple[str, str], ...] = ()

    def label(self, name: str) -> str:
        """The control called ``name`` (underscores or hyphens) as the user sees it."""
        key = name.replace("-", "_")
        return f"“{self.controls.get(key, key.replace('_', ' '))}”"

    def value(self, name: str, value: str) -> str:
        """``value`` of parameter ``name`` as its menu entry (quoted)."""
        entries = self.values.get(name.replace("-", "_"), {})
        return f"“{entries.get(value, value)}”"


def widget_message(message: str, vocabulary: Vocabulary) -> str:
    """``message`` (one line, from the engine) with keywords, flags and commands replaced
    by the widget's controls (see `Vocabulary`)."""
    paths = _PATH.findall(message)
    text = _PATH.sub("\x00", message)
    for pattern, replacement in COMMON_PATTERNS:
        text = re.sub(pattern, replacement, text)
    for phrase, replacement in vocabulary.phrases:
        text = text.replace(phrase, replacement)

    # channels='rgb', val_fraction=0.5: “colour mode” “RGB (3-channel model)”
    names = "|".join(sorted(map(re.escape, vocabulary.controls), key=len, reverse=True))
    if names:

        def keyword(m: re.Match[str]) -> str:
            name, value = m.group(1), next(g for g in m.groups()[1:] if g is not None)
            return f"{vocabulary.label(name)} {vocabulary.value(name, value)}"

        text = re.sub(rf"\b({names})=(?:{_QUOTED})", keyword, text)

    # --val-fraction, --lr: the control's label
    text = re.sub(r"(?<![\w-])--([a-z][a-z0-9-]*)", lambda m: vocabulary.label(m.group(1)), text)
    # napari-srcnn train: the widget that does it
    commands = "|".join(COMMANDS)
    text = re.sub(rf"\bnapari-srcnn ({commands})\b", lambda m: COMMANDS[m.group(1)], text)
    # a quoted value after a control's name: colour mode 'y' -> colour mode “Y (luminance)”
    for name in vocabulary.values:
        spoken = vocabulary.controls.get(name, name)
        for word in {name, spoken}:

            def menu_entry(m: re.Match[str], name: str = name, word: str = word) -> str:
                return f"{word} {vocabulary.value(name, m.group(1) or m.group(2) or '')}"

            text = re.sub(rf"\b{re.escape(word)} (?:'([^']*)'|\"([^\"]*)\")", menu_entry, text)
    # bare parameter names with an underscore or hyphen: channel_axis 5, batch-size must…
    for name in vocabulary.controls:
        if "_" in name:
            for form in (name, name.replace("_", "-")):
                text = re.sub(
                    rf"(?<![\w“-]){re.escape(form)}(?![\w”-])", vocabulary.label(name), text
                )
    for path in paths:
        text = text.replace("\x00", path, 1)
    return text
