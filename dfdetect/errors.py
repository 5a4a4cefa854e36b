"""Errors that reach the user as one line naming the file and what is wrong."""

from __future__ import annotations

import os
import re

# Terminal colour codes: Keras wraps parts of its messages in them.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def one_line(text: object, limit: int | None = None) -> str:
    """``text`` as one plain line: whitespace runs and line breaks become one space,
    terminal escape codes are dropped; cut to ``limit`` characters when given."""
    line = " ".join(_ANSI.sub("", str(text)).split())
    return line if limit is None else line[:limit]


class DfdetectError(Exception):
    """Base class: ``str(err)`` is a one-line, user-facing message."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        text = one_line(message)  # one line, always
        super().__init__(f"{self.path}: {text}" if self.path else text)


class DataError(DfdetectError):
    """A dataset, video, image or store on disk is missing, malformed or unusable."""


class ModelError(DfdetectError):
    """A model file or model specification is wrong (not a dfdetect model, bad name...)."""


class WeightsUnavailableError(ModelError):
    """Pretrained weights cannot be downloaded here; pass a local file or ``None``."""


def note_kept(err: BaseException, text: str) -> BaseException:
    """Records on ``err`` what the interrupted or failed run leaves behind.

    The CLI says it after the error line (a Ctrl-C, a full disk), so the user is told the
    truth: e.g. which epochs a training checkpointed, not a general "work is kept".

    Returns:
        ``err``, for ``raise note_kept(err, ...)``.
    """
    err.dfdetect_kept = text
    return err


def kept_note(err: BaseException) -> str | None:
    """What :func:`note_kept` recorded on ``err``, or None."""
    return getattr(err, "dfdetect_kept", None)
