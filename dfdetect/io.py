"""Atomic file writes and output-path checks: the ground floor every room may use.

A report, figure, model or weights file is either the previous one or the complete new
one, never half of each: it is written to a temporary file in the same folder and
renamed over the target (``os.replace`` is atomic within a file system); a failed write
removes its temporary file. Output paths are checked *before* the work that fills them
starts, so a run that cannot write says so at once instead of after an hour of scoring.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import math
import os
import tempfile
from io import StringIO
from typing import Iterator, Mapping, Sequence

import numpy as np

from dfdetect.errors import DataError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_output_dir",
           "check_output_file", "format_cell", "sha256_of", "os_error_line", "read_table", "rows_to_csv",
           "write_table"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path beside ``path``; renames it over ``path`` on success.

    The temporary name keeps ``path``'s extension (``.tmp-<random>-name.png``) because
    writers such as matplotlib and Keras choose the format from it. On any exception the
    temporary file is removed and the exception propagates; ``path`` is untouched.

    Args:
        path: the final file.

    Yields:
        The temporary file's path, for the writer to fill.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(path))
    os.close(fd)
    # mkstemp creates 0600; give the file the permissions an ordinary open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> str:
    """Writes ``data`` to ``path`` atomically (see :func:`atomic_path`); returns the path.

    Args:
        path: the final file.
        data: its content.
        fsync: flush to the disk before the rename (survives a power cut). Thousands of
            small crops skip it: a kill still leaves whole files, and fsync per crop
            would slow a store build several-fold.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
    return os.fspath(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` to ``path`` so a reader never sees a half-written file.

    Args:
        path: the final file (its folder is created).
        text: its content, written with ``newline=""`` so CSV line ends stay ``\\n``.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def format_cell(value) -> str:
    """One table cell as text: NaN and None empty, whole floats as integers.

    Args:
        value: a number, string or None.
    """
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        # Counts averaged over repeats (parameters, sizes) stay whole numbers.
        if float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{float(value):.6g}"
    if isinstance(value, (np.integer,)):
        return str(int(value))
    return "" if value is None else str(value)


def rows_to_csv(rows: Sequence[Mapping], columns: Sequence[str] | None = None) -> str:
    """Renders dict rows as CSV text; columns default to the union in first-seen order.

    Args:
        rows: the rows.
        columns: the header (keys not in it are left out).
    """
    if columns is None:
        columns = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
    buffer = StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: format_cell(row.get(k)) for k in columns})
    return buffer.getvalue()


def write_table(path: str | os.PathLike, rows: Sequence[Mapping],
                columns: Sequence[str] | None = None) -> None:
    """Writes a whole CSV table atomically (see :func:`rows_to_csv`)."""
    atomic_write_text(path, rows_to_csv(rows, columns))


def read_table(path: str | os.PathLike) -> list[dict]:
    """Reads a CSV table as a list of string-valued dicts ([] if it does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (weights files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _nearest_existing(path: str) -> str:
    """``path`` or its closest ancestor that exists (something always does: ``/``)."""
    current = os.path.abspath(path)
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def _probe_writable(folder: str, target: str, what: str) -> None:
    """Creates and removes a file in ``folder``: the only check root and read-only
    mounts cannot fool (``os.access`` says yes to root on a read-only bind mount)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".dfdetect-probe-")
    except OSError as err:
        raise DataError(f"cannot write the {what} here ({os_error_line(err, with_file=False)})",
                        target) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def _check_parent(path: str, what: str) -> None:
    existing = _nearest_existing(os.path.dirname(os.path.abspath(path)) or ".")
    if not os.path.isdir(existing):
        raise DataError(f"cannot write the {what}: {existing} is a file, not a folder; "
                        "choose another path", path)
    _probe_writable(existing, path, what)


def check_output_file(path: str | os.PathLike, what: str = "output file") -> str:
    """Checks that a file can be written at ``path`` before the work that fills it.

    Nothing is created except a probe file, removed at once.

    Args:
        path: the file to be written.
        what: how the message names it (``JSON report``, ``plot``...).

    Returns:
        ``path`` as a string.

    Raises:
        DataError: ``path`` is a folder, lies under a file, or its folder is not writable
            (permissions, read-only disk, ``/proc``) -- one line naming it.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise DataError(f"the {what} path is a folder: give a file name", path)
    _check_parent(path, what)
    return path


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> str:
    """Checks that ``path`` is, or can become, a writable folder.

    Args:
        path: the folder to be filled.
        what: how the message names it.

    Returns:
        ``path`` as a string.

    Raises:
        DataError: ``path`` is a file, lies under a file, or is not writable.
    """
    path = os.fspath(path)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise DataError(f"the {what} is a file, not a folder: choose a folder", path)
    if os.path.isdir(path):
        _probe_writable(path, path, what)
    else:
        _check_parent(path, what)
    return path


_ERRNO_HINTS = {
    errno.ENOSPC: "no space left on the device: free some space (or choose another disk) "
                  "and rerun; finished work is kept",
    errno.EDQUOT: "disk quota exceeded: free some space and rerun; finished work is kept",
    errno.EACCES: "permission denied: choose a path you may read/write, or fix its permissions",
    errno.EPERM: "operation not permitted: choose a path you may read/write",
    errno.EROFS: "read-only file system: choose a writable location",
    errno.ENOTDIR: "a part of this path is a file, not a folder: choose another path",
    errno.EISDIR: "this is a folder, not a file: give a file name",
    errno.ENOENT: "no such file or folder: check the path",
    errno.EEXIST: "already exists: remove it or choose another path",
    errno.ENAMETOOLONG: "the file name is too long: choose a shorter path",
    errno.EIO: "input/output error: the disk or file may be damaged",
}


def os_error_line(err: OSError, with_file: bool = True) -> str:
    """One line for an :class:`OSError`: ``<file>: <what to do>``.

    Args:
        err: the error.
        with_file: start with the file the error names (when it names one).
    """
    hint = _ERRNO_HINTS.get(err.errno) or (err.strerror or " ".join(str(err).split())
                                            or type(err).__name__)
    name = err.filename
    if with_file and name is not None:
        return f"{os.fsdecode(name) if isinstance(name, bytes) else name}: {hint}"
    return hint
