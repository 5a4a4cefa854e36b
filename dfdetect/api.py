"""The Python API: load a detector once, score videos and images with it.

Example::

    import dfdetect

    detector = dfdetect.load_detector()          # the shipped default; or a .keras path
    result = detector.score("clip.mp4")          # a video or an image
    print(result.verdict, result.score)          # "FAKE" / "REAL" / "NO FACE", P(fake)
    for frame in result.frames:                  # per-frame scores, face boxes, times
        print(frame.index, frame.time, frame.score)

    dfdetect.score_video("clip.mp4")             # one call (loads the default each time)

These wrap :mod:`dfdetect.predict`, which ``dfdetect predict`` uses too, so the command
and the API give the same numbers. Importing :mod:`dfdetect` does not import TensorFlow;
the first :func:`load_detector` does.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any


@dataclasses.dataclass
class Detector:
    """A loaded dfdetect model and its metadata (input size, frames, threshold).

    Attributes:
        model: the Keras model.
        meta: what was exported with it (``dfdetect.json``).
        path: the ``.keras`` file it was loaded from.
    """

    model: Any
    meta: dict
    path: str

    def score(self, path: str | os.PathLike, **options):
        """Scores a video or an image (chosen by its extension).

        Args:
            path: the file.
            **options: ``frames`` (frames sampled per video), ``threshold`` (P(fake) at
                or above which the verdict is FAKE; default the model's), ``detect``
                (False: inputs are already face crops), ``detector`` ("hog"/"cnn").

        Returns:
            :class:`dfdetect.predict.VideoResult`: ``verdict``, ``score``, ``frames``...

        Raises:
            DataError: missing, unsupported or unreadable file.
        """
        from dfdetect import predict  # deferred: cv2 (see load_detector)

        return predict.score_input(self.model, self.meta, path, **options)

    def score_video(self, path: str | os.PathLike, **options):
        """Scores a video; options as :meth:`score`."""
        from dfdetect import predict  # deferred: cv2 (see load_detector)

        return predict.score_video(self.model, self.meta, path, **options)

    def score_image(self, path: str | os.PathLike, **options):
        """Scores one image; options as :meth:`score` (``frames`` does not apply)."""
        from dfdetect import predict  # deferred: cv2 (see load_detector)

        return predict.score_image(self.model, self.meta, path, **options)


def load_detector(path: str | os.PathLike | None = None) -> Detector:
    """Loads an exported dfdetect model (``.keras``); the shipped default without a path.

    Raises:
        ModelError: missing file, not a dfdetect model, or no default detector shipped.
    """
    # deferred: predict pulls cv2; dfdetect.load_detector must stay cheap to reach
    from dfdetect import predict

    path = os.fspath(path) if path is not None else predict.default_model()
    model, meta = predict.load_detector(path)
    return Detector(model, meta, path)


def score_video(path: str | os.PathLike, model: str | os.PathLike | Detector | None = None,
                **options):
    """Scores one video with ``model`` (a :class:`Detector`, a path, or the default).

    Loading a model takes seconds: to score many files, :func:`load_detector` once.
    """
    detector = model if isinstance(model, Detector) else load_detector(model)
    return detector.score_video(path, **options)


def score_image(path: str | os.PathLike, model: str | os.PathLike | Detector | None = None,
                **options):
    """Scores one image with ``model`` (a :class:`Detector`, a path, or the default)."""
    detector = model if isinstance(model, Detector) else load_detector(model)
    return detector.score_image(path, **options)
