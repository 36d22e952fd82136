"""Writing files so that nothing is lost: temp file in the same folder, then rename.

Every file napari-srcnn writes (images, weights, training checkpoints) goes through
`atomic_path()`: the writer fills a hidden temporary file next to the target, the data
is flushed to disk (``fsync``), and only then is the temporary file renamed over the target
(``os.replace``, atomic on POSIX and Windows within one folder). A crash, a disk-full error
or a kill at any moment therefore leaves either the old file or the new one, never a mix.

`check_output_path()` validates an output path *before* any work is done, so that a
long computation does not end in "cannot write".
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError, SRCNNError, WriteError

__all__ = [
    "atomic_dir",
    "atomic_path",
    "check_output_path",
    "check_readable_file",
    "name_max",
    "one_line",
]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal colour codes in library messages


def one_line(text: object, limit: int = 300) -> str:
    """``text`` as a single line of at most ``limit`` characters (for error messages).

    Library exceptions (tifffile, safetensors, OS errors) sometimes carry several lines;
    the CLI and the widgets promise one line per error. An exception without a message gives
    its type's name.
    """
    line = " ".join(_ANSI.sub("", str(text)).split())
    if not line and isinstance(text, BaseException):
        line = type(text).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def check_output_path(path: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Validate an output path before any work is done.

    Parameters
    ----------
    path
        The file that will be written.
    inputs
        Files the run reads; the output must not be one of them (also through a symbolic
        or hard link), because writing over the input would destroy it.

    Returns
    -------
    pathlib.Path
        ``path`` as a `Path`.

    Raises
    ------
    InputError
        If the path is a folder, its folder does not exist or is not writable, or it is one
        of ``inputs``.

    Notes
    -----
    Writability is checked with `os.access()`, which says "writable" to root even on a
    read-only folder; the write itself then fails with
    [`WriteError`][napari_srcnn.errors.WriteError]
    and, thanks to `atomic_path()`, without touching an existing file.
    """
    out = Path(path)
    parent = out.parent if str(out.parent) else Path(".")
    if "\0" in str(out):
        raise InputError(f"invalid output path {str(out)!r}: it contains a NUL character")
    try:
        limit = name_max(parent if parent.is_dir() else ".")
        if len(os.fsencode(out.name)) > limit:
            raise InputError(
                f"output file name {one_line(out.name, 60)!r} is {len(os.fsencode(out.name))} "
                f"bytes long, more than the {limit} the file system allows; choose a shorter name"
            )
        if out.is_dir():
            raise InputError(f"output {str(out)!r} is a folder; give a file name")
        if not parent.is_dir():
            if parent.exists():
                raise InputError(f"output folder {str(parent)!r} is a file, not a folder")
            raise InputError(f"output folder {str(parent)!r} does not exist")
        if not os.access(parent, os.W_OK):
            raise InputError(f"output folder {str(parent)!r} is not writable")
        for item in inputs:
            if Path(item).exists() and out.exists() and os.path.samefile(item, out):
                raise InputError(
                    f"output {str(out)!r} would overwrite the input; choose another name"
                )
    except (OSError, ValueError) as exc:  # name too long, NUL byte, permission on stat
        if isinstance(exc, SRCNNError):
            raise
        raise InputError(f"invalid output path {str(out)!r}: {one_line(exc)}") from None
    return out


def name_max(folder: str | os.PathLike) -> int:
    """The longest file name, in bytes, that ``folder``'s file system takes (255 if unknown)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (AttributeError, ValueError, OSError):  # not POSIX, or a folder that is not there
        return 255


def _temp_affixes(target: Path, folder: Path) -> tuple[str, str]:
    """Prefix and suffix of the hidden temporary file ``.NAME.XXXXXXXX.tmp.SUFFIX`` for
    ``target``, with NAME shortened so that the whole name fits the file system (a valid
    254-character target must not fail at the very end, when its temporary file is made)."""
    suffix = f".tmp{target.suffix}"
    room = name_max(folder) - len(os.fsencode(suffix)) - 2 - 8  # two dots, mkstemp's 8 letters
    stem = target.stem
    while stem and len(os.fsencode(stem)) > max(0, room):
        stem = stem[:-1]
    return f".{stem}.", suffix


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    Parameters
    ----------
    path
        The file to (over)write. Its folder must exist.

    Yields
    ------
    pathlib.Path
        A fresh, empty, hidden file ``.NAME.XXXX.tmp.SUFFIX`` in the same folder (the real
        suffix is kept last because writers pick the format from it). The body writes the
        whole content there.

    Raises
    ------
    WriteError
        If the temporary file cannot be created (missing or read-only folder), or the body,
        the flush or the rename fail with an `OSError` (disk full, quota, I/O
        error). The original error is chained as ``__cause__``.

    Notes
    -----
    If the body raises (or the process dies), ``path`` keeps its previous content and the
    temporary file is removed; only a hard kill (SIGKILL, power loss) can leave the hidden
    temporary file behind, never a damaged ``path``. An existing ``path`` keeps its
    permission bits; a new one gets those a plain ``open()`` would give.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    prefix, suffix = _temp_affixes(target, folder)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    except OSError as exc:
        raise WriteError(f"cannot write {str(target)!r}: {one_line(exc)}") from exc
    except ValueError as exc:  # a NUL character in the name
        raise InputError(f"invalid output path {str(target)!r}: {one_line(exc)}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        try:
            if target.is_symlink():  # replaced, never followed: not the link target's mode
                raise FileNotFoundError(target)
            mode = os.stat(target).st_mode & 0o7777
        except OSError:
            # mkstemp creates 0600: give a new file the permissions a plain open() would.
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, SRCNNError):
            raise WriteError(
                f"cannot write {str(target)!r}: {one_line(exc)}; "
                "the previous file (if any) is unchanged"
            ) from exc
        raise
    _fsync_folder(folder)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new temporary folder next to ``path``; on success rename it to ``path``.

    For outputs that are folders (a zarr store): ``path`` either appears complete or not at
    all. ``path`` must not exist (a folder cannot be swapped in over another atomically).

    Raises
    ------
    InputError
        If ``path`` exists already.
    WriteError
        If the folder cannot be made or renamed, or the body fails with an `OSError`;
        the temporary folder is removed (only a hard kill can leave a hidden
        ``.NAME.XXXX.tmp.SUFFIX`` folder behind).
    """
    import shutil

    target = Path(path)
    if target.exists():
        raise InputError(f"output {str(target)!r} already exists; remove it or choose another name")
    folder = target.parent if str(target.parent) else Path(".")
    prefix, suffix = _temp_affixes(target, folder)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=folder))
    except OSError as exc:
        raise WriteError(f"cannot write {str(target)!r}: {one_line(exc)}") from exc
    try:
        yield tmp
        os.rename(tmp, target)  # fails, rather than merging, if target appeared meanwhile
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, SRCNNError):
            raise WriteError(f"cannot write {str(target)!r}: {one_line(exc)}") from exc
        raise
    _fsync_folder(folder)


def check_readable_file(path: Path, what: str, error: type[SRCNNError]) -> None:
    """Raise ``error`` (one line) unless ``path`` is an existing, non-empty regular file.

    ``what`` names the file in the message (``"input"``, ``"weights file"``).
    """
    try:
        if not path.exists():
            raise error(f"{what} {str(path)!r} does not exist")
        if path.is_dir():
            raise error(f"{what} {str(path)!r} is a folder, not a file")
        if not path.is_file():
            raise error(f"{what} {str(path)!r} is not a regular file")
        if path.stat().st_size == 0:
            raise error(f"{what} {str(path)!r} is an empty file")
    except (OSError, ValueError) as exc:  # permission denied, name too long, NUL byte
        if isinstance(exc, SRCNNError):
            raise
        raise error(f"cannot read {what} {str(path)!r}: {one_line(exc)}") from None
