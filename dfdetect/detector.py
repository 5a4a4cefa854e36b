"""Training the shipped default detector on Self-Blended Images of real faces.

Material (never ``realworld/``): every usable face photo of a folder (UTKFace chips in
``../shared/data/faces``) and evenly spaced frames of real videos
(``../shared/data/videos``: video frames are what users score). Each becomes one
*canvas*: the face with context around it, at :attr:`DetectorScale.canvas` px, its 68
landmarks, and where ``dfdetect predict`` would crop it (a square 1.3x the HOG face
box). The canvases are prepared once and cached (:func:`prepare_pool`).

Every training step draws fresh pairs (:func:`make_pair`): a canvas, its SBI blend
(:func:`dfdetect.data.forge.sbi`, the published recipe), the same low-resolution and
JPEG (quality 40-100) treatment on both, the predict crop with a little jitter, and a
flip. A real and its own blend sit in the same batch, as in SBI. The targets are the
label and the blend's boundary map (:mod:`dfdetect.models.detector`).

Selection uses only the benchmark's own validation split: held-out photos and videos,
scored as SBI pairs and as identity swaps (:func:`dfdetect.data.forge.identity_swap`,
a forgery the detector never trains on); the checkpoint with the best mean of the two
ROC AUCs is exported. Training is resumable: every epoch ends with the full training
state on disk, and a rerun of the same command continues from there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from dfdetect import precision
from dfdetect.data import benchmark, faces, forge
from dfdetect.data.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from dfdetect.data.video import iter_frames, probe_video, sample_indices
from dfdetect.errors import DataError
from dfdetect.io import atomic_path, atomic_write_bytes, atomic_write_text, read_table, write_table

#: Where the shipped detector lives inside the package.
DEFAULT_EXPORT = os.path.join(os.path.dirname(__file__), "weights", "default.keras")
#: Frames ``predict`` samples per video with the default detector.
PREDICT_FRAMES = 16
#: The predict crop (FaceForensics++): 1.3x the face box. Canvases hold 1.5x that.
CROP_SCALE = 1.3
CONTEXT = 1.5
POOL_VERSION = 1


@dataclasses.dataclass(frozen=True)
class DetectorScale:
    """Sizes of one training scale.

    Attributes:
        name: smoke / cpu / paper.
        size: model input side (divisible by 32).
        canvas: side of the prepared face canvases (the blend is made at this size).
        epochs: planned epochs (the learning-rate schedule spans them).
        steps: optimisation steps per epoch.
        batch_pairs: real + fake pairs per batch (batch = 2x).
        max_photos: photos used at most (None: all).
        frames_per_video: frames taken from each real video.
        val_pairs: validation bases (each gives an SBI pair and a swap pair).
    """

    name: str
    size: int
    canvas: int
    epochs: int
    steps: int
    batch_pairs: int
    max_photos: int | None
    frames_per_video: int
    val_pairs: int


SCALES = {
    "smoke": DetectorScale("smoke", size=64, canvas=96, epochs=2, steps=2, batch_pairs=4,
                           max_photos=24, frames_per_video=3, val_pairs=8),
    # measured on 2 cores: ~120 img/s for the model alone, ~3.5 min per epoch with the
    # pair generation sharing the cores
    "cpu": DetectorScale("cpu", size=128, canvas=224, epochs=40, steps=400, batch_pairs=16,
                         max_photos=None, frames_per_video=60, val_pairs=600),
    "paper": DetectorScale("paper", size=256, canvas=384, epochs=100, steps=1000,
                           batch_pairs=16, max_photos=None, frames_per_video=120,
                           val_pairs=2000),
}

# the one list of readable formats (data/sources.py), sorted so the pool key is stable
VIDEO_SUFFIXES = tuple(sorted(VIDEO_EXTENSIONS))
IMAGE_SUFFIXES = tuple(sorted(IMAGE_EXTENSIONS))


# --------------------------------------------------------------------------- the pool

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
        if max(h, w) <= benchmark.TIGHT_CROP_MAX_SIDE:
            # a tight chip: predict's 1.3x HOG crop of it is about the whole chip
            lm, problem = benchmark._find_landmarks(rgb)
            if lm is None:
                return path, None, problem
            side = float(min(h, w))
            box = (h / 2 - side / 2.6, w / 2 + side / 2.6, h / 2 + side / 2.6, w / 2 - side / 2.6)
        else:
            box = faces.largest_face(faces.detect_faces(rgb))
            if box is None:
                return path, None, "no face detected"
            lm = faces.face_landmarks(rgb, box)
            if lm is None or benchmark.landmark_problem(lm, rgb.shape):
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
        if lm is None or benchmark.landmark_problem(lm, rgb.shape):
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
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith(tuple(suffixes)) and not f.startswith("."))


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
        from multiprocessing import get_context

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


# --------------------------------------------------------------------------- samples

def _shared_degrade(images: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same low-resolution step and JPEG round trip for a real and its fake.

    Both happen at canvas (frame) resolution, as in a video: a small face upscaled by
    predict, then compression. Reals and fakes get the same treatment, so neither is a cue.
    """
    down = rng.uniform(0.35, 0.8) if rng.uniform() < 0.25 else 1.0
    quality = int(rng.integers(40, 101)) if rng.uniform() < 0.7 else 100
    out = []
    for img in images:
        if down < 1.0:
            c = img.shape[0]
            small = cv2.resize(img, (max(8, int(c * down)),) * 2, interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, (c, c), interpolation=cv2.INTER_LINEAR)
        if quality < 100:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        out.append(img)
    return out


def _crop_square(img: np.ndarray, cx: float, cy: float, side: float, size: int,
                 interp_area: bool = True) -> np.ndarray:
    """The predict crop (a square around ``(cx, cy)``), resized to ``size``."""
    half = side / 2.0
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    s = max(2, int(round(side)))
    pad = max(0, -x0, -y0, x0 + s - img.shape[1], y0 + s - img.shape[0])
    if pad:
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT)
        x0, y0 = x0 + pad, y0 + pad
    patch = img[y0:y0 + s, x0:x0 + s]
    shrink = s >= size
    return cv2.resize(patch, (size, size),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def boundary_target(alpha: np.ndarray, ratio: float, side: int) -> np.ndarray:
    """Face X-ray's boundary ``4 m (1 - m)`` of the (ratio-free) blend mask, ``side`` px."""
    m = np.clip(alpha / max(ratio, 1e-6), 0.0, 1.0)
    m = cv2.resize(m.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)
    return (4.0 * m * (1.0 - m)).astype(np.float32)


def make_pair(pool: FacePool, index: int, rng: np.random.Generator, size: int,
              forgery: str = "sbi", donor: int | None = None):
    """One real crop, its forgery and the forgery's boundary map.

    Args:
        pool: the canvases.
        index: the base canvas.
        rng: all randomness of this pair.
        size: output side.
        forgery: ``sbi`` (training and validation) or ``identity_swap`` (validation: a
            forgery never trained on; needs ``donor``).
        donor: canvas index of the swap's donor face.

    Returns:
        ``(real, fake, boundary)``: two ``(size, size, 3)`` uint8 crops and a
        ``(size // 4, size // 4)`` float32 map.
    """
    image, lm = pool.images[index], pool.landmarks[index].astype(np.float64)
    if forgery == "sbi":
        real, fk = forge.sbi(image, lm, rng)
        ratio = fk.params["ratio"]
    else:
        fk = forge.identity_swap(image, lm, pool.images[donor],
                                 pool.landmarks[donor].astype(np.float64), rng)
        real, ratio = image, float(fk.params["ratio"])
    real, fake = _shared_degrade([real, fk.image], rng)
    cx, cy, side = (float(v) for v in pool.crop[index])
    side *= rng.uniform(0.92, 1.08)
    cx += rng.uniform(-0.04, 0.04) * side
    cy += rng.uniform(-0.04, 0.04) * side
    real_c = _crop_square(real, cx, cy, side, size)
    fake_c = _crop_square(fake, cx, cy, side, size)
    alpha = _crop_square(fk.mask, cx, cy, side, size)
    bmap = boundary_target(alpha, ratio, size // 4)
    if rng.uniform() < 0.5:
        real_c, fake_c, bmap = real_c[:, ::-1], fake_c[:, ::-1], bmap[:, ::-1]
    return (np.ascontiguousarray(real_c), np.ascontiguousarray(fake_c),
            np.ascontiguousarray(bmap))


def training_dataset(pool: FacePool, train_idx: np.ndarray, sc: DetectorScale, seed: int,
                     epoch: int, frame_share: float = 0.35):
    """One epoch of fresh pairs as a tf.data pipeline (parallel map, prefetch).

    Each batch holds ``batch_pairs`` reals and their own blends. Video frames are drawn
    with probability ``frame_share`` (they are ~10 % of the canvases but what users
    score). The pairs depend only on ``(seed, epoch, step)``, so a resumed run sees
    what an uninterrupted one would have.
    """
    import tensorflow as tf

    frames = train_idx[pool.kind[train_idx] == "frame"]
    photos = train_idx[pool.kind[train_idx] != "frame"]

    def one(i):
        rng = np.random.default_rng([seed, epoch, int(i)])
        use_frames = len(frames) and (not len(photos) or rng.uniform() < frame_share)
        base = int(rng.choice(frames if use_frames else photos))
        for _ in range(5):  # a degenerate landmark fit raises: draw another base
            try:
                return make_pair(pool, base, rng, sc.size)
            except DataError:
                base = int(rng.choice(train_idx))
        return make_pair(pool, base, rng, sc.size)

    n = sc.steps * sc.batch_pairs
    size, bsz = sc.size, sc.size // 4
    ds = tf.data.Dataset.range(n).map(
        lambda i: tf.numpy_function(one, [i], [tf.uint8, tf.uint8, tf.float32], stateful=False),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def to_batch(real, fake, bmap):
        x = tf.concat([real, fake], 0)
        x = tf.cast(tf.reshape(x, (-1, size, size, 3)), tf.float32) / 255.0
        k = tf.shape(real)[0]
        y = tf.concat([tf.zeros((k, 1)), tf.ones((k, 1))], 0)
        b = tf.concat([tf.zeros((k, bsz, bsz)), tf.reshape(bmap, (-1, bsz, bsz))], 0)
        return x, {"p_fake": y, "boundary": b[..., None]}

    return ds.batch(sc.batch_pairs).map(to_batch).prefetch(2)


def validation_set(pool: FacePool, val_idx: np.ndarray, sc: DetectorScale, seed: int):
    """Fixed validation crops: SBI pairs and identity-swap pairs of held-out faces.

    Returns:
        ``{"sbi": (x, y), "swap": (x, y)}`` with x float32 in [0, 1].
    """
    rng0 = np.random.default_rng([seed, 999])
    bases = rng0.permutation(val_idx)[:sc.val_pairs]
    out = {}
    for kind in ("sbi", "identity_swap"):
        xs, ys = [], []
        for j, base in enumerate(bases):
            rng = np.random.default_rng([seed, 10**6 + (kind == "sbi"), j])
            donor = int(bases[(j + 1 + int(rng.integers(len(bases) - 1))) % len(bases)]) \
                if len(bases) > 1 else int(base)
            try:
                real, fake, _ = make_pair(pool, int(base), rng, sc.size, forgery=kind,
                                          donor=donor)
            except DataError:
                continue
            xs += [real, fake]
            ys += [0, 1]
        out["sbi" if kind == "sbi" else "swap"] = (
            np.stack(xs).astype(np.float32) / 255.0, np.asarray(ys, np.int32))
    return out


# --------------------------------------------------------------------------- training

def _lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def _val_scores(model, val: dict) -> dict:
    from sklearn.metrics import roc_auc_score

    out = {}
    for name, (x, y) in val.items():
        pred = model.predict(x, batch_size=128, verbose=0)["p_fake"][:, 0]
        out[f"val_auc_{name}"] = float(roc_auc_score(y, pred)) if len(set(y)) == 2 else float("nan")
        out[f"_scores_{name}"] = pred
    out["val_auc"] = float(np.nanmean([out["val_auc_sbi"], out["val_auc_swap"]]))
    return out


def choose_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The validation threshold at the equal-error point (balanced accuracy)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(labels, scores)
    i = int(np.argmin(np.abs(fpr - (1 - tpr))))
    return float(np.clip(thr[i], 0.0, 1.0))


def train_detector(pool: FacePool, sc: DetectorScale, out_dir: str | os.PathLike,
                   export_path: str | os.PathLike | None = DEFAULT_EXPORT, seed: int = 0,
                   lr: float = 1e-3, boundary_weight: float = 1.0, hours: float | None = None,
                   say: Callable[[str], None] = print, command: str = "",
                   precision_choice: str | None = None) -> dict:
    """Trains (or resumes) the default detector and exports the best checkpoint.

    Args:
        pool: prepared canvases (:func:`prepare_pool`).
        sc: the scale.
        out_dir: run folder: ``last.keras`` (full state), ``best.keras``,
            ``history.csv``, ``state.json``.
        export_path: where the best model is exported for ``predict`` (None: not).
        seed: randomness of the splits, pairs and initialisation.
        lr: peak learning rate (AdamW; warm-up 1 epoch, cosine to 2 %).
        boundary_weight: weight of the boundary loss beside the label loss.
        hours: stop after the epoch that passes this wall-clock budget (rerun resumes).
        say: progress lines.
        command: the command line, recorded in the metadata.
        precision_choice: ``float32`` (default), ``mixed_bfloat16`` or ``auto``
            (:mod:`dfdetect.precision`; the probe's cache lives in the run folder). A
            resumed run keeps the precision its checkpoint was saved in.

    Returns:
        The state dict (epochs done, best epoch and its validation AUCs).
    """
    import keras
    # deferred: these pull TensorFlow; dfdetect.cli imports it silently first
    from dfdetect.models import registry
    from dfdetect.models.detector import detector_for_export
    from dfdetect.models.export import export_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {
        "epoch": 0, "best_epoch": None, "best_val_auc": -1.0, "history": [],
        "seconds": 0.0, "scale": sc.name, "seed": seed}
    if state.get("scale") != sc.name or state.get("seed") != seed:
        raise DataError(f"this run folder holds a {state.get('scale')} run with seed "
                        f"{state.get('seed')}; use another --out", str(out))
    train_idx, val_idx = split_pool(pool, seed=seed)
    say(f"detector: {len(train_idx)} training canvases, {len(val_idx)} validation "
        f"(held-out photos and videos)")
    val = validation_set(pool, val_idx, sc, seed)
    keras.utils.set_random_seed(seed)
    last = out / "last.keras"
    if last.exists() and state["epoch"] > 0:
        model = keras.models.load_model(last)
        say(f"detector: resuming after epoch {state['epoch']} of {sc.epochs}")
    else:
        precision.configure(precision_choice, cache_dir=out, log=say)
        model = registry.build_model("default_detector", input_shape=(sc.size, sc.size, 3))
        precision.prepare_model(model)  # sigmoid outputs stay float32 under bf16
        model.compile(optimizer=keras.optimizers.AdamW(lr, weight_decay=1e-4, clipnorm=5.0),
                      loss={"p_fake": "binary_crossentropy", "boundary": "binary_crossentropy"},
                      loss_weights={"p_fake": 1.0, "boundary": boundary_weight})
    total = sc.epochs * sc.steps
    started = time.time()

    class StepLR(keras.callbacks.Callback):
        def __init__(self, first_step):
            super().__init__()
            self.step = first_step

        def on_train_batch_begin(self, batch, logs=None):
            self.model.optimizer.learning_rate.assign(_lr(self.step, total, lr, sc.steps))
            self.step += 1

    while state["epoch"] < sc.epochs:
        epoch = state["epoch"]
        t0 = time.perf_counter()
        ds = training_dataset(pool, train_idx, sc, seed, epoch)
        hist = model.fit(ds, epochs=1, verbose=0, shuffle=False,
                         callbacks=[StepLR(epoch * sc.steps)])
        train_s = time.perf_counter() - t0
        scores = _val_scores(model, val)
        row = {"epoch": epoch + 1, "loss": hist.history["loss"][-1],
               "p_fake_loss": hist.history.get("p_fake_loss", [float("nan")])[-1],
               "boundary_loss": hist.history.get("boundary_loss", [float("nan")])[-1],
               "val_auc_sbi": scores["val_auc_sbi"], "val_auc_swap": scores["val_auc_swap"],
               "val_auc": scores["val_auc"], "seconds": round(train_s, 1),
               "images_per_s": round(2 * sc.steps * sc.batch_pairs / train_s, 1)}
        tmp = out / "last.tmp.keras"
        model.save(tmp)
        improved = scores["val_auc"] > state["best_val_auc"]
        if improved:
            best = detector_for_export(model)
            labels = np.concatenate([val["sbi"][1], val["swap"][1]])
            val_scores = np.concatenate([scores["_scores_sbi"], scores["_scores_swap"]])
            threshold = choose_threshold(labels, val_scores)
            meta = {"experiment": "default_detector", "config": "sbi_boundary",
                    "scale": sc.name, "image_size": sc.size, "frames": PREDICT_FRAMES,
                    "threshold": round(threshold, 4), "epoch": epoch + 1, "seed": seed,
                    "val_auc_sbi": round(scores["val_auc_sbi"], 4),
                    "val_auc_swap": round(scores["val_auc_swap"], 4),
                    "training": "SBI (published recipe) on face photos and real video "
                                "frames; boundary head; never realworld/",
                    "command": command}
            export_model(best, out / "best.keras", **meta)
            state.update(best_epoch=epoch + 1, best_val_auc=scores["val_auc"],
                         best_threshold=threshold)
        os.replace(tmp, last)
        state["epoch"] = epoch + 1
        state["seconds"] = round(state["seconds"] + time.perf_counter() - t0, 1)
        state["history"].append(row)
        write_table(out / "history.csv", state["history"])
        atomic_write_text(state_path, json.dumps(state, indent=2) + "\n")
        say(f"detector: epoch {epoch + 1}/{sc.epochs}  loss {row['loss']:.4f}  val AUC sbi "
            f"{row['val_auc_sbi']:.3f} swap {row['val_auc_swap']:.3f}  "
            f"{row['images_per_s']:.0f} img/s{'  (best)' if improved else ''}")
        if hours is not None and time.time() - started > hours * 3600 and state["epoch"] < sc.epochs:
            say(f"detector: time budget of {hours} h spent after epoch {state['epoch']}; "
                "rerun the same command to continue (the best epoch so far is exported)")
            break
    if export_path is not None and (out / "best.keras").exists():
        Path(export_path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(export_path, (out / "best.keras").read_bytes())
        say(f"detector: best epoch {state['best_epoch']} (val AUC {state['best_val_auc']:.3f}) "
            f"exported to {export_path}")
    return state


def write_training_record(out_dir: str | os.PathLike, results_dir: str | os.PathLike) -> str:
    """Copies a run's per-epoch history and its outcome to ``results_dir`` (committed).

    ``history.csv``: loss, boundary loss and validation AUCs per epoch; ``training.json``:
    epochs done, best epoch, its validation AUCs and threshold, wall seconds.
    """
    out, res = Path(out_dir), Path(results_dir)
    state = json.loads((out / "state.json").read_text())
    res.mkdir(parents=True, exist_ok=True)
    write_table(res / "history.csv", read_table(out / "history.csv"))
    best = next((r for r in state["history"] if r["epoch"] == state["best_epoch"]), {})
    record = {"scale": state["scale"], "seed": state["seed"], "epochs_done": state["epoch"],
              "best_epoch": state["best_epoch"],
              "best_val_auc_sbi": best.get("val_auc_sbi"),
              "best_val_auc_swap": best.get("val_auc_swap"),
              "threshold": state.get("best_threshold"), "train_seconds": state["seconds"]}
    atomic_write_text(res / "training.json", json.dumps(record, indent=2) + "\n")
    return str(res)
