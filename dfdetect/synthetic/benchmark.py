"""Embedded benchmarks: real/fake face stores that dfdetect makes itself.

``dfdetect data build --benchmark images|videos --faces procedural|DIR --scale S --out OUT
--seed N [--holdout-method M]`` calls :func:`build_benchmark`, which writes a store exactly
like ``dfdetect data crop`` (``OUT/crops/...`` PNGs + ``OUT/manifest.csv``), so every
experiment reads a benchmark and a real dataset the same way.

Face sources (``faces``):

* ``procedural`` (default, no download): faces drawn by :mod:`dfdetect.synthetic.procedural`;
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
  (``F = scale.video_frames`` unless ``frames`` is given; P2 and P3 take the first of
  them). Procedural faces move their head and
  change expression, stills become clips by smooth random camera motion, real videos are
  used as they are. Video fakes flicker (:func:`dfdetect.synthetic.forge.temporal_params`).

Every sample, real or fake, goes through the same steps: a square crop of 1.2-1.45x the
landmark box (random per pair: crop and margin jitter, so no fixed alignment gives the
label away), resize to a working canvas of 1-1.25x the output side, the forgery (fakes
only), then :func:`dfdetect.synthetic.forge.finish` (resize to ``scale.image_size`` /
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

The rooms: :mod:`.images` and :mod:`.videos` make the two kinds' samples on
:mod:`.build`'s shared task loop, from the identities of :mod:`.identities`, cropped by
:mod:`.canvas` and forged by :mod:`.forge`; :mod:`.poses` is P4's pose benchmark.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from dfdetect.data.splits import CROSS_SPLIT
from dfdetect.errors import DataError
from dfdetect.synthetic import forge, poses
from dfdetect.synthetic.build import (COMPLETE_MARKER, GENERATOR_FILE, SETTING_KEYS,
                                      BenchmarkSummary, claim_generator_version,
                                      refuse_foreign_folder, settings_of,
                                      store_generator_version, store_settings, unclaim,
                                      write_marker)
from dfdetect.synthetic.identities import list_folder
from dfdetect.synthetic.images import build_images
from dfdetect.synthetic.videos import build_videos

__all__ = ["COMPLETE_MARKER", "CROSS_SPLIT", "GENERATOR_FILE", "KINDS", "METHOD_ALIASES",
           "SETTING_KEYS", "BenchmarkSummary", "build_benchmark", "store_generator_version",
           "store_settings"]

KINDS = ("images", "videos", "poses")
#: Accepted spellings of the forgery methods (the manifest always holds the full name).
METHOD_ALIASES = {"swap": "identity_swap", "faceswap": "identity_swap",
                  "blend": "self_blend", "sbi": "self_blend"}


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
            :func:`dfdetect.synthetic.poses.build_pose_benchmark` (P4, no faces).
        faces: ``procedural`` or a folder of face photos / videos.
        scale: the sizes to build at: a :class:`dfdetect.scales.Scale` or any object
            with its benchmark fields (``name``, ``benchmark_identities``,
            ``views_per_identity``, ``image_size``, ``video_size``,
            ``benchmark_videos``, ``video_frames``, ``pose_*``). Taken as
            given, not as a name: the benchmark maker does not import the scale presets.
        out: store directory.
        seed: everything random derives from it.
        holdout_method: a forgery method kept out of train/val/test and used only in the
            ``cross`` split.
        workers: processes (default: all cores).
        identities: override ``scale.benchmark_identities`` (images) or the number of
            video identities (``scale.benchmark_videos // 2``).
        views: override ``scale.views_per_identity``.
        size: override the crop side (``scale.image_size`` / ``scale.video_size``).
        frames: frames per clip (videos; default ``scale.video_frames``).
        methods: forgery methods to use.
        landmark_cache: ``.npz`` file caching landmarks of a face folder (default
            ``<out>/landmarks.npz``); re-used across builds.
        progress: show a progress bar (default: on a terminal).
        generator: forgery generator version
            (:data:`dfdetect.synthetic.forge.GENERATOR_VERSIONS`; default
            :data:`dfdetect.synthetic.forge.DEFAULT_GENERATOR`), recorded in the store.

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
        return poses.build_pose_benchmark(out, scale=_sizes(scale), seed=int(seed))
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
        list_folder(faces)  # a missing or empty folder fails before any worker starts
    refuse_foreign_folder(Path(out))
    fresh = store_generator_version(Path(out)) is None
    claim_generator_version(Path(out), settings_of(summary), summary.generator)
    try:
        if kind == "images":
            build_images(summary, sc, faces, Path(out), int(seed), holdout_method, workers,
                         identities, views, size, tuple(methods), landmark_cache, progress)
        else:
            build_videos(summary, sc, faces, Path(out), int(seed), holdout_method, workers,
                         identities, size, frames, tuple(methods), landmark_cache, progress)
    except DataError:
        if fresh:
            unclaim(Path(out))
        raise
    write_marker(Path(out), summary)
    summary.seconds = time.monotonic() - started
    return summary
