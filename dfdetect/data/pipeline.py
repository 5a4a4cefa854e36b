"""tf.data input pipelines built from a store manifest, plus P1's augmentation.

Every pipeline decodes in parallel, caches the decoded (un-augmented) tensors, and
prefetches. Augmentation runs as Keras preprocessing layers on batches, in training only,
so validation and test see the images exactly as stored.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from dfdetect.errors import DataError

AUTOTUNE = tf.data.AUTOTUNE


@keras.saving.register_keras_serializable(package="dfdetect")
class RandomChannelShift(keras.layers.Layer):
    """Adds an independent random offset to each colour channel (training only).

    Keras core has no channel shift; keras-cv's version pulls ~170 MB of dependencies and
    floods the log, so dfdetect keeps this small one. Inputs are in [0, 1]. With
    ``brightness``, it also does ``RandomBrightness``'s job (one offset per image for all
    channels) in the same pass over the pixels.

    Args:
        factor: offsets are drawn uniformly from [-factor, factor] per image and channel.
        seed: optional seed for reproducible augmentation.
        brightness: a further offset from [-brightness, brightness] per image, shared by
            its channels (0: none).
    """

    def __init__(self, factor: float = 0.1, seed: int | None = None, brightness: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.factor = float(factor)
        self.seed = seed
        self.brightness = float(brightness)
        self._generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=True):
        if not training or (self.factor == 0 and self.brightness == 0):
            return inputs
        shape = keras.ops.shape(inputs)
        batched = len(inputs.shape) == 4
        # One offset per image and channel, broadcast over height and width.
        offset_shape = (shape[0], 1, 1, shape[-1]) if batched else (1, 1, shape[-1])
        offsets = keras.random.uniform(offset_shape, -self.factor, self.factor,
                                       seed=self._generator, dtype=inputs.dtype)
        if self.brightness:
            offsets = offsets + keras.random.uniform(
                (shape[0], 1, 1, 1) if batched else (1, 1, 1), -self.brightness,
                self.brightness, seed=self._generator, dtype=inputs.dtype)
        return keras.ops.clip(inputs + offsets, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "seed": self.seed,
                "brightness": self.brightness}


def rotation_zoom_transform(angle, scale, height, width, flip=None):
    """``(n, 8)`` projective transforms for ``keras.ops.image.affine_transform``.

    Output pixel ``p`` samples the input at ``c + scale * R(angle) F (p - c)``, ``c`` the
    image centre: a rotation by ``angle`` radians, a zoom out by ``scale`` and, where
    ``flip`` is -1, a horizontal mirror (``F = diag(flip, 1)``; ``None``: no mirror).
    """
    ops = keras.ops
    cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
    f = ops.ones_like(cos) if flip is None else ops.cast(flip, cos.dtype)
    a0, a1, b0, b1 = cos * f, -sin, sin * f, cos
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    zero = ops.zeros_like(cos)
    return ops.stack([a0, a1, cx - (a0 * cx + a1 * cy),
                      b0, b1, cy - (b0 * cx + b1 * cy), zero, zero], axis=1)


@keras.saving.register_keras_serializable(package="dfdetect")
class RandomRotationZoom(keras.layers.Layer):
    """Random rotation, zoom and horizontal flip in one resampling (training only).

    The same geometry as ``RandomRotation``, ``RandomZoom`` (aspect kept) and
    ``RandomFlip("horizontal")`` in a row, but one bilinear interpolation instead of three
    passes over the pixels: these three layers were most of P1's augmentation time on a
    CPU (results/bench/input_pipeline.csv), and the pixels are blurred once, not twice.

    Args:
        rotation_degrees: angles are drawn uniformly from [-rotation_degrees, +rotation_degrees].
        zoom: zoom factors from [1 - zoom, 1 + zoom]; above 1 zooms out (as RandomZoom's
            positive factors), revealing reflected borders.
        horizontal_flip: mirror half of the images left-right.
        fill_mode: how points outside the image are filled (``reflect``, ``nearest``,
            ``constant``, ``wrap``, ``mirror``).
        seed: optional seed for reproducible augmentation.
    """

    def __init__(self, rotation_degrees: float = 15.0, zoom: float = 0.2,
                 horizontal_flip: bool = False, fill_mode: str = "reflect",
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rotation_degrees = float(rotation_degrees)
        self.zoom = float(zoom)
        self.horizontal_flip = bool(horizontal_flip)
        self.fill_mode = fill_mode
        self.seed = seed
        self._generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=True):
        if not training or (self.rotation_degrees == 0 and self.zoom == 0
                            and not self.horizontal_flip):
            return inputs
        ops = keras.ops
        batched = len(inputs.shape) == 4
        images = inputs if batched else ops.expand_dims(inputs, 0)
        shape = ops.shape(images)
        n = shape[0]
        height, width = ops.cast(shape[1], "float32"), ops.cast(shape[2], "float32")
        limit = self.rotation_degrees * np.pi / 180.0
        angle = keras.random.uniform((n,), -limit, limit, seed=self._generator)
        scale = keras.random.uniform((n,), 1.0 - self.zoom, 1.0 + self.zoom,
                                     seed=self._generator)
        flip = None
        if self.horizontal_flip:
            coin = keras.random.uniform((n,), 0.0, 1.0, seed=self._generator)
            flip = ops.where(coin < 0.5, -1.0, 1.0)
        transform = rotation_zoom_transform(angle, scale, height, width, flip)
        out = ops.image.affine_transform(images, ops.cast(transform, images.dtype),
                                         interpolation="bilinear", fill_mode=self.fill_mode,
                                         data_format="channels_last")
        return out if batched else out[0]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotation_degrees": self.rotation_degrees,
                "zoom": self.zoom, "horizontal_flip": self.horizontal_flip,
                "fill_mode": self.fill_mode, "seed": self.seed}


def build_augmentation(seed: int | None = None, rotation_degrees: float = 15.0,
                       zoom: float = 0.2, brightness: float = 0.2,
                       channel_shift: float = 0.1) -> keras.Sequential:
    """P1's on-the-fly augmentation as Keras preprocessing layers.

    Rotation up to 15 degrees, zoom 20 % and horizontal flip (one resampling:
    :class:`RandomRotationZoom`), brightness +-20 % and a random RGB channel shift (one
    add: :class:`RandomChannelShift`) — SPEC.md P1. The channel-shift range is assumed
    (the report names the operation, not its range): 0.1 of the [0, 1] range ~ Keras'
    25/255.
    """
    # Two passes over the pixels instead of five Keras layers: geometry in one resampling,
    # colour in one add (the measurement that decided it: results/bench/input_pipeline.csv).
    return keras.Sequential([
        RandomRotationZoom(rotation_degrees, zoom, horizontal_flip=True, fill_mode="reflect",
                           seed=seed),
        RandomChannelShift(channel_shift, seed=seed, brightness=brightness),
    ], name="augmentation")


def _crop_paths(rows: Sequence[Mapping], root: str | os.PathLike) -> list[str]:
    paths = [os.path.join(os.fspath(root), r["crop_path"]) for r in rows]
    missing = [p for p in paths[:1000] if not os.path.exists(p)]
    if missing:
        raise DataError(f"crop file missing ({len(missing)} of the first "
                        f"{min(len(paths), 1000)}); rebuild the store", missing[0])
    return paths


def _decode(size: int):
    def decode(path):
        image = tf.cast(tf.io.decode_image(tf.io.read_file(path), channels=3,
                                           expand_animations=False), tf.float32)
        # Stores are usually cropped at the model's size: resizing to the same size costs
        # as much as the decode itself (results/bench/input_pipeline.csv).
        shape = tf.shape(image)
        image = tf.cond(tf.logical_and(tf.equal(shape[0], size), tf.equal(shape[1], size)),
                        lambda: image,
                        lambda: tf.image.resize(image, (size, size), antialias=True))
        image = tf.clip_by_value(image / 255.0, 0.0, 1.0)
        image.set_shape((size, size, 3))
        return image
    return decode


def _finish(ds: tf.data.Dataset, n: int, batch_size: int, training: bool, seed: int,
            augment: keras.Sequential | None, cache: bool | str) -> tf.data.Dataset:
    if cache:
        ds = ds.cache() if cache is True else ds.cache(os.fspath(cache))
    if training:
        ds = ds.shuffle(min(n, 10_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training and augment is not None:
        ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def labels_of(rows: Sequence[Mapping]) -> np.ndarray:
    """The 0/1 labels of manifest rows as an int array."""
    return np.array([int(r["label"]) for r in rows], dtype=np.int32)


def image_dataset(rows: Sequence[Mapping], root: str | os.PathLike, image_size: int,
                  batch_size: int = 32, training: bool = False, seed: int = 0,
                  augment: keras.Sequential | None = None, cache: bool | str = True,
                  label_dtype: str = "float32") -> tf.data.Dataset:
    """Batches of (image in [0, 1], label) from manifest rows of a store.

    Args:
        rows: manifest rows (``crop_path`` relative to ``root``, ``label``).
        root: the store directory.
        image_size: side the crops are resized to.
        batch_size: batch size.
        training: shuffle and apply ``augment``; evaluation keeps the manifest order.
        seed: shuffle seed.
        augment: augmentation model (e.g. :func:`build_augmentation`), training only.
        cache: True caches decoded images in memory, a path caches on disk, False none.
        label_dtype: ``float32`` for sigmoid heads, ``int32`` for 2-way softmax heads.
    """
    if not rows:
        raise DataError("no samples for this split of the store", root)
    paths = _crop_paths(rows, root)
    labels = labels_of(rows).astype(label_dtype)
    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    decode = _decode(image_size)
    ds = ds.map(lambda p, y: (decode(p), y), num_parallel_calls=AUTOTUNE)
    return _finish(ds, len(rows), batch_size, training, seed, augment, cache)


def group_clips(rows: Sequence[Mapping]) -> "OrderedDict[tuple, list[Mapping]]":
    """Manifest rows grouped per video (source, video_id), frames in index order."""
    groups: OrderedDict[tuple, list[Mapping]] = OrderedDict()
    for row in rows:
        groups.setdefault((row["source"], row["video_id"]), []).append(row)
    for key in groups:
        groups[key].sort(key=lambda r: int(r["frame_index"]))
    return groups


def take_frames(frames: Sequence, n: int) -> list:
    """``n`` evenly spaced items of ``frames``, repeating when there are fewer than n."""
    if not frames:
        return []
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    return [frames[i] for i in idx]


def clip_dataset(rows: Sequence[Mapping], root: str | os.PathLike, frames: int,
                 image_size: int, batch_size: int = 2, training: bool = False,
                 seed: int = 0, cache: bool | str = True,
                 label_dtype: str = "int32") -> tf.data.Dataset:
    """Batches of (clip of ``frames`` face crops in [0, 1], label), one clip per video."""
    groups = group_clips(rows)
    if not groups:
        raise DataError("no videos for this split of the store", root)
    clip_paths, labels = [], []
    for members in groups.values():
        chosen = take_frames(members, frames)
        clip_paths.append(_crop_paths(chosen, root))
        labels.append(int(chosen[0]["label"]))
    ds = tf.data.Dataset.from_tensor_slices(
        (np.array(clip_paths), np.array(labels).astype(label_dtype)))
    decode = _decode(image_size)
    ds = ds.map(lambda ps, y: (tf.map_fn(decode, ps, fn_output_signature=tf.float32), y),
                num_parallel_calls=AUTOTUNE)
    return _finish(ds, len(labels), batch_size, training, seed, None, cache)


def clip_keys(rows: Sequence[Mapping]) -> list[tuple]:
    """(source, video_id) of each clip, in the order :func:`clip_dataset` yields them."""
    return list(group_clips(rows).keys())


def array_dataset(features: np.ndarray, labels: Sequence[int], batch_size: int = 32,
                  training: bool = False, seed: int = 0,
                  label_dtype: str = "int32") -> tf.data.Dataset:
    """Batches over in-memory arrays (cached feature sequences, pose segments)."""
    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels).astype(label_dtype)
    if len(features) != len(labels):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    return _finish(ds, len(labels), batch_size, training, seed, None, cache=False)
