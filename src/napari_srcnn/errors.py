"""The exception hierarchy shared by the engine, the CLI and the napari glue.

Every error a user can cause is an :class:`SRCNNError` with a one-line message that says
what to do. The CLI turns them into ``error: <message>`` on stderr and exit code 2; the
napari widgets show them as notifications.
"""

from __future__ import annotations

__all__ = [
    "CancelledError",
    "DeviceError",
    "InputError",
    "SRCNNError",
    "TrainingDataError",
    "WeightsError",
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
