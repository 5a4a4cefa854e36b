"""Atomic file writes and output-path checks: the ground floor every room may use.

A report, figure, model or weights file is either the previous one or the complete new
one, never half of each: it is written to a temporary file in the same folder and
renamed over the target (``os.replace`` is atomic within a file system); a failed write
removes its temporary file. Only regular files are replaced: a symbolic link is followed
and its target written, a FIFO, device or socket is refused (a rename would put a
regular file in its place). A folder of outputs that belong together (``evaluate
--out``) is written as a fresh folder and swapped in whole (:func:`replaced_folder`).

Output paths are checked *before* the work that fills them starts, so a run that cannot
write says so at once instead of after an hour of scoring, and no output may name one of
the run's inputs (:func:`refuse_overwriting_inputs`: resolved paths and inodes).
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import errno
import hashlib
import math
import os
import shutil
import stat
import sys
import tempfile
from io import StringIO
from typing import Iterator, Mapping, Sequence

import numpy as np

from dfdetect.errors import DataError, DfdetectError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_output_dir",
           "check_output_file", "env_number", "format_cell", "os_error_line", "quick_digest",
           "quiet_stderr", "read_table", "refuse_overwriting_inputs", "replaced_folder",
           "rows_to_csv", "same_file", "sha256_of", "start_tensorflow", "write_table",
           "write_target"]


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISDIR, "a folder"))


def _not_regular(mode: int) -> str | None:
    """What a non-regular file is (``a FIFO (named pipe)``...), or None for a regular one."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def write_target(path: str | os.PathLike, what: str = "output") -> str:
    """The file a write to ``path`` replaces: ``path``, or the target of a symlink.

    Renaming a temporary file over a symlink would replace the link and leave its target
    as it was; over a FIFO or a device it would put a regular file where the pipe or
    device was (its reader never gets the data). So a link is followed, and anything
    that is not a regular file (or a path that does not exist yet) is refused.

    Args:
        path: the output path as the user gave it.
        what: how the message names it (``JSON report``...).

    Returns:
        The path to write: ``path`` resolved through any symbolic links.

    Raises:
        DataError: ``path`` is (or links to) a FIFO, device, socket or folder.
        OSError: the path cannot be examined (a symlink loop, permissions).
    """
    path = os.fspath(path)
    target = os.path.realpath(path)
    try:
        mode = os.stat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return target  # a new file (or a dangling link's target); its folder is checked apart
    kind = _not_regular(mode)
    if kind is not None and kind != "a folder":
        raise DataError(f"the {what} path is {kind}, not a regular file: dfdetect writes "
                        "only regular files (it would replace it); choose another path", path)
    if kind == "a folder":
        raise DataError(f"the {what} path is a folder: give a file name", path)
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path beside ``path``; renames it over ``path`` on success.

    ``path`` goes through :func:`write_target` first: a symlink's target is written, a
    FIFO, device or socket refused. The temporary name keeps ``path``'s extension
    (``.tmp-<random>-name.png``) because writers such as matplotlib and Keras choose the
    format from it. On any exception the temporary file is removed and the exception
    propagates; ``path`` is untouched. A replaced file's permissions are kept.

    Args:
        path: the final file.

    Yields:
        The temporary file's path, for the writer to fill.
    """
    path = write_target(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(path))
    os.close(fd)
    # mkstemp creates 0600: keep the mode of the file replaced, else what open() gives.
    os.chmod(tmp, _mode_to_keep(path, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _mode_to_keep(path: str, default: int) -> int:
    """The permissions of what ``path`` replaces, else ``default`` less the umask (what
    ``open()`` / ``mkdir()`` would give a new one)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return default & ~_umask()


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


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


#: Bytes read from each end of a file for :func:`quick_digest`.
QUICK_DIGEST_BYTES = 1 << 16


def quick_digest(path: str | os.PathLike) -> str:
    """A content fingerprint that costs two reads: SHA-256 over the file's size, its
    first and its last 64 KiB.

    Tells two different videos with the same name apart (their containers' headers and
    tails differ) without reading gigabytes on every resumed run; it is not a checksum
    against tampering.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        digest.update(str(size).encode())
        digest.update(handle.read(QUICK_DIGEST_BYTES))
        if size > QUICK_DIGEST_BYTES:
            handle.seek(max(QUICK_DIGEST_BYTES, size - QUICK_DIGEST_BYTES))
            digest.update(handle.read())
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


def _check_parent(path: str, what: str, target: str | None = None) -> None:
    """Checks that the folder of ``target`` (default ``path``) can take a new file; the
    messages name ``path``, as the user gave it."""
    target = path if target is None else target
    existing = _nearest_existing(os.path.dirname(os.path.abspath(target)) or ".")
    if not os.path.isdir(existing):
        raise DataError(f"cannot write the {what}: {existing} is a file, not a folder; "
                        "choose another path", path)
    _probe_writable(existing, path, what)


def _refuse_empty(path: str, what: str, noun: str) -> None:
    # '' would mean the current folder (or no output at all), never what was meant.
    if not path.strip():
        raise DataError(f"the {what} path is empty: give a {noun} name")


def check_output_file(path: str | os.PathLike, what: str = "output file") -> str:
    """Checks that a file can be written at ``path`` before the work that fills it.

    Nothing is created except a probe file, removed at once.

    Args:
        path: the file to be written.
        what: how the message names it (``JSON report``, ``plot``...).

    Returns:
        ``path`` as a string.

    Raises:
        DataError: ``path`` is empty, a folder, a FIFO, device or socket (or a link to
            one), lies under a file, or its folder is not writable (permissions,
            read-only disk, ``/proc``) -- one line naming it.
    """
    path = os.fspath(path)
    _refuse_empty(path, what, "file")
    if os.path.isdir(path):
        raise DataError(f"the {what} path is a folder: give a file name", path)
    _check_parent(path, what, target=write_target(path, what))
    return path


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> str:
    """Checks that ``path`` is, or can become, a writable folder.

    Args:
        path: the folder to be filled.
        what: how the message names it.

    Returns:
        ``path`` as a string.

    Raises:
        DataError: ``path`` is empty or a file, lies under a file, or is not writable.
    """
    path = os.fspath(path)
    _refuse_empty(path, what, "folder")
    if os.path.lexists(path) and not os.path.isdir(path):
        raise DataError(f"the {what} is a file, not a folder: choose a folder", path)
    if os.path.isdir(path):
        _probe_writable(path, path, what)
    else:
        _check_parent(path, what)
    return path


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file or folder: equal once links are resolved, or one
    inode (a hard link, a bind mount). A path that does not exist matches only by name."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _holds(folder: str, path: str) -> bool:
    """Whether ``path`` lies inside ``folder`` (both resolved)."""
    folder, path = os.path.realpath(folder), os.path.realpath(path)
    return path != folder and os.path.commonpath([folder, path]) == folder


def refuse_overwriting_inputs(output: str | os.PathLike, inputs, what: str = "output",
                              holds: bool = False) -> None:
    """Refuses an output path that names one of the run's inputs, before any work.

    ``predict v.mp4 --json v.mp4`` would replace the video with its own report. Paths
    are compared resolved (``./v.mp4``, a symlink to it) and by inode (a hard link).

    Args:
        output: the output file or folder.
        inputs: every input of the run: the files and folders named, the files found in
            those folders, the model.
        what: how the message names the output (``JSON report``, ``output folder``...).
        holds: the output is a folder that is replaced whole: it must not hold an
            input either.

    Raises:
        DataError: one line naming the output and the input it would overwrite.
    """
    output = os.fspath(output)
    for item in inputs:
        item = os.fspath(item)
        if not os.path.lexists(item):
            continue  # a missing input is reported by the command itself
        if same_file(output, item):
            raise DataError(f"the {what} is the input {item}: writing it would destroy "
                            "the input; choose another path", output)
        if holds and _holds(output, item):
            raise DataError(f"the {what} holds the input {item}, and is replaced whole: "
                            "choose a folder outside the inputs", output)


def _exchange(a: str, b: str) -> bool:
    """Swaps two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the call or the flag is not supported (then the caller swaps
    with two renames).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), b)


def _swap_in(fresh: str, path: str) -> None:
    """Puts the folder ``fresh`` at ``path``; the folder that was there is removed."""
    if not os.path.lexists(path):
        os.rename(fresh, path)
        return
    if _exchange(fresh, path):
        shutil.rmtree(fresh)  # now the old folder
        return
    old = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=".old-")
    os.rename(path, os.path.join(old, "run"))
    os.rename(fresh, path)
    shutil.rmtree(old)


@contextlib.contextmanager
def replaced_folder(path: str | os.PathLike) -> Iterator[str]:
    """Yields a fresh folder beside ``path``; on success it replaces ``path`` whole.

    The outputs of one run (a table, its figures) then never sit beside an earlier
    run's, and a failure (a full disk after the first file) leaves the previous folder
    exactly as it was and no temporary folder. The swap is one atomic
    ``renameat2(RENAME_EXCHANGE)`` where Linux offers it, else two renames.

    Args:
        path: the output folder (created with its parents; an existing one is replaced).

    Yields:
        The fresh folder's path, for the writer to fill.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    fresh = tempfile.mkdtemp(dir=parent, prefix=f".tmp-{os.path.basename(path)}-")
    os.chmod(fresh, _mode_to_keep(path, 0o777))
    try:
        yield fresh
        _swap_in(fresh, path)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Points file descriptor 2 at /dev/null for the block.

    Native libraries print their own diagnostics straight to the descriptor (libpng's
    "Not enough image data" around a damaged PNG), beside the one line dfdetect prints
    for the same failure. Python's own ``sys.stderr`` is flushed first.
    """
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_TENSORFLOW_STARTED = False


def start_tensorflow() -> None:
    """Imports TensorFlow and Keras and runs a first op with :func:`quiet_stderr`, once
    per process.

    TensorFlow 2.21's C++ runtime prints "All log messages before absl::InitializeLog()",
    its oneDNN notice and its CPU-feature notice while it loads and runs its first op,
    before ``TF_CPP_MIN_LOG_LEVEL`` is read, so the variable cannot stop them. They bury
    the one line a user needs (the CLI), fill a Python session that calls
    ``dfdetect.load_detector``, and opened every experiment's log: those entry points
    start TensorFlow here. Only the printing is silenced: a failed import still raises.
    """
    global _TENSORFLOW_STARTED
    if _TENSORFLOW_STARTED:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # its later lines: warnings and up
    with quiet_stderr():
        try:
            import keras
            import tensorflow  # noqa: F401
        except ModuleNotFoundError as err:
            if (err.name or "").split(".")[0] != "tensorflow":
                raise
            raise DfdetectError(
                "TensorFlow is not installed, and this needs it: pip install 'dfdetect[cpu]' "
                "(or [gpu]); predict with a model's LiteRT twin runs without it") from None
        keras.ops.add(1, 1)  # the first op initialises the runtime: its notices too
    _TENSORFLOW_STARTED = True


def env_number(name: str, default: float, minimum: float = 0.0,
               whole: bool = False) -> float:
    """A number from the environment variable ``name`` (``default`` when unset or blank).

    Raises:
        DataError: the value is not a number (a whole one with ``whole``), is NaN, or is
            below ``minimum`` -- one line naming the variable, for every command alike.
    """
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = None
    if value is None or not value >= minimum:  # also refuses nan
        kind = "a whole number" if whole else "a number"
        raise DataError(f"environment variable {name} must be {kind} >= {minimum:g}, got "
                        f"{text!r}: fix or unset it")
    return value


_ERRNO_HINTS = {
    # What a failed run keeps differs by command: cli.py adds it to these lines.
    errno.ENOSPC: "no space left on the device: free some space (or choose another disk) "
                  "and rerun",
    errno.EDQUOT: "disk quota exceeded: free some space and rerun",
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
