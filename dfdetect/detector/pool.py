"""The detector's face pool: real faces as canvases with landmarks and the predict crop.

Material (never ``realworld/``): every usable face photo of a folder (UTKFace chips in
``../shared/data/faces``) and evenly spaced frames of real videos
(``../shared/data/videos``: video frames are what users score). Each becomes one
*canvas*: the face with context around it, at :attr:`DetectorScale.canvas` px, its 68
landmarks, and where ``dfdetect predict`` would crop it (a square 1.3x the HOG face
box). The canvases are prepared once and cached (:func:`prepare_pool`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from dfdetect.data import faces
from dfdetect.data.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from dfdetect.data.video import iter_frames, probe_video, sample_indices
from dfdetect.detector.settings import CONTEXT, CROP_SCALE, EVALUATION_PREFIXES, DetectorScale
from dfdetect.errors import DataError
from dfdetect.io import atomic_path

POOL_VERSION = 1
# the one list of readable formats (data/sources.py), sorted so the pool key is stable
VIDEO_SUFFIXES = tuple(sorted(VIDEO_EXTENSIONS))
IMAGE_SUFFIXES = tuple(sorted(IMAGE_EXTENSIONS))


@dataclasses.dataclass
class FacePool:
    """Prepared face canvases.

    Attributes:
        images: ``(N, C, C, 3)`` uint8 RGB canvases.
        landmarks: ``(N, 68, 2)`` float32, canvas pixels.
        crop: ``(N, 3)`` float32 ``(cx, cy, side)`` of the predict crop in the canvas.
        group: ``(N,)`` identity / video name (splits never cut a group).
        kind: ``(N,)`` ``photo`` or ``frame``.
    """

    images: np.ndarray
    landmarks: np.ndarray
    crop: np.ndarray
    group: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def _canvas_from_box(rgb: np.ndarray, box, canvas: int):
    """Similarity warp of ``rgb`` so the face box's 1.3x square x 1.5 fills the canvas."""
    top, right, bottom, left = (float(v) for v in box)
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    side = max(right - left, bottom - top) * CROP_SCALE
    span = side * CONTEXT
    s = canvas / span
    m = np.array([[s, 0, canvas / 2 - s * cx], [0, s, canvas / 2 - s * cy]], np.float64)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    if s < 1:  # INTER_AREA is not available for warps: shrink first, then place
        small = cv2.resize(rgb, (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s))),
                           interpolation=cv2.INTER_AREA)
        m2 = np.array([[1, 0, canvas / 2 - s * cx], [0, 1, canvas / 2 - s * cy]], np.float64)
        out = cv2.warpAffine(small, m2, (canvas, canvas), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)
    else:
        out = cv2.warpAffine(rgb, m, (canvas, canvas), flags=interp, borderMode=cv2.BORDER_REFLECT)
    return out, m, (canvas / 2.0, canvas / 2.0, side * s)


def _photo_entry(task: tuple[str, int]):
    """Worker: a face photo -> (canvas, landmarks, crop) or (None, reason)."""
    path, canvas = task
    try:
        rgb = faces.load_image(path)
        h, w = rgb.shape[:2]
        if max(h, w) <= faces.TIGHT_CROP_MAX_SIDE:
            # a tight chip: predict's 1.3x HOG crop of it is about the whole chip
            lm, problem = faces.find_landmarks(rgb)
            if lm is None:
                return path, None, problem
            side = float(min(h, w))
            box = (h / 2 - side / 2.6, w / 2 + side / 2.6, h / 2 + side / 2.6, w / 2 - side / 2.6)
        else:
            box = faces.largest_face(faces.detect_faces(rgb))
            if box is None:
                return path, None, "no face detected"
            lm = faces.face_landmarks(rgb, box)
            if lm is None or faces.landmark_problem(lm, rgb.shape):
                return path, None, "no usable landmarks"
        image, m, crop = _canvas_from_box(rgb, box, canvas)
        pts = np.asarray(lm, np.float64) @ m[:, :2].T + m[:, 2]
        return path, (image, pts.astype(np.float32), np.asarray(crop, np.float32)), None
    except Exception as err:  # noqa: BLE001 - one bad photo must not end the pool
        return path, None, " ".join(str(err).split())[:200]


def _video_entries(path: str, n: int, canvas: int) -> list:
    info = probe_video(path)
    out = []
    for _, rgb in iter_frames(path, sample_indices(info.frame_count, n)):
        box = faces.largest_face(faces.detect_faces(rgb, max_side=640))
        if box is None:
            continue
        lm = faces.face_landmarks(rgb, box)
        if lm is None or faces.landmark_problem(lm, rgb.shape):
            continue
        image, m, crop = _canvas_from_box(rgb, box, canvas)
        pts = np.asarray(lm, np.float64) @ m[:, :2].T + m[:, 2]
        out.append((image, pts.astype(np.float32), np.asarray(crop, np.float32)))
    return out


def _list_media(folder: str | None, suffixes: Sequence[str]) -> list[str]:
    if not folder:
        return []
    if not os.path.isdir(folder):
        raise DataError("not a folder", folder)
    files = sorted(f for f in os.listdir(folder)
                   if f.lower().endswith(tuple(suffixes)) and not f.startswith("."))
    evaluation = [f for f in files if f.startswith(EVALUATION_PREFIXES)]
    if evaluation:
        more = f" (and {len(evaluation) - 1} more)" if len(evaluation) > 1 else ""
        raise DataError(f"{evaluation[0]}{more}: a clip of the real-deepfake evaluation set, "
                        "never training material", folder)
    return [os.path.join(folder, f) for f in files]


def _pool_key(photos: list[str], videos: list[str], sc: DetectorScale) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([POOL_VERSION, sc.canvas, sc.frames_per_video, photos, videos]).encode())
    return h.hexdigest()[:12]


def prepare_pool(faces_dir: str | None, videos_dir: str | None, sc: DetectorScale,
                 cache_dir: str | os.PathLike, workers: int = 2,
                 say: Callable[[str], None] = print) -> FacePool:
    """Canvases of every usable photo and sampled video frame, cached in ``cache_dir``.

    Args:
        faces_dir: folder of face photos (or None).
        videos_dir: folder of real face videos (or None). Never a deepfake set.
        sc: the scale (canvas size, frames per video, photo cap).
        cache_dir: where ``pool_<key>.npz`` is kept (the key hashes the inputs).
        workers: processes for the photos.
        say: progress lines.

    Raises:
        DataError: a missing folder, or no usable face at all.
    """
    photos = _list_media(faces_dir, IMAGE_SUFFIXES)
    if sc.max_photos is not None:
        photos = photos[:sc.max_photos]
    videos = _list_media(videos_dir, VIDEO_SUFFIXES)
    cache = Path(cache_dir) / f"pool_{_pool_key(photos, videos, sc)}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            pool = FacePool(z["images"], z["landmarks"], z["crop"], z["group"], z["kind"])
        say(f"face pool: {len(pool)} canvases from {cache}")
        return pool
    entries, groups, kinds, skipped = [], [], [], 0
    start = time.perf_counter()
    if photos:
        with get_context("spawn").Pool(max(1, workers)) as pool:
            for i, (path, entry, _why) in enumerate(pool.imap(
                    _photo_entry, [(p, sc.canvas) for p in photos], chunksize=16)):
                if entry is None:
                    skipped += 1
                else:
                    entries.append(entry)
                    groups.append(os.path.basename(path))
                    kinds.append("photo")
                if (i + 1) % 1000 == 0:
                    say(f"face pool: {i + 1}/{len(photos)} photos, {skipped} without a usable "
                        f"face ({time.perf_counter() - start:.0f} s)")
    for path in videos:
        try:
            found = _video_entries(path, sc.frames_per_video, sc.canvas)
        except DataError as err:
            say(f"face pool: skipped {err}")
            continue
        say(f"face pool: {os.path.basename(path)}: {len(found)}/{sc.frames_per_video} frames "
            "with a face")
        entries.extend(found)
        groups.extend([os.path.basename(path)] * len(found))
        kinds.extend(["frame"] * len(found))
    if not entries:
        raise DataError("no usable face in the photos or videos given", faces_dir or videos_dir)
    pool = FacePool(np.stack([e[0] for e in entries]), np.stack([e[1] for e in entries]),
                    np.stack([e[2] for e in entries]), np.asarray(groups), np.asarray(kinds))
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp:
        np.savez(tmp, images=pool.images, landmarks=pool.landmarks, crop=pool.crop,
                 group=pool.group, kind=pool.kind)
    say(f"face pool: {len(pool)} canvases ({int((pool.kind == 'photo').sum())} photos, "
        f"{int((pool.kind == 'frame').sum())} video frames; {skipped} photos skipped) in "
        f"{time.perf_counter() - start:.0f} s -> {cache}")
    return pool


def split_pool(pool: FacePool, val_fraction: float = 0.06, val_videos: int = 3,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) canvas indices; groups (photos, whole videos) never straddle."""
    def bucket(name: str) -> float:
        digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    videos = sorted({g for g, k in zip(pool.group, pool.kind) if k == "frame"},
                    key=bucket)
    held = set(videos[:val_videos]) if len(videos) > val_videos else set()
    val = np.array([(g in held) if k == "frame" else bucket(g) < val_fraction
                    for g, k in zip(pool.group, pool.kind)])
    return np.flatnonzero(~val), np.flatnonzero(val)
