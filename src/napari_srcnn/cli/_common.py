"""Arguments shared by several sub-commands, and the progress bar."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from typing import Any

from ..engine.files import one_line

PROG = "napari-srcnn"


def add_model_args(parser: argparse.ArgumentParser, bicubic: bool = False) -> None:
    """Add ``--model NAME | --weights FILE`` (mutually exclusive) to ``parser``.

    Parameters
    ----------
    parser
        The sub-command's parser.
    bicubic
        Also offer ``--bicubic`` (score bicubic only), for ``eval``.
    """
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--model",
        metavar="NAME",
        help="an installed model (see 'napari-srcnn models'); "
        "default: the one trained for the scale",
    )
    group.add_argument("--weights", metavar="FILE", help="a .safetensors weights file")
    if bicubic:
        group.add_argument("--bicubic", action="store_true", help="score bicubic only")


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; validated by the
    engine, so a missing CUDA or Apple GPU is a one-line error, never a crash later)."""
    parser.add_argument(
        "--device",
        default="auto",
        metavar="D",
        help="auto (default: CUDA, else the Apple GPU, else the CPU), cpu, cuda, cuda:N or mps",
    )


def add_strength_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--strength`` (``auto`` or a number in [0, 1]; validated by the engine)."""
    parser.add_argument(
        "--strength",
        default="auto",
        type=_strength,
        metavar="A",
        help="share of the network's correction over bicubic: 1 the plain model, 0 bicubic "
        "(default auto: measured on each image mapped by its own range, 1 for photographs)",
    )


def _strength(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text  # "auto", or a one-line error from the engine's options


def model_arg(args: argparse.Namespace) -> str | None:
    """The model the user chose: a weights file, a registry name, or ``None`` (default)."""
    return args.weights or args.model


def progress_bar(
    desc: str, unit: str = "tile"
) -> tuple[Callable[[int, int], Any], Callable[[], None]]:
    """A tqdm bar on stderr as a ``progress(done, total)`` callback, and its closer.

    Parameters
    ----------
    desc
        Label of the bar.
    unit
        What one step is (``"tile"``, ``"image"``).

    Returns
    -------
    (update, close)
        ``update(done, total)`` for the engine's ``progress`` argument, and the function that
        removes the bar. The bar is off when stderr is not a terminal (no noise in logs).
    """
    from tqdm.auto import tqdm

    bar = tqdm(desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.reset(total=total)
        bar.n = done
        bar.refresh()

    return update, bar.close


class HeldWarnings:
    """The CLI's ``warnings.showwarning``: one line per warning, no source location, each message
    once per run (a model loaded for a check and again for the work warns once).

    Until the command has checked its inputs ([`start_work()`][napari_srcnn.cli._common.start_work]),
    warnings are held back: a run that then fails prints its one error line only.
    """

    def __init__(self) -> None:
        self.shown: set[str] = set()
        self.held: list[str] | None = []

    def reset(self) -> None:
        """Forget what was shown and hold warnings back again (a new run of `main()`)."""
        self.shown, self.held = set(), []

    def __call__(self, message, category, filename, lineno, file=None, line=None) -> None:
        text = one_line(message)
        if text in self.shown:
            return
        self.shown.add(text)
        if self.held is not None:
            self.held.append(text)
        else:
            self._write(text)

    def flush(self) -> None:
        held, self.held = self.held or [], None
        for text in held:
            self._write(text)

    @staticmethod
    def _write(text: str) -> None:
        # A closed or broken stderr: a warning is not worth a crash.
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"{PROG}: warning: {text}\n")


#: The CLI's one warning printer (installed by `main()`).
WARNINGS = HeldWarnings()


def start_work() -> None:
    """Called by a command once its inputs are checked, before it prints or writes anything:
    the warnings held back so far are printed, later ones as they come."""
    WARNINGS.flush()
