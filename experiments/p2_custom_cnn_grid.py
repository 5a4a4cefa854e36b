#!/usr/bin/env python
"""P2 — the custom CNN grid (paper Table 1, Figures 13-15, Table 3's first column).

Trains every configuration of Table 1 (depth 2-5 x ascending / descending / constant
widths, 23 plain Conv-ReLU-MaxPool stacks with Flatten -> Dense(1024) -> Dense(2)) on
the frames of a video store, each frame an image with its video's label, as the paper
did, and writes under ``results/p2/custom_cnn/``:

- ``runs.csv``: one row per (configuration, repeat), resumable: L_t, L_v, A_t, A_v
  (best values over the epochs), L_r of each (epoch of the best value), T_s (seconds),
  N_p, W_s (bytes of the saved weights), seed; a configuration that runs out of
  memory is recorded ``failed`` with the reason and the grid goes on;
- ``summary.csv``: mean and std per configuration;
- ``table_3.csv``: the best configuration by the paper's rule (``dfdetect.papers.ann_comparison.select_best``)
  beside the paper's column; ``results/p2/table_3.csv`` merges every P2 grid's;
- ``fig13_custom_cnn_metrics.png``, ``fig14_custom_cnn_convergence.png``,
  ``fig15_custom_cnn_cost.png``;
- ``settings.json``: data, sizes, epochs and repeats of the run.

Data: ``--data`` (a store or a video dataset root, cropped once) or, by default, the
embedded video benchmark; the store's ``train`` videos train, its ``val`` + ``test``
videos are the paper's 20 % validation part.

Assumptions where the paper is silent (also in results/p2/README.md): Adam 1e-3,
batch size of the scale (32), sparse categorical cross-entropy on the 2-way softmax,
a fixed number of epochs (no early stopping, no decay), Conv 3x3 same + ReLU + MaxPool 2
per layer. Scale: ``paper`` = 40 frames per video at 240 px, 60 epochs, 10 repeats;
``cpu`` = 4 of each video's 10 frames at 64 px, 5 epochs, 3 repeats, all 23
configurations (measured 37.5 minutes on 2 cores in one process; the worker processes
below add ~5.5 s a configuration); ``smoke`` = 2 frames, 1 epoch.

Memory: each configuration (all its repeats) trains in a worker process of its own, since
TensorFlow keeps every model fitted in a process until it exits (the 141-run sequence
grid in one process reached 21.6 GB); ``--in-process`` runs the whole grid here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdetect import experiment, results  # noqa: E402
# Bound now, executed on first use: --help must not wait for TensorFlow.
ann_comparison = experiment.lazy_import("dfdetect.papers.ann_comparison")
plots = experiment.lazy_import("dfdetect.plots")
training = experiment.lazy_import("dfdetect.training")
registry = experiment.lazy_import("dfdetect.models.registry")

FAMILY = "Custom CNN"
FIGURES = (13, 14, 15)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    experiment.add_common_args(parser, out="p2/custom_cnn")
    parser.add_argument("--configs", default=None,
                        help="comma-separated Table 1 names, e.g. '2-asc,3-const128' "
                             "(default: all 23)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per video used as training/validation images "
                             "(default: the scale's; paper 40)")
    parser.add_argument("--size", type=int, default=None,
                        help="image side (default: the scale's video_size)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size (default: the scale's)")
    parser.add_argument("--keep-models", action="store_true",
                        help="keep the weights of each configuration's best repeat in "
                             "models/<config>.weights.h5")
    experiment.add_grid_args(parser)
    return parser.parse_args(argv)


def grid() -> list[str]:
    """The grid's configuration names: Table 1, in the paper's order."""
    from dfdetect.models.custom_cnn import TABLE_1

    return [c.name for c in TABLE_1]


def describe(config: str) -> dict:
    from dfdetect.models.custom_cnn import get_table_1_config

    c = get_table_1_config(config)
    return {"depth": c.depth, "pattern": c.family, "widths": "-".join(map(str, c.widths))}


def run(args) -> Path:
    from dfdetect.models.custom_cnn import get_table_1_config

    scale = experiment.scale_of(args)
    settings = ann_comparison.settings_for(scale.name)
    configs = ann_comparison.parse_configs(args.configs, grid())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = args.size or scale.video_size
    frames = args.frames or settings.cnn_frames
    epochs = args.epochs or settings.cnn_epochs
    repeats = args.repeats or scale.repeats
    batch = args.batch_size or scale.batch_size
    if args.cross:
        print("p2: the paper has no cross-dataset test; --cross is ignored")

    splits = ann_comparison.load_videos(args, scale, max(frames, scale.p2_frames))
    train_ds, val_ds, n_train, n_val = ann_comparison.frame_datasets(splits, size, frames, batch,
                                                         seed=args.seed)
    info = {"scale": scale.name, "store": str(splits.root), "videos": splits.videos,
            "frames_per_video": frames, "train_frames": n_train, "val_frames": n_val,
            "size": size, "epochs": epochs, "repeats": repeats, "batch_size": batch,
            "learning_rate": settings.learning_rate, "configs": configs}
    if not args.runs_only:  # a worker process runs one configuration of this grid
        results.atomic_write_text(out / "settings.json", json.dumps(info, indent=2))
    print(f"P2 custom CNN grid: scale={scale.name} {len(configs)} configs x {repeats} "
          f"repeats, {epochs} epochs, {size} px, {n_train} train / {n_val} val frames "
          f"({frames} per video), store={splits.root}")

    results.start_or_resume(out, {k: info[k] for k in ("scale", "store", "size", "frames_per_video",
                                                  "epochs", "batch_size", "learning_rate")},
                       also=("models",))
    table = results.ResultsTable(out / "runs.csv")
    best_av = _best_so_far(table.rows)

    def one_run(config: str, repeat: int) -> dict:
        import keras

        keras.backend.clear_session()
        seed = args.seed + repeat
        training.set_seed(seed)
        model = registry.build_model("custom_cnn", widths=get_table_1_config(config).widths,
                                     input_shape=(size, size, 3))
        tmp = out / "models" / f".{config}-r{repeat}.weights.h5"
        row = training.train_run(model, train_ds, val_ds, epochs, tmp, keep_weights=args.keep_models,
                           verbose=0 if args.quiet else 2)
        if args.keep_models:
            _keep_if_best(tmp, out / "models" / f"{config}.weights.h5", row["A_v"],
                          best_av, config)
        return {**describe(config), **row, "seed": seed, "size": size,
                "train_frames": n_train, "val_frames": n_val}

    experiment.run_grid(configs, repeats, table, one_run, progress=not args.quiet,
                      worker=experiment.grid_worker(args, __file__))
    if args.runs_only:
        return out
    finish(out, table.rows, configs)
    print(f"results written to {out}")
    return out


def _best_so_far(rows) -> dict:
    best: dict[str, float] = {}
    for row in rows:
        if row.get("status") == "ok":
            best[row["config"]] = max(best.get(row["config"], -1.0), float(row["A_v"]))
    return best


def _keep_if_best(tmp: Path, dest: Path, a_v: float, best: dict, config: str) -> None:
    if a_v > best.get(config, -1.0) or not dest.exists():
        os.replace(tmp, dest)
        best[config] = a_v
    else:
        tmp.unlink()


def finish(out: Path, rows, configs) -> None:
    """summary.csv, table_3.csv (+ results/p2/table_3.csv) and the three figures."""
    summary = ann_comparison.summarize_runs(rows, configs, describe)
    results.write_table(out / "summary.csv", summary)
    best, why = ann_comparison.select_best(summary)
    if best is not None:
        chosen = next(r for r in summary if r["config"] == best)
        ann_comparison.write_table_3(out / "table_3.csv", {FAMILY: ann_comparison.table_3_column(chosen, why)})
        if out.name == "custom_cnn":  # beside the other P2 grids: merge their tables
            ann_comparison.merge_table_3(out.parent)
        print(f"Table 3 ({FAMILY}): {best} — {why}")
    plots.family_figures(out, summary, FIGURES, FAMILY)


def main(argv=None) -> int:
    return experiment.run_main("p2_custom_cnn_grid", run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
