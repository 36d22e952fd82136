"""Writing files so that nothing is lost: temp file in the same folder, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError

__all__ = ["atomic_path", "check_output_path"]


def check_output_path(path: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Validate an output path before any work is done.

    The folder must exist and be writable, the path must not be a folder, and it must not be
    one of ``inputs`` (writing over the input would destroy it).
    """
    out = Path(path)
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise InputError(f"output {str(out)!r} is a folder; give a file name")
    if not parent.is_dir():
        raise InputError(f"output folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"output folder {str(parent)!r} is not writable")
    for item in inputs:
        if Path(item).exists() and out.exists() and os.path.samefile(item, out):
            raise InputError(f"output {str(out)!r} would overwrite the input; choose another name")
    return out


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    If the body raises (or the process dies), ``path`` keeps its previous content and the
    temporary file is removed (a hard kill can leave a hidden ``.NAME.*.tmp.EXT`` file).
    """
    target = Path(path)
    # Keep the real suffix last: writers pick the format from it.
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600 (and writers may recreate the file): give the result the
        # permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
