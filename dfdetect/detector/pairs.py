"""Training and validation samples of the detector: a real face and its own forgery.

Every training step draws fresh pairs (:func:`make_pair`): a canvas, its SBI blend
(:func:`dfdetect.synthetic.forge.sbi`, the published recipe), the same low-resolution and
JPEG (quality 40-100) treatment on both, the predict crop with a little jitter, and a
flip. A real and its own blend sit in the same batch, as in SBI. The targets are the
label and the blend's boundary map (:mod:`dfdetect.models.detector`).
"""

from __future__ import annotations

import cv2
import numpy as np

from dfdetect.synthetic import forge
from dfdetect.detector.pool import FacePool
from dfdetect.detector.settings import DetectorScale
from dfdetect.errors import DataError


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
                     epoch: int):
    """One epoch of fresh pairs as a tf.data pipeline (parallel map, prefetch).

    Each batch holds ``batch_pairs`` reals and their own blends (with probability
    ``sc.swap_share`` an identity swap with another training face instead). Video frames are drawn
    with probability ``sc.frame_share`` (they are ~10 % of the canvases but what users
    score). The pairs depend only on ``(seed, epoch, step)``, so a resumed run sees
    what an uninterrupted one would have.
    """
    import tensorflow as tf  # deferred: only the training pipeline needs TensorFlow

    frames = train_idx[pool.kind[train_idx] == "frame"]
    photos = train_idx[pool.kind[train_idx] != "frame"]

    def one(i):
        rng = np.random.default_rng([seed, epoch, int(i)])
        use_frames = len(frames) and (not len(photos) or rng.uniform() < sc.frame_share)
        base = int(rng.choice(frames if use_frames else photos))
        # drawn only when swaps are on, so the SBI recipe's pairs stay what they were
        swap = sc.swap_share > 0 and len(train_idx) > 1 and rng.uniform() < sc.swap_share
        for _ in range(5):  # a degenerate landmark fit raises: draw another base
            donor = int(rng.choice(train_idx[train_idx != base])) if swap else None
            try:
                return make_pair(pool, base, rng, sc.size,
                                 forgery="identity_swap" if swap else "sbi", donor=donor)
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
