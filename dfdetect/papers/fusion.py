"""P1 — feature-level fusion of CNNs (``seeds/002``): its settings, tables and library code.

Every P1 hyperparameter lives here; ``experiments/p1_fusion.py`` is the entry point (it
parses :func:`add_args`' flags and calls :func:`run`). The models are
:mod:`dfdetect.models.fusion` (Concatenate of backbones -> Dense(256) -> Dropout(0.5)
-> Dense(1)); the augmentation is :func:`dfdetect.models.layers.build_augmentation`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np

from dfdetect import experiment, results
from dfdetect.errors import ModelError
from dfdetect.papers import lookup

# Bound now, executed on first use: an experiment's --help must not wait for TensorFlow.
evaluation = experiment.lazy_import("dfdetect.evaluation")
plots = experiment.lazy_import("dfdetect.plots")
training = experiment.lazy_import("dfdetect.training")
registry = experiment.lazy_import("dfdetect.models.registry")
fusion_models = experiment.lazy_import("dfdetect.models.fusion")
export = experiment.lazy_import("dfdetect.models.export")
pipeline = experiment.lazy_import("dfdetect.data.pipeline")
store = experiment.lazy_import("dfdetect.data.store")

__all__ = ["BASES", "COMPARISON_METRIC", "EXTRA", "FusionSettings", "HOLDOUT_METHOD",
           "PAPER_ACC_AUC", "SCRIPT", "SD_METRICS", "SETTINGS", "TABLES", "TABLE_A", "TABLE_B",
           "add_args", "compare_configs", "comparison_pairs", "load_data", "load_single_bases",
           "model_file", "run", "settings_for", "with_singles", "write_plots", "write_tables"]


@dataclasses.dataclass(frozen=True)
class FusionSettings:
    """What P1 trains with at one scale.

    Attributes:
        image_size: side of the crops every model reads (the benchmark's crops are resized
            to it; a ``--data`` dataset is cropped at it).
        epochs: maximum epochs of a model trained end to end: the four single backbones
            (and, with ``--bases scratch``, every fusion). Early stopping may end sooner.
        head_epochs: maximum epochs of a fusion head on the frozen bases of the trained
            single models (``--bases singles``, the default): only the head learns, so
            a few epochs suffice.
        learning_rate: Adam's initial rate (assumed: SPEC.md).
        decay_factor, decay_every: step decay, the rate x ``decay_factor`` every
            ``decay_every`` epochs (assumed: halve every 5).
        patience: early-stopping patience on validation loss (assumed: 5).
        rotation_degrees, zoom, brightness, channel_shift: the on-the-fly augmentation
            (channel-shift range assumed: 0.1 of [0, 1]).
    """

    image_size: int
    epochs: int
    head_epochs: int
    learning_rate: float = 1e-3
    decay_factor: float = 0.5
    decay_every: int = 5
    patience: int = 5
    rotation_degrees: float = 15.0
    zoom: float = 0.2
    brightness: float = 0.2
    channel_shift: float = 0.1


#: Per scale; ``paper`` is the paper's own setting.
SETTINGS: dict[str, FusionSettings] = {
    "smoke": FusionSettings(image_size=64, epochs=1, head_epochs=1),
    "cpu": FusionSettings(image_size=64, epochs=8, head_epochs=3),
    "paper": FusionSettings(image_size=256, epochs=60, head_epochs=20),
}


def settings_for(scale_name: str) -> FusionSettings:
    """The :data:`SETTINGS` of a scale (ModelError names an unknown one)."""
    return lookup(SETTINGS, scale_name, "P1")


#: The paper's accuracy and AUC: in-dataset (Table 3.1) then cross-dataset (Table 3.3).
PAPER_ACC_AUC = {
    "xception": (0.8833, 0.92, 0.8452, 0.89),
    "densenet121": (0.8346, 0.89, 0.7928, 0.85),
    "resnet50": (0.7742, 0.83, 0.7325, 0.80),
    "meso4": (0.8096, 0.85, 0.7714, 0.82),
    "meso4+resnet50": (0.8225, 0.87, 0.7842, 0.84),
    "meso4+densenet121": (0.8404, 0.90, 0.8019, 0.86),
    "meso4+xception": (0.8756, 0.91, 0.8365, 0.88),
    "xception+resnet50": (0.8947, 0.93, 0.8553, 0.90),
    "xception+densenet121": (0.8963, 0.93, 0.8578, 0.90),
    "resnet50+densenet121": (0.8563, 0.90, 0.8192, 0.87),
}
#: Tables 3.1-3.4: file -> (split, columns).
TABLE_A = ("Acc", "Prec(0)", "Prec(1)", "Rec(0)", "Rec(1)", "ROC AUC")
TABLE_B = ("F1(0)", "F1(1)", "Macro Prec", "Macro Rec", "Macro F1")
EXTRA = ("EER", "AP")
#: Metrics whose spread over repeats each table shows beside the mean (``<metric> sd``).
SD_METRICS = ("Acc", "ROC AUC", "Macro F1")
#: The comparisons README draws, on ROC AUC: each fusion against its best part (by mean
#: test AUC), and the paper's ranking of Xception above Meso-4.
COMPARISON_METRIC = "ROC AUC"
TABLES = {
    "table_3_1.csv": ("test", TABLE_A),
    "table_3_2.csv": ("test", TABLE_B),
    "table_3_3.csv": ("cross", TABLE_A),
    "table_3_4.csv": ("cross", TABLE_B),
}
HOLDOUT_METHOD = "identity_swap"  # the benchmark forgery kept out of training for the cross test
BASES = ("singles", "scratch")

#: The entry point; each configuration's worker process runs it (``--in-process`` not).
SCRIPT = experiment.REPO_ROOT / "experiments" / "p1_fusion.py"


# --------------------------------------------------------------------------- the run

def add_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """P1's flags (common ones included) on ``parser``."""
    # The committed tables hold 3 repeats (REPEATS=3): a run with fewer resumes them
    # and rewrites the same tables, so --repeats does not move a run to scratch.
    experiment.add_common_args(parser, out="fusion", committed_may_vary=("repeats",))
    parser.add_argument("--configs", default=None,
                        help="comma-separated subset, e.g. 'xception,xception+densenet121' "
                             "(default: the paper's 11)")
    parser.add_argument("--freeze", action="store_true",
                        help="freeze the bases (the report's listing, with --weights imagenet)")
    parser.add_argument("--bases", choices=BASES, default="singles",
                        help="singles (default): fusions freeze the bases of the trained "
                             "single models and train their head; scratch: every "
                             "configuration end to end from scratch (the report's text). "
                             "Ignored with --weights")
    parser.add_argument("--head-epochs", type=int, default=None,
                        help="maximum epochs of a fusion head on frozen single bases "
                             "(default: the scale's head_epochs in dfdetect/papers/fusion.py)")
    parser.add_argument("--frames", type=int, default=10,
                        help="frames per video when --data/--cross are video datasets")
    experiment.add_grid_args(parser)
    return parser


def with_singles(configs) -> list[str]:
    """``configs`` with the single model of every fusion part, singles first (stable):
    a fusion built on trained single bases needs them trained before it."""
    names = [fusion_models.config_name(c) for c in configs]
    parts = [p for c in names for p in fusion_models.parse_config(c)]
    singles = [c for c in names if len(fusion_models.parse_config(c)) == 1]
    singles += [p for p in dict.fromkeys(parts) if p not in singles]
    return singles + [c for c in names if len(fusion_models.parse_config(c)) > 1]


def model_file(models_dir: Path, config: str, repeat: int = 0) -> Path:
    """Where a configuration's exported model lives: ``<config>.keras`` for repeat 0
    (the file users load), ``<config>-r<repeat>.keras`` for the others, so that a fusion
    of repeat r sits on the single models of the same repeat (a paired comparison)."""
    return models_dir / (f"{config}.keras" if repeat == 0 else f"{config}-r{repeat}.keras")


#: Backbone weights of the single models this process exported or loaded, by file
#: (path, modification time, size): a grid run in one process (``--scale smoke``,
#: ``--in-process``) hands them to its fusions without loading each .keras again
#: (3-7 s a file, 15 loads for the paper's grid).
_BASES: dict[tuple[str, int, int], list] = {}


def _file_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return os.path.realpath(path), stat.st_mtime_ns, stat.st_size


def remember_bases(model, part: str, path: Path) -> None:
    """Keep the exported single model's ``<part>_features`` weights for the fusions of
    this process (see :data:`_BASES`); an entry of an older file is dropped."""
    key = _file_key(path)
    for old in [k for k in _BASES if k[0] == key[0]]:
        del _BASES[old]
    _BASES[key] = model.get_layer(f"{part}_features").get_weights()


def load_single_bases(model, parts, models_dir: Path, repeat: int = 0) -> None:
    """Copy each part's backbone weights from its trained single model into ``model``.

    Args:
        model: the fusion model.
        parts: its backbone names.
        models_dir: the exported models.
        repeat: which repeat's single models to take (the fusion's own).

    Raises:
        ModelError: a part's single model is missing or has no such backbone.
    """
    for part in parts:
        path = model_file(models_dir, part, repeat)
        if not path.is_file():
            raise ModelError(f"the fusion's {part} base comes from the trained single "
                             f"model, which is missing: run --configs {part} first", path=path)
        weights = _BASES.get(_file_key(path))
        if weights is None:
            single, _ = export.load_exported(path)
            try:
                weights = single.get_layer(f"{part}_features").get_weights()
            except ValueError:
                raise ModelError(f"not a single {part} model (no layer {part}_features)",
                                 path=path) from None
        model.get_layer(f"{part}_features").set_weights(weights)


def load_data(args, scale):
    """Train/val/test/cross manifest rows and the store roots they live in."""
    size = settings_for(scale.name).image_size
    if args.data:
        root = experiment.dataset_store(args.data, args.layout, args.frames, size)
    else:
        root = experiment.benchmark_store("images", args.faces, scale, args.seed,
                                          holdout_method=HOLDOUT_METHOD,
                                          generator=args.generator)
    splits = experiment.split_rows(store.read_manifest(root), seed=args.seed)
    if args.cross:
        cross_root = experiment.dataset_store(args.cross, args.layout, args.frames, size)
        cross_splits = experiment.split_rows(store.read_manifest(cross_root), seed=args.seed)
        cross = cross_splits["test"] or [r for rows in cross_splits.values() for r in rows]
    else:
        cross_root, cross = root, splits.get("cross", [])
    return root, splits, cross_root, cross


def run(args) -> Path:
    """P1's grid (``experiments/p1_fusion.py``): train, test, tables, plots, models.

    Args:
        args: the flags of :func:`add_args`.

    Returns:
        The results folder.
    """
    scale, out = experiment.scale_and_results(args)
    root, splits, cross_root, cross_rows = load_data(args, scale)
    settings = settings_for(scale.name)
    size, batch = settings.image_size, scale.batch_size
    epochs = args.epochs or settings.epochs
    repeats = args.repeats or 1  # the report gives one run per configuration
    weights = experiment.weights_arg(args.weights)
    print(f"P1 fusion: scale={scale.name} size={size} epochs<={epochs} repeats={repeats} "
          f"bases={'from ' + str(args.weights) if weights is not None else args.bases} "
          f"train={len(splits['train'])} val={len(splits['val'])} test={len(splits['test'])} "
          f"cross={len(cross_rows)} store={root}")

    augment = pipeline.build_augmentation(
        seed=args.seed, rotation_degrees=settings.rotation_degrees, zoom=settings.zoom,
        brightness=settings.brightness, channel_shift=settings.channel_shift)
    train_ds = pipeline.image_dataset(splits["train"], root, size, batch, training=True,
                                      seed=args.seed, augment=augment)
    val_ds = pipeline.image_dataset(splits["val"], root, size, batch)
    test_ds = pipeline.image_dataset(splits["test"], root, size, batch)
    cross_ds = (pipeline.image_dataset(cross_rows, cross_root, size, batch)
                if cross_rows else None)
    test_labels = pipeline.labels_of(splits["test"])
    cross_labels = pipeline.labels_of(cross_rows) if cross_rows else None

    configs = args.configs.split(",") if args.configs else list(fusion_models.PAPER_CONFIGS)
    from_singles = args.bases == "singles" and weights is None
    if from_singles:
        added = [c for c in with_singles(configs) if c not in configs]
        if added and not args.runs_only:  # a worker's parent said it already
            print(f"fusion bases come from the single models: adding {', '.join(added)}")
        configs = with_singles(configs)
    # Rows made with other settings (an older default, another scale) are set aside,
    # not resumed: a fusion must sit on single models trained the same way.
    results.start_or_resume(out, {
        "scale": scale.name, "store": str(root), "cross": str(cross_root) if cross_rows else "",
        "size": size, "epochs": epochs, "bases": "weights" if weights is not None else args.bases,
        "head_epochs": (args.head_epochs or settings.head_epochs) if from_singles else None,
        "weights": str(args.weights or ""), "freeze": bool(args.freeze), "seed": args.seed},
        also=["models", "scores"])
    table = results.ResultsTable(out / "runs.csv")

    def one_run(config: str, repeat: int) -> dict:
        training.set_seed(args.seed + repeat)
        parts = fusion_models.parse_config(config)
        on_singles = from_singles and len(parts) > 1
        # "fusion" by name: the registry's bare "meso4" is Meso-4's own classifier.
        model = registry.build_model("fusion", backbones=config, input_shape=(size, size, 3),
                                     weights=weights, freeze=args.freeze or on_singles)
        if on_singles:
            load_single_bases(model, parts, out / "models", repeat)
        training.compile_model(model, "adam", settings.learning_rate,
                               run_eagerly=scale.eager)
        max_epochs = (args.head_epochs or settings.head_epochs) if on_singles else epochs
        fit = training.fit(model, train_ds, val_ds, epochs=max_epochs,
                           out_dir=out / "runs" / f"{config}-r{repeat}",
                           learning_rate=settings.learning_rate, patience=settings.patience,
                           decay_factor=settings.decay_factor, decay_every=settings.decay_every,
                           verbose=0 if args.quiet else 2, name=f"{config} r{repeat}",
                           # the exported model below is the best epoch's (restored)
                           save_best=False)
        bases = ("frozen single models" if on_singles else
                 f"{args.weights}{' frozen' if args.freeze else ''}" if args.weights else
                 "from scratch")
        row = {"model": config, "bases": bases, "Parameters": model.count_params(),
               "Trainable parameters": sum(int(np.prod(v.shape))
                                           for v in model.trainable_weights),
               "Training seconds": round(fit.seconds, 1), "epochs": fit.epochs_run,
               "best_epoch": fit.best_epoch}
        evals = {"test": (test_ds, test_labels, splits["test"])}
        if cross_ds is not None:
            evals["cross"] = (cross_ds, cross_labels, cross_rows)
        for name, (ds, labels, rows) in evals.items():
            scores = training.predict_scores(model, ds)
            metrics = evaluation.binary_metrics(labels, scores)
            row.update({f"{name} {k}": v for k, v in metrics.items()})
            results.write_table(out / "scores" / f"{config}-r{repeat}-{name}.csv", [
                {"crop_path": r["crop_path"], "label": int(l), "score": float(s)}
                for r, l, s in zip(rows, labels, scores)])
        path = Path(export.export_model(model, str(model_file(out / "models", config, repeat)),
                                        experiment="p1_fusion", config=config,
                                        scale=scale.name, image_size=size, threshold=0.5,
                                        trained_on=str(root)))
        if from_singles and len(parts) == 1:
            remember_bases(model, parts[0], path)
        return row

    experiment.run_grid(configs, repeats, table, one_run, progress=not args.quiet,
                        worker=experiment.grid_worker(args, SCRIPT))
    if args.runs_only:  # a worker process: the parent writes the tables and plots
        return out
    write_tables(out, table.rows, configs)
    write_plots(out, table.rows, configs)
    print(f"results written to {out}")
    return out


def _model_rows(rows, configs):
    """One row per configuration, P1's shape of :func:`results.mean_over_repeats`."""
    text = ("config", "repeat", "status", "reason", "model", "bases")
    columns = [c for c in rows[0] if c not in text] if rows else []
    merged = []
    for m in results.mean_over_repeats(rows, configs, columns):
        if m["status"] != "ok":
            merged.append({"model": m["config"], "status": "failed",
                           "reason": m["reason"] or "not run"})
            continue
        merged.append({"model": m["config"], "bases": m["first"].get("bases", ""),
                       **{c: m[f"{c}_mean"] for c in columns},
                       **{f"{c} sd": m[f"{c}_std"] for c in columns}, "repeats": m["runs"]})
    return merged


def write_tables(out: Path, rows, configs) -> None:
    """The paper's Tables 3.1-3.4 from the runs table."""
    merged = _model_rows(rows, configs)
    for name, (split, columns) in TABLES.items():
        sds = [f"{c} sd" for c in SD_METRICS if c in columns]
        table_rows = [{"model": m["model"],
                       **{c: m.get(f"{split} {c}") for c in columns + EXTRA},
                       **{f"{c} sd": m.get(f"{split} {c} sd") for c in SD_METRICS
                          if c in columns},
                       "repeats": m.get("repeats"),
                       "Parameters": m.get("Parameters"),
                       "Trainable parameters": m.get("Trainable parameters"),
                       "Training seconds": m.get("Training seconds"),
                       "bases": m.get("bases")} for m in merged]
        results.write_table(out / name, table_rows,
                            ["model", *columns, *EXTRA, *sds, "repeats", "Parameters",
                             "Trainable parameters", "Training seconds", "bases"])
    comparisons = compare_configs(out, rows, configs)
    if comparisons:
        results.write_table(out / "comparisons.csv", comparisons)


def comparison_pairs(rows, configs) -> list[tuple[str, str, str]]:
    """(a, b, why) for each comparison README draws: every fusion against its best part
    (the part with the highest mean test AUC), and Xception against Meso-4 (the paper
    ranks Xception well above)."""
    means = {m["model"]: m.get(f"test {COMPARISON_METRIC}") for m in _model_rows(rows, configs)
             if m.get("status") != "failed"}
    pairs = []
    if "xception" in means and "meso4" in means:
        pairs.append(("xception", "meso4", "the paper's single-model ranking"))
    for config in configs:
        parts = fusion_models.parse_config(config)
        known = [p for p in parts if p in means]
        if len(parts) < 2 or config not in means or not known:
            continue
        best = max(known, key=lambda p: (results.to_float(means[p]), -parts.index(p)))
        pairs.append((config, best, "fusion vs its best part"))
    return pairs


def compare_configs(out: Path, rows, configs, n_boot: int = 2000) -> list[dict]:
    """README's comparisons (:func:`comparison_pairs`) on ROC AUC, test and cross split:
    :func:`results.compare_runs` over the repeats and the saved per-item scores."""
    return results.compare_runs(rows, comparison_pairs(rows, configs), COMPARISON_METRIC,
                                scores_dir=out / "scores", n_boot=n_boot)


def write_plots(out: Path, rows, configs) -> None:
    """ROC curves of every configuration and the accuracy/AUC bars beside the paper's."""
    curves = {}
    for split in ("test", "cross"):
        per = {}
        for config in configs:
            path = out / "scores" / f"{config}-r0-{split}.csv"
            table = results.read_table(path)
            if table:
                per[config] = ([int(r["label"]) for r in table], [float(r["score"]) for r in table])
        curves[split] = per
    plots.roc_panels(out / "roc.png", {"in-dataset test": curves["test"],
                                       "cross-dataset test": curves["cross"]})
    merged = {m["model"]: m for m in _model_rows(rows, configs)}
    panels, hatched, colors, errors = {}, [], {}, {}
    palette = {"in-dataset": ("tab:blue", "lightsteelblue"),
               "cross-dataset": ("tab:orange", "navajowhite")}
    for m_index, metric in enumerate(("Acc", "ROC AUC")):
        series, spread = {}, {}
        for s_index, (split, label) in enumerate((("test", "in-dataset"), ("cross", "cross-dataset"))):
            ours, paper = f"{label} (ours)", f"{label} (paper)"
            series[ours] = [float(merged[c].get(f"{split} {metric}") or np.nan) for c in configs]
            spread[ours] = [float(merged[c].get(f"{split} {metric} sd") or 0.0) for c in configs]
            series[paper] = [PAPER_ACC_AUC.get(c, (np.nan,) * 4)[2 * s_index + m_index]
                             for c in configs]
            hatched.append(paper)
            colors[ours], colors[paper] = palette[label]
        panel = "Accuracy" if metric == "Acc" else "ROC AUC"
        panels[panel], errors[panel] = series, spread
    repeats = max((int(m.get("repeats") or 1) for m in merged.values()), default=1)
    plots.bar_panels(out / "accuracy_auc.png", configs, panels, hatched=hatched, colors=colors,
                     errors=errors if repeats > 1 else None,
                     title="P1: ours (solid" + (f", mean ± 1 sd of {repeats} runs"
                                                if repeats > 1 else "")
                     + ") beside the paper's numbers (hatched)")
