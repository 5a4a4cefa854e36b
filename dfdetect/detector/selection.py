"""Choosing the detector's checkpoint and threshold on real FaceForensics++ deepfakes.

The published SBI protocol trains on self-blends of real faces only and selects on
FaceForensics++ validation videos. Here the FF++ clips of ``../shared/data/realworld/``
(``ffpp_*``: c23 and c40, pristine and six manipulation methods) play that part: every
epoch the model scores them exactly as ``dfdetect predict`` would (16 evenly spaced
frames, the largest HOG face, the 1.3x square crop, the mean of the frame scores), and
the checkpoint with the best video ROC AUC over them is kept. They never give a
gradient. The Celeb-DF and DFDC clips beside them are the cross-dataset test
(:data:`~dfdetect.detector.settings.TEST_PREFIXES`): :func:`load_test_clips` reads them
for scoring a finished run, and the training loop refuses a selection set holding them,
so nothing is ever selected on them.

Face detection runs once per clip; the crops are cached per input side in
``<cache>/selection_<key>_<side>.npz``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from dfdetect.data import faces as facelib
from dfdetect.data.faces import CROP_SCALE, DETECT_MAX_SIDE
from dfdetect.data.sources import VIDEO_EXTENSIONS
from dfdetect.data.video import iter_frames, probe_video, sample_indices
from dfdetect.detector.settings import PREDICT_FRAMES, SELECTION_PREFIX, TEST_PREFIXES
from dfdetect.errors import DataError
from dfdetect.io import atomic_path

#: Only clips whose names start with this are selection material.
SELECTION_VERSION = 1


@dataclasses.dataclass
class SelectionSet:
    """The FF++ selection clips as model inputs.

    Attributes:
        names: clip file names.
        labels: ``(V,)`` 1 fake / 0 real.
        methods: manipulation per clip (``real`` for pristine).
        compression: ``c23`` or ``c40`` per clip.
        crops: ``(N, S, S, 3)`` uint8 face crops, every clip's frames in order.
        video: ``(N,)`` the clip index of each crop.
    """

    names: list
    labels: np.ndarray
    methods: list
    compression: list
    crops: np.ndarray
    video: np.ndarray

    @property
    def side(self) -> int:
        return int(self.crops.shape[1])


def _label(name: str) -> tuple[int, str, str]:
    tokens = os.path.splitext(name)[0].split("_")
    if "real" in tokens:
        label, method = 0, "real"
    elif "fake" in tokens:
        label, method = 1, tokens[tokens.index("fake") + 1]
    else:
        raise DataError("a selection clip's name says neither real nor fake", name)
    return label, method, "c40" if "c40" in tokens else "c23"


def selection_clips(folder: str | os.PathLike,
                    prefixes: tuple[str, ...] = (SELECTION_PREFIX,)) -> list[str]:
    """The clips of a realworld-style folder whose names start with ``prefixes`` (by
    default the FF++ clips, ``ffpp_*``), sorted.

    Raises:
        DataError: the folder is missing or holds no such clip.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise DataError("not a folder", folder)
    clips = sorted(f for f in os.listdir(folder) if f.startswith(tuple(prefixes))
                   and os.path.splitext(f)[1].lower() in VIDEO_EXTENSIONS)
    if not clips:
        raise DataError(f"no {'* / '.join(prefixes)}* clip here", folder)
    return [os.path.join(folder, f) for f in clips]


def clip_boxes(path: str, frames: int = PREDICT_FRAMES) -> list[tuple[int, tuple]]:
    """``(frame index, square crop box)`` of each sampled frame with a face, as predict
    finds them (HOG on a copy at most 640 px, the largest face, a 1.3x square)."""
    info = probe_video(path)
    out = []
    for index, rgb in iter_frames(path, sample_indices(info.frame_count, frames)):
        boxes = facelib.detect_faces(rgb, model="hog", max_side=DETECT_MAX_SIDE)
        if boxes:
            square = facelib.square_box(boxes[0], rgb.shape, scale=CROP_SCALE)
            out.append((int(index), tuple(int(v) for v in square)))
    return out


def clip_crops(path: str, side: int, boxes: list[tuple[int, tuple]]) -> list[np.ndarray]:
    """The face crops ``dfdetect predict`` feeds an image model, from the found boxes."""
    where = dict(boxes)
    return [facelib.crop_face(rgb, facelib.Box(*where[int(index)]), side)
            for index, rgb in iter_frames(path, sorted(where))]


def _key(paths: list[str], frames: int) -> str:
    h = hashlib.sha256()
    stats = [(os.path.basename(p), os.path.getsize(p)) for p in paths]
    h.update(json.dumps([SELECTION_VERSION, frames, stats]).encode())
    return h.hexdigest()[:12]


def _boxes(paths: list[str], frames: int, cache: Path, say) -> list[list[tuple[int, tuple]]]:
    """Every clip's face boxes; face detection runs once and is cached (any side)."""
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            rows = z["rows"]
        found = [[] for _ in paths]
        for video, index, *box in rows.tolist():
            found[video].append((index, tuple(box)))
        return found
    found = []
    for i, path in enumerate(paths):
        found.append(clip_boxes(path, frames))
        if (i + 1) % 20 == 0:
            say(f"selection: faces found in {i + 1}/{len(paths)} clips")
    rows = np.asarray([(v, index, *box) for v, clip in enumerate(found) for index, box in clip],
                      np.int64).reshape(-1, 6)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp:
        np.savez(tmp, rows=rows)
    return found


def load_selection(folder: str | os.PathLike, side: int, cache_dir: str | os.PathLike,
                   frames: int = PREDICT_FRAMES, say: Callable[[str], None] = print,
                   prefixes: tuple[str, ...] = (SELECTION_PREFIX,)) -> SelectionSet:
    """The FF++ selection clips of ``folder`` cropped at ``side`` px (cached).

    Args:
        folder: a folder laid out as ``realworld/`` (labels in the file names).
        side: the model's input side.
        cache_dir: where the face boxes and the crops are kept.
        frames: frames per clip (predict's default for the detector).
        say: progress lines.
        prefixes: which clips (only :func:`load_test_clips` passes others).
    """
    paths = selection_clips(folder, prefixes)
    key = _key(paths, frames)
    cache = Path(cache_dir) / f"selection_{key}_{int(side)}.npz"
    names = [os.path.basename(p) for p in paths]
    parsed = [_label(n) for n in names]
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            crops, video = z["crops"], z["video"]
    else:
        boxes = _boxes(paths, frames, Path(cache_dir) / f"selection_{key}_boxes.npz", say)
        crops, video = [], []
        for i, path in enumerate(paths):
            found = clip_crops(path, side, boxes[i])
            crops.extend(found)
            video.extend([i] * len(found))
        if not crops:
            raise DataError("no face found in any selection clip", folder)
        crops, video = np.stack(crops), np.asarray(video, np.int32)
        with atomic_path(cache) as tmp:
            np.savez(tmp, crops=crops, video=video)
    have = len(set(video.tolist()))
    say(f"clips {'/'.join(prefixes)}: {len(paths)} ({sum(p[0] == 0 for p in parsed)} real), "
        f"{len(crops)} face crops at {side} px; {len(paths) - have} clips without a face")
    return SelectionSet(names=names, labels=np.asarray([p[0] for p in parsed], np.int32),
                        methods=[p[1] for p in parsed], compression=[p[2] for p in parsed],
                        crops=crops, video=video)


def load_test_clips(folder: str | os.PathLike, side: int, cache_dir: str | os.PathLike,
                    frames: int = PREDICT_FRAMES,
                    say: Callable[[str], None] = print) -> SelectionSet:
    """The cross-dataset test clips (Celeb-DF, DFDC) cropped as predict crops them.

    For scoring a *finished* run once, after its checkpoint and threshold were chosen on
    the FF++ clips (the ablation table); nothing may be selected on these scores.
    """
    return load_selection(folder, side, cache_dir, frames, say, prefixes=TEST_PREFIXES)


def video_scores(frame_scores: np.ndarray, sel: SelectionSet) -> np.ndarray:
    """Mean frame score per clip (NaN for a clip without a face), as predict aggregates."""
    sums = np.bincount(sel.video, weights=frame_scores, minlength=len(sel.names))
    counts = np.bincount(sel.video, minlength=len(sel.names))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def frame_scores(predict_fn: Callable[[np.ndarray], np.ndarray], crops: np.ndarray,
                 batch: int = 64) -> np.ndarray:
    """P(fake) of each uint8 crop, in batches; ``predict_fn`` maps [0, 1] crops."""
    parts = [np.asarray(predict_fn(crops[i:i + batch].astype(np.float32) / 255.0),
                        np.float64).reshape(-1)
             for i in range(0, len(crops), batch)]
    return np.concatenate(parts) if parts else np.zeros(0)


def score_selection(predict_fn: Callable[[np.ndarray], np.ndarray], sel: SelectionSet,
                    batch: int = 64) -> np.ndarray:
    """Video scores of every selection clip; ``predict_fn`` maps [0, 1] crops to P(fake)."""
    return video_scores(frame_scores(predict_fn, sel.crops, batch), sel)


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score  # deferred: sklearn is slow to import

    ok = np.isfinite(scores)
    if len(set(labels[ok].tolist())) < 2:
        return float("nan")
    return float(roc_auc_score(labels[ok], scores[ok]))


def selection_metrics(scores: np.ndarray, sel: SelectionSet) -> dict:
    """Video ROC AUC on all FF++ clips, on c23 and on c40, and per method (vs the reals
    of the same compression); clips without a face are left out."""
    comp = np.asarray(sel.compression)
    out = {"ffpp_auc": _auc(sel.labels, scores)}
    for c in ("c23", "c40"):
        m = comp == c
        out[f"ffpp_auc_{c}"] = _auc(sel.labels[m], scores[m])
    methods = np.asarray(sel.methods)
    for method in sorted(set(sel.methods) - {"real"}):
        m = (methods == method) | (methods == "real")
        out[f"ffpp_auc_{method}"] = _auc(sel.labels[m], scores[m])
    return out


def balanced_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold with the best balanced accuracy (midway between neighbouring scores)."""
    ok = np.isfinite(scores)
    y, s = np.asarray(labels)[ok], np.asarray(scores)[ok]
    if len(set(y.tolist())) < 2:
        return 0.5
    values = np.unique(s)
    cuts = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2,
                           [values[-1] + 1e-6]])
    best, best_cut = -1.0, 0.5
    for cut in cuts:
        pred = s >= cut
        bacc = 0.5 * (pred[y == 1].mean() + (~pred[y == 0]).mean())
        if bacc > best + 1e-12:
            best, best_cut = bacc, float(cut)
    return float(np.clip(best_cut, 0.0, 1.0))
