"""``dfdetect explain``: a detector's Grad-CAM on a user's videos and images, written as
pictures that say what they show.

:func:`explain_input` scores one input as :mod:`dfdetect.predict` does, keeps the face
crops it scored, and draws Grad-CAM (:mod:`dfdetect.explain`) on the most suspicious
frames (image models) or on the clip (video models): a grid ``<file>_gradcam.png`` and
one overlay PNG per frame, each with a caption band (file, frame and time, P(fake), the
verdict). :func:`explain_inputs` does it for files and folders; a failing input is a
verdict-ERROR line, the others go on, and same-named inputs get distinct file names
(:func:`output_stems`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Sequence

import cv2
import numpy as np

from dfdetect.data.video import sample_indices
from dfdetect.errors import DataError
from dfdetect.io import atomic_write_bytes
from dfdetect.predict import (PredictSummary, VideoResult, collect_inputs, guarded, model_spec,
                              score_input, short_names)

__all__ = ["ExplainResult", "explain_input", "explain_inputs", "output_stems"]


@dataclasses.dataclass
class ExplainResult:
    """What :func:`explain_input` drew.

    Attributes:
        result: the input's scores and verdict.
        frames: frame indices explained (most suspicious first for image models; in
            time order for a video model's clip).
        grid: the PNG grid (input | Grad-CAM | overlay per frame), or ``None`` when there
            was no face to explain.
        overlays: one overlay PNG per explained frame.
    """

    result: VideoResult
    frames: list[int]
    grid: str | None
    overlays: list[str]

    def line(self) -> str:
        if self.grid is None:
            return f"{self.result.line()}  (nothing to explain)"
        return f"{self.result.line()}  -> {self.grid}"


def _file_stem(path: str) -> str:
    name = os.path.basename(path)
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "input"


def output_stems(paths: Sequence[str]) -> list[str]:
    """One distinct file-name stem per input, for the pictures explain writes.

    The file name alone when it is unique; the path below the inputs' common folder when
    two inputs share a name (``a/clip.mp4``, ``b/clip.mp4`` -> ``a_clip_mp4``,
    ``b_clip_mp4``); a counter when even that collides after unsafe characters become
    ``_``. Without this the second input's PNGs overwrite the first's.
    """
    stems, seen = [], set()
    for name in short_names(list(paths)):
        base = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "input"
        stem, counter = base, 2
        while stem in seen:
            stem, counter = f"{base}-{counter}", counter + 1
        seen.add(stem)
        stems.append(stem)
    return stems


def _caption(picture: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """``picture`` with ``lines`` written on a white band above it: an overlay PNG opened
    on its own (in a file browser, a report) must say what it shows. Text is set at
    most 0.5 (Hershey) and at least 0.35; a line still too wide loses its start."""
    if not lines:
        return picture
    font, width = cv2.FONT_HERSHEY_SIMPLEX, picture.shape[1]

    def text_width(line: str, scale: float) -> int:
        return cv2.getTextSize(line, font, scale, 1)[0][0]

    widest = max(text_width(line, 0.5) for line in lines)
    scale = max(0.35, min(0.5, 0.5 * (width - 8) / max(widest, 1)))
    fitted = []
    for line in lines:
        while len(line) > 4 and text_width(line, scale) > width - 8:
            line = "..." + line[4:]
        fitted.append(line)
    step = int(round(26 * scale)) + 4
    band = np.full((step * len(fitted) + 6, width, 3), 255, np.uint8)
    for row, line in enumerate(fitted):
        cv2.putText(band, line, (4, step * (row + 1)), font, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return np.concatenate([band, picture], axis=0)


def _save_overlay(path: str, image: np.ndarray, heat: np.ndarray, min_side: int = 256,
                  caption: Sequence[str] = ()) -> str:
    from dfdetect import explain  # deferred: Grad-CAM needs TensorFlow

    picture = explain.overlay(image, heat)
    if min(picture.shape[:2]) < min_side:  # model crops are often 64 px: enlarge to see
        factor = min_side / min(picture.shape[:2])
        picture = cv2.resize(picture, (round(picture.shape[1] * factor),
                                       round(picture.shape[0] * factor)),
                             interpolation=cv2.INTER_CUBIC)
    picture = _caption(picture, caption)
    ok, data = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataError("cannot encode the overlay as PNG", path)

    return atomic_write_bytes(path, data.tobytes())


def explain_input(model, meta: dict, path: str | os.PathLike, out_dir: str | os.PathLike,
                  frames: int | None = None, top: int = 4, layer_name: str | None = None,
                  threshold: float | None = None, stem: str | None = None,
                  **kwargs) -> ExplainResult:
    """Grad-CAM overlays for the most suspicious frames of one video or image.

    Image models: the ``top`` frames with the highest P(fake). Video models: the clip
    is explained as a whole and ``top`` of its distinct frames, evenly spaced, are shown.
    Writes ``<out_dir>/<file>_gradcam.png`` (input | heat map | overlay per frame) and
    ``<out_dir>/<file>_frame<index>.png`` overlays.

    Args:
        model, meta: from :func:`dfdetect.predict.load_detector`.
        path: a video or image.
        out_dir: folder for the PNGs (created).
        frames: frames to sample (image models), as in :func:`dfdetect.predict.score_video`.
        top: frames to explain.
        layer_name: Grad-CAM target layer (default: the last feature map,
            :func:`dfdetect.explain.default_layer_path`).
        threshold: decision threshold (default: the model's).
        stem: the PNGs' name stem (default: from the file name; :func:`explain_inputs`
            passes :func:`output_stems` so same-named inputs do not overwrite each other).
        **kwargs: passed to :func:`dfdetect.predict.score_video` / ``score_image``.

    Raises:
        DataError / ModelError: as :func:`dfdetect.predict.score_input`, or an unusable target layer.
    """
    from dfdetect import explain  # deferred: Grad-CAM needs TensorFlow

    if top < 1:
        raise DataError(f"top must be >= 1, got {top}")
    spec = model_spec(model, meta)
    result = score_input(model, meta, path, frames=frames, threshold=threshold,
                         keep_crops=True, **kwargs)
    if result.crops is None:
        return ExplainResult(result=result, frames=[], grid=None, overlays=[])
    crops, crop_frames = result.crops, result.crop_frames
    if spec.kind == "image":
        by_index = {f.index: f.score for f in result.frames}
        scores = np.array([by_index[i] for i in crop_frames])
        pick = list(np.argsort(-scores, kind="stable")[:top])
        shown = crops[pick]
        heats = explain.grad_cam(model, shown, layer_name=layer_name)
        chosen = [crop_frames[i] for i in pick]
        labels = [f"{i} ({s:.3f})" for i, s in zip(chosen, scores[pick])]
    else:
        all_heats = explain.grad_cam(model, crops, layer_name=layer_name)[0]
        first = {}
        for position, index in enumerate(crop_frames):
            first.setdefault(index, position)
        distinct = list(first.values())
        pick = [distinct[i] for i in sample_indices(len(distinct), top)]
        shown, heats = crops[0][pick], all_heats[pick]
        chosen = [crop_frames[i] for i in pick]
        labels = [str(i) for i in chosen]
    lo, hi = spec.value_range
    images = np.clip((np.asarray(shown, np.float32) - lo) / (hi - lo), 0.0, 1.0)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    stem = stem or _file_stem(result.path)
    what = "frame" if result.media == "video" else "image"
    title = (f"{os.path.basename(result.path)}: {result.verdict}, P(fake) {result.score:.3f}\n"
             f"{what}{'s' if len(labels) > 1 else ''} {', '.join(labels)}")
    grid = explain.save_gradcam_grid(os.path.join(out_dir, f"{stem}_gradcam.png"), images,
                                     heats, title=title, frame_labels=chosen)
    frame_info = {f.index: f for f in result.frames}
    name = os.path.basename(result.path)

    def caption(index: int) -> list[str]:
        frame = frame_info.get(index)
        when = (f" ({frame.time:.2f} s)" if frame is not None and frame.time is not None
                else "")
        where = f"frame {index}{when}" if result.media == "video" else "image"
        if spec.kind == "image" and frame is not None and frame.score is not None:
            score = f"P(fake) {frame.score:.3f}"
        else:
            score = f"clip P(fake) {result.score:.3f}"
        return [name, f"{where}: {score}", f"{result.media} verdict: {result.verdict}",
                "Grad-CAM: red = evidence of fake"]

    overlays = [_save_overlay(os.path.join(out_dir, f"{stem}_frame{index:05d}.png"), image,
                              heat, caption=caption(index))
                for index, image, heat in zip(chosen, images, heats)]
    result.crops = None  # the arrays were for this function only
    return ExplainResult(result=result, frames=[int(i) for i in chosen], grid=grid,
                         overlays=overlays)


def explain_inputs(model, meta: dict, inputs: Sequence[str | os.PathLike],
                   out_dir: str | os.PathLike,
                   on_result: Callable[[ExplainResult], None] | None = None,
                   **kwargs) -> PredictSummary:
    """:func:`explain_input` for files and folders; failures are counted, not raised.

    ``on_result`` gets each :class:`ExplainResult` (a failed input has verdict ERROR
    and no pictures).
    """
    paths, ignored = collect_inputs(inputs)
    summary = PredictSummary(results=[], ignored=ignored)
    for path, stem in zip(paths, output_stems(paths)):
        item = guarded(path, lambda: explain_input(model, meta, path, out_dir, stem=stem,
                                                    **kwargs))
        if isinstance(item, VideoResult):
            item = ExplainResult(result=item, frames=[], grid=None, overlays=[])
        summary.results.append(item.result)
        if on_result is not None:
            on_result(item)
    return summary
