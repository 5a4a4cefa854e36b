#!/usr/bin/env python
"""Input pipeline: what the tf.data pipelines deliver alone vs what the models consume.

Image pipeline (``dfdetect.data.pipeline.image_dataset``, training mode: PNG decode +
resize, shuffle, batch, P1's augmentation layers) in images/s, divided by the training
throughput (images/s) of each image model fed by it at ``cpu`` scale: Meso-4 (P1's
Meso-4 configuration and P5's fine-tuning; the fastest consumer, so the headline
``pipeline_vs_model_ratio`` is its ratio) and Xception (P1). The headline is the
pipeline as the experiments run it on every epoch after the first: ``image_dataset``
caches the decoded crops, so only shuffle, batch and augmentation run per epoch;
``pipeline_first_epoch_vs_model_ratio`` adds the one-off PNG decode of epoch 1. The clip
pipeline (``clip_dataset``: P3's ``frames`` PNGs per clip, no augmentation) against the P3 model's
training clips/s. A ratio >= 3 means the pipeline needs at most a third of the machine
to keep the model fed (``make bench`` target: >= 3).

The pipelines are timed with ``cache=False``, i.e. decoding every crop every epoch (the
worst case), and with the decoded crops cached as the experiments do after their first
epoch (``*_cached_*``). What limits the image pipeline is shown by the same pipeline
without augmentation and by each augmentation layer alone (``augment_<layer>``).
Crops are the embedded benchmark's (``smoke`` store: the same 64 px PNG crops as
``cpu`` scale, fewer of them; its manifest rows are repeated to make a ``cpu``-sized
epoch, the files being in the page cache either way, as they are in a run). Models
train on one in-memory batch (no pipeline), the best of 3 steps. Pipelines and models
are measured in interleaved rounds and each keeps its best round, so all see the same
load. Meso-4, the binding consumer, is always timed here; Xception's and P3's training
rates (traced in minutes, and 20-200x below the pipelines' rates) are read from the same
``make bench`` run's ``compute_efficiency.csv`` when it is there (``--measure-all``
times them here too).

tf.data autotune is compared on the image pipeline, both as decoded every pass and as
the experiments run it after epoch 1 (cached): ``options.autotune.enabled`` True (the
default; ``num_parallel_calls=AUTOTUNE`` everywhere) against False, in ``autotune_pairs``
back-to-back pairs whose order alternates (so a drift in the neighbours' load favours
neither). The median paired ratio is the figure that decides; a single best-of-rounds
ratio swings by +-10 % on these shared cores. Autotune stays on unless it is slower in
every pair of both pipelines (``autotune_kept``).

Run: ``python benchmarks/input_pipeline.py`` (headline: ``pipeline_vs_model_ratio``).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (Figure, base_argparser, best, finish, mark_start,  # noqa: E402
                               timed)

NAME = "input_pipeline"


def smoke_store(kind: str) -> Path:
    """The smoke-scale ``images`` or ``videos`` benchmark store (built once, then reused)."""
    from dfdetect import experiment
    from dfdetect.scales import get_scale

    return Path(experiment.benchmark_store(kind, "procedural", get_scale("smoke"), 0,
                                           holdout_method="identity_swap"))


def repeat_rows(rows: list, n: int) -> list:
    """``n`` rows cycling through ``rows``."""
    return [rows[i % len(rows)] for i in range(n)]


def repeat_clips(rows: list, clips: int) -> list:
    """Video rows with whole videos repeated (under new video ids) to make ``clips`` clips."""
    from dfdetect.data.pipeline import group_clips

    groups = list(group_clips(rows).values())
    out = []
    for k in range(clips):
        for row in groups[k % len(groups)]:
            out.append({**row, "video_id": f"{row['video_id']}~{k}"})
    return out


def drain(ds) -> tuple[int, float]:
    """(samples, seconds) of one full pass over ``ds``, from creating its iterator.

    Everything the pipeline does counts, the first batch included: a training
    pipeline's shuffle buffer holds the whole epoch, so the first batch waits for every
    crop to be decoded.
    """
    count, start = 0, time.perf_counter()
    for element in ds:
        x = element[0] if isinstance(element, tuple) else element
        count += int(x.shape[0])
    return count, time.perf_counter() - start


def pass_rate(ds) -> float:
    """Samples/s of one full pass over ``ds`` (see :func:`drain`)."""
    count, seconds = drain(ds)
    return count / seconds


class Consumer:
    """A model training on one in-memory batch (no pipeline at all): what it consumes."""

    def __init__(self, name: str, image_size: int, video_size: int, frames: int, batch: int):
        from benchmarks.compute_efficiency import P3_BATCH, build

        self.name = name
        self.samples = P3_BATCH if name == "p3" else batch
        self.model, self.x, self.y = build(name, image_size, video_size, frames, self.samples)
        self.model.train_on_batch(self.x, self.y)  # traces

    def rate(self, steps: int = 3) -> float:
        """Training samples/s, the best of ``steps`` steps."""
        return self.samples / best(timed(lambda: self.model.train_on_batch(self.x, self.y),
                                         steps, warmup=0))


def without_autotune(ds):
    """``ds`` with tf.data autotune off (parallel maps fall back to a fixed parallelism)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def autotune_ratios(rate, pairs: int) -> list[float]:
    """Autotune-on over autotune-off rates of ``pairs`` back-to-back pairs.

    Args:
        rate: ``rate(autotune: bool) -> samples/s`` of one pass.
        pairs: how many pairs; odd pairs run "off" first, so a load drift within a pair
            favours neither side on the whole.
    """
    ratios = []
    for k in range(pairs):
        rates = {on: rate(on) for on in ((False, True) if k % 2 else (True, False))}
        ratios.append(rates[True] / rates[False])
    return ratios


def autotune_kept(ratio_sets) -> bool:
    """Whether autotune stays on: unless it lost every pair of every pipeline compared.

    Autotune is TensorFlow's default and what sizes parallel maps to a bigger machine's
    cores, so it is dropped only on evidence that beats the noise of shared cores.
    """
    return not all(max(ratios) < 1.0 for ratios in ratio_sets)


def augmentation_rates(augment, image_size: int, batch: int, batches: int = 32) -> dict:
    """Images/s of each augmentation layer alone in a tf.data map over in-memory batches."""
    import numpy as np
    import tensorflow as tf

    x = np.random.default_rng(0).random((batches * batch, image_size, image_size, 3),
                                        dtype=np.float32)
    rates = {}
    for layer in augment.layers:
        @tf.autograph.experimental.do_not_convert
        def apply(b, layer=layer):
            return layer(b, training=True)

        ds = tf.data.Dataset.from_tensor_slices(x).batch(batch)
        ds = ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
        rates[layer.name] = max(pass_rate(ds) for _ in range(2))
    return rates


def measure(images: int = 1024, clips: int = 160, image_size: int | None = None,
            video_size: int | None = None, frames: int | None = None,
            batch: int | None = None, consumers=("meso4", "xception", "p3"),
            reference_rates: dict | None = None, rounds: int = 3, augment_batches: int = 32,
            autotune_pairs: int = 7,
            image_store: str | Path | None = None, video_store: str | Path | None = None,
            log=print) -> list[Figure]:
    """Every figure of this benchmark (defaults: ``cpu`` scale sizes).

    Pipelines and models are measured in ``rounds`` interleaved rounds (every variant
    once per round) and each keeps its best round, so all of them see the same load.
    ``reference_rates`` (``{model: training samples/s}``, e.g. from this run's
    ``compute_efficiency.csv``) replaces measuring those consumers here.
    """
    import keras

    from dfdetect.data import pipeline, store
    from dfdetect.papers import convlstm_cbam
    from dfdetect.scales import get_scale

    scale, p3 = get_scale("cpu"), convlstm_cbam.settings_for("cpu")
    image_size = image_size or scale.image_size  # the benchmark's crops, read as they are
    video_size = video_size or p3.size
    frames = frames or p3.frames
    batch = batch or scale.batch_size
    image_root = Path(image_store or smoke_store("images"))
    video_root = Path(video_store or smoke_store("videos"))
    image_rows = repeat_rows(store.read_manifest(image_root), images)
    video_rows = repeat_clips(store.read_manifest(video_root), clips)
    augment = pipeline.build_augmentation(seed=0)

    def image_ds(autotune: bool = True, cache=False, augmented: bool = True):
        ds = pipeline.image_dataset(image_rows, image_root, image_size, batch,
                                    training=True, augment=augment if augmented else None,
                                    cache=cache)
        return ds if autotune else without_autotune(ds)

    def clip_ds(cache=False):
        return pipeline.clip_dataset(video_rows, video_root, frames, video_size,
                                     batch_size=2, training=True, cache=cache)

    keras.utils.clear_session(free_memory=True)
    reference_rates = dict(reference_rates or {})
    models = [Consumer(name, image_size, video_size, frames, batch) for name in consumers
              if name not in reference_rates]
    cached_images, cached_clips = image_ds(cache=True), clip_ds(cache=True)
    drain(cached_images)  # fills the caches
    drain(cached_clips)
    variants = {
        "image": lambda: pass_rate(image_ds()),
        "image_no_augmentation": lambda: pass_rate(image_ds(augmented=False)),
        "image_cached": lambda: pass_rate(cached_images),
        "clip": lambda: pass_rate(clip_ds()),
        "clip_cached": lambda: pass_rate(cached_clips),
    }
    rates: dict[str, list[float]] = {k: [] for k in list(variants) + [m.name for m in models]}
    for r in range(rounds):
        for key, fn in variants.items():
            rates[key].append(fn())
        for model in models:
            rates[model.name].append(model.rate())
        log(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items()))
    top = {k: max(v) for k, v in rates.items()}
    top.update(reference_rates)
    # Autotune on vs off in back-to-back pairs; the uncached passes' rates are kept for
    # the absolute figures.
    uncached = {True: [], False: []}

    def uncached_rate(on: bool) -> float:
        uncached[on].append(pass_rate(image_ds(autotune=on)))
        return uncached[on][-1]

    paired = {
        "": autotune_ratios(uncached_rate, autotune_pairs),
        "_cached": autotune_ratios(
            lambda on: pass_rate(cached_images if on else without_autotune(cached_images)),
            autotune_pairs),
    }
    figures = [
        Figure("image_pipeline_images_per_s", top["image"], "images/s"),
        Figure("image_pipeline_cached_images_per_s", top["image_cached"], "images/s"),
        Figure("image_pipeline_no_augmentation_images_per_s", top["image_no_augmentation"],
               "images/s"),
        Figure("image_pipeline_no_autotune_images_per_s", max(uncached[False]), "images/s"),
        Figure("autotune_speedup", max(uncached[True]) / max(uncached[False]), "x"),
    ]
    for suffix, ratios in paired.items():
        figures += [
            Figure(f"autotune{suffix}_speedup_median", statistics.median(ratios), "x"),
            Figure(f"autotune{suffix}_speedup_min", min(ratios), "x"),
            Figure(f"autotune{suffix}_speedup_max", max(ratios), "x"),
        ]
    figures += [
        Figure("autotune_pairs", len(paired[""]), "pairs"),
        Figure("autotune_kept", float(autotune_kept(paired.values())), "bool"),
        Figure("clip_pipeline_clips_per_s", top["clip"], "clips/s"),
        Figure("clip_pipeline_cached_clips_per_s", top["clip_cached"], "clips/s"),
    ]
    for layer, rate in augmentation_rates(augment, image_size, batch, augment_batches).items():
        figures.append(Figure(f"augment_{layer}_images_per_s", rate, "images/s"))
    image_ratios, first_epoch_ratios = [], []
    for name in consumers:
        unit = "clips/s" if name == "p3" else "images/s"
        figures.append(Figure(f"{name}_train_{unit.replace('/', '_per_')}", top[name], unit))
        if name == "p3":
            figures.append(Figure("clip_pipeline_vs_p3_ratio", top["clip"] / top[name], "x"))
            figures.append(Figure("clip_pipeline_cached_vs_p3_ratio",
                                  top["clip_cached"] / top[name], "x"))
        else:
            ratio = top["image"] / top[name]
            first_epoch_ratios.append(ratio)
            figures.append(Figure(f"image_pipeline_vs_{name}_ratio", ratio, "x"))
            image_ratios.append(top["image_cached"] / top[name])
            figures.append(Figure(f"image_pipeline_cached_vs_{name}_ratio",
                                  image_ratios[-1], "x"))
    if image_ratios:
        # Headline: the tightest image consumer (the fastest-training model), fed the way
        # every experiment feeds it on all epochs but the first (decoded crops cached).
        figures.append(Figure("pipeline_first_epoch_vs_model_ratio", min(first_epoch_ratios),
                              "x"))
        figures.append(Figure("pipeline_vs_model_ratio", min(image_ratios), "x"))
    return figures


def rates_from(path: Path, max_age_hours: float = 6.0) -> dict:
    """Training samples/s of Xception and P3 from a recent ``compute_efficiency.csv``."""
    import datetime

    from benchmarks.common import read_figures

    if not path.is_file():
        return {}
    rows = {r["figure"]: r for r in read_figures(path)}
    out = {}
    for model, figure in (("xception", "xception_train_images_per_s"),
                          ("p3", "p3_train_clips_per_s")):
        row = rows.get(figure)
        if row is None:
            continue
        when = datetime.datetime.strptime(row["date"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        age = datetime.datetime.now(datetime.timezone.utc) - when
        if age.total_seconds() < max_age_hours * 3600:
            out[model] = row["value"]
    return out


def main(argv=None) -> int:
    parser = base_argparser(__doc__.splitlines()[0])
    parser.add_argument("--measure-all", action="store_true",
                        help="time Xception and P3 here too, instead of reading them from "
                             "this run's compute_efficiency.csv")
    args = parser.parse_args(argv)
    mark_start()
    reference = {} if args.measure_all else rates_from(Path(args.out) / "compute_efficiency.csv")
    if reference:
        print(f"training rates of {', '.join(sorted(reference))} from compute_efficiency.csv")
    figures = measure(reference_rates=reference)
    finish(NAME, figures, "pipeline_vs_model_ratio", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
