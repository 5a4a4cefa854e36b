"""Embedded benchmarks: real/fake face stores that dfdetect makes itself.

``dfdetect data build --benchmark images|videos --faces procedural|DIR --scale S --out OUT
--seed N [--holdout-method M]`` calls :func:`build_benchmark`, which writes a store exactly
like ``dfdetect data crop`` (``OUT/crops/...`` PNGs + ``OUT/manifest.csv``), so every
experiment reads a benchmark and a real dataset the same way.

Face sources (``faces``):

* ``procedural`` (default, no download): faces drawn by :mod:`dfdetect.data.procedural`;
  identity ``k`` is a pure function of ``(seed, k)``.
* a folder of face photos (e.g. ``../shared/data/faces``): every image file is one
  identity (a sub-folder of images is one identity); photos larger than 400 px are
  searched for their largest face, smaller ones are taken as tight crops (landmarks fitted
  with the whole image, inset 8 %, as the face box, after a HOG check that a face is
  there). Files with no usable face are skipped and listed, never fatal; a folder with
  none raises :class:`DataError`.
* a folder of videos (e.g. ``../shared/data/videos``): every video is one identity; its
  frames serve as stills (``images``) or as real clips (``videos``).

What a benchmark holds:

* ``images``: for every identity and view, one **real** crop and one **fake** crop made
  from the same face (Self-Blended-Images style pairs: the network can only learn the
  forgery, not the person). Balanced by construction.
* ``videos``: for every identity, one real clip and one fake clip of ``F`` frames
  (``F = max(scale.p2_frames, scale.p3_frames)`` unless ``frames`` is given; experiments
  take the first ``p2_frames`` / ``p3_frames``). Procedural faces move their head and
  change expression, stills become clips by smooth random camera motion, real videos are
  used as they are. Video fakes flicker (:func:`dfdetect.data.forge.temporal_params`).

Every sample, real or fake, goes through the same steps: a square crop of 1.2-1.45x the
landmark box (random per pair: crop and margin jitter, so no fixed alignment gives the
label away), resize to a working canvas of 1-1.25x the output side, the forgery (fakes
only), then :func:`dfdetect.data.forge.finish` (resize to ``scale.image_size`` /
``scale.video_size``, noise, JPEG quality drawn from 70-95, or 40-100 with generator
version 3: SBI's train-time range). A version-3 self-blend that augmented its target
(SBI) pairs its fake with that augmented real.

Splits (column ``split``) never share an identity: ``train`` 70 %, ``val`` 15 %, ``test``
15 % of identities. With ``holdout_method=M`` a fourth split **``cross``** (15 % of the
identities; the others then 60/12.5/12.5 %) holds reals and fakes made *only* with
method ``M``, and ``train``/``val``/``test`` fakes never use ``M``: the cross-dataset
style test of P1 reads ``split == "cross"``.

Manifest columns: the store's (``path, label, video_id, split, source, method,
frame_index, crop_path``) plus ``identity`` (group id: splits and CV folds group on it),
``mask_path`` (the forgery mask PNG relative to the store root, white = forged; empty
for reals) and ``donor`` (the identity whose face an ``identity_swap`` used). ``source``
is ``bench-<faces>`` (``bench-procedural``, ``bench-faces``...). ``path`` is the face file
(``procedural:<identity>`` for drawn faces).

Determinism: every sample draws from ``numpy.random.default_rng([seed, ...ids])``, so the
same seed gives byte-identical crops, masks and manifest, whatever the number of workers.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import time
from pathlib import Path

import cv2
import numpy as np

from dfdetect.data import faces, forge, pose_benchmark, procedural, video
from dfdetect.data.procedural import _TEMPLATE
from dfdetect.data.sample import Sample
from dfdetect.data.sources import is_image, is_video
# Splits are decided in one module; the benchmark keeps its old name for the function.
from dfdetect.data.splits import CROSS_SPLIT, SPLIT_FRACTIONS, SPLIT_FRACTIONS_HOLDOUT
from dfdetect.data.splits import assign_identities as assign_splits
from dfdetect.data.store import CROP_SETTINGS, StoreWriter
from dfdetect.data.video import sample_indices
from dfdetect.errors import DataError
from dfdetect.io import atomic_write_bytes, atomic_write_text
from dfdetect.progress import progress as tqdm  # a line every 30 s off a terminal

__all__ = ["COMPLETE_MARKER", "CROSS_SPLIT", "KINDS", "METHOD_ALIASES", "BenchmarkSummary", "build_benchmark", "assign_splits",
           "crop_affine", "landmark_problem"]

KINDS = ("images", "videos", "poses")
#: Written into the store (build parameters and counts, JSON) when a build finishes.
COMPLETE_MARKER = "benchmark.json"
#: Accepted spellings of the forgery methods (the manifest always holds the full name).
METHOD_ALIASES = {"swap": "identity_swap", "faceswap": "identity_swap",
                  "blend": "self_blend", "sbi": "self_blend"}

MARGIN = (1.2, 1.45)  # crop side / landmark-box side (FaceForensics++ uses 1.3)
SHIFT = 0.05  # crop centre jitter, fraction of the crop side
WORK_SCALE = (1.0, 1.25)  # working canvas side / output side
TIGHT_CROP_MAX_SIDE = 400  # images at most this big are treated as tight face crops
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 3]
_TAG = {"identity": 1, "view": 2, "pair": 3, "donor": 4, "split": 5, "video": 6,
        "select": 7, "motion": 8}


# ----------------------------------------------------------------------------- summary

@dataclasses.dataclass
class BenchmarkSummary:
    """What :func:`build_benchmark` did.

    Attributes:
        out: the store directory.
        kind: ``images`` or ``videos``.
        faces: the face source (``procedural`` or a folder).
        scale: the scale preset's name.
        seed: the seed.
        holdout_method: the method kept for the ``cross`` split, or ``None``.
        identities: split -> number of identities.
        counts: ``"split/label/method"`` -> crops written (this run and earlier runs).
        new_items: pairs (images) or clips (videos) made by this run.
        already_done: pairs / clips found in the store and not made again.
        skipped_files: path -> reason for face files left out.
        manifest_rows: rows in ``manifest.csv``.
        seconds: wall-clock time.
        generator: the forgery generator version the store is made with.
    """

    out: str
    kind: str
    faces: str
    scale: str
    seed: int
    holdout_method: str | None = None
    generator: int = forge.DEFAULT_GENERATOR
    identities: dict = dataclasses.field(default_factory=dict)
    counts: dict = dataclasses.field(default_factory=dict)
    new_items: int = 0
    already_done: int = 0
    skipped_files: dict = dataclasses.field(default_factory=dict)
    manifest_rows: int = 0
    seconds: float = 0.0

    def report(self) -> str:
        """A multi-line human summary."""
        lines = [
            f"benchmark: {self.kind} from {self.faces} at scale {self.scale}, seed {self.seed}, "
            f"forgery generator v{self.generator}"
            + (f", held-out method {self.holdout_method} in split '{CROSS_SPLIT}'"
               if self.holdout_method else ""),
            f"store: {self.out} ({self.manifest_rows} crops in manifest.csv)",
            "identities: " + ", ".join(f"{k} {v}" for k, v in self.identities.items()),
        ]
        for key in sorted(self.counts):
            lines.append(f"  {key}: {self.counts[key]}")
        lines.append(f"made {self.new_items} {'pairs' if self.kind == 'images' else 'clips'}; "
                     f"{self.already_done} already in the store")
        lines.append(f"face files skipped: {len(self.skipped_files)}")
        lines += [f"  {p}: {r}" for p, r in sorted(self.skipped_files.items())[:50]]
        if len(self.skipped_files) > 50:
            lines.append(f"  ... and {len(self.skipped_files) - 50} more")
        lines.append(f"time: {self.seconds:.1f} s")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- helpers

def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *(int(k) for k in keys)])


def _methods_for(split: str, holdout: str | None, methods: tuple[str, ...]) -> list[str]:
    if holdout is None:
        return list(methods)
    if split == CROSS_SPLIT:
        return [holdout]
    return [m for m in methods if m != holdout]


def crop_affine(landmarks: np.ndarray, image_shape, rng: np.random.Generator, work: int,
                margin: tuple[float, float] = MARGIN, shift: float = SHIFT) -> np.ndarray:
    """The 2x3 affine map from an image to a ``work x work`` square face crop.

    The square is ``margin`` (random in the range) times the landmark box, centred on it
    with a random shift of up to ``shift`` of its side, and kept inside the image (a
    tight crop whose face fills the frame gets a random 88-100 % window of the image).
    """
    lm = np.asarray(landmarks, np.float64)
    h, w = int(image_shape[0]), int(image_shape[1])
    side = forge.face_size(lm) * rng.uniform(*margin)
    limit = min(h, w)
    if side > limit:
        side = limit * rng.uniform(0.88, 1.0)
    c = forge.face_centre(lm) + rng.uniform(-shift, shift, 2) * side
    x0 = float(np.clip(c[0] - side / 2, 0, w - side))
    y0 = float(np.clip(c[1] - side / 2, 0, h - side))
    s = work / side
    return np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float64)


def _warp(image: np.ndarray, m: np.ndarray, work: int) -> np.ndarray:
    """Apply a crop affine; large reductions are pre-shrunk with area averaging."""
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
    if scale < 0.7:
        f = scale / 0.95
        small = cv2.resize(image, (max(1, round(image.shape[1] * f)),
                                   max(1, round(image.shape[0] * f))), interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / image.shape[1], small.shape[0] / image.shape[0]
        m = m @ np.array([[1 / fx, 0, 0], [0, 1 / fy, 0], [0, 0, 1]])
        image = small
    return cv2.warpAffine(image, m, (work, work), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(pts, np.float64) @ m[:, :2].T + m[:, 2]


def _mask_png(mask: np.ndarray, size: int) -> np.ndarray:
    m = cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(np.round(m * 255), 0, 255).astype(np.uint8)


def _write_png(path: Path, array: np.ndarray) -> None:
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", array, _PNG)
    if not ok:
        raise DataError("PNG encoding failed", path)

    atomic_write_bytes(path, data.tobytes(), fsync=False)  # no temp left behind on a full disk


# ----------------------------------------------------------------------------- landmarks

def landmark_problem(landmarks: np.ndarray | None, image_shape) -> str | None:
    """Why a landmark fit is unusable, or ``None`` when it looks like a face.

    Checks the 68 points against the template face of :mod:`dfdetect.data.procedural`
    after a similarity alignment (a garbage fit is far from it), and that the face lies
    inside the image (a chin below the crop gives a squashed fit).
    """
    if landmarks is None:
        return "no face found"
    lm = np.asarray(landmarks, np.float64)
    h, w = image_shape[:2]
    if not np.isfinite(lm).all():
        return "landmarks are not finite"
    lo, hi = lm.min(0), lm.max(0)
    if lo[0] < -0.04 * w or lo[1] < -0.04 * h or hi[0] > 1.04 * w or hi[1] > 1.04 * h:
        return "face extends beyond the image"
    a = lm - lm.mean(0)
    b = _TEMPLATE - _TEMPLATE.mean(0)
    # similarity Procrustes of the template onto the fit
    u, s, vt = np.linalg.svd(b.T @ a)
    r = u @ vt
    scale = s.sum() / (b ** 2).sum()
    resid = np.sqrt((((b @ r) * scale - a) ** 2).sum(1)).mean() / max(scale, 1e-9)
    if resid > 0.2:
        return f"implausible landmark fit (residual {resid:.2f} eye distances)"
    if scale * 2.2 < 24:
        return "face smaller than 24 pixels"
    return None


def _find_landmarks(rgb: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    h, w = rgb.shape[:2]
    if max(h, w) <= TIGHT_CROP_MAX_SIDE:
        # A tight crop: HOG rarely fires when the face fills the frame, so it looks at a
        # padded copy only to confirm a face is there; the fit uses the whole image.
        pad = int(round(0.3 * max(h, w)))
        padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        if not faces.detect_faces(padded, model="hog", max_side=None, upsample=0):
            return None, "no face detected"
        lm = faces.face_landmarks(rgb, faces.inset_box(rgb.shape, 0.08))
    else:
        lm = faces.face_landmarks(rgb)
    problem = landmark_problem(lm, rgb.shape)
    return (lm if problem is None else None), problem


def face_colour(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Mean Lab colour (OpenCV 8-bit scale) of the inner face: donors are matched on it."""
    mask = forge.hull_mask(rgb.shape, np.asarray(landmarks)[17:]) > 0.5
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    return lab[mask].mean(0) if mask.any() else lab.reshape(-1, 3).mean(0)


def _probe_image(path: str) -> tuple[str, np.ndarray | None, str | None, np.ndarray | None]:
    """Worker: an image file -> (path, landmarks or None, reason, face colour)."""
    try:
        rgb = faces.load_image(path)
        lm, problem = _find_landmarks(rgb)
        return path, lm, problem, (None if lm is None else face_colour(rgb, lm))
    except Exception as err:  # noqa: BLE001 - one bad file must not end a batch
        return path, None, _reason(err, path), None


def _reason(err: BaseException, path: str) -> str:
    text = " ".join(str(err).split())
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


# ----------------------------------------------------------------------------- sources

@dataclasses.dataclass(frozen=True)
class _Ident:
    """One identity of a face folder: its files (images or one video)."""

    id: str
    files: tuple[str, ...]
    video: bool = False


def _list_folder(folder: str) -> list[_Ident]:
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
                idents.append(_Ident(entry.name, imgs))
        elif is_image(entry):
            idents.append(_Ident(entry.name, (str(entry),)))
        elif is_video(entry):
            idents.append(_Ident(entry.name, (str(entry),), video=True))
    if not idents:
        raise DataError("no images or videos in the face folder", folder)
    return idents


def _safe_id(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return keep.strip("._-") or "x"


def _source_name(faces: str) -> str:
    if faces == "procedural":
        return "bench-procedural"
    return "bench-" + _safe_id(Path(os.path.abspath(faces)).name)


# ----------------------------------------------------------------------------- workers

def _worker_init() -> None:
    cv2.setNumThreads(1)


def _procedural_face(seed: int, ident_idx: int, view_idx: int, size: int, view=None):
    ident = procedural.random_identity(_rng(seed, _TAG["identity"], ident_idx))
    if view is None:
        view = procedural.random_view(_rng(seed, _TAG["view"], ident_idx, view_idx))
    return procedural.render_face(ident, view, size)


def _procedural_skin(seed: int, ident_idx: int) -> np.ndarray:
    return np.array(procedural.random_identity(_rng(seed, _TAG["identity"], ident_idx)).skin)


def _render_size(work: int) -> int:
    # the drawn face spans ~43 % of the render; a 1.3x crop then needs ~0.56 of it
    return int(math.ceil(work / 0.56 * 1.1))


def _load_face(ref: dict, seed: int, work: int):
    """A face image and its landmarks from a task reference."""
    if ref["kind"] == "procedural":
        return _procedural_face(seed, ref["index"], 0, _render_size(work), ref.get("view_obj"))
    if ref["kind"] == "frame":
        # the same 640-px frames the landmarks were found on
        frames = video.read_frames(ref["path"], indices=[ref["frame"]], max_side=640)
        return frames[0][1], np.asarray(ref["landmarks"])
    return faces.load_image(ref["path"]), np.asarray(ref["landmarks"])


def _make_pair(task: dict) -> dict:
    """Worker: one identity view -> a real crop, a fake crop and the fake's mask."""
    try:
        seed, size = task["seed"], task["size"]
        rng = _rng(seed, _TAG["pair"], task["ident_idx"], task["view"])
        work = int(round(size * rng.uniform(*WORK_SCALE)))
        if task["target"]["kind"] == "procedural":
            view = procedural.random_view(_rng(seed, _TAG["view"], task["target"]["index"],
                                               task["view"]))
            task["target"]["view_obj"] = view
            if task["donor"] is not None:
                dview = procedural.random_view(_rng(seed, _TAG["donor"], task["ident_idx"],
                                                    task["view"]))
                # same head pose as the target (swaps pick look-alike poses), own face
                task["donor"]["view_obj"] = dataclasses.replace(
                    dview, yaw=view.yaw, pitch=view.pitch, roll=view.roll, scale=view.scale,
                    dx=view.dx, dy=view.dy)
        img, lm = _load_face(task["target"], seed, work)
        m = crop_affine(lm, img.shape, rng, work)
        canvas, lm_c = _warp(img, m, work), _apply(m, lm)
        donor = None
        if task["donor"] is not None:
            dimg, dlm = _load_face(task["donor"], seed, work)
            dm = crop_affine(dlm, dimg.shape, rng, work)
            donor = (_warp(dimg, dm, work), _apply(dm, dlm))
        version = task.get("generator", forge.DEFAULT_GENERATOR)
        fake = forge.forge(task["method"], canvas, lm_c, rng, donor=donor, version=version)
        fin = forge.sample_finish_params(rng, version=version)
        # SBI may have augmented the target: the real of the pair is what it blended into
        real_img = forge.finish(canvas if fake.real is None else fake.real, size, fin)
        fin_fake = dict(fin, noise_seed=int(rng.integers(2**31 - 1)))
        fake_img = forge.finish(fake.image, size, fin_fake)
        return {"task": task, "real": real_img, "fake": fake_img,
                "mask": _mask_png(fake.mask, size), "error": None}
    except Exception as err:  # noqa: BLE001
        return {"task": task, "error": f"{type(err).__name__}: {err}"}


# ----------------------------------------------------------------------------- build

def _pool(workers: int):
    if workers <= 1:
        return None
    return multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_init)


def _imap(pool, fn, tasks, chunksize=4):
    if pool is None:
        return map(fn, tasks)
    return pool.imap(fn, tasks, chunksize=chunksize)


def _probe_folder(idents: list[_Ident], needed: int, seed: int, pool, summary,
                  cache: dict) -> list[tuple[_Ident, str, np.ndarray, np.ndarray]]:
    """Landmarks of randomly chosen still images until ``needed`` identities are usable.

    Returns:
        ``(identity, image path, landmarks, face colour)`` per usable identity.
    """
    stills = [i for i in idents if not i.video]
    order = _rng(seed, _TAG["select"]).permutation(len(stills))
    usable, pos = [], 0
    while len(usable) < needed and pos < len(order):
        batch_n = max(8, int((needed - len(usable)) * 1.1) + 8)
        batch = [stills[j] for j in order[pos:pos + batch_n]]
        pos += batch_n
        paths = [b.files[0] for b in batch]
        todo = [p for p in paths if p not in cache]
        for path, lm, problem, colour in _imap(pool, _probe_image, todo, chunksize=8):
            cache[path] = (lm, problem, colour)
        for ident, path in zip(batch, paths):
            lm, problem, colour = cache[path]
            if lm is None:
                summary.skipped_files[path] = problem
            else:
                usable.append((ident, path, lm, colour))
    return usable[:needed]


def _probe_video(path: str) -> tuple[str, int, str | None]:
    """Worker: a video's true frame count (0 and a reason when it cannot be used)."""
    try:
        return path, int(video.probe_video(path).frame_count), None
    except Exception as err:  # noqa: BLE001
        return path, 0, _reason(err, path)


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
        return path, [], _reason(err, path)


def _probe_video_stills(idents: list[_Ident], n_ident: int, n_views: int, pool,
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
    for ident, (path, found, problem) in zip(videos, _imap(pool, _video_still_faces, tasks,
                                                         chunksize=1)):
        if problem:
            summary.skipped_files[path] = problem
            continue
        usable.append((ident, path, [f[1] for f in found], np.mean([f[2] for f in found], 0),
                       [int(f[0]) for f in found]))
    return usable


def _load_cache(path: Path) -> dict:
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


def _save_cache(path: Path, cache: dict) -> None:
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


def _shape_key(lm: np.ndarray) -> np.ndarray:
    """Landmarks normalised for position and scale: donors are picked by face shape."""
    a = lm - lm.mean(0)
    return (a / (np.sqrt((a ** 2).sum(1).mean()) + 1e-9)).ravel()


def _pick_donors(members: list[int], seed: int, shapes: list | None = None,
                 colours: list | None = None, candidates: int = 40) -> dict[int, int]:
    """For every identity, another identity of the same split to take a face from.

    Among ``candidates`` random others, the one closest in face shape (pose) and skin
    colour wins, as face-swap datasets pair look-alike targets and sources.
    """
    donors = {}
    n = len(members)
    if n < 2:
        return donors
    for pos, i in enumerate(members):
        rng = _rng(seed, _TAG["donor"], i)
        picks = rng.choice(n - 1, min(candidates, n - 1), replace=False)
        cand = [members[k + (k >= pos)] for k in picks]
        score = np.zeros(len(cand))
        for keys in (shapes, colours):
            if keys is not None:
                d = np.array([float(np.sum((np.asarray(keys[i]) - np.asarray(keys[j])) ** 2))
                              for j in cand])
                score += d / (np.median(d) + 1e-9)
        donors[i] = cand[int(np.argmin(score))]
    return donors


def _sizes(scale):
    """``scale`` checked: the sizes object a build needs (never a preset's name)."""
    if scale is None or isinstance(scale, str) or not hasattr(scale, "image_size"):
        raise DataError(f"a benchmark needs its sizes (a Scale), got {scale!r}; "
                        "resolve a preset name with dfdetect.scales.get_scale first")
    return scale


def build_benchmark(kind: str, faces: str = "procedural", scale=None,
                    out: str | os.PathLike | None = None, seed: int = 0,
                    holdout_method: str | None = None, *, workers: int | None = None,
                    identities: int | None = None, views: int | None = None,
                    size: int | None = None, frames: int | None = None,
                    methods: tuple[str, ...] = forge.METHODS,
                    landmark_cache: str | os.PathLike | None = None,
                    progress: bool | None = None,
                    generator: int = forge.DEFAULT_GENERATOR) -> BenchmarkSummary:
    """Build an embedded benchmark store (``dfdetect data build``).

    Args:
        kind: ``images`` or ``videos``; ``poses`` is handed to
            :func:`dfdetect.data.pose_benchmark.build_pose_benchmark` (P4, no faces).
        faces: ``procedural`` or a folder of face photos / videos.
        scale: the sizes to build at: a :class:`dfdetect.scales.Scale` or any object
            with its benchmark fields (``name``, ``benchmark_identities``,
            ``views_per_identity``, ``image_size``, ``video_size``,
            ``benchmark_videos``, ``p2_frames``, ``p3_frames``, ``pose_*``). Taken as
            given, not as a name: the data layer does not import the scale presets.
        out: store directory.
        seed: everything random derives from it.
        holdout_method: a forgery method kept out of train/val/test and used only in the
            ``cross`` split.
        workers: processes (default: all cores).
        identities: override ``scale.benchmark_identities`` (images) or the number of
            video identities (``scale.benchmark_videos // 2``).
        views: override ``scale.views_per_identity``.
        size: override the crop side (``scale.image_size`` / ``scale.video_size``).
        frames: frames per clip (videos; default ``max(p2_frames, p3_frames)``).
        methods: forgery methods to use.
        landmark_cache: ``.npz`` file caching landmarks of a face folder (default
            ``<out>/landmarks.npz``); re-used across builds.
        progress: show a progress bar (default: on a terminal).
        generator: forgery generator version (:data:`dfdetect.data.forge.GENERATOR_VERSIONS`;
            default :data:`dfdetect.data.forge.DEFAULT_GENERATOR`), recorded in the store.

    Returns:
        A :class:`BenchmarkSummary`.

    Raises:
        DataError: unknown kind / method / scale, a face folder that is missing or has
            no usable face.
    """
    started = time.monotonic()
    if kind not in KINDS:
        raise DataError(f"unknown benchmark {kind!r}: expected one of {', '.join(KINDS)}")
    if kind == "poses":
        # P4's body-pose benchmark has its own generator (no faces, no forgeries)
        if out is None:
            raise DataError("an output store directory is required (--out)")
        return pose_benchmark.build_pose_benchmark(out, scale=_sizes(scale), seed=int(seed))
    if out is None:
        raise DataError("an output store directory is required (--out)")
    if holdout_method is not None:
        holdout_method = METHOD_ALIASES.get(holdout_method, holdout_method)
    for m in methods:
        if m not in forge.METHODS:
            raise DataError(f"unknown forgery method {m!r}: expected one of "
                            f"{', '.join(forge.METHODS)}")
    if holdout_method is not None and holdout_method not in methods:
        raise DataError(f"--holdout-method {holdout_method!r} is not a forgery method: "
                        f"expected one of {', '.join(methods)}")
    if holdout_method is not None and len(methods) < 2:
        raise DataError("a held-out method needs at least two forgery methods")
    sc = _sizes(scale)
    faces = os.fspath(faces)
    summary = BenchmarkSummary(out=os.fspath(out), kind=kind, faces=faces, scale=sc.name,
                               seed=int(seed), holdout_method=holdout_method,
                               generator=forge.check_version(generator))
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    if faces != "procedural":
        _list_folder(faces)  # a missing or empty folder fails before any worker starts
    _refuse_foreign_folder(Path(out))
    fresh = store_generator_version(Path(out)) is None
    _claim_generator_version(Path(out), _settings(summary), summary.generator)
    try:
        if kind == "images":
            _build_images(summary, sc, faces, Path(out), int(seed), holdout_method, workers,
                          identities, views, size, tuple(methods), landmark_cache, progress)
        else:
            _build_videos(summary, sc, faces, Path(out), int(seed), holdout_method, workers,
                          identities, size, frames, tuple(methods), landmark_cache, progress)
    except DataError:
        if fresh:
            _unclaim(Path(out))
        raise
    _write_marker(Path(out), summary)
    summary.seconds = time.monotonic() - started
    return summary


GENERATOR_FILE = "generator.json"


def store_generator_version(out: str | os.PathLike) -> int | None:
    """The forgery generator version a benchmark store was (or is being) built with.

    ``None`` for a folder that holds no benchmark yet; 1 for stores made before
    versions were recorded (they have crops or a manifest but no version file).
    """
    import json

    out = Path(out)
    path = out / GENERATOR_FILE
    if path.is_file():
        return int(json.loads(path.read_text()).get("generator_version", 1))
    if any((out / name).exists() for name in (COMPLETE_MARKER, "manifest.csv", "crops")):
        return 1
    return None


# What a store's samples depend on: adding samples made with other values to a store
# would mix two benchmarks under one manifest (the seed-0 crops kept, the marker saying 1).
SETTING_KEYS = ("kind", "source", "scale", "seed", "holdout_method")
# Names a benchmark store (or its landmark cache) may hold; anything else means the
# folder is the user's, not a store.
_STORE_NAMES = {GENERATOR_FILE, COMPLETE_MARKER, "manifest.csv", "crops", "masks",
                "landmarks.npz"}


def _settings(summary: BenchmarkSummary) -> dict:
    # The face source's store name, not the path as typed: the same folder given as
    # ../faces or /abs/faces is the same benchmark.
    return {"kind": summary.kind, "source": _source_name(summary.faces),
            "scale": summary.scale, "seed": summary.seed,
            "holdout_method": summary.holdout_method}


def store_settings(out: str | os.PathLike) -> dict | None:
    """The settings (:data:`SETTING_KEYS`) a benchmark store was built with.

    Read from ``generator.json`` (written when a build starts), else from a finished
    store's ``benchmark.json``; ``None`` when neither records them (no store yet, or
    one made before settings were recorded).
    """
    import json

    out = Path(out)
    for name in (GENERATOR_FILE, COMPLETE_MARKER):
        try:
            info = json.loads((out / name).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict):
            continue
        if name == COMPLETE_MARKER and "faces" in info and "source" not in info:
            info = dict(info, source=_source_name(str(info["faces"])))
        if all(k in info for k in SETTING_KEYS):
            return {k: info[k] for k in SETTING_KEYS}
    return None


def _refuse_foreign_folder(out: Path) -> None:
    """Refuses to write a store into an existing folder that holds something else."""
    if not out.is_dir():
        return
    if (out / CROP_SETTINGS).exists():  # its samples are a dataset's, not generated
        raise DataError(f"--out is a store made by 'dfdetect data crop' (it holds "
                        f"{CROP_SETTINGS}): build into another --out", out)
    foreign = sorted(p.name for p in out.iterdir()
                     if p.name not in _STORE_NAMES and not p.name.startswith("."))
    if foreign and store_generator_version(out) is None:
        raise DataError(f"--out is an existing folder that is not a benchmark store (it "
                        f"holds {foreign[0]!r}{' and more' if len(foreign) > 1 else ''}): "
                        "choose a new or empty folder", out)


def _claim_generator_version(out: Path, settings: dict | None = None,
                             version: int = forge.DEFAULT_GENERATOR) -> None:
    """Refuses to add samples to a store made by another generator version or with
    other settings; records this build's version and settings.

    Raises:
        DataError: the store was made by another generator version, or with another
            seed, scale, face source, kind or held-out method (one line naming them).
    """
    import json

    found = store_generator_version(out)
    if found is not None and found != version:
        raise DataError(f"this benchmark store was made by forgery generator version {found}, "
                        f"this build asks for version {version}: delete it or build into "
                        "another --out", out)
    recorded = store_settings(out) if found is not None else None
    if settings is not None and recorded is not None and recorded != settings:
        diff = ", ".join(f"{k} {recorded[k]!r} (asked {settings[k]!r})"
                         for k in SETTING_KEYS if recorded[k] != settings[k])
        raise DataError(f"this benchmark store was built with other settings: {diff}; "
                        "build into another --out, or delete it to rebuild", out)
    out.mkdir(parents=True, exist_ok=True)
    info = {"generator_version": version, **(settings or {})}
    atomic_write_text(out / GENERATOR_FILE, json.dumps(info, sort_keys=True) + "\n")


def _unclaim(out: Path) -> None:
    """Undoes a refused first build: a store that never got a sample keeps no settings
    file (it would otherwise refuse the corrected rerun's settings)."""
    if (out / "manifest.csv").exists() or (out / "crops").exists():
        return  # samples were written: the record must stay for the resume
    (out / GENERATOR_FILE).unlink(missing_ok=True)
    try:
        out.rmdir()  # only when nothing else is there
    except OSError:
        pass


def _refuse_empty_splits(split_of: dict[str, str], holdout: str | None, faces: str) -> None:
    """A benchmark whose val or test split would be empty is refused, not made.

    Raises:
        DataError: fewer usable identities than splits (says how many are needed).
    """
    names = list(SPLIT_FRACTIONS_HOLDOUT if holdout else SPLIT_FRACTIONS)
    empty = [n for n in names if n not in set(split_of.values())]
    if empty:
        raise DataError(f"only {len(split_of)} usable face identities: split "
                        f"{' and '.join(empty)} would be empty; the benchmark needs at "
                        f"least {len(names)} (one per split: {', '.join(names)}); add face "
                        "photos or videos of more people",
                        faces if faces != "procedural" else None)


def _write_marker(out: Path, summary: BenchmarkSummary) -> None:
    import json

    info = {"kind": summary.kind, "faces": summary.faces, "scale": summary.scale,
            "seed": summary.seed, "holdout_method": summary.holdout_method,
            "cross_split": CROSS_SPLIT if summary.holdout_method else None,
            "identities": summary.identities, "counts": summary.counts,
            "manifest_rows": summary.manifest_rows,
            "skipped_files": len(summary.skipped_files),
            "generator_version": summary.generator}
    atomic_write_text(out / COMPLETE_MARKER, json.dumps(info, indent=1, sort_keys=True) + "\n")


def _build_images(summary, sc, faces, out: Path, seed, holdout, workers, n_ident, n_views,
                  size, methods, cache_path, progress) -> None:
    n_ident = int(n_ident or sc.benchmark_identities)
    n_views = int(n_views or sc.views_per_identity)
    size = int(size or sc.image_size)
    source = _source_name(faces)
    pool = _pool(workers)
    try:
        # ---- identities
        if faces == "procedural":
            ids = [f"p{i:05d}" for i in range(n_ident)]
            refs = {i: [{"kind": "procedural", "index": i}] for i in range(n_ident)}
            paths = [f"procedural:{x}" for x in ids]
            shapes = None
            colours = [_procedural_skin(seed, i) for i in range(n_ident)]
        else:
            idents = _list_folder(faces)
            cache_file = Path(cache_path) if cache_path else out / "landmarks.npz"
            cache = _load_cache(cache_file)
            stills = [i for i in idents if not i.video]
            if stills:
                usable = _probe_folder(stills, n_ident, seed, pool, summary, cache)
                _save_cache(cache_file, cache)
                what = "images"
            else:  # a folder of videos: evenly spaced frames are the stills
                usable = _probe_video_stills(idents, n_ident, n_views, pool, summary)
                what = "videos"
            if not usable:
                raise DataError(f"no usable face in {len(summary.skipped_files)} {what} "
                                "checked (no face detected or landmarks implausible)", faces)
            ids = [_safe_id(u[0].id) for u in usable]
            refs = {}
            for i, u in enumerate(usable):
                if u[0].video:
                    refs[i] = [{"kind": "frame", "path": u[1], "frame": f,
                                "landmarks": lm.tolist()} for f, lm in zip(u[4], u[2])]
                else:
                    refs[i] = [{"kind": "image", "path": u[1], "landmarks": u[2].tolist()}]
            paths = [u[1] for u in usable]
            shapes = [_shape_key(np.asarray(refs[i][0]["landmarks"])) for i in range(len(usable))]
            colours = [u[3] for u in usable]
        split_of = assign_splits(ids, seed, holdout is not None)
        _refuse_empty_splits(split_of, holdout, faces)
        summary.identities = _split_counts(split_of)
        members: dict[str, list[int]] = {}
        for i, x in enumerate(ids):
            members.setdefault(split_of[x], []).append(i)
        donors = {}
        for split, mem in members.items():
            donors.update(_pick_donors(mem, seed, shapes, colours))

        # ---- tasks: one per (identity, view); methods alternate within a split
        tasks = []
        counter: dict[str, int] = {}
        for i, x in enumerate(ids):
            split = split_of[x]
            allowed = _methods_for(split, holdout, methods)
            for v in range(n_views if len(refs[i]) == 1 else len(refs[i])):
                k = counter.get(split, 0)
                counter[split] = k + 1
                method = allowed[k % len(allowed)]
                if method == "identity_swap" and i not in donors:
                    method = "self_blend" if "self_blend" in allowed else method
                donor = None
                if method == "identity_swap":
                    if i not in donors:
                        continue
                    d = donors[i]
                    donor = dict(refs[d][v % len(refs[d])], id=ids[d])
                target = dict(refs[i][v % len(refs[i])])
                tasks.append({"seed": seed, "size": size, "ident_idx": i, "view": v,
                              "generator": summary.generator,
                              "id": x, "path": target.get("path", paths[i]), "split": split,
                              "method": method, "target": target, "donor": donor})

        with StoreWriter(out) as store:
            todo = []
            for t in tasks:
                rid, fid = _item_ids(t["id"], t["view"])
                if store.has(source, rid) and store.has(source, fid):
                    summary.already_done += 1
                else:
                    todo.append(t)
            results = _imap(pool, _make_pair, todo, chunksize=4)
            for res in tqdm(results, total=len(todo), unit="pair", desc="images",
                            enabled=progress):
                t = res["task"]
                if res["error"] is not None:
                    summary.skipped_files[t["path"]] = res["error"]
                    continue
                _write_pair(store, out, source, t, res)
                summary.new_items += 1
            rows = store.rows
        if todo and summary.new_items == 0:
            first = next(iter(summary.skipped_files.items()))
            raise DataError(f"no benchmark sample could be made; first failure: {first[1]}",
                            first[0])
        _count(summary, rows)
    finally:
        if pool is not None:
            pool.close()
            pool.join()


def _split_counts(split_of: dict[str, str]) -> dict[str, int]:
    names = ("train", "val", "test", CROSS_SPLIT)
    return {s: sum(v == s for v in split_of.values()) for s in names
            if s != CROSS_SPLIT or CROSS_SPLIT in split_of.values()}


def _item_ids(ident: str, view: int) -> tuple[str, str]:
    return f"{ident}_v{view}_real", f"{ident}_v{view}_fake"


def _mask_relpath(source: str, video_id: str, frame: int) -> str:
    return f"masks/{source}/{video_id}/{int(frame):03d}.png"


def _write_pair(store, out: Path, source: str, t: dict, res: dict) -> None:
    rid, fid = _item_ids(t["id"], t["view"])
    base = {"identity": t["id"], "mask_path": "", "donor": ""}
    store.add(Sample(t["path"], 0, rid, t["split"], source, "real"), 0, res["real"], base)
    store.commit()
    mrel = _mask_relpath(source, fid, 0)
    _write_png(out / mrel, res["mask"])
    extra = dict(base, mask_path=mrel, donor=(t["donor"] or {}).get("id", ""))
    store.add(Sample(t["path"], 1, fid, t["split"], source, t["method"]), 0, res["fake"], extra)
    store.commit()


def _count(summary: BenchmarkSummary, rows: list[dict]) -> None:
    counts: dict[str, int] = {}
    for r in rows:
        key = f"{r['split']}/{'fake' if int(r['label']) else 'real'}/{r['method']}"
        counts[key] = counts.get(key, 0) + 1
    summary.counts = counts
    summary.manifest_rows = len(rows)


# ----------------------------------------------------------------------------- videos

def _crop_matrix(centre: np.ndarray, side: float, angle: float, work: int) -> np.ndarray:
    """Affine taking a square of ``side`` around ``centre`` (rotated by ``angle`` degrees)
    to a ``work x work`` canvas."""
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle),
                                work / float(side))
    m[:, 2] += np.array([work / 2.0, work / 2.0]) - np.asarray(centre, np.float64)
    return m


def _smooth(values: np.ndarray, k: int = 3) -> np.ndarray:
    """Moving average along axis 0 (edges padded): a face tracker's steadiness."""
    if len(values) < 2:
        return values
    pad = np.concatenate([values[:1].repeat(k // 2, 0), values, values[-1:].repeat(k // 2, 0)])
    kernel = np.ones(k) / k
    return np.stack([np.convolve(pad[:, j], kernel, mode="valid")
                     for j in range(values.shape[1])], axis=1)


def _tracked_crops(lms: list[np.ndarray], rng: np.random.Generator, work: int,
                   shape) -> list[np.ndarray]:
    """Per-frame crop matrices that follow a moving face (smoothed), fixed size."""
    sizes = [forge.face_size(lm) for lm in lms]
    side = float(np.median(sizes)) * rng.uniform(*MARGIN)
    side = min(side, float(min(shape[:2])) * 1.05)
    offset = rng.uniform(-SHIFT, SHIFT, 2) * side
    centres = _smooth(np.array([forge.face_centre(lm) for lm in lms])) + offset
    return [_crop_matrix(c, side, 0.0, work) for c in centres]


def _camera_crops(lm: np.ndarray, shape, n: int, rng: np.random.Generator,
                  work: int) -> list[np.ndarray]:
    """Per-frame crop matrices of a still: a smooth random camera drift, zoom and roll."""
    side = forge.face_size(lm) * rng.uniform(*MARGIN)
    limit = float(min(shape[:2]))
    if side > limit:
        side = limit * rng.uniform(0.88, 1.0)
    centre = forge.face_centre(lm) + rng.uniform(-SHIFT, SHIFT, 2) * side
    t = np.linspace(0, 1, n)

    def wave(amp):
        f, ph = rng.uniform(0.25, 1.0), rng.uniform(0, 2 * np.pi)
        w = np.sin(2 * np.pi * f * t + ph)
        return amp * (w - w[0]) / 2 + amp * rng.uniform(-0.5, 0.5)

    dx, dy = wave(0.05 * side), wave(0.05 * side)
    zoom = 1.0 + np.abs(wave(0.05))
    roll = wave(3.0)
    return [_crop_matrix(centre + np.array([dx[i], dy[i]]), side / zoom[i], roll[i], work)
            for i in range(n)]


def _clip_windows(n_frames_total: int, clips: int, frames: int) -> list[list[int]]:
    """``clips`` windows over a video, ``frames`` evenly spaced indices in each."""
    out = []
    edges = np.linspace(0, n_frames_total, clips + 1)
    for c in range(clips):
        lo, hi = int(edges[c]), max(int(edges[c]) + 1, int(edges[c + 1]))
        idx = sample_indices(hi - lo, frames) + lo
        out.append([int(i) for i in idx])
    return out


def _video_frames(path: str, indices: list[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames of a real video and their landmarks (gaps filled from neighbours).

    Raises:
        DataError: too few frames decode or show a face.
    """
    frames = dict(video.read_frames(path, indices=indices, max_side=640))
    imgs, lms = [], []
    for i in indices:
        if i not in frames:
            imgs.append(None)
            lms.append(None)
            continue
        lm = faces.face_landmarks(frames[i])
        if lm is not None and landmark_problem(lm, frames[i].shape) is not None:
            lm = None
        imgs.append(frames[i])
        lms.append(lm)
    found = [k for k, lm in enumerate(lms) if lm is not None]
    if len(found) < max(1, int(np.ceil(0.7 * len(indices)))):
        raise DataError(f"a face in only {len(found)} of {len(indices)} frames of the clip "
                        f"(frames {indices[0]}-{indices[-1]})", path)
    for k in range(len(indices)):  # fill gaps with the nearest frame that has a face
        if lms[k] is None:
            j = min(found, key=lambda f: abs(f - k))
            imgs[k], lms[k] = imgs[j], lms[j]
    return imgs, lms


def _clip_source(ref: dict, seed: int, unit: int, frames: int, work: int, views=None):
    """(images, landmarks, crop matrices or None) of one clip's source frames."""
    if ref["kind"] == "procedural":
        ident = procedural.random_identity(_rng(seed, _TAG["identity"], ref["index"]))
        imgs, lms = [], []
        for v in views:
            img, lm = procedural.render_face(ident, v, _render_size(work))
            imgs.append(img)
            lms.append(lm)
        return imgs, lms
    if ref["kind"] == "video":
        return _video_frames(ref["path"], ref["indices"])
    img = faces.load_image(ref["path"])
    lm = np.asarray(ref["landmarks"])
    return [img] * frames, [lm] * frames


def _make_clip(task: dict) -> dict:
    """Worker: one unit -> a real clip, its flickering fake and per-frame masks."""
    try:
        seed, size, n = task["seed"], task["size"], task["frames"]
        rng = _rng(seed, _TAG["video"], task["unit"])
        work = int(round(size * rng.uniform(*WORK_SCALE)))
        target = task["target"]
        views = dviews = None
        if target["kind"] == "procedural":
            start = procedural.random_view(_rng(seed, _TAG["view"], target["index"], task["clip"]))
            views = procedural.face_motion(_rng(seed, _TAG["motion"], task["unit"]), n, start,
                                           amount=float(rng.uniform(0.5, 1.2)))
            if task["donor"] is not None:
                dv = procedural.random_view(_rng(seed, _TAG["donor"], task["unit"]))
                dviews = [dataclasses.replace(dv, yaw=v.yaw, pitch=v.pitch, roll=v.roll,
                                              scale=v.scale, dx=v.dx, dy=v.dy,
                                              mouth_open=v.mouth_open, smile=v.smile)
                          for v in views]
        imgs, lms = _clip_source(target, seed, task["unit"], n, work, views)
        if target["kind"] == "image":
            mats = _camera_crops(lms[0], imgs[0].shape, n, rng, work)
        else:
            mats = _tracked_crops(lms, rng, work, imgs[0].shape)
        donor_frames = None
        if task["donor"] is not None:
            d = task["donor"]
            if d["kind"] == "video":  # one still of the donor video is enough
                d = dict(d, indices=d["indices"][len(d["indices"]) // 2:][:1])
                dimgs, dlms = _clip_source(d, seed, task["unit"], 1, work)
                dimgs, dlms = dimgs * n, dlms * n
            else:
                dimgs, dlms = _clip_source(d, seed, task["unit"], n, work, dviews)
            dm = crop_affine(dlms[0], dimgs[0].shape, rng, work)
            donor_frames = [(_warp(di, dm, work), _apply(dm, dl)) for di, dl in zip(dimgs, dlms)]
        version = task.get("generator", forge.DEFAULT_GENERATOR)
        params = forge.temporal_params(task["method"], n, rng,
                                       amount=float(rng.uniform(0.6, 1.5)), version=version)
        fin = forge.sample_finish_params(rng, version=version)
        reals, fakes, masks = [], [], []
        for k in range(n):
            canvas = _warp(imgs[k], mats[k], work)
            lm_c = _apply(mats[k], lms[k])
            donor = donor_frames[k] if donor_frames else None
            fake = forge.forge(task["method"], canvas, lm_c, rng, donor=donor, params=params[k],
                               version=version)
            f_real = dict(fin, noise_seed=int(rng.integers(2**31 - 1)))
            f_fake = dict(fin, noise_seed=int(rng.integers(2**31 - 1)))
            reals.append(forge.finish(canvas if fake.real is None else fake.real, size, f_real))
            fakes.append(forge.finish(fake.image, size, f_fake))
            masks.append(_mask_png(fake.mask, size))
        return {"task": task, "real": reals, "fake": fakes, "mask": masks, "error": None}
    except Exception as err:  # noqa: BLE001
        return {"task": task, "error": _reason(err, task["path"])}


def _build_videos(summary, sc, faces, out: Path, seed, holdout, workers, n_units, size,
                  frames, methods, cache_path, progress) -> None:
    n_units = int(n_units or max(1, sc.benchmark_videos // 2))
    frames = int(frames or max(sc.p2_frames, sc.p3_frames))
    size = int(size or sc.video_size)
    source = _source_name(faces)
    pool = _pool(workers)
    try:
        units = []  # (identity id, path, ref, clip number)
        if faces == "procedural":
            for i in range(n_units):
                units.append((f"p{i:05d}", f"procedural:p{i:05d}",
                              {"kind": "procedural", "index": i}, 0))
        else:
            idents = _list_folder(faces)
            videos = [i for i in idents if i.video]
            if videos:
                counts = {}
                for path, total, problem in _imap(pool, _probe_video,
                                                  [v.files[0] for v in videos], chunksize=1):
                    if problem:
                        summary.skipped_files[path] = problem
                    counts[path] = total
                usable = [v for v in videos if counts.get(v.files[0], 0) > 0]
                if not usable:
                    raise DataError("no readable video in the face folder", faces)
                clips = int(math.ceil(n_units / len(usable)))
                for c in range(clips):
                    for v in usable:
                        path = v.files[0]
                        windows = _clip_windows(counts[path], clips, frames)
                        units.append((_safe_id(Path(path).stem), path,
                                      {"kind": "video", "path": path, "indices": windows[c]}, c))
                units = units[:max(n_units, 0)]
            else:
                cache_file = Path(cache_path) if cache_path else out / "landmarks.npz"
                cache = _load_cache(cache_file)
                usable = _probe_folder(idents, n_units, seed, pool, summary, cache)
                _save_cache(cache_file, cache)
                if not usable:
                    raise DataError(f"no usable face in {len(summary.skipped_files)} images "
                                    "checked (no face detected or landmarks implausible)",
                                    faces)
                for u in usable:
                    units.append((_safe_id(u[0].id), u[1],
                                  {"kind": "image", "path": u[1], "landmarks": u[2].tolist(),
                                   "colour": np.asarray(u[3], float).tolist()}, 0))
        ids = sorted({u[0] for u in units})
        split_of = assign_splits(ids, seed, holdout is not None)
        _refuse_empty_splits(split_of, holdout, faces)
        summary.identities = _split_counts(split_of)
        first_ref = {}
        for u in units:
            first_ref.setdefault(u[0], u)
        id_index = {x: k for k, x in enumerate(ids)}
        members: dict[str, list[int]] = {}
        for x in ids:
            members.setdefault(split_of[x], []).append(id_index[x])
        colours = []
        for x in ids:
            ref = first_ref[x][2]
            colours.append(_procedural_skin(seed, ref["index"]) if ref["kind"] == "procedural"
                           else np.asarray(ref.get("colour", (0.0, 0.0, 0.0)), float))
        donors = {}
        for mem in members.values():
            donors.update(_pick_donors(mem, seed, None, colours))
        tasks, counter = [], {}
        for k, (x, path, ref, clip) in enumerate(units):
            split = split_of[x]
            allowed = _methods_for(split, holdout, methods)
            j = counter.get(split, 0)
            counter[split] = j + 1
            method = allowed[j % len(allowed)]
            donor = None
            if method == "identity_swap":
                d = donors.get(id_index[x])
                if d is None:
                    if "self_blend" not in allowed:
                        continue
                    method = "self_blend"
                else:
                    donor = dict(first_ref[ids[d]][2], id=ids[d])
            tasks.append({"seed": seed, "size": size, "frames": frames, "unit": k,
                          "generator": summary.generator,
                          "clip": clip, "id": x, "path": path, "split": split,
                          "method": method, "target": ref, "donor": donor})
        with StoreWriter(out) as store:
            todo = []
            for t in tasks:
                rid, fid = _clip_ids(t)
                if store.has(source, rid) and store.has(source, fid):
                    summary.already_done += 1
                else:
                    todo.append(t)
            results = _imap(pool, _make_clip, todo, chunksize=1)
            for res in tqdm(results, total=len(todo), unit="clip", desc="videos",
                            enabled=progress):
                t = res["task"]
                if res["error"] is not None:
                    summary.skipped_files[f"{t['path']} (clip {t['clip']})"] = res["error"]
                    continue
                _write_clips(store, out, source, t, res)
                summary.new_items += 1
            rows = store.rows
        if todo and summary.new_items == 0:
            first = next(iter(summary.skipped_files.items()))
            raise DataError(f"no benchmark clip could be made; first failure: {first[1]}",
                            first[0])
        _count(summary, rows)
    finally:
        if pool is not None:
            pool.close()
            pool.join()


def _clip_ids(t: dict) -> tuple[str, str]:
    return f"{t['id']}_c{t['clip']}_real", f"{t['id']}_c{t['clip']}_fake"


def _write_clips(store, out: Path, source: str, t: dict, res: dict) -> None:
    rid, fid = _clip_ids(t)
    base = {"identity": t["id"], "mask_path": "", "donor": ""}
    real = Sample(t["path"], 0, rid, t["split"], source, "real")
    for k, img in enumerate(res["real"]):
        store.add(real, k, img, base)
    store.commit()
    fake = Sample(t["path"], 1, fid, t["split"], source, t["method"])
    donor = (t["donor"] or {}).get("id", "")
    for k, (img, mask) in enumerate(zip(res["fake"], res["mask"])):
        mrel = _mask_relpath(source, fid, k)
        _write_png(out / mrel, mask)
        store.add(fake, k, img, dict(base, mask_path=mrel, donor=donor))
    store.commit()
