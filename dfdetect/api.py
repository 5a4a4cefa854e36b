"""The Python API: load a detector once, score videos and images with it.

Example::

    import dfdetect

    detector = dfdetect.load_detector()          # the shipped default; or a .keras path
    result = detector.score("clip.mp4")          # a video or an image
    print(result.verdict, result.score)          # "FAKE" / "REAL" / "NO FACE", P(fake)
    for frame in result.frames:                  # per-frame scores, face boxes, times
        print(frame.index, frame.time, frame.score, frame.face)  # [top, right, bottom, left]

    results = detector.score(["a.mp4", "b.jpg", frame, pil_image])  # a list: one result each
    dfdetect.score_video("clip.mp4")             # one call (loads the default each time)

``score`` takes a file path, a NumPy frame (``(H, W, 3)`` RGB uint8, or floats in
[0, 1]; convert OpenCV's BGR first), a PIL image, or a list of any of them: the faces of
all the pictures in a list go through the model in one batch, and a list never stops at
a bad item (its result has verdict ``ERROR`` and the reason in ``error``).

These wrap :mod:`dfdetect.predict`, which ``dfdetect predict`` uses too, so the command
and the API give the same numbers. Importing :mod:`dfdetect` does not import TensorFlow;
the first :func:`load_detector` does, without printing TensorFlow's start-up lines
(:func:`dfdetect.io.start_tensorflow`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from dfdetect.io import start_tensorflow

#: Pictures of a list decoded and held at once; their faces go to the model together.
PICTURE_BATCH = 64


@dataclasses.dataclass
class Detector:
    """A loaded dfdetect model and its metadata (input size, frames, threshold).

    Attributes:
        model: the Keras model (or its LiteRT twin: ``load_detector(runtime=...)``).
        meta: what was exported with it (``dfdetect.json``).
        path: the ``.keras`` file it was loaded from.
    """

    model: Any
    meta: dict
    path: str

    def score(self, item, **options):
        """Scores a video or image file, a picture in memory, or a list of them.

        Args:
            item: a file path (a video or an image, chosen by its extension), a NumPy
                frame or a PIL image (:func:`dfdetect.predict.as_rgb`), or a list or
                tuple of any of these.
            **options: ``frames`` (frames sampled per video; default the model's, else
                10), ``threshold`` (P(fake) at or above which the verdict is FAKE;
                default the model's), ``detect`` (False: inputs are already face
                crops), ``detector`` ("hog"/"cnn").

        Returns:
            :class:`dfdetect.predict.VideoResult` (``verdict``, ``score``, ``frames``...)
            for one item; for a list, a list of them in order, the faces of its
            pictures (images and arrays) scored in one batch, each video in one batch
            of its frames.

        Raises:
            DataError: one item that is missing, unsupported or unreadable (in a list,
                that item's result has verdict ``ERROR`` instead).
        """
        if isinstance(item, (list, tuple)):
            return self._score_many(list(item), **options)
        from dfdetect import predict  # deferred: cv2 (see load_detector)

        if isinstance(item, (str, os.PathLike)):
            return predict.score_input(self.model, self.meta, item, **options)
        options.pop("frames", None)  # a picture is one frame
        return predict.score_pictures(self.model, self.meta, [item], **options)[0]

    def _score_many(self, items: list, **options) -> list:
        """:meth:`score` of a list: videos one by one, pictures' faces in batches."""
        from dfdetect import predict  # deferred: cv2 (see load_detector)
        from dfdetect.data.faces import load_image

        results: list = [None] * len(items)
        pictures, names, where = [], [], []
        picture_options = {k: v for k, v in options.items() if k != "frames"}

        def flush() -> None:
            for index, result in zip(where, predict.score_pictures(
                    self.model, self.meta, pictures, names, **picture_options)):
                results[index] = result
            pictures.clear(), names.clear(), where.clear()

        for index, item in enumerate(items):
            is_path = isinstance(item, (str, os.PathLike))
            name = os.fspath(item) if is_path else f"<picture {index}>"
            try:
                if is_path and predict.media_type(name) == "video":
                    results[index] = predict.score_input(self.model, self.meta, name,
                                                         **options)
                    continue
                pictures.append(predict.as_rgb(load_image(name) if is_path else item, name))
                names.append(name)
                where.append(index)
            except Exception as err:  # noqa: BLE001 - one bad item never ends a list
                results[index] = predict.failure_result(name, err)
            if len(pictures) == PICTURE_BATCH:  # bounded memory for long lists
                flush()
        flush()
        return results

    def score_video(self, path: str | os.PathLike, **options):
        """Scores a video; options as :meth:`score`."""
        from dfdetect import predict  # deferred: cv2 (see load_detector)

        return predict.score_video(self.model, self.meta, path, **options)

    def score_image(self, path: str | os.PathLike, **options):
        """Scores one image; options as :meth:`score` (``frames`` does not apply)."""
        from dfdetect import predict  # deferred: cv2 (see load_detector)

        return predict.score_image(self.model, self.meta, path, **options)


def load_detector(path: str | os.PathLike | None = None, runtime: str = "keras") -> Detector:
    """Loads an exported dfdetect model (``.keras``); the shipped default without a path.

    Args:
        path: the model (default: the shipped detector).
        runtime: ``keras`` (default: ``Detector.model`` is the Keras model), or ``auto`` /
            ``litert``: the model's LiteRT twin when it has a current one
            (:mod:`dfdetect.models.litert`), which loads without starting TensorFlow and
            scores alike (``auto`` falls back on Keras, ``litert`` raises).

    Raises:
        ModelError: missing file, not a dfdetect model, no default detector shipped, or
            ``litert`` for a model without a usable twin.
    """
    # deferred: predict pulls cv2; dfdetect.load_detector must stay cheap to reach
    from dfdetect import predict

    path = os.fspath(path) if path is not None else predict.default_model()
    loaded = predict.load_twin(path, runtime)
    if loaded is not None:
        return Detector(*loaded, path)
    start_tensorflow()  # without its start-up lines in the user's session
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
