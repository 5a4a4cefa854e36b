"""Per-image CNN features of a store's crops, computed once and cached in the store.

:func:`extract_features` maps manifest rows to feature vectors with any backbone of
:mod:`dfdetect.models.backbones` (or a caller's own extractor model, e.g. a fine-tuned
one) and keeps them in the store's feature cache (``<root>/features/<name>_<size>.npy``
+ ``.csv``, see :mod:`dfdetect.data.store`). The cache holds one row per *crop*, keyed
by ``crop_path``: asking again for the same rows reads the cache, asking for new rows
computes only those and adds them. With ``frames=N`` the same per-crop cache serves
sequence models (P2): rows are grouped per video and ``N`` evenly spaced frames are
stacked into ``(videos, N, dims)``.

A cache is named by what produced the features (:func:`feature_name`): backbone plus
``random-s<seed>`` (untrained, seeded), ``imagenet`` or the weights file's name and a
hash of its bytes; a caller passing its own ``model`` passes the name too. Different
extractors therefore never share a cache.

:class:`ColorNormalization` is the paper's brightness / contrast / colour-balance
normalisation as a Keras layer; the registry's ``feature_extractor``
(:func:`dfdetect.models.backbones.build_extractor`) puts it in front of a backbone.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path
from typing import Mapping, Sequence

import keras
import numpy as np

from dfdetect.data import pipeline, store
from dfdetect.errors import DataError, ModelError
from dfdetect.models import registry
from dfdetect.models.backbones import safe_name
# A serializable layer lives with the models; re-exported as part of this module's API.
from dfdetect.models.layers import ColorNormalization  # noqa: F401

__all__ = ["ColorNormalization", "INDEX_FIELDS", "extract_features",
           "feature_name", "is_cached", "sequence_features"]

#: Manifest columns copied into the cache index (``identity`` when the store has it).
INDEX_FIELDS = ("crop_path", "source", "video_id", "frame_index", "label", "split", "method",
                "identity")


def feature_name(backbone: str, weights: str | os.PathLike | None = None, seed: int = 0) -> str:
    """The cache name of a backbone's features with these weights.

    ``<backbone>-random-s<seed>`` for an untrained network, ``<backbone>-imagenet``, or
    ``<backbone>-<file stem>-<first 8 hex of the file's SHA-256>`` for a weights file.
    """
    if weights is None:
        return f"{safe_name(backbone)}-random-s{int(seed)}"
    if weights == "imagenet":
        return f"{safe_name(backbone)}-imagenet"
    path = Path(os.fspath(weights))
    if not path.is_file():
        raise ModelError("weights file not found", path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    return f"{safe_name(backbone)}-{safe_name(path.stem)}-{digest}"


def _index_row(row: Mapping) -> dict:
    out = {k: row.get(k, "") for k in INDEX_FIELDS}
    out["label"] = int(row["label"])
    out["frame_index"] = int(row.get("frame_index") or 0)
    return out


def _typed(row: Mapping) -> dict:
    out = dict(row)
    out["label"] = int(out["label"])
    out["frame_index"] = int(out.get("frame_index") or 0)
    return out


def _compute(model: keras.Model, rows: Sequence[Mapping], root, size: int,
             batch_size: int) -> tuple[np.ndarray, list[Mapping], dict[str, str]]:
    """Features of ``rows``; rows whose crop cannot be read are returned as skipped."""
    import tensorflow as tf  # deferred: loaded already by keras; named for tf.errors only

    skipped: dict[str, str] = {}
    good = []
    for row in rows:  # a missing file would stop the whole tf.data run: check first
        path = os.path.join(os.fspath(root), row["crop_path"])
        if os.path.isfile(path):
            good.append(row)
        else:
            skipped[row["crop_path"]] = "crop file missing"
    if not good:
        return np.zeros((0, 0), np.float32), [], skipped

    def run(subset):
        ds = pipeline.image_dataset(subset, root, size, batch_size, cache=False)
        return np.concatenate([np.asarray(model.predict_on_batch(x), dtype=np.float32)
                               for x, _ in ds], axis=0)

    try:
        return run(good), good, skipped
    except tf.errors.InvalidArgumentError:
        pass
    # Some crop does not decode: find it by decoding one file at a time, then retry.
    readable = []
    for row in good:
        path = os.path.join(os.fspath(root), row["crop_path"])
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
            readable.append(row)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
            skipped[row["crop_path"]] = "crop does not decode as an image"
    if not readable:
        return np.zeros((0, 0), np.float32), [], skipped
    return run(readable), readable, skipped


def is_cached(root: str | os.PathLike, rows: Sequence[Mapping], cache_name: str,
              size: int) -> bool:
    """Whether the ``cache_name`` cache of the store at ``root`` holds every crop of ``rows``."""
    if not store.has_features(root, cache_name, size):
        return False
    _, index_path = store.feature_paths(root, cache_name, size)
    with open(index_path, newline="", encoding="utf-8") as handle:
        cached = {r.get("crop_path") for r in csv.DictReader(handle)}
    return all(r["crop_path"] in cached for r in rows)


def extract_features(root: str | os.PathLike, rows: Sequence[Mapping], backbone: str,
                     size: int, weights: str | os.PathLike | None = None,
                     batch_size: int = 64, *, model: keras.Model | None = None,
                     cache_name: str | None = None, frames: int | None = None,
                     seed: int = 0, overwrite: bool = False,
                     log=print) -> tuple[np.ndarray, list[dict]]:
    """Features of manifest ``rows`` of the store at ``root``, through its feature cache.

    Args:
        root: the store directory (the cache lives in ``<root>/features``).
        rows: manifest rows (``crop_path`` relative to ``root``, ``label``...).
        backbone: backbone name; builds the extractor when ``model`` is None.
        size: side the crops are resized to (part of the cache's name).
        weights: backbone weights when ``model`` is None (``None``: random init seeded
            with ``seed``; ``"imagenet"``; a local file).
        batch_size: inference batch size.
        model: an extractor to use instead (e.g. a fine-tuned backbone); then
            ``cache_name`` must name it.
        cache_name: name of the cache (default :func:`feature_name`).
        frames: None for one vector per crop; N to stack N evenly spaced frames of every
            video into ``(videos, N, dims)`` (sequence models).
        seed: random-init seed (``weights=None``).
        overwrite: recompute the requested rows and replace the cache with them (for a
            new extractor saved under an old name).
        log: where a skipped-crops note goes.

    Returns:
        ``(float32 array, index rows)``. Per crop: ``(n, dims)`` in the order of
        ``rows`` (crops that cannot be read are left out and counted in a log line),
        index rows with :data:`INDEX_FIELDS` (``label`` and ``frame_index`` as ints).
        With ``frames``: ``(videos, frames, dims)`` and one index row per video
        (``source, video_id, label, split, method, identity, frames_available``: the
        video's frame count in ``rows``).

    Raises:
        DataError: no rows, or a cache that cannot be read.
        ModelError: ``model`` given without ``cache_name``.
    """
    rows = list(rows)
    if not rows:
        raise DataError("no rows to extract features for", root)
    if model is not None and not cache_name:
        raise ModelError("extract_features: a caller-supplied model needs a cache_name")
    name = cache_name or feature_name(backbone, weights, seed)
    if frames is not None:
        groups = pipeline.group_clips(rows)
        rows = [r for members in groups.values()
                for r in pipeline.take_frames(members, int(frames))]
        # take_frames may repeat a frame (short videos); compute each crop once.
        unique = list({r["crop_path"]: r for r in rows}.values())
        array, index = extract_features(root, unique, backbone, size, weights, batch_size,
                                         model=model, cache_name=name, seed=seed,
                                         overwrite=overwrite, log=log)
        stacked, videos = sequence_features(array, index, int(frames))
        for video in videos:
            video["frames_available"] = len(groups[(video["source"], video["video_id"])])
        return stacked, videos

    cached_array, cached_rows = None, []
    if not overwrite and store.has_features(root, name, size):
        cached_array, cached_rows = store.load_features(root, name, size)
    where = {r["crop_path"]: i for i, r in enumerate(cached_rows)}
    missing = [r for r in {r["crop_path"]: r for r in rows}.values()
               if r["crop_path"] not in where]
    skipped: dict[str, str] = {}
    if missing:
        if model is None:
            model = registry.build_model("feature_extractor", backbone=backbone,
                                         size=size, weights=weights, seed=seed)
        new_array, computed, skipped = _compute(model, missing, root, size, batch_size)
        if computed:
            if cached_array is not None and cached_array.shape[1] != new_array.shape[1]:
                raise DataError(f"feature cache {name} holds {cached_array.shape[1]}-d "
                                f"features but the extractor gives {new_array.shape[1]}; "
                                "delete it to recompute", store.feature_paths(root, name, size)[0])
            new_rows = [_index_row(r) for r in computed]
            if cached_array is None:
                cached_array, cached_rows = new_array, new_rows
            else:
                cached_array = np.concatenate([cached_array.astype(np.float32), new_array])
                cached_rows = list(cached_rows) + new_rows
            store.save_features(root, name, size, cached_array, cached_rows)
            where = {r["crop_path"]: i for i, r in enumerate(cached_rows)}
    if skipped:
        first = next(iter(skipped.items()))
        log(f"features: skipped {len(skipped)} crop(s) of {root}, e.g. {first[0]}: {first[1]}")
    keep = [r for r in rows if r["crop_path"] in where]
    if not keep:
        raise DataError("no readable crops among the requested rows", root)
    take = np.array([where[r["crop_path"]] for r in keep])
    # Rounded through float16 like the cache, so a first call and a cached call agree.
    array = np.asarray(cached_array)[take].astype(np.float16).astype(np.float32)
    index = [_typed(cached_rows[i]) for i in take]
    return array, index


def sequence_features(array: np.ndarray, index_rows: Sequence[Mapping],
                      frames: int) -> tuple[np.ndarray, list[dict]]:
    """Stacks per-crop features into ``(videos, frames, dims)``, N evenly spaced frames.

    Args:
        array: ``(crops, dims)``.
        index_rows: one row per crop (``source``, ``video_id``, ``frame_index``...).
        frames: frames per video; shorter videos repeat frames evenly.

    Returns:
        The stacked array and one row per video (first-seen order; ``frames_available``
        counts the video's rows in ``index_rows``).
    """
    rows = [{**r, "_i": i} for i, r in enumerate(index_rows)]
    groups = pipeline.group_clips(rows)
    out, video_rows = [], []
    for (source, video_id), members in groups.items():
        chosen = pipeline.take_frames(members, int(frames))
        out.append(np.asarray(array)[[m["_i"] for m in chosen]])
        first = members[0]
        video_rows.append({"source": source, "video_id": video_id, "label": int(first["label"]),
                           "split": first.get("split", ""), "method": first.get("method", ""),
                           "identity": first.get("identity", ""),
                           "frames_available": len(members)})
    dims = np.asarray(array).shape[-1] if len(array) else 0
    stacked = np.stack(out) if out else np.zeros((0, int(frames), dims), np.float32)
    return stacked.astype(np.float32), video_rows
