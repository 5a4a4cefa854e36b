"""P2's custom CNN grid (Table 1 on frames, Figures 13-15, its Table 3 column); each
configuration in a worker process running :data:`CUSTOM_CNN_SCRIPT`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from dfdetect import experiment, results
from dfdetect.papers.ann_comparison.common import (SETTINGS, frame_datasets, load_videos,
                                                   merge_table_3, parse_configs, select_best,
                                                   settings_for, summarize_runs,
                                                   table_3_column, write_table_3)

# Bound now, executed on first use: an experiment's --help must not wait for TensorFlow.
keras = experiment.lazy_import("keras")
plots = experiment.lazy_import("dfdetect.plots")
training = experiment.lazy_import("dfdetect.training")
registry = experiment.lazy_import("dfdetect.models.registry")
custom_cnn = experiment.lazy_import("dfdetect.models.custom_cnn")

CUSTOM_CNN_FAMILY = "Custom CNN"
CUSTOM_CNN_FIGURES = (13, 14, 15)
#: The script a custom CNN grid worker runs (one configuration in a fresh process).
CUSTOM_CNN_SCRIPT = experiment.REPO_ROOT / "experiments" / "p2_custom_cnn_grid.py"


def custom_cnn_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The custom CNN grid's flags (common and grid-worker ones included) on ``parser``."""
    experiment.add_common_args(parser, out="p2/custom_cnn")
    parser.add_argument("--configs", default=None,
                        help="comma-separated Table 1 names, e.g. '2-asc,3-const128' "
                             "(default: all 23)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per video used as training/validation images "
                             f"(default: the scale's; paper {SETTINGS['paper'].cnn_frames})")
    parser.add_argument("--size", type=int, default=None,
                        help="image side (default: P2's frame_size, "
                             + ", ".join(f"{n} {s.frame_size}" for n, s in SETTINGS.items())
                             + ")")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size (default: the scale's)")
    parser.add_argument("--keep-models", action="store_true",
                        help="keep the weights of each configuration's best repeat in "
                             "models/<config>.weights.h5")
    experiment.add_grid_args(parser)
    return parser


def custom_cnn_grid() -> list[str]:
    """The custom CNN grid's configuration names: Table 1, in the paper's order."""
    return [c.name for c in custom_cnn.TABLE_1]


def describe_custom_cnn(config: str) -> dict:
    """The summary's description columns of a Table 1 configuration."""
    c = custom_cnn.get_table_1_config(config)
    return {"depth": c.depth, "pattern": c.family, "widths": "-".join(map(str, c.widths))}


def run_custom_cnn(args) -> Path:
    """The custom CNN grid (``experiments/p2_custom_cnn_grid.py``): Table 1 on frames.

    Each configuration (all its repeats) trains in a worker process running
    :data:`CUSTOM_CNN_SCRIPT` unless ``--in-process``.

    Args:
        args: the flags of :func:`custom_cnn_parser`.

    Returns:
        The results folder.
    """
    scale = experiment.scale_of(args)
    settings = settings_for(scale.name)
    configs = parse_configs(args.configs, custom_cnn_grid())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = args.size or settings.frame_size
    frames = args.frames or settings.cnn_frames
    epochs = args.epochs or settings.cnn_epochs
    repeats = args.repeats or scale.repeats
    batch = args.batch_size or scale.batch_size
    if args.cross:
        print("p2: the paper has no cross-dataset test; --cross is ignored")

    splits = load_videos(args, scale, max(frames, settings.sequence_frames))
    train_ds, val_ds, n_train, n_val = frame_datasets(splits, size, frames, batch,
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

    results.start_or_resume(out, {k: info[k] for k in ("scale", "store", "size",
                                                       "frames_per_video", "epochs",
                                                       "batch_size", "learning_rate")},
                            also=("models",))
    table = results.ResultsTable(out / "runs.csv")
    best_av = _best_custom_cnn_so_far(table.rows)

    def one_run(config: str, repeat: int) -> dict:
        keras.backend.clear_session()
        seed = args.seed + repeat
        training.set_seed(seed)
        widths = custom_cnn.get_table_1_config(config).widths
        model = registry.build_model("custom_cnn", widths=widths, input_shape=(size, size, 3))
        tmp = out / "models" / f".{config}-r{repeat}.weights.h5"
        row = training.train_run(model, train_ds, val_ds, epochs, tmp,
                                 keep_weights=args.keep_models,
                                 verbose=0 if args.quiet else 2)
        if args.keep_models:
            _keep_custom_cnn_if_best(tmp, out / "models" / f"{config}.weights.h5", row["A_v"],
                                     best_av, config)
        return {**describe_custom_cnn(config), **row, "seed": seed, "size": size,
                "train_frames": n_train, "val_frames": n_val}

    experiment.run_grid(configs, repeats, table, one_run, progress=not args.quiet,
                        worker=experiment.grid_worker(args, CUSTOM_CNN_SCRIPT))
    if args.runs_only:
        return out
    finish_custom_cnn(out, table.rows, configs)
    print(f"results written to {out}")
    return out


def _best_custom_cnn_so_far(rows) -> dict:
    """config -> the best A_v of its finished runs."""
    best: dict[str, float] = {}
    for row in rows:
        if row.get("status") == "ok":
            best[row["config"]] = max(best.get(row["config"], -1.0), float(row["A_v"]))
    return best


def _keep_custom_cnn_if_best(tmp: Path, dest: Path, a_v: float, best: dict,
                             config: str) -> None:
    """Keep ``tmp`` as ``dest`` when it is the configuration's best repeat so far."""
    if a_v > best.get(config, -1.0) or not dest.exists():
        os.replace(tmp, dest)
        best[config] = a_v
    else:
        tmp.unlink()


def finish_custom_cnn(out: Path, rows, configs) -> None:
    """summary.csv, table_3.csv (+ results/p2/table_3.csv) and the three figures."""
    summary = summarize_runs(rows, configs, describe_custom_cnn)
    results.write_table(out / "summary.csv", summary)
    best, why = select_best(summary)
    if best is not None:
        chosen = next(r for r in summary if r["config"] == best)
        write_table_3(out / "table_3.csv",
                      {CUSTOM_CNN_FAMILY: table_3_column(chosen, why)})
        if out.name == "custom_cnn":  # beside the other P2 grids: merge their tables
            merge_table_3(out.parent)
        print(f"Table 3 ({CUSTOM_CNN_FAMILY}): {best} — {why}")
    plots.family_figures(out, summary, CUSTOM_CNN_FIGURES, CUSTOM_CNN_FAMILY)

