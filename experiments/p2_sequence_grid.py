#!/usr/bin/env python
"""P2 — LSTM, GRU and MLP grids over cached CNN feature sequences (Figures 18-26).

Every video becomes a ``(frames, 2048)`` sequence of the best CNN's features (the
InceptionV3 transfer model without its head), computed once and cached in the store's
feature cache (``<store>/features/``); every configuration then trains on the cached
arrays, never running the CNN again. Grids: LSTM and GRU, depth 1-4 x width 128 /
512 / 1024 / 2048, each followed by Dense(1024) -> Dense(2); the MLPs of Table 2 over
the flattened sequence. Writes under ``results/p2/sequence/``:

- ``runs.csv`` (resumable; L_t, L_v, A_t, A_v, their L_r, T_s, N_p, W_s, seed),
  ``summary.csv`` (mean and std per configuration, with a ``family`` column);
- ``table_3.csv``: the best LSTM, GRU and MLP by the paper's rule beside the paper's
  columns, "Total" N_p / W_s adding the feature extractor's; ``results/p2/table_3.csv``
  merges every P2 grid's;
- ``fig18_lstm_metrics.png`` ... ``fig26_mlp_cost.png`` (three figures per family);
- ``features.json``: which extractor, its cache name, extraction seconds, shapes.

Feature extractor (``--backbone``):

- ``auto`` (default): the InceptionV3 model ``experiments/p2_inception_unfreeze.py``
  chose for Table 3 (``results/p2/inception/models/best.json``; ``--inception-dir``),
  the paper's pipeline: run ``make inception-unfreeze`` first. Without it, the paper's
  best option (top 50 % trainable) is trained once by that same script into
  ``<out>/extractor/`` (one repeat, the scale's epochs and initialisation);
- the path of a ``.weights.h5`` of an InceptionV3 transfer model;
- a backbone name of ``dfdetect.models.backbones`` (``inceptionv3``, ``meso4``...)
  with ``--weights`` (random init by default: quick plumbing checks, not the paper).

Widths: the paper's method lists 128 / 512 / 1024 / 2048, but its results discuss
256-unit models and give sizes only width 256 reproduces (see
``dfdetect/models/sequence.py``); ``--rnn-widths 128,256,512,1024`` runs that reading.
Off-grid names such as ``lstm-2x256`` are accepted by ``--configs``.

Assumptions (also in results/p2/README.md): Adam 1e-3, batch of the scale (32),
fixed epochs, ReLU on the Dense(1024) and MLP layers. Scale: ``paper`` 40 frames per
video, 60 epochs, 10 repeats, every width; ``cpu`` the store's 10 frames per video,
15 epochs, 3 repeats, RNN widths 128 / 256 / 512 / 1024 (the 2048-wide RNNs are cut
at cpu scale, 256 added: see results/p2/README.md; measured 46 minutes on 2 cores in one
process, ~51 estimated with the worker processes below); ``smoke`` 2 epochs, RNN widths 8 and 16.

Memory: each configuration (all its repeats) trains in a worker process of its own, since
TensorFlow keeps every model fitted in a process until it exits (the 141-run sequence
grid in one process reached 21.6 GB); ``--in-process`` runs the whole grid here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdetect import experiment, results  # noqa: E402
# Bound now, executed on first use: --help must not wait for TensorFlow.
ann_comparison = experiment.lazy_import("dfdetect.papers.ann_comparison")
plots = experiment.lazy_import("dfdetect.plots")
training = experiment.lazy_import("dfdetect.training")
registry = experiment.lazy_import("dfdetect.models.registry")

#: family -> (Table 3 family name, the paper's figure numbers).
FAMILIES = {"lstm": ("LSTM", (18, 19, 20)), "gru": ("GRU", (21, 22, 23)),
            "mlp": ("MLP", (24, 25, 26))}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    experiment.add_common_args(parser, out="p2/sequence")
    parser.add_argument("--configs", default=None,
                        help="comma-separated names, e.g. 'gru-1x128,lstm-2x256,mlp-3-const128' "
                             "(default: the LSTM and GRU grids, then Table 2)")
    parser.add_argument("--rnn-widths", default=None,
                        help="LSTM/GRU widths of the grid, e.g. 128,256,512,1024 "
                             "(default: the scale's; paper 128,512,1024,2048)")
    parser.add_argument("--backbone", default="auto",
                        help="auto, a transfer model's .weights.h5, or a backbone name")
    parser.add_argument("--inception-dir", default=None,
                        help="results of the InceptionV3 grid (default: beside --out, "
                             "results/p2/inception)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per video in a sequence (default: the scale's "
                             "p2_frames; paper 40)")
    parser.add_argument("--size", type=int, default=None,
                        help="side the frames are fed to the extractor at (default: the "
                             "extractor's training size)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size (default: the scale's)")
    experiment.add_grid_args(parser)
    return parser.parse_args(argv)


def grid(widths) -> list[str]:
    """The grid's configuration names: LSTM, GRU (cell x depth x width), then Table 2."""
    from dfdetect.models.sequence import TABLE_2, rnn_grid

    return [c.name for c in rnn_grid(tuple(widths))] + [c.name for c in TABLE_2]


def describe(config: str) -> dict:
    from dfdetect.models.sequence import RnnConfig, get_sequence_config

    c = get_sequence_config(config)
    if isinstance(c, RnnConfig):
        return {"family": c.cell, "depth": c.depth, "widths": str(c.width)}
    return {"family": "mlp", "depth": c.depth, "widths": "-".join(map(str, c.widths))}


def resolve_extractor(args, scale, out: Path, store_root: Path) -> dict:
    """The feature extractor ``--backbone`` names, as a dict for :func:`ann_comparison.sequence_data`.

    Returns:
        ``{"extractor", "cache_name", "backbone", "weights", "size", "source",
        "N_p", "W_s"}``.
    """
    choice = args.backbone
    if choice == "auto" or choice.endswith(".weights.h5"):
        if choice == "auto":
            inception_dir = Path(args.inception_dir or out.parent / "inception")
            record = ann_comparison.best_inception(inception_dir)
            if record and record.get("store", str(store_root)) != str(store_root):
                print(f"{inception_dir}: its best model was trained on {record['store']}, "
                      f"not on {store_root}: not used")
                record = None
            if record is None:
                record = ann_comparison.best_inception(out / "extractor")
                if record and record.get("store", str(store_root)) != str(store_root):
                    record = None
            record = record or ann_comparison.train_default_extractor(args, out)
            weights, size = record["weights"], int(args.size or record["size"])
            source = (f"InceptionV3 {record['config']} (repeat {record['repeat']}, "
                      f"init {record.get('init', '?')}) from {Path(weights).parent.parent}")
        else:
            weights, size = choice, int(args.size or ann_comparison.inception_size(scale))
            source = f"InceptionV3 transfer weights {Path(choice).name}"
        if args.runs_only:  # a grid worker: the parent filled the feature cache
            from dfdetect.data import store
            from dfdetect.errors import DataError

            cache_name = ann_comparison.inception_cache_name(weights)
            if not store.has_features(store_root, cache_name, size):
                raise DataError(f"grid worker: no cached features {cache_name} at {size} px",
                                store_root)
            return {"extractor": None, "cache_name": cache_name,
                    "backbone": "inceptionv3", "weights": None, "size": size,
                    "source": source, "N_p": 0, "W_s": 0}
        extractor, cache_name = ann_comparison.inception_extractor(weights, size)
        info = {"extractor": extractor, "cache_name": cache_name, "backbone": "inceptionv3",
                "weights": None, "size": size, "source": source}
    else:
        from dfdetect import features

        size = int(args.size or scale.video_size)
        weights = experiment.weights_arg(args.weights)
        extractor = features.build_extractor(choice, size, weights, seed=args.seed)
        info = {"extractor": extractor,
                "cache_name": features.feature_name(choice, weights, args.seed),
                "backbone": choice, "weights": weights, "size": size,
                "source": f"{choice} ({weights or f'random init, seed {args.seed}'})"}
    tmp = out / ".extractor.weights.h5"
    info["N_p"] = int(extractor.count_params())
    info["W_s"] = training.weights_file_size(extractor, tmp)
    tmp.unlink()
    return info


def run(args) -> Path:
    from dfdetect.models.sequence import get_sequence_config
    from dfdetect.data import pipeline

    scale = experiment.scale_of(args)
    settings = ann_comparison.settings_for(scale.name)
    widths = ([int(w) for w in args.rnn_widths.split(",")] if args.rnn_widths
              else list(settings.rnn_widths))
    configs = ann_comparison.parse_configs(args.configs, grid(widths), accept=get_sequence_config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = args.frames or scale.p2_frames
    epochs = args.epochs or settings.sequence_epochs
    repeats = args.repeats or scale.repeats
    batch = args.batch_size or scale.batch_size
    if args.cross:
        print("p2: the paper has no cross-dataset test; --cross is ignored")

    splits = ann_comparison.load_videos(args, scale, frames)
    ext = resolve_extractor(args, scale, out, splits.root)
    data = ann_comparison.sequence_data(splits, ext["size"], frames, extractor=ext["extractor"],
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
    results.start_or_resume(out, {"scale": scale.name, "store": str(splits.root), "frames": frames,
                             "features": data["cache_name"], "feature_size": ext["size"],
                             "epochs": epochs, "batch_size": batch,
                             "learning_rate": settings.learning_rate})

    train_ds = pipeline.array_dataset(data["x_train"], data["y_train"], batch, training=True,
                                      seed=args.seed)
    val_ds = pipeline.array_dataset(data["x_val"], data["y_val"], batch)
    table = results.ResultsTable(out / "runs.csv")

    def one_run(config: str, repeat: int) -> dict:
        import keras

        keras.backend.clear_session()
        seed = args.seed + repeat
        training.set_seed(seed)
        model = registry.get_builder("sequence_head")(config, input_shape)
        row = training.train_run(model, train_ds, val_ds, epochs,
                           out / "models" / f".{config}-r{repeat}.weights.h5",
                           verbose=0 if args.quiet else 2)
        return {**describe(config), **row, "seed": seed, "features": data["cache_name"],
                "train_videos": info["train_videos"], "val_videos": info["val_videos"]}

    experiment.run_grid(configs, repeats, table, one_run, progress=not args.quiet,
                      worker=experiment.grid_worker(args, __file__))
    if args.runs_only:
        return out
    finish(out, table.rows, configs, {"N_p": info["extractor_N_p"], "W_s": info["extractor_W_s"]})
    print(f"results written to {out}")
    return out


def finish(out: Path, rows, configs, extractor) -> None:
    """summary.csv, table_3.csv (best LSTM, GRU, MLP) and three figures per family."""
    summary = ann_comparison.summarize_runs(rows, configs, describe)
    results.write_table(out / "summary.csv", summary)
    columns = {}
    for family, (name, figures) in FAMILIES.items():
        members = [r for r in summary if r["family"] == family]
        if not members:
            continue
        best, why = ann_comparison.select_best(members)
        if best is not None:
            chosen = next(r for r in members if r["config"] == best)
            columns[name] = ann_comparison.table_3_column(chosen, why, extractor=extractor)
            print(f"Table 3 ({name}): {best} — {why}")
        # the pick is known before table_3.csv is written: pass it so the figure bolds it
        plots.family_figures(out, members, figures, name, chosen=best)
    if columns:
        ann_comparison.write_table_3(out / "table_3.csv", columns)
        if out.name == "sequence":
            ann_comparison.merge_table_3(out.parent)


def main(argv=None) -> int:
    return experiment.run_main("p2_sequence_grid", run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
