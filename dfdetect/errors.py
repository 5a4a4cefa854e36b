"""Errors that reach the user as one line naming the file and what is wrong."""

from __future__ import annotations

import os


class DfdetectError(Exception):
    """Base class: ``str(err)`` is a one-line, user-facing message."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        text = " ".join(str(message).split())  # one line, always
        super().__init__(f"{self.path}: {text}" if self.path else text)


class DataError(DfdetectError):
    """A dataset, video, image or store on disk is missing, malformed or unusable."""


class ModelError(DfdetectError):
    """A model file or model specification is wrong (not a dfdetect model, bad name...)."""


class WeightsUnavailableError(ModelError):
    """Pretrained weights cannot be downloaded here; pass a local file or ``None``."""
