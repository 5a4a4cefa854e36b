#!/usr/bin/env python
"""Feature cache: one training epoch of P2's sequence grid on cached CNN features
against the same epoch recomputing the CNN features of every frame.

P2 trains its LSTM / GRU / MLP heads on per-frame InceptionV3 features (2048-d) of
P2's ``sequence_frames`` frames per video, computed once and cached in the store
(``dfdetect.features``); without the cache every epoch of every configuration would run
the frozen CNN over every frame again. The measurement is P2's own
:func:`measure_feature_cache_speedup` below: the grid's first head (``gru-1x128``)
trained on the cached ``(frames, 2048)`` sequences, and end to end behind the frozen
extractor re-run on every frame each epoch (decoded frames cached in memory, so only the
CNN's cost differs); each epoch time is the last of two epochs (the first traces).

Data at ``cpu`` scale sizes: 100 videos (half the ``cpu`` benchmark's 200, see
:data:`VIDEOS`) split 70/30 into P2's training and validation videos, ``sequence_frames``
distinct ``frame_size`` px crops each. They are made from the
``smoke`` video benchmark's crops (its clips repeated under new video ids, every frame
its own file), because building the ``cpu`` video benchmark takes minutes and the
timing depends only on the shapes. The extractor is InceptionV3 at ``frame_size``
(random init, seeded: speed does not depend on the weights).

Also reported: the one-off extraction (``extract_seconds``: the CNN over every frame of
the training and validation videos once) and ``run_speedup``: a whole grid run of
``sequence_epochs`` epochs end to end over extraction + the same run on the cache.

Run: ``python benchmarks/feature_cache.py`` (headline: ``feature_cache_speedup``,
target >= 20x).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import Figure, base_argparser, finish, mark_start  # noqa: E402

NAME = "feature_cache"
TRAIN_SHARE = 0.7
#: Videos (train + validation): half the ``cpu`` benchmark's 200, to keep ``make bench``
#: short; the speedup is per video (a smaller epoch only adds relative per-epoch overhead
#: to the cached side, i.e. understates the speedup).
VIDEOS = 100


def replica_store(source_root: Path, out: Path, videos: int, frames: int) -> list[dict]:
    """A store of ``videos`` clips of ``frames`` distinct crop files, from a small store.

    Clips of ``source_root`` are cycled under new video ids; frame ``k`` of a new clip is
    a symlink to the source clip's frame ``k mod n``. Returns the manifest rows (also
    written to ``out/manifest.csv``), split ``train`` / ``val`` by :data:`TRAIN_SHARE`.
    """
    from dfdetect.data import pipeline, store
    from dfdetect.io import atomic_write_text, rows_to_csv

    groups = list(pipeline.group_clips(store.read_manifest(source_root)).values())
    rows = []
    n_train = int(round(videos * TRAIN_SHARE))
    for v in range(videos):
        members = groups[v % len(groups)]
        video_id = f"{members[0]['video_id']}-r{v:04d}"
        for k in range(frames):
            src = members[k % len(members)]
            rel = store.crop_relpath(src["source"], video_id, k)
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.symlink(os.path.abspath(source_root / src["crop_path"]), target)
            rows.append({**src, "video_id": video_id, "frame_index": k, "crop_path": rel,
                         "split": "train" if v < n_train else "val"})
    columns = list(store.MANIFEST_COLUMNS) + [c for c in rows[0] if c not in store.MANIFEST_COLUMNS]
    atomic_write_text(out / store.MANIFEST, rows_to_csv(rows, columns))
    return rows


def measure_feature_cache_speedup(splits, size: int, frames: int, *,
                                  extractor=None, cache_name: str | None = None,
                                  backbone: str = "inceptionv3", weights=None,
                                  config: str = "gru-1x128", epochs: int = 2,
                                  batch_size: int = 32, grid_epochs: int | None = None,
                                  seed: int = 0) -> dict:
    """How much faster a sequence head trains on cached features than end to end.

    P2's measurement (``make bench`` and its test call it). Trains ``config`` for
    ``epochs`` epochs twice on the training videos: on the cached
    ``(frames, D)`` sequences, and end to end (:func:`dfdetect.models.sequence.build_end_to_end`, the frozen
    extractor re-run on every frame each epoch, decoded frames cached in memory so only
    the CNN's cost differs). Per-epoch times are the last epoch's (the first one
    traces). The extraction itself (or the cache read) is timed once.

    Args:
        splits: an :class:`dfdetect.papers.ann_comparison.VideoSplits`.
        size, frames, extractor, cache_name, backbone, weights: as for
            :func:`dfdetect.papers.ann_comparison.sequence_data`.
        config: the head (a sequence grid name).
        epochs: epochs per measurement (>= 2 so one untraced epoch is timed).
        grid_epochs: epochs of a grid run for ``run_speedup`` (default: ``epochs``).

    Returns:
        ``cached_epoch_s``, ``uncached_epoch_s``, ``epoch_speedup`` (their ratio),
        ``extract_s`` (this call's extraction or cache read), ``run_speedup``: one
        ``grid_epochs``-epoch run end to end over extraction + the run on the cache.
    """
    import keras

    from dfdetect import training
    from dfdetect.data import pipeline
    from dfdetect.models import registry
    from dfdetect.models.sequence import build_end_to_end
    from dfdetect.papers.ann_comparison import SETTINGS, sequence_data

    learning_rate = SETTINGS["cpu"].learning_rate
    epochs = max(2, int(epochs))
    data = sequence_data(splits, size, frames, extractor=extractor, cache_name=cache_name,
                         backbone=backbone, weights=weights, seed=seed)
    input_shape = (int(frames), data["dims"])

    training.set_seed(seed)
    head = registry.build_model("sequence_head", name=config, input_shape=input_shape)
    training.compile_model(head, "adam", learning_rate)
    timer = training.EpochTimer()
    ds = pipeline.array_dataset(data["x_train"], data["y_train"], batch_size, training=True,
                                seed=seed)
    head.fit(ds, epochs=epochs, shuffle=False, verbose=0, callbacks=[timer])
    cached = timer.seconds[-1]

    if extractor is None:
        extractor = registry.build_model("feature_extractor", backbone=backbone, size=size,
                                         weights=weights, seed=seed)
    training.set_seed(seed)
    # build_end_to_end joins two registry-built models (an argument no JSON can hold), so
    # it is called as a function: the end-to-end model is timed here, never exported.
    model = build_end_to_end(extractor, registry.build_model(
        "sequence_head", name=config, input_shape=input_shape), frames, size)
    training.compile_model(model, "adam", learning_rate)
    clips = pipeline.clip_dataset(splits.train, splits.root, int(frames), int(size),
                                  batch_size, training=True, seed=seed)
    for _ in clips:  # fill the decoded-frame cache before timing
        pass
    timer = training.EpochTimer()
    model.fit(clips, epochs=epochs, shuffle=False, verbose=0, callbacks=[timer])
    uncached = timer.seconds[-1]
    keras.backend.clear_session()
    n = int(grid_epochs or epochs)
    return {"config": config, "videos": int(len(data["y_train"])), "frames": int(frames),
            "size": int(size), "cached_epoch_s": cached, "uncached_epoch_s": uncached,
            "epoch_speedup": uncached / cached if cached > 0 else float("inf"),
            "extract_s": data["seconds"],
            "run_speedup": n * uncached / (data["seconds"] + n * cached)}


def measure(videos: int | None = None, frames: int | None = None, size: int | None = None,
            batch: int | None = None, backbone: str = "inceptionv3", config: str = "gru-1x128",
            source_store: str | Path | None = None, log=print) -> list[Figure]:
    """Every figure of this benchmark (defaults: ``cpu`` scale)."""
    from dfdetect import experiment
    from dfdetect.papers import ann_comparison
    from dfdetect.scales import get_scale

    scale = get_scale("cpu")
    videos = videos or VIDEOS
    frames = frames or ann_comparison.settings_for("cpu").sequence_frames
    size = size or ann_comparison.settings_for("cpu").frame_size
    batch = batch or scale.batch_size
    grid_epochs = ann_comparison.settings_for("cpu").sequence_epochs
    source = source_store or experiment.benchmark_store(
        "videos", "procedural", get_scale("smoke"), 0, holdout_method="identity_swap")
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        root = Path(tmp)
        rows = replica_store(Path(source), root, videos, frames)
        splits = ann_comparison.VideoSplits(root, [r for r in rows if r["split"] == "train"],
                                [r for r in rows if r["split"] == "val"])
        result = measure_feature_cache_speedup(
            splits, size, frames, backbone=backbone, config=config, epochs=2,
            batch_size=batch, grid_epochs=grid_epochs, seed=0)
    log(f"cached epoch {result['cached_epoch_s']:.3f} s, recomputed epoch "
        f"{result['uncached_epoch_s']:.2f} s, extraction {result['extract_s']:.1f} s")
    return [
        Figure("train_videos", result["videos"], "videos"),
        Figure("frames_per_video", result["frames"], "frames"),
        Figure("frame_size", result["size"], "px"),
        Figure("extract_seconds", result["extract_s"], "s"),
        Figure("cached_epoch_seconds", result["cached_epoch_s"], "s"),
        Figure("recomputed_epoch_seconds", result["uncached_epoch_s"], "s"),
        Figure("grid_run_epochs", grid_epochs, "epochs"),
        Figure("grid_run_speedup", result["run_speedup"], "x"),
        Figure("feature_cache_speedup", result["epoch_speedup"], "x"),
    ]


def main(argv=None) -> int:
    parser = base_argparser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    mark_start()
    figures = measure()
    finish(NAME, figures, "feature_cache_speedup", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
