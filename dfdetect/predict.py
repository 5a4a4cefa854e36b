"""A trained detector on a user's videos and images: per-frame scores and a verdict.

What the model expects (input size, frames per clip, value range, head) comes from the
metadata :func:`dfdetect.models.export.export_model` embedded in the ``.keras`` file, so
the user only names the model and the media.

For a **video** and an image model (``kind=image``): ``frames`` evenly spaced frames are
decoded (sequentially with ``grab()``, only the wanted ones colour-converted, stopping
after the last one: :mod:`dfdetect.data.video`), faces are detected on a copy downscaled
to ``detect_max_side`` and the boxes mapped back (a larger frame where that copy shows
no face is searched again at higher resolution, then on tiles, so small faces in 1080p
footage or large photos are found: :func:`dfdetect.data.faces.detect_small_faces`), the
largest face is cropped from the full-resolution frame (square, 1.3x its side, as the
stores do), all crops go through the model in one batch, and the video score is the
mean of the frame scores (as :func:`dfdetect.evaluation.aggregate_by_video`). Frames
without a face are left out of the mean; a video with no face at all gets the verdict
``NO FACE`` (not an error); ``frames_used`` / ``frames_sampled`` says how many had one.

For a video model (``kind=video``, clips ``(F, H, W, 3)``): ``F`` frames are sampled the
same way and the clip is scored once. When some sampled frames show no face, the clip is
filled from the face frames in time order (each repeated as needed), so a clip always
has ``F`` frames and only ever face crops; ``frames_used`` says how many were distinct.

An **image** is one frame: the largest face is cropped and scored (``NO FACE`` when
there is none). With ``detect=False`` the centre square of every frame or image is used
as is (inputs that are already face crops: face detectors often miss faces that fill the
picture).

Errors are one line naming the file (:class:`~dfdetect.errors.DataError`); in a run over
many inputs, a failing input becomes a result with verdict ``ERROR`` and the others are
scored (:func:`predict_inputs`).

``dfdetect predict`` starts cold. Where the model has a current LiteRT twin
(:mod:`dfdetect.models.litert`; the shipped detector has), :func:`load_and_predict`
scores with it and never imports TensorFlow, and each video's faces are found by two
processes (:func:`face_workers`). Otherwise importing TensorFlow and loading the model
take most of its time on one core, and a forked process decodes the first video's
frames and finds its faces on the other core meanwhile (:func:`video_faces`, from the
sizes in the model's metadata), then scores them as :func:`score_video` would.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import time
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from dfdetect import FAKE
from dfdetect.data import faces as facelib
# The crop constants and the file extensions have one home each (data/faces.py,
# data/sources.py); re-exported because predict's callers and tests read them here.
from dfdetect.data.faces import CROP_SCALE, DETECT_MAX_SIDE
from dfdetect.data.sources import (IMAGE_EXTENSIONS, UNSUPPORTED_IMAGE_EXTENSIONS,
                                   VIDEO_EXTENSIONS)
from dfdetect.data.video import iter_frames, probe_video, sample_indices
from dfdetect.errors import DataError, DfdetectError, ModelError, one_line
from dfdetect.io import atomic_write_text, env_number, start_tensorflow
from dfdetect.models import litert
from dfdetect.models.metadata import read_metadata

__all__ = ["DEFAULT_FRAMES", "DEFAULT_MODEL", "FrameResult", "IMAGE_EXTENSIONS", "ModelSpec",
           "PredictSummary", "VIDEO_EXTENSIONS", "VideoResult", "as_rgb", "collect_inputs",
           "default_model", "failure_result", "guarded", "iter_predictions", "load_and_predict",
           "load_detector", "load_twin", "media_type", "model_spec", "predict_inputs", "score_crops", "score_face_crops",
           "score_image", "score_input", "score_pictures", "score_video", "short_names",
           "video_faces",
           "write_json", "write_plot"]

log = logging.getLogger(__name__)

#: Frames sampled per video for image models when neither the user nor the model says.
DEFAULT_FRAMES = 10
#: The detector shipped inside the package, used when no model is named (``make detector``
#: trains it; a source checkout may not have it yet).
DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights",
                             "default.keras")

FAKE_VERDICT, REAL_VERDICT, NO_FACE, ERROR = "FAKE", "REAL", "NO FACE", "ERROR"
#: The order of a face box's four numbers (frame pixels) in results and the JSON report.
BOX_ORDER = ["top", "right", "bottom", "left"]


# --------------------------------------------------------------------------- results

@dataclasses.dataclass
class FrameResult:
    """One sampled frame (or the one frame of an image).

    Attributes:
        index: frame index in the video (0 for an image).
        time: seconds from the start (``None`` for images or unknown fps).
        face: the detected face ``[top, right, bottom, left]`` in frame pixels, or None.
        crop: the square crop fed to the model, same order, or None.
        faces_found: faces detected in the frame (the largest is used).
        score: P(fake) of this frame (image models; ``None`` for no face or a clip model).
    """

    index: int
    time: float | None
    face: list[int] | None
    crop: list[int] | None
    faces_found: int
    score: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class VideoResult:
    """The outcome for one input (video or image).

    Attributes:
        path: the input file.
        media: ``video`` or ``image``.
        verdict: ``FAKE``, ``REAL``, ``NO FACE`` or ``ERROR``.
        score: the input's P(fake): mean of the frame scores (image model) or the clip's
            score (video model); ``None`` without a face or on error.
        threshold: a score ``>= threshold`` is called FAKE.
        frames_sampled: frames asked for (1 for an image).
        frames_decoded: frames that decoded.
        frames_used: distinct frames with a face that went into the score.
        frames: per-frame details, in time order.
        clip: frame indices fed to a video model, in order (repeats when filled in).
        fps, frame_count, width, height: the video's properties (frame size for images).
        notes: things worth knowing that are not errors (e.g. a truncated file scored
            from the frames that decode).
        error: the one-line error when ``verdict == "ERROR"``.
        seconds: wall time spent on this input.
        crops: the model inputs (float32, model layout) when asked to keep them; not
            written to JSON.
    """

    path: str
    media: str
    verdict: str
    score: float | None = None
    threshold: float = 0.5
    frames_sampled: int = 0
    frames_decoded: int = 0
    frames_used: int = 0
    frames: list[FrameResult] = dataclasses.field(default_factory=list)
    clip: list[int] | None = None
    fps: float = 0.0
    frame_count: int = 0
    width: int = 0
    height: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    crops: np.ndarray | None = dataclasses.field(default=None, repr=False)
    crop_frames: list[int] | None = dataclasses.field(default=None, repr=False)

    @property
    def failed(self) -> bool:
        return self.verdict == ERROR

    def line(self, width: int = 0) -> str:
        """``path  VERDICT  score  frames used``: the one line ``dfdetect predict`` prints.

        Args:
            width: the path is padded to this many characters, so that the lines of
                several inputs line up in columns.
        """
        path = f"{self.path:<{width}}"
        if self.failed:
            return f"{path}  {ERROR:<7}  {self.error}"
        score = "-" if self.score is None else f"{self.score:.4f}"
        unit = "frame" if self.media == "image" else "frames"
        return (f"{path}  {self.verdict:<7}  {score:>6}  "
                f"{self.frames_used}/{self.frames_sampled} {unit} with a face")

    def to_dict(self) -> dict:
        """JSON-ready dict (no crops)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in ("frames", "crops", "crop_frames")}
        out["frames"] = [f.to_dict() for f in self.frames]
        return out


@dataclasses.dataclass
class PredictSummary:
    """Counts over a run on many inputs."""

    results: list[VideoResult]
    ignored: int = 0

    def count(self, verdict: str) -> int:
        return sum(r.verdict == verdict for r in self.results)

    @property
    def failures(self) -> int:
        return self.count(ERROR)

    def report(self) -> str:
        """One line: how many inputs got which verdict, and how many failed."""
        n = len(self.results)
        text = (f"{n - self.failures} of {n} inputs scored: {self.count(FAKE_VERDICT)} FAKE, "
                f"{self.count(REAL_VERDICT)} REAL, {self.count(NO_FACE)} NO FACE; "
                f"{self.failures} failed")
        if self.ignored:
            text += f"; {self.ignored} other files ignored (not images or videos)"
        return text

    def to_dict(self) -> dict:
        return {"inputs": len(self.results), "FAKE": self.count(FAKE_VERDICT),
                "REAL": self.count(REAL_VERDICT), "NO FACE": self.count(NO_FACE),
                "failed": self.failures, "ignored": self.ignored}


# --------------------------------------------------------------------------- the model

@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What a model takes, read from its metadata and its input layer.

    Attributes:
        kind: ``image`` ((H, W, 3) per sample) or ``video`` ((F, H, W, 3) clips).
        height, width: crop size in pixels.
        frames: frames per clip (video models) or ``None``.
        value_range: pixel values are scaled from [0, 255] to this range.
        threshold: the decision threshold saved with the model (0.5 when absent).
    """

    kind: str
    height: int
    width: int
    frames: int | None
    value_range: tuple[float, float]
    threshold: float


def model_spec(model, meta: dict) -> ModelSpec:
    """Reads what ``model`` expects from its input layer, falling back on ``meta``.

    Raises:
        ModelError: a feature-sequence model, or a size that neither says.
    """
    shape = list(model.input_shape[1:]) if model is not None else list(meta.get("input_shape", []))
    kind = meta.get("kind") or {3: "image", 4: "video"}.get(len(shape), "sequence")
    if kind not in ("image", "video") or len(shape) != (3 if kind == "image" else 4):
        raise ModelError(f"this model takes {kind} inputs of shape {tuple(shape)}; "
                         "predict and explain score image models (H, W, 3) and video "
                         "models (frames, H, W, 3) only")
    frames = None
    if kind == "video":
        frames, shape = shape[0] or meta.get("frames"), shape[1:]
    if shape[-1] not in (None, 3):
        # Caught here, the model is blamed; caught by Keras, each input would be.
        raise ModelError(f"this model takes {kind}s with {shape[-1]} colour channel"
                         f"{'s' if shape[-1] != 1 else ''} (input {tuple(shape)}); dfdetect "
                         "feeds RGB crops (3 channels): export a model that takes them")
    # Backbones built on (None, None, 3) leave the size to the metadata.
    height = shape[0] or meta.get("image_size")
    width = shape[1] or meta.get("image_size")
    if not height or not width or (kind == "video" and not frames):
        raise ModelError("the model's input size is not fixed and its metadata gives no "
                         "image_size (or frames): re-export it with export_model(..., "
                         "image_size=..., frames=...)")
    lo, hi = (meta.get("value_range") or (0.0, 1.0))[:2]
    threshold = float(meta.get("threshold", 0.5))
    return ModelSpec(kind=kind, height=int(height), width=int(width),
                     frames=int(frames) if frames else None,
                     value_range=(float(lo), float(hi)), threshold=threshold)


def load_detector(path: str | os.PathLike):
    """Loads an exported dfdetect model and checks it is one predict can use.

    Returns:
        ``(model, meta)``.

    Raises:
        ModelError: missing file, not a dfdetect model, an unknown layer, or a model
            that does not take images or clips.
    """
    from dfdetect.models.export import load_exported  # deferred: the first TensorFlow import

    model, meta = load_exported(path)
    _check_usable(model, meta, path)
    return model, meta


def load_twin(path: str | os.PathLike, runtime: str = "auto"):
    """``(model, meta)`` of the model's LiteRT twin as ``runtime`` asks for it
    (:func:`dfdetect.models.litert.find_twin`), checked as :func:`load_detector` checks;
    None where Keras is to load it.

    Raises:
        ModelError: as :func:`load_detector`, or ``litert`` without a usable twin.
    """
    twin = litert.find_twin(path, runtime)
    if twin is None:
        return None
    model, meta = litert.load_litert(path, twin)
    _check_usable(model, meta, path)
    return model, meta


def _check_usable(model, meta: dict, path: str | os.PathLike) -> None:
    """:func:`model_spec`'s refusal as one line naming the model file."""
    try:
        model_spec(model, meta)
    except ModelError as err:
        raise ModelError(str(err), path) from None
    except (TypeError, ValueError, IndexError, AttributeError) as err:
        # dfdetect.json is a dict but a field has the wrong type (a hand-edited file).
        raise ModelError(f"its dfdetect.json has a malformed field ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:160]}); export it again",
                         path) from None


def default_model() -> str:
    """The shipped default detector's path (:data:`DEFAULT_MODEL`).

    Raises:
        ModelError: the package ships no default detector (one line saying what to do).
    """
    path = os.fspath(DEFAULT_MODEL)
    if not os.path.isfile(path):
        raise ModelError(f"no default detector shipped at {path}: pass a model .keras or "
                         "run `make detector`")
    return path


def _to_model_range(crops: np.ndarray, spec: ModelSpec) -> np.ndarray:
    lo, hi = spec.value_range
    return (crops.astype(np.float32) * ((hi - lo) / 255.0) + lo).astype(np.float32)


def _fake_probability(outputs) -> np.ndarray:
    out = np.asarray(outputs, dtype=np.float64)
    out = out.reshape(len(out), -1)
    if out.shape[1] == 1:
        return out[:, 0]
    if out.shape[1] == 2:
        return out[:, FAKE]
    raise ModelError(f"the model outputs {out.shape[1]} values per sample; expected 1 "
                     "(sigmoid) or 2 (softmax, index 1 = fake)")


def score_crops(model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """P(fake) for a batch in the model's input layout and value range.

    Uses ``predict_on_batch`` (no tf.data pipeline: ``model.predict`` on a handful of
    crops can wait seconds for tf.data's autotuner, see ENVIRONMENT.md).
    """
    if not len(x):
        return np.zeros((0,), np.float64)
    parts = [_fake_probability(model.predict_on_batch(x[i:i + batch_size]))
             for i in range(0, len(x), batch_size)]
    scores = np.concatenate(parts)
    if not np.all(np.isfinite(scores)):
        raise ModelError(f"the model returned {int(np.sum(~np.isfinite(scores)))} non-finite "
                         "scores (NaN/inf): its weights are broken")
    return np.clip(scores, 0.0, 1.0)


# --------------------------------------------------------------------------- faces

def _box(box) -> list[int] | None:
    return None if box is None else [int(v) for v in box]


def _face_crop(rgb: np.ndarray, spec: ModelSpec, detect: bool, detect_max_side: int | None,
               detector: str):
    """``(face box, square crop box, faces found, crop uint8)`` of one RGB frame.

    Everything is ``None`` (and 0 faces) when no face is found.
    """
    if detect:
        boxes = facelib.detect_faces(rgb, model=detector, max_side=detect_max_side)
        face = boxes[0] if boxes else None  # sorted largest first
        found = len(boxes)
    else:
        height, width = rgb.shape[:2]
        # A crop smaller than any store's holds no face (a 1x1 image is not one).
        small = min(height, width) < facelib.MIN_CROP_SIDE
        face, found = (None, 0) if small else (facelib.Box(0, width, height, 0), 1)
    if face is None:
        return None, None, 0, None
    square = facelib.square_box(face, rgb.shape, scale=CROP_SCALE if detect else 1.0)
    crop = facelib.crop_face(rgb, square, spec.height)
    if spec.width != spec.height:
        crop = cv2.resize(crop, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
    return face, square, found, crop


def _verdict(score: float | None, threshold: float) -> str:
    if score is None:
        return NO_FACE
    return FAKE_VERDICT if score >= threshold else REAL_VERDICT


def _fill_clip(positions: Sequence[int], length: int) -> list[int]:
    """``length`` entries of ``positions`` spread evenly, in order (repeats allowed)."""
    take = np.floor(np.linspace(0, len(positions) - 1, length) + 0.5).astype(int)
    return [positions[i] for i in take]


def _score_frames(model, spec: ModelSpec, result: VideoResult, crops: list[np.ndarray],
                  crop_frames: list[int], keep_crops: bool) -> VideoResult:
    """Puts frame / clip scores, the score and the verdict into ``result``."""
    result.frames_used = len(crops)
    if not crops:
        result.verdict = NO_FACE
        return result
    stack = _to_model_range(np.stack(crops), spec)
    by_index = {f.index: f for f in result.frames}
    if spec.kind == "image":
        scores = score_crops(model, stack)
        for index, score in zip(crop_frames, scores):
            by_index[index].score = float(score)
        result.score = float(np.mean(scores))
        inputs, used = stack, list(crop_frames)
    else:
        order = _fill_clip(list(range(len(crops))), spec.frames)
        inputs = stack[order][None]
        result.score = float(score_crops(model, inputs)[0])
        used = [crop_frames[i] for i in order]
        result.clip = used
    result.verdict = _verdict(result.score, result.threshold)
    if keep_crops:
        result.crops, result.crop_frames = inputs, used
    return result


# --------------------------------------------------------------------------- one input

def score_video(model, meta: dict, path: str | os.PathLike, frames: int | None = None,
                threshold: float | None = None, detect: bool = True,
                detect_max_side: int | None = DETECT_MAX_SIDE, detector: str = "hog",
                keep_crops: bool = False) -> VideoResult:
    """Scores one video: sample frames, crop the largest face, score, aggregate.

    Args:
        model: a loaded dfdetect model (:func:`load_detector`).
        meta: its metadata.
        path: the video file.
        frames: frames to sample for an image model (default: ``meta["frames"]`` or
            :data:`DEFAULT_FRAMES`). A video model always takes its own clip length.
        threshold: decision threshold (default: the model's, else 0.5).
        detect: detect faces; ``False`` uses each frame's centre square.
        detect_max_side: faces are searched on frames downscaled to this longest side.
        detector: face_recognition detector, ``hog`` or ``cnn``.
        keep_crops: keep the model inputs in ``result.crops`` (for explain).

    Returns:
        A :class:`VideoResult` with verdict FAKE, REAL or NO FACE.

    Raises:
        DataError: the file is missing, not a video, or no sampled frame decodes.
        ModelError: the model does not take images or clips.
    """
    start = time.perf_counter()
    spec = model_spec(model, meta)
    result, crops, crop_frames = video_faces(spec, meta, path, frames=frames,
                                             threshold=threshold, detect=detect,
                                             detect_max_side=detect_max_side,
                                             detector=detector)
    _score_frames(model, spec, result, crops, crop_frames, keep_crops)
    result.seconds = round(time.perf_counter() - start, 4)
    return result


def video_faces(spec: ModelSpec, meta: dict, path: str | os.PathLike,
                frames: int | None = None, threshold: float | None = None,
                detect: bool = True, detect_max_side: int | None = DETECT_MAX_SIDE,
                detector: str = "hog") -> tuple[VideoResult, list[np.ndarray], list[int]]:
    """The half of :func:`score_video` that needs no model: the sampled frames decoded,
    their faces found and cropped to ``spec``'s size.

    Returns:
        ``(result, crops, crop_frames)``: the result with its frames filled in but not
        scored, the uint8 face crops, and the frame index of each.

    Raises:
        DataError: the file is missing, not a video, or no sampled frame decodes.
    """
    path = os.fspath(path)
    info = probe_video(path)
    if spec.kind == "video":
        if frames is not None and int(frames) != spec.frames:
            log.warning("%s: this video model takes clips of %d frames; frames=%d ignored",
                        path, spec.frames, int(frames))
        n = spec.frames
    else:
        n = int(frames or meta.get("frames") or DEFAULT_FRAMES)
    indices = sample_indices(info.frame_count, n)
    result = VideoResult(path=path, media="video", verdict=NO_FACE,
                         threshold=float(spec.threshold if threshold is None else threshold),
                         frames_sampled=len(indices), fps=info.fps,
                         frame_count=info.frame_count, width=info.width, height=info.height)
    claimed = info.claimed_frame_count
    if claimed > info.frame_count:
        result.notes.append(f"the container claims {claimed} frames but only "
                            f"{info.frame_count} decode; sampled from those")
        if info.frame_count < 0.9 * claimed:  # a few missing frames at the end are common
            log.warning("%s: only %d of the %d frames the file claims decode (truncated?); "
                        "scoring those", path, info.frame_count, claimed)
    def job(rgb):
        return _face_crop(rgb, spec, detect, detect_max_side, detector)

    crops, crop_frames = [], []
    for index, (face, square, found, crop) in _faces_of(iter_frames(path, indices), job,
                                                         split=detect):
        result.frames.append(FrameResult(
            index=int(index), time=round(index / info.fps, 4) if info.fps > 0 else None,
            face=_box(face), crop=_box(square), faces_found=found))
        if crop is not None:
            crops.append(crop)
            crop_frames.append(int(index))
    result.frames_decoded = len(result.frames)
    if 0 < result.frames_decoded < len(indices):
        result.notes.append(f"{len(indices) - result.frames_decoded} of {len(indices)} "
                            "sampled frames did not decode")
    if not result.frames:
        raise DataError(f"none of the {len(indices)} sampled frames decodes: truncated or "
                        "corrupt video", path)
    return result, crops, crop_frames


def face_workers() -> int:
    """Processes that find a video's faces: 2 where it is safe and can help, else 1.

    The second is a fork, which is safe only before TensorFlow is imported (its threads
    do not survive one) and on POSIX other than macOS; ``DFDETECT_FACE_WORKERS=1`` turns
    it off. dlib's HOG detector runs on one core, so on 2 cores this about halves the
    time of a video's faces (most of a warm predict).

    Raises:
        DataError: ``DFDETECT_FACE_WORKERS`` is set but not a whole number >= 1.
    """
    wanted = int(env_number("DFDETECT_FACE_WORKERS", 2, minimum=1, whole=True))
    if (wanted < 2 or (os.cpu_count() or 1) < 2 or "tensorflow" in sys.modules
            or sys.platform == "darwin" or not hasattr(os, "fork")):
        return 1
    return 2


#: Frames held in memory at once while two processes find their faces (16 decoded 4K
#: frames are ~400 MB).
SPLIT_CHUNK = 16


def _faces_of(frames: Iterable[tuple[int, np.ndarray]], job: Callable[[np.ndarray], tuple],
              split: bool) -> Iterator[tuple[int, tuple]]:
    """``(index, job(rgb))`` of every ``(index, rgb)`` frame, in order; a second process
    (:func:`face_workers`) takes every other frame of each chunk of :data:`SPLIT_CHUNK`.
    """
    if not split or face_workers() < 2:
        for index, rgb in frames:
            yield index, job(rgb)
        return
    frames = iter(frames)
    while chunk := list(itertools.islice(frames, SPLIT_CHUNK)):
        yield from zip((i for i, _ in chunk), _split_job([rgb for _, rgb in chunk], job))


def _split_job(images: list[np.ndarray], job: Callable[[np.ndarray], tuple]) -> list[tuple]:
    """``job`` of each image, the odd ones in a forked child.

    The child inherits the images through the fork (nothing is copied) and sends back
    its small results. If it dies, the parent does its images too; an error it hit is
    raised as the parent's own would have been.
    """
    if len(images) < 2:
        return [job(rgb) for rgb in images]
    sys.stdout.flush()  # the child's copies of unwritten buffers would be written twice
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the odd images, then gone without running atexit hooks
        code = 0
        try:
            os.close(read_end)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's
            try:
                payload = ("ok", [job(rgb) for rgb in images[1::2]])
            except DfdetectError as err:
                payload = ("error", err)
            with os.fdopen(write_end, "wb") as out:
                pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # noqa: BLE001 - the parent does these images itself
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    pipe = os.fdopen(read_end, "rb")
    try:
        mine = [job(rgb) for rgb in images[0::2]]
        data = pipe.read()
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        pipe.close()
        os.waitpid(pid, 0)
    try:
        status, theirs = pickle.loads(data)
    except Exception:  # noqa: BLE001 - the child died: its images are done here
        status, theirs = "ok", [job(rgb) for rgb in images[1::2]]
    if status == "error":
        raise theirs
    out: list = [None] * len(images)
    out[0::2], out[1::2] = mine, theirs
    return out


def score_image(model, meta: dict, path: str | os.PathLike, threshold: float | None = None,
                detect: bool = True, detect_max_side: int | None = DETECT_MAX_SIDE,
                detector: str = "hog", keep_crops: bool = False) -> VideoResult:
    """Scores one image (its largest face); a video model sees the crop as a still clip.

    Same arguments and result as :func:`score_video` (``media="image"``, one frame).

    Raises:
        DataError: missing, empty or undecodable image.
    """
    start = time.perf_counter()
    spec = model_spec(model, meta)
    path = os.fspath(path)
    rgb = facelib.load_image(path)
    result = VideoResult(path=path, media="image", verdict=NO_FACE,
                         threshold=float(spec.threshold if threshold is None else threshold),
                         frames_sampled=1, frames_decoded=1, frame_count=1,
                         width=int(rgb.shape[1]), height=int(rgb.shape[0]))
    face, square, found, crop = _face_crop(rgb, spec, detect, detect_max_side, detector)
    result.frames.append(FrameResult(index=0, time=None, face=_box(face), crop=_box(square),
                                     faces_found=found))
    _score_frames(model, spec, result, [crop] if crop is not None else [],
                  [0] if crop is not None else [], keep_crops)
    result.seconds = round(time.perf_counter() - start, 4)
    return result


def as_rgb(picture, name: str = "picture") -> np.ndarray:
    """A picture as an ``(H, W, 3)`` uint8 RGB array.

    Takes a NumPy array (``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA;
    uint8, or floats in [0, 1]; OpenCV's BGR frames must be converted first) or a PIL
    image (any mode).

    Raises:
        DataError: anything else, or an array of another shape (naming ``name``).
    """
    if hasattr(picture, "convert") and hasattr(picture, "size"):  # a PIL image
        return np.asarray(picture.convert("RGB"), dtype=np.uint8)
    if not isinstance(picture, np.ndarray):
        raise DataError(f"not a picture: expected a file path, a NumPy array or a PIL "
                        f"image, got {type(picture).__name__}", name)
    array = picture
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or min(array.shape[:2]) < 1:
        raise DataError(f"an array picture must be (H, W), (H, W, 3) RGB or (H, W, 4) RGBA, "
                        f"got shape {tuple(picture.shape)}", name)
    array = array[:, :, :3]
    if array.dtype != np.uint8:
        values = array.astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise DataError("the array holds NaN or infinite values", name)
        # floats in [0, 1] (Keras, matplotlib) or [0, 255]
        values = values * 255.0 if values.max(initial=0.0) <= 1.0 else values
        array = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def score_pictures(model, meta: dict, pictures: Sequence, names: Sequence[str] | None = None,
                   threshold: float | None = None, detect: bool = True,
                   detect_max_side: int | None = DETECT_MAX_SIDE,
                   detector: str = "hog") -> list[VideoResult]:
    """Scores pictures held in memory (NumPy frames, PIL images), the faces of all of them
    in one batch: what :func:`score_image` does to a file, for many at once.

    Args:
        model, meta: from :func:`load_detector`.
        pictures: arrays or PIL images (:func:`as_rgb`).
        names: what each result's ``path`` says (default ``<picture 0>``, ...).
        threshold, detect, detect_max_side, detector: as :func:`score_image`'s.

    Returns:
        One :class:`VideoResult` per picture (``media="image"``), in order.

    Raises:
        DataError: something that is not a picture (naming it).
    """
    start = time.perf_counter()
    spec = model_spec(model, meta)
    names = list(names) if names is not None else [f"<picture {i}>"
                                                   for i in range(len(pictures))]
    results, crops, owners = [], [], []
    for name, picture in zip(names, pictures):
        rgb = as_rgb(picture, name)
        result = VideoResult(path=name, media="image", verdict=NO_FACE,
                             threshold=float(spec.threshold if threshold is None
                                             else threshold),
                             frames_sampled=1, frames_decoded=1, frame_count=1,
                             width=int(rgb.shape[1]), height=int(rgb.shape[0]))
        face, square, found, crop = _face_crop(rgb, spec, detect, detect_max_side, detector)
        result.frames.append(FrameResult(index=0, time=None, face=_box(face),
                                         crop=_box(square), faces_found=found))
        results.append(result)
        if crop is not None:
            crops.append(crop)
            owners.append(result)
    if spec.kind == "image" and crops:  # one batch for every face
        scores = score_crops(model, _to_model_range(np.stack(crops), spec))
        for result, score in zip(owners, scores):
            result.frames[0].score = result.score = float(score)
            result.frames_used = 1
            result.verdict = _verdict(result.score, result.threshold)
    else:  # a clip model sees each face as a still clip, as score_image does
        for result, crop in zip(owners, crops):
            _score_frames(model, spec, result, [crop], [0], keep_crops=False)
    seconds = round((time.perf_counter() - start) / max(len(results), 1), 4)
    for result in results:
        result.seconds = seconds
    return results


def score_face_crops(model, meta: dict, name: str, crops: Sequence[tuple[int, str | os.PathLike]],
                     threshold: float | None = None) -> VideoResult:
    """Scores one video from face crops cut beforehand (a store's PNGs), one per frame.

    Each crop is taken whole, as ``detect=False`` takes a frame, resized to the model's
    input, and scored like the frames of :func:`score_video` (mean of the frame scores,
    or one clip for a video model). Every crop is a frame with a face, so
    ``frames_sampled == frames_used`` = the number of crops.

    Args:
        model, meta: from :func:`load_detector`.
        name: what the result's ``path`` says (e.g. the store's source video).
        crops: ``(frame index, crop image file)`` pairs, in time order.
        threshold: decision threshold (default: the model's, else 0.5).

    Raises:
        DataError: a crop file is missing or does not decode (one line naming it).
    """
    start = time.perf_counter()
    spec = model_spec(model, meta)
    result = VideoResult(path=os.fspath(name), media="crops", verdict=NO_FACE,
                         threshold=float(spec.threshold if threshold is None else threshold),
                         frames_sampled=len(crops), frame_count=len(crops))
    arrays, indices = [], []
    for index, crop_path in crops:
        rgb = facelib.load_image(crop_path)
        face, square, found, crop = _face_crop(rgb, spec, False, None, "hog")
        result.frames.append(FrameResult(index=int(index), time=None, face=_box(face),
                                         crop=_box(square), faces_found=found))
        arrays.append(crop)
        indices.append(int(index))
    result.frames_decoded = len(result.frames)
    _score_frames(model, spec, result, arrays, indices, keep_crops=False)
    result.seconds = round(time.perf_counter() - start, 4)
    return result


def media_type(path: str | os.PathLike) -> str:
    """``video`` or ``image`` from the file name.

    Raises:
        DataError: an image format OpenCV cannot read, or not a media file at all.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in UNSUPPORTED_IMAGE_EXTENSIONS:
        raise DataError(f"unsupported image format {ext!r}: convert it to PNG or JPEG "
                        f"(readable: {', '.join(sorted(IMAGE_EXTENSIONS))})", path)
    raise DataError(f"unsupported file type {ext or '(no extension)'!r}: expected a video "
                    f"({', '.join(sorted(VIDEO_EXTENSIONS))}) or an image "
                    f"({', '.join(sorted(IMAGE_EXTENSIONS))})", path)


def score_input(model, meta: dict, path: str | os.PathLike, frames: int | None = None,
                threshold: float | None = None, **kwargs) -> VideoResult:
    """:func:`score_video` or :func:`score_image`, chosen by the file's extension.

    Raises:
        DataError: missing file, unsupported type, unreadable media.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError("no such file", path)
    if media_type(path) == "video":
        return score_video(model, meta, path, frames=frames, threshold=threshold, **kwargs)
    return score_image(model, meta, path, threshold=threshold, **kwargs)


# --------------------------------------------------------------------------- many inputs

def _media_in(folder: str) -> tuple[list[str], list[str], int]:
    """(media files, unsupported images, other files ignored) under ``folder``, sorted."""
    found, bad, ignored = [], [], 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            ext = os.path.splitext(name)[1].lower()
            full = os.path.join(root, name)
            if ext in VIDEO_EXTENSIONS or ext in IMAGE_EXTENSIONS:
                found.append(full)
            elif ext in UNSUPPORTED_IMAGE_EXTENSIONS:
                bad.append(full)
            else:
                ignored += 1
    return found, bad, ignored


def collect_inputs(inputs: Iterable[str | os.PathLike]) -> tuple[list[str], int]:
    """Expands folders (recursively, sorted) into media files.

    A named file is always kept (so a missing or unsupported one is reported); inside a
    folder, images in formats OpenCV cannot read are kept too (reported as failures),
    other non-media files are skipped and counted.

    Returns:
        ``(paths, ignored)``.
    """
    paths, ignored = [], 0
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            found, bad, skipped = _media_in(item)
            paths.extend(sorted(found + bad))
            ignored += skipped
        else:
            paths.append(item)
    return paths, ignored


def failure_result(path: str, err: BaseException) -> VideoResult:
    """The verdict-ERROR result of an input whose scoring raised ``err`` (one line)."""
    if isinstance(err, DfdetectError):
        message = str(err)
        if message.startswith(f"{path}: "):
            message = message[len(path) + 2:]
    else:  # not expected: still one line, and the batch goes on
        log.debug("unexpected error on %s", path, exc_info=True)
        message = f"unexpected {type(err).__name__}: {one_line(err, 300)}"
    return VideoResult(path=path, media="unknown", verdict=ERROR, error=message)


def guarded(path: str, fn: Callable[[], object]):
    """``fn()``, or a verdict-ERROR result when it raises: one bad file never ends a run."""
    try:
        return fn()
    except DfdetectError as err:
        return failure_result(path, err)
    except Exception as err:  # noqa: BLE001
        return failure_result(path, err)


def iter_predictions(model, meta: dict, paths: Sequence[str], **kwargs) -> Iterator[VideoResult]:
    """Yields one :class:`VideoResult` per path; a failing input yields verdict ERROR."""
    for path in paths:
        yield guarded(path, lambda: score_input(model, meta, path, **kwargs))


def predict_inputs(model, meta: dict, inputs: Sequence[str | os.PathLike],
                   on_result: Callable[[VideoResult], None] | None = None,
                   **kwargs) -> PredictSummary:
    """Scores videos, images and folders of them; failures are counted, not raised.

    Args:
        model, meta: from :func:`load_detector`.
        inputs: files and folders.
        on_result: called with each result as soon as it is ready (e.g. to print it).
        **kwargs: passed to :func:`score_video` / :func:`score_image`.
    """
    paths, ignored = collect_inputs(inputs)
    return _score_all(model, meta, paths, ignored, on_result, None, kwargs)


def _score_all(model, meta: dict, paths: Sequence[str], ignored: int,
               on_result: Callable[[VideoResult], None] | None,
               first: "_FirstVideo | None", kwargs: dict) -> PredictSummary:
    def results() -> Iterator[VideoResult]:
        rest = paths
        if first is not None:  # only ever made for paths[0]
            yield guarded(paths[0], lambda: first.score(model, meta, kwargs))
            rest = paths[1:]
        yield from iter_predictions(model, meta, rest, **kwargs)

    summary = PredictSummary(results=[], ignored=ignored)
    for result in results():
        summary.results.append(result)
        if on_result is not None:
            on_result(result)
    return summary


#: Scoring options the first video's background worker understands.
_FACE_OPTIONS = frozenset({"frames", "threshold", "detect", "detect_max_side", "detector"})


def load_and_predict(model_path: str | os.PathLike, inputs: Sequence[str | os.PathLike],
                     on_result: Callable[[VideoResult], None] | None = None,
                     quiet_start: bool = True, background: bool | None = None,
                     runtime: str = "auto", **kwargs) -> tuple[object, dict, PredictSummary]:
    """:func:`load_detector` then :func:`predict_inputs`, without TensorFlow where the
    model has a LiteRT twin, else with the first video's faces found while it starts.

    With ``runtime`` ``auto`` (the default) or ``litert``, a model whose LiteRT twin is
    current (:func:`dfdetect.models.litert.find_twin`) is scored by the LiteRT
    interpreter: TensorFlow is never imported, and each video's faces are found by two
    processes (:func:`face_workers`). The scores are the Keras model's to within float
    rounding (checked when the twin is written).

    A cold ``dfdetect predict`` spends most of its time importing TensorFlow and loading
    the model (about 4 s of 2 cores), with one core idle. Here a forked process decodes
    the first video's sampled frames and finds and crops its faces meanwhile, from what
    the model's metadata says it takes (:func:`video_faces`); the crops are scored once
    the model is ready, exactly as :func:`score_video` scores them. The fork happens
    before TensorFlow is imported (forking a process that runs TensorFlow's threads is
    not safe), so it is used only then, on POSIX systems other than macOS, and when the
    first input is a video; otherwise this is load_detector + predict_inputs.

    Args:
        model_path: an exported dfdetect model.
        inputs: files and folders (:func:`collect_inputs`).
        on_result: called with each result as soon as it is ready.
        quiet_start: start TensorFlow without its start-up lines
            (:func:`dfdetect.io.start_tensorflow`).
        background: find the first video's faces in a forked process; None: when
            TensorFlow is not imported yet (a cold start). Not used with LiteRT.
        runtime: ``auto``, ``keras`` or ``litert`` (:data:`dfdetect.models.litert.RUNTIMES`).
        **kwargs: scoring options of :func:`score_video` / :func:`score_image`.

    Returns:
        ``(model, meta, summary)``.

    Raises:
        ModelError: the model file is missing or unusable (before any input is scored),
            or ``litert`` was asked for and the model has no usable twin.
    """
    paths, ignored = collect_inputs(inputs)
    loaded = load_twin(model_path, runtime)
    if loaded is not None:
        model, meta = loaded
        return model, meta, _score_all(model, meta, paths, ignored, on_result, None, kwargs)
    if background is None:
        background = "tensorflow" not in sys.modules
    first = _FirstVideo.start(model_path, paths, kwargs) if background else None
    try:
        if quiet_start:
            start_tensorflow()
        model, meta = load_detector(model_path)
        summary = _score_all(model, meta, paths, ignored, on_result, first, kwargs)
    finally:
        if first is not None:
            first.close()
    return model, meta, summary


def _faces_worker(conn, spec: ModelSpec, meta: dict, path: str, options: dict) -> None:
    """The forked process: :func:`video_faces` of one video, sent back through ``conn``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        conn.send(("ok", video_faces(spec, meta, path, **options)))
    except DfdetectError as err:  # pickles with its one-line message
        conn.send(("error", err))
    except Exception as err:  # noqa: BLE001 - reaches the user as that input's ERROR
        conn.send(("error", DfdetectError(f"unexpected {type(err).__name__}: "
                                          f"{one_line(err, 300)}")))
    finally:
        conn.close()


class _FirstVideo:
    """The first video's faces, found by a forked process while the model loads."""

    def __init__(self, spec: ModelSpec, meta: dict, path: str, options: dict):
        ctx = multiprocessing.get_context("fork")
        self.spec, self.path, self.started = spec, path, time.perf_counter()
        # the child flushes its copies of these buffers when it ends: empty them first, or
        # what the parent had not written yet would be written twice
        sys.stdout.flush()
        sys.stderr.flush()
        self._conn, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_faces_worker, args=(child, spec, meta, path, options),
                                 daemon=True)
        self._proc.start()
        child.close()  # the parent keeps only its reading end: a dead worker reads as EOF

    @classmethod
    def start(cls, model_path, paths: Sequence[str], kwargs: dict) -> "_FirstVideo | None":
        """The worker for ``paths[0]``, or None where it cannot help or is not safe."""
        if (not paths or set(kwargs) - _FACE_OPTIONS or sys.platform == "darwin"
                or "fork" not in multiprocessing.get_all_start_methods()):
            return None
        try:
            if media_type(paths[0]) != "video" or not os.path.isfile(paths[0]):
                return None
            meta = read_metadata(model_path)
            spec = model_spec(None, meta)
        except DfdetectError:
            return None  # load_detector / score_input say what is wrong, in one line
        return cls(spec, meta, os.fspath(paths[0]), dict(kwargs))

    def score(self, model, meta: dict, kwargs: dict) -> VideoResult:
        """The video's result with ``model``; scored the plain way if the worker died or
        the loaded model takes other inputs than its metadata said."""
        spec = model_spec(model, meta)
        try:
            status, payload = self._conn.recv() if spec == self.spec else (None, None)
        except (EOFError, OSError):
            status, payload = None, None
        if status is None:
            return score_input(model, meta, self.path, **kwargs)
        if status == "error":
            raise payload
        result, crops, crop_frames = payload
        _score_frames(model, spec, result, crops, crop_frames, keep_crops=False)
        result.seconds = round(time.perf_counter() - self.started, 4)
        return result

    def close(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(timeout=5)
        self._conn.close()


# --------------------------------------------------------------------------- outputs

def json_report(summary: PredictSummary, model_path: str | None = None,
                meta: dict | None = None) -> str:
    """The JSON text :func:`write_json` writes (also printed when it cannot be written)."""
    keep = ("experiment", "config", "scale", "kind", "head", "input_shape", "frames",
            "image_size", "threshold", "value_range", "model_name", "builder")
    doc = {"model": None if model_path is None else os.fspath(model_path),
           # the frames' "face" and "crop" boxes, in face_recognition's order
           "box_order": BOX_ORDER,
           "model_metadata": {k: v for k, v in (meta or {}).items() if k in keep},
           "summary": summary.to_dict(),
           "results": [r.to_dict() for r in summary.results]}
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, summary: PredictSummary, model_path: str | None = None,
               meta: dict | None = None) -> str:
    """Writes every input's verdict and every frame's score, box and timestamp (atomically)."""
    path = os.fspath(path)
    atomic_write_text(path, json_report(summary, model_path, meta))
    return path


def short_names(paths: Sequence[str]) -> list[str]:
    """Each path's file name, or its path below the common folder when names repeat."""
    names = [os.path.basename(p) for p in paths]
    if len(set(names)) == len(names):
        return names
    common = os.path.commonpath([os.path.abspath(p) for p in paths]) if paths else ""
    return [os.path.relpath(os.path.abspath(p), common) for p in paths]


def write_plot(path: str | os.PathLike, results: Sequence[VideoResult],
               threshold: float | None = None) -> str | None:
    """P5 Fig. 4-5: P(fake) per frame for each scored input, with the threshold.

    A video model's clip score is drawn flat over the frames it saw. Returns the path,
    or ``None`` when no input has a score to draw.
    """
    from dfdetect import plots  # deferred: matplotlib and scikit-learn, for --plot only

    scored = [r for r in results if r.score is not None]
    if not scored:
        return None
    # Seconds when every video knows its frame rate (a viewer seeks by time, not by
    # frame index); frame indices otherwise. An image is one point at 0.
    in_seconds = all(r.fps > 0 for r in scored if r.media == "video")

    def x(index: int, r: VideoResult) -> float:
        return round(index / r.fps, 3) if in_seconds and r.fps > 0 else index

    series = {}
    for name, r in zip(short_names([r.path for r in scored]), scored):
        if r.clip is not None:
            xs = [x(i, r) for i in sorted(set(r.clip))]
            series[f"{name} (clip)"] = (xs, [r.score] * len(xs))
        else:
            pts = [(x(f.index, r), f.score) for f in r.frames if f.score is not None]
            series[name] = ([p[0] for p in pts], [p[1] for p in pts])
    if threshold is None:
        threshold = scored[0].threshold
    return plots.frame_scores(path, series, threshold=threshold,
                              xlabel="time (s)" if in_seconds else "frame")
