"""P2's LSTM, GRU and MLP grids over cached CNN feature sequences (Figures 18-26, their
Table 3 columns): every video's sequence of the chosen InceptionV3's features, computed
once into the store's feature cache; workers run :data:`SEQUENCE_SCRIPT`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dfdetect import experiment, results
from dfdetect.data import store
from dfdetect.errors import DataError, ModelError
from dfdetect.papers.ann_comparison.common import (SETTINGS, VideoSplits, load_videos,
                                                   merge_table_3, parse_configs, select_best,
                                                   settings_for, summarize_runs,
                                                   table_3_column, write_table_3)
from dfdetect.papers.ann_comparison.unfreezing import (best_inception, inception_cache_name,
                                                       inception_extractor, inception_parser,
                                                       inception_size, run_inception)

# Bound now, executed on first use: an experiment's --help must not wait for TensorFlow.
keras = experiment.lazy_import("keras")
features = experiment.lazy_import("dfdetect.features")
plots = experiment.lazy_import("dfdetect.plots")
pipeline = experiment.lazy_import("dfdetect.data.pipeline")
training = experiment.lazy_import("dfdetect.training")
registry = experiment.lazy_import("dfdetect.models.registry")
sequence = experiment.lazy_import("dfdetect.models.sequence")

# ------------------------------------------------------------------------ sequences


def sequence_data(splits: VideoSplits, size: int, frames: int, *, extractor=None,
                  cache_name: str | None = None, backbone: str = "inceptionv3",
                  weights=None, seed: int = 0, batch_size: int = 64) -> dict:
    """Every video's ``(frames, D)`` feature sequence, through the store's feature cache.

    The CNN runs once per crop, ever: later calls (and later grids) read the cache.

    Args:
        splits: the videos.
        size: side the crops are fed to the extractor at.
        frames: evenly spaced frames per video.
        extractor, cache_name: a trained extractor and its cache name (e.g. from
            :func:`inception_extractor`); or None to use ``backbone`` by name with
            ``weights`` (``None`` = random init seeded with ``seed``).

    Returns:
        ``x_train, y_train, x_val, y_val`` (float32 / int32 arrays), ``dims``,
        ``seconds`` (extraction or cache read), ``cache_name``.
    """
    rows = splits.train + splits.val
    start = time.perf_counter()
    array, index = features.extract_features(
        splits.root, rows, backbone, size, weights, batch_size, model=extractor,
        cache_name=cache_name, frames=int(frames), seed=seed)
    seconds = time.perf_counter() - start
    train_keys = {(r["source"], r["video_id"]) for r in splits.train}
    is_train = np.array([(r["source"], r["video_id"]) in train_keys for r in index])
    labels = np.array([int(r["label"]) for r in index], dtype=np.int32)
    return {"x_train": array[is_train], "y_train": labels[is_train],
            "x_val": array[~is_train], "y_val": labels[~is_train],
            "dims": int(array.shape[-1]), "seconds": seconds,
            "cache_name": cache_name or features.feature_name(backbone, weights, seed)}


def train_default_extractor(args, out: Path) -> dict:
    """The paper's best InceptionV3 option (top 50 %), trained once as the sequence
    grids' feature extractor, into ``<out>/extractor`` (one repeat, the scale's epochs
    and initialisation) by :func:`run_inception` itself.

    Args:
        args: the sequence grid's flags (scale, faces, seed, layout, data, weights).
        out: the sequence grid's results folder.

    Returns:
        The chosen model's record (:func:`best_inception`).

    Raises:
        ModelError: the run saved no model.
    """
    argv = ["--scale", args.scale, "--faces", args.faces, "--seed", str(args.seed),
            "--layout", args.layout, "--configs", "top50", "--repeats", "1",
            "--out", str(out / "extractor")]
    argv += ["--data", args.data] if args.data else []
    argv += ["--weights", args.weights] if args.weights else []
    argv += ["--quiet"] if args.quiet else []
    print("no InceptionV3 results found: training the paper's best option (top50) once "
          f"as the feature extractor, into {out / 'extractor'}")
    run_inception(inception_parser(argparse.ArgumentParser()).parse_args(argv))
    record = best_inception(out / "extractor")
    if record is None:
        raise ModelError("the fallback InceptionV3 run saved no model", out / "extractor")
    return record


#: family -> (Table 3 family name, the paper's figure numbers).
SEQUENCE_FAMILIES = {"lstm": ("LSTM", (18, 19, 20)), "gru": ("GRU", (21, 22, 23)),
                     "mlp": ("MLP", (24, 25, 26))}
#: The script a sequence grid worker runs (one configuration in a fresh process).
SEQUENCE_SCRIPT = experiment.REPO_ROOT / "experiments" / "p2_sequence_grid.py"


def sequence_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The sequence grids' flags (common and grid-worker ones included) on ``parser``."""
    experiment.add_common_args(parser, out="p2/sequence")
    parser.add_argument("--configs", default=None,
                        help="comma-separated names, e.g. 'gru-1x128,lstm-2x256,mlp-3-const128' "
                             "(default: the LSTM and GRU grids, then Table 2)")
    parser.add_argument("--rnn-widths", default=None,
                        help="LSTM/GRU widths of the grid, e.g. 128,256,512,1024 "
                             "(default: the scale's; paper "
                             f"{','.join(map(str, SETTINGS['paper'].rnn_widths))})")
    parser.add_argument("--backbone", default="auto",
                        help="auto, a transfer model's .weights.h5, or a backbone name")
    parser.add_argument("--inception-dir", default=None,
                        help="results of the InceptionV3 grid (default: beside --out, "
                             "results/p2/inception)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per video in a sequence (default: "
                             + ", ".join(f"{n} {s.sequence_frames}"
                                         for n, s in SETTINGS.items()) + ")")
    parser.add_argument("--size", type=int, default=None,
                        help="side the frames are fed to the extractor at (default: the "
                             "extractor's training size)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size (default: the scale's)")
    experiment.add_grid_args(parser)
    return parser


def sequence_grid(widths) -> list[str]:
    """The sequence grids' configuration names: LSTM, GRU (cell x depth x width), then
    Table 2."""
    return ([c.name for c in sequence.rnn_grid(tuple(widths))]
            + [c.name for c in sequence.TABLE_2])


def describe_sequence(config: str) -> dict:
    """The summary's description columns of an LSTM, GRU or MLP configuration."""
    c = sequence.get_sequence_config(config)
    if isinstance(c, sequence.RnnConfig):
        return {"family": c.cell, "depth": c.depth, "widths": str(c.width)}
    return {"family": "mlp", "depth": c.depth, "widths": "-".join(map(str, c.widths))}


def resolve_extractor(args, scale, out: Path, store_root: Path) -> dict:
    """The feature extractor ``--backbone`` names, as a dict for :func:`sequence_data`.

    Returns:
        ``{"extractor", "cache_name", "backbone", "weights", "size", "source",
        "N_p", "W_s"}``.
    """
    choice = args.backbone
    if choice == "auto" or choice.endswith(".weights.h5"):
        if choice == "auto":
            inception_dir = Path(args.inception_dir or out.parent / "inception")
            record = best_inception(inception_dir)
            if record and record.get("store", str(store_root)) != str(store_root):
                print(f"{inception_dir}: its best model was trained on {record['store']}, "
                      f"not on {store_root}: not used")
                record = None
            if record is None:
                record = best_inception(out / "extractor")
                if record and record.get("store", str(store_root)) != str(store_root):
                    record = None
            record = record or train_default_extractor(args, out)
            weights, size = record["weights"], int(args.size or record["size"])
            source = (f"InceptionV3 {record['config']} (repeat {record['repeat']}, "
                      f"init {record.get('init', '?')}) from {Path(weights).parent.parent}")
        else:
            weights, size = choice, int(args.size or inception_size(scale))
            source = f"InceptionV3 transfer weights {Path(choice).name}"
        if args.runs_only:  # a grid worker: the parent filled the feature cache
            cache_name = inception_cache_name(weights)
            if not store.has_features(store_root, cache_name, size):
                raise DataError(f"grid worker: no cached features {cache_name} at {size} px",
                                store_root)
            return {"extractor": None, "cache_name": cache_name,
                    "backbone": "inceptionv3", "weights": None, "size": size,
                    "source": source, "N_p": 0, "W_s": 0}
        extractor, cache_name = inception_extractor(weights, size)
        info = {"extractor": extractor, "cache_name": cache_name, "backbone": "inceptionv3",
                "weights": None, "size": size, "source": source}
    else:
        size = int(args.size or settings_for(scale.name).frame_size)
        weights = experiment.weights_arg(args.weights)
        extractor = registry.build_model("feature_extractor", backbone=choice, size=size,
                                         weights=weights, seed=args.seed)
        info = {"extractor": extractor,
                "cache_name": features.feature_name(choice, weights, args.seed),
                "backbone": choice, "weights": weights, "size": size,
                "source": f"{choice} ({weights or f'random init, seed {args.seed}'})"}
    tmp = out / ".extractor.weights.h5"
    info["N_p"] = int(extractor.count_params())
    info["W_s"] = training.weights_file_size(extractor, tmp)
    tmp.unlink()
    return info


def run_sequence(args) -> Path:
    """The LSTM, GRU and MLP grids over cached CNN feature sequences
    (``experiments/p2_sequence_grid.py``).

    Each configuration (all its repeats) trains in a worker process running
    :data:`SEQUENCE_SCRIPT` unless ``--in-process``; the workers read the feature cache
    this process filled.

    Args:
        args: the flags of :func:`sequence_parser`.

    Returns:
        The results folder.
    """
    scale = experiment.scale_of(args)
    settings = settings_for(scale.name)
    widths = ([int(w) for w in args.rnn_widths.split(",")] if args.rnn_widths
              else list(settings.rnn_widths))
    configs = parse_configs(args.configs, sequence_grid(widths),
                            accept=sequence.get_sequence_config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = args.frames or settings.sequence_frames
    epochs = args.epochs or settings.sequence_epochs
    repeats = args.repeats or scale.repeats
    batch = args.batch_size or scale.batch_size
    if args.cross:
        print("p2: the paper has no cross-dataset test; --cross is ignored")

    splits = load_videos(args, scale, frames)
    ext = resolve_extractor(args, scale, out, splits.root)
    data = sequence_data(splits, ext["size"], frames, extractor=ext["extractor"],
                         cache_name=ext["cache_name"], backbone=ext["backbone"],
                         weights=ext["weights"], seed=args.seed)
    input_shape = (frames, data["dims"])
    info = {"source": ext["source"], "cache_name": data["cache_name"], "size": ext["size"],
            "frames": frames, "dims": data["dims"], "store": str(splits.root),
            "train_videos": int(len(data["y_train"])), "val_videos": int(len(data["y_val"])),
            "extract_or_read_seconds": round(data["seconds"], 2),
            "extractor_N_p": ext["N_p"], "extractor_W_s": ext["W_s"]}
    if not args.runs_only:  # a worker process runs one configuration of this grid
        results.atomic_write_text(out / "features.json", json.dumps(info, indent=2))
        results.atomic_write_text(out / "settings.json", json.dumps(
            {"scale": scale.name, "epochs": epochs, "repeats": repeats, "batch_size": batch,
             "learning_rate": settings.learning_rate, "rnn_widths": widths, "configs": configs,
             **info}, indent=2))
    print(f"P2 sequence grids: scale={scale.name} {len(configs)} configs x {repeats} repeats, "
          f"{epochs} epochs, sequences {input_shape} of {info['train_videos']} train / "
          f"{info['val_videos']} val videos; features: {ext['source']} "
          f"({data['seconds']:.1f} s, cache {data['cache_name']})")
    del ext["extractor"]
    results.start_or_resume(out, {"scale": scale.name, "store": str(splits.root),
                                  "frames": frames, "features": data["cache_name"],
                                  "feature_size": ext["size"], "epochs": epochs,
                                  "batch_size": batch,
                                  "learning_rate": settings.learning_rate})

    train_ds = pipeline.array_dataset(data["x_train"], data["y_train"], batch, training=True,
                                      seed=args.seed)
    val_ds = pipeline.array_dataset(data["x_val"], data["y_val"], batch)
    table = results.ResultsTable(out / "runs.csv")

    def one_run(config: str, repeat: int) -> dict:
        keras.backend.clear_session()
        seed = args.seed + repeat
        training.set_seed(seed)
        model = registry.build_model("sequence_head", name=config, input_shape=input_shape)
        row = training.train_run(model, train_ds, val_ds, epochs,
                                 out / "models" / f".{config}-r{repeat}.weights.h5",
                                 verbose=0 if args.quiet else 2)
        return {**describe_sequence(config), **row, "seed": seed,
                "features": data["cache_name"],
                "train_videos": info["train_videos"], "val_videos": info["val_videos"]}

    experiment.run_grid(configs, repeats, table, one_run, progress=not args.quiet,
                        worker=experiment.grid_worker(args, SEQUENCE_SCRIPT))
    if args.runs_only:
        return out
    finish_sequence(out, table.rows, configs,
                    {"N_p": info["extractor_N_p"], "W_s": info["extractor_W_s"]})
    print(f"results written to {out}")
    return out


def finish_sequence(out: Path, rows, configs, extractor) -> None:
    """summary.csv, table_3.csv (best LSTM, GRU, MLP) and three figures per family."""
    summary = summarize_runs(rows, configs, describe_sequence)
    results.write_table(out / "summary.csv", summary)
    columns = {}
    for family, (name, figures) in SEQUENCE_FAMILIES.items():
        members = [r for r in summary if r["family"] == family]
        if not members:
            continue
        best, why = select_best(members)
        if best is not None:
            chosen = next(r for r in members if r["config"] == best)
            columns[name] = table_3_column(chosen, why, extractor=extractor)
            print(f"Table 3 ({name}): {best} — {why}")
        # the pick is known before table_3.csv is written: pass it so the figure bolds it
        plots.family_figures(out, members, figures, name, chosen=best)
    if columns:
        write_table_3(out / "table_3.csv", columns)
        if out.name == "sequence":
            merge_table_3(out.parent)
