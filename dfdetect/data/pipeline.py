"""tf.data input pipelines built from a store manifest (P1's augmentation: models/layers).

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
# The augmentation layers live with the models (a saved model must load without the
# data pipeline); re-exported here because the pipelines and experiments apply them.
from dfdetect.models.layers import (  # noqa: F401
    RandomChannelShift, RandomRotationZoom, build_augmentation, rotation_zoom_transform)

AUTOTUNE = tf.data.AUTOTUNE


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
