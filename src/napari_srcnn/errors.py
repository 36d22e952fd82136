"""The exception hierarchy shared by the engine, the CLI and the napari glue.

Every error a user can cause is an [`SRCNNError`][napari_srcnn.errors.SRCNNError] with a one-line
message that says what to do. The CLI turns them into ``error: <message>`` on stderr and exit code
2; the napari widgets show them as notifications.

Things that work but deserve the user's attention are
[`SRCNNWarning`][napari_srcnn.errors.SRCNNWarning] s (Python warnings): the CLI prints them as one
``warning:`` line, napari shows them as warning notifications. See ``docs/reliability.md`` for which
input raises what.
"""

from __future__ import annotations

__all__ = [
    "CancelledError",
    "DeviceError",
    "InputError",
    "SRCNNError",
    "SRCNNWarning",
    "ScaleMismatchWarning",
    "TrainingDataError",
    "WeightsError",
    "WriteError",
]


class SRCNNError(Exception):
    """Base class of every error napari-srcnn raises on purpose."""


class InputError(SRCNNError, ValueError):
    """An image, array, path or parameter that cannot be processed."""


class WeightsError(SRCNNError, ValueError):
    """A weights file that is missing, corrupt, unsafe or does not fit the request."""


class DeviceError(SRCNNError, RuntimeError):
    """A requested compute device that is not available."""


class TrainingDataError(InputError):
    """Training data that cannot yield training pairs (empty, too small, NaN, mismatched)."""


class CancelledError(SRCNNError):
    """Work stopped because the caller's cancel callback asked for it."""


class WriteError(SRCNNError, OSError):
    """A file that could not be written (disk full, no permission, read-only folder).

    Raised by every writer of the package (images, weights, checkpoints): the file is
    written to a temporary file next to the target and renamed, so when this is raised the
    previous content of the target is intact and no partial file is left behind. It is also
    an `OSError`, so ``except OSError`` keeps working.
    """


class SRCNNWarning(UserWarning):
    """Base class of the warnings napari-srcnn issues (the work is done, with a caveat)."""


class ScaleMismatchWarning(SRCNNWarning):
    """A model is used at another factor than the one it was trained for.

    SRCNN works on a bicubic up-sampling, so any factor runs; the result is best at the
    trained factor.
    """
