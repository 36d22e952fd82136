"""The ``napari-srcnn`` command line: the engine for headless machines.

Every sub-command lives in its own module and only translates arguments into one engine
call. What the user sees when something goes wrong:

- an error the user can fix ([`SRCNNError`][napari_srcnn.errors.SRCNNError], a file that cannot be
  read or written, out of memory): one line ``napari-srcnn: error: ...`` on stderr, exit code 2;
- a warning ([`SRCNNWarning`][napari_srcnn.errors.SRCNNWarning], e.g. a model used at another factor
  than it was trained for): one line ``napari-srcnn: warning: ...``, the work goes on;
- a bug of napari-srcnn itself: one line ``napari-srcnn: internal error: ...``, exit code 1;
- ``--debug``: the full traceback instead, for all of these errors, and the libraries'
  own log messages (tifffile's complaints about a corrupt file, ...), which are otherwise
  silenced because the error line already says what is wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import warnings
from collections.abc import Sequence

from .. import __version__
from ..engine.files import one_line
from ..errors import SRCNNError
from ._common import PROG, WARNINGS

EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports it


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's stop, ``timeout``, ``kill``), raised like Ctrl-C so that
    every writer removes its temporary file on the way out."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM stops the run as Ctrl-C does (in the main thread, when nobody else handles it)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``napari-srcnn`` argument parser with every sub-command."""
    from . import evaluate, models, samples, train, upscale

    parser = _Parser(
        prog=PROG,
        description="SRCNN super-resolution for microscopy and scientific images.",
    )
    parser.add_argument("--version", action="version", version=f"napari-srcnn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in (upscale, evaluate, train, models, samples):
        module.add_parser(sub)
    return parser


def _tolerant_streams() -> None:
    """Let stdout and stderr print what their encoding cannot hold (``×``, ``µm`` under
    ``PYTHONIOENCODING=ascii`` or a C locale) as escapes instead of failing the run."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(Exception):  # a stream that cannot change: leave it
                reconfigure(errors="backslashreplace")


def _error(message: str) -> None:
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr)


# What each command can do about running out of memory (train has no --tile).
_OOM_ADVICE = {
    "upscale": "use a smaller --tile, fewer or smaller images, or --device cpu",
    "eval": "score fewer or smaller images, or use --device cpu",
    "train": "use a smaller --batch or --patch, fewer or smaller images, or --device cpu",
}


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    return oom is not None and isinstance(exc, oom)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-srcnn`` console script.

    Parameters
    ----------
    argv
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code: 0 success, 1 internal error (a bug: please report it), 2 an error
        the user can fix (bad input, file, option, device), 130 interrupted (Ctrl-C), 143
        terminated (SIGTERM; every temporary file removed, as for Ctrl-C).
    """
    _tolerant_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    # Libraries log their own complaints about a broken file (tifffile: "invalid offset to
    # first page ..."); the error line says it already. --debug lets them through.
    root, quiet = logging.getLogger(), logging.NullHandler()
    if not args.debug:
        root.addHandler(quiet)
    WARNINGS.reset()  # each run holds its own warnings back until start_work()
    try:
        with warnings.catch_warnings(), _sigterm_as_interrupt():
            if not args.debug:
                warnings.showwarning = WARNINGS
            code = _run(args)
            if code == 0:
                WARNINGS.flush()  # a command that never called start_work()
            return code
    finally:
        root.removeHandler(quiet)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args) or 0)
    except _Terminated:
        print(f"{PROG}: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SRCNNError as exc:
        if args.debug:
            raise
        _error(str(exc))
        return EXIT_USAGE
    except Exception as exc:
        if args.debug:
            raise
        if _is_out_of_memory(exc):
            _error(f"out of memory; {_OOM_ADVICE.get(args.command, _OOM_ADVICE['upscale'])}")
            return EXIT_USAGE
        if isinstance(exc, OSError):  # a file the user named cannot be read or written
            _error(str(exc))
            return EXIT_USAGE
        print(
            f"{PROG}: internal error: {type(exc).__name__}: {one_line(exc, 300)} "
            "(rerun with --debug for the traceback and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
