"""Where an embedded benchmark's identities come from: faces drawn by
:mod:`dfdetect.synthetic.procedural` (a pure function of the seed), or a folder of face
photos or videos, probed for usable landmarks (:func:`dfdetect.data.faces.find_landmarks`,
cached in a ``.npz`` beside the store) and matched by face colour for the donors.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import cv2
import numpy as np

from dfdetect.data import faces, video
from dfdetect.data.faces import find_landmarks, landmark_problem
from dfdetect.data.sources import is_image, is_video
from dfdetect.errors import DataError
from dfdetect.synthetic import forge, procedural
from dfdetect.synthetic.build import TAG, imap, sample_rng, short_reason

def face_colour(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Mean Lab colour (OpenCV 8-bit scale) of the inner face: donors are matched on it."""
    mask = forge.hull_mask(rgb.shape, np.asarray(landmarks)[17:]) > 0.5
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    return lab[mask].mean(0) if mask.any() else lab.reshape(-1, 3).mean(0)


def _probe_image(path: str) -> tuple[str, np.ndarray | None, str | None, np.ndarray | None]:
    """Worker: an image file -> (path, landmarks or None, reason, face colour)."""
    try:
        rgb = faces.load_image(path)
        lm, problem = find_landmarks(rgb)
        return path, lm, problem, (None if lm is None else face_colour(rgb, lm))
    except Exception as err:  # noqa: BLE001 - one bad file must not end a batch
        return path, None, short_reason(err, path), None


# ----------------------------------------------------------------------------- folders

@dataclasses.dataclass(frozen=True)
class Ident:
    """One identity of a face folder: its files (images or one video)."""

    id: str
    files: tuple[str, ...]
    video: bool = False


def list_folder(folder: str) -> list[Ident]:
    root = Path(folder)
    if not root.exists():
        raise DataError("no such face folder", folder)
    if not root.is_dir():
        raise DataError("--faces must be 'procedural' or a folder of face images/videos",
                        folder)
    idents = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            imgs = tuple(str(p) for p in sorted(entry.iterdir()) if is_image(p))
            if imgs:
                idents.append(Ident(entry.name, imgs))
        elif is_image(entry):
            idents.append(Ident(entry.name, (str(entry),)))
        elif is_video(entry):
            idents.append(Ident(entry.name, (str(entry),), video=True))
    if not idents:
        raise DataError("no images or videos in the face folder", folder)
    return idents


# ----------------------------------------------------------------------------- drawn faces

def _procedural_face(seed: int, ident_idx: int, view_idx: int, size: int, view=None):
    ident = procedural.random_identity(sample_rng(seed, TAG["identity"], ident_idx))
    if view is None:
        view = procedural.random_view(sample_rng(seed, TAG["view"], ident_idx, view_idx))
    return procedural.render_face(ident, view, size)


def procedural_skin(seed: int, ident_idx: int) -> np.ndarray:
    return np.array(procedural.random_identity(sample_rng(seed, TAG["identity"], ident_idx)).skin)


def render_size(work: int) -> int:
    # the drawn face spans ~43 % of the render; a 1.3x crop then needs ~0.56 of it
    return int(math.ceil(work / 0.56 * 1.1))


def load_face(ref: dict, seed: int, work: int):
    """A face image and its landmarks from a task reference."""
    if ref["kind"] == "procedural":
        return _procedural_face(seed, ref["index"], 0, render_size(work), ref.get("view_obj"))
    if ref["kind"] == "frame":
        # the same 640-px frames the landmarks were found on
        frames = video.read_frames(ref["path"], indices=[ref["frame"]], max_side=640)
        return frames[0][1], np.asarray(ref["landmarks"])
    return faces.load_image(ref["path"]), np.asarray(ref["landmarks"])


# ----------------------------------------------------------------------------- probing

def probe_folder(idents: list[Ident], needed: int, seed: int, pool, summary,
                  cache: dict) -> list[tuple[Ident, str, np.ndarray, np.ndarray]]:
    """Landmarks of randomly chosen still images until ``needed`` identities are usable.

    Returns:
        ``(identity, image path, landmarks, face colour)`` per usable identity.
    """
    stills = [i for i in idents if not i.video]
    order = sample_rng(seed, TAG["select"]).permutation(len(stills))
    usable, pos = [], 0
    while len(usable) < needed and pos < len(order):
        batch_n = max(8, int((needed - len(usable)) * 1.1) + 8)
        batch = [stills[j] for j in order[pos:pos + batch_n]]
        pos += batch_n
        paths = [b.files[0] for b in batch]
        todo = [p for p in paths if p not in cache]
        for path, lm, problem, colour in imap(pool, _probe_image, todo, chunksize=8):
            cache[path] = (lm, problem, colour)
        for ident, path in zip(batch, paths):
            lm, problem, colour = cache[path]
            if lm is None:
                summary.skipped_files[path] = problem
            else:
                usable.append((ident, path, lm, colour))
    return usable[:needed]


def probe_video(path: str) -> tuple[str, int, str | None]:
    """Worker: a video's true frame count (0 and a reason when it cannot be used)."""
    try:
        return path, int(video.probe_video(path).frame_count), None
    except Exception as err:  # noqa: BLE001
        return path, 0, short_reason(err, path)


def _video_still_faces(task: tuple[str, int]) -> tuple[str, list, str | None]:
    """Worker: ``n`` evenly spaced frames of a video -> [(frame, landmarks, colour)]."""
    path, n = task
    try:
        found = []
        for index, rgb in video.read_frames(path, n=n, max_side=640):
            lm = faces.face_landmarks(rgb)
            if lm is not None and landmark_problem(lm, rgb.shape) is None:
                found.append((index, lm, face_colour(rgb, lm)))
        return path, found, (None if found else f"no usable face in {n} sampled frames")
    except Exception as err:  # noqa: BLE001
        return path, [], short_reason(err, path)


def probe_video_stills(idents: list[Ident], n_ident: int, n_views: int, pool,
                        summary) -> list[tuple]:
    """Usable videos of a folder and the frames that serve as their stills.

    Returns:
        ``(identity, path, [landmarks per frame], colour, [frame indices])`` per video.
    """
    videos = [i for i in idents if i.video]
    per_video = max(n_views, int(math.ceil(n_ident * n_views / max(1, len(videos)))))
    per_video = min(per_video, 200)
    usable = []
    tasks = [(v.files[0], per_video) for v in videos]
    for ident, (path, found, problem) in zip(videos, imap(pool, _video_still_faces, tasks,
                                                         chunksize=1)):
        if problem:
            summary.skipped_files[path] = problem
            continue
        usable.append((ident, path, [f[1] for f in found], np.mean([f[2] for f in found], 0),
                       [int(f[0]) for f in found]))
    return usable


def load_landmark_cache(path: Path) -> dict:
    """Landmark cache of a face folder: path -> (landmarks, problem, colour)."""
    cache = {}
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                for key, lm, col in zip(data["paths"], data["landmarks"], data["colours"]):
                    cache[str(key)] = (lm, None, col)
                for key, reason in zip(data["bad_paths"], data["bad_reasons"]):
                    cache[str(key)] = (None, str(reason), None)
        except (OSError, ValueError, KeyError):
            cache = {}
    return cache


def save_landmark_cache(path: Path, cache: dict) -> None:
    good = sorted(k for k, v in cache.items() if v[0] is not None)
    bad = sorted(k for k, v in cache.items() if v[0] is None)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, paths=np.array(good, dtype=str),
             landmarks=np.array([cache[k][0] for k in good], np.float64).reshape(-1, 68, 2),
             colours=np.array([cache[k][2] for k in good], np.float64).reshape(-1, 3),
             bad_paths=np.array(bad, dtype=str),
             bad_reasons=np.array([cache[k][1] or "" for k in bad], dtype=str))
    os.replace(tmp, path)


def usable_stills(idents: list[Ident], needed: int, seed: int, pool, summary,
                  cache_path: str | os.PathLike | None, out: Path,
                  faces: str) -> list[tuple[Ident, str, np.ndarray, np.ndarray]]:
    """:func:`probe_folder` through the folder's landmark cache (``cache_path``, default
    ``<out>/landmarks.npz``, re-used across builds).

    Raises:
        DataError: no still image of the folder has a usable face.
    """
    cache_file = Path(cache_path) if cache_path else out / "landmarks.npz"
    cache = load_landmark_cache(cache_file)
    usable = probe_folder(idents, needed, seed, pool, summary, cache)
    save_landmark_cache(cache_file, cache)
    if not usable:
        raise no_usable_face(summary, "images", faces)
    return usable


def no_usable_face(summary, what: str, faces: str) -> DataError:
    """The error of a face folder none of whose ``what`` (images, videos) has a face."""
    return DataError(f"no usable face in {len(summary.skipped_files)} {what} checked (no "
                     "face detected or landmarks implausible)", faces)
