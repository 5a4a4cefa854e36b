#!/usr/bin/env python
"""P1 — Deepfake detection via feature-level fusion of CNNs (Tables 3.1-3.4).

Trains the paper's 11 configurations (Xception, DenseNet-121, ResNet50, Meso-4 alone; six
pairs; Meso-4 + DenseNet-121 + Xception) on one image dataset, tests each in-dataset and
cross-dataset, and writes under ``results/fusion/``:

- ``runs.csv``: one row per (configuration, repeat), resumable;
- ``table_3_1.csv`` ... ``table_3_4.csv``: the paper's tables (in-dataset Acc/Prec/Rec/AUC,
  in-dataset F1 and macro averages, and the same two for the cross-dataset test) plus
  EER, AP, parameters and training seconds;
- ``roc.png`` (every configuration's ROC, in-dataset and cross-dataset panels) and
  ``accuracy_auc.png`` (ours beside the paper's numbers);
- ``models/<config>.keras`` (git-ignored), loadable with ``keras.models.load_model``.

Data: ``--data`` (a store or a dataset root) or, by default, the embedded image
benchmark; the cross-dataset test is ``--cross`` or the benchmark's held-out forgery
method (a forgery the models never saw in training).

Bases (``--bases``): the report's text trains every configuration from scratch, its
listing freezes ImageNet-pretrained bases and trains the fusion head only. Offline there
are no ImageNet weights, so by default (``singles``) the four single models are trained
first, end to end from scratch (``papers.fusion`` ``epochs``), and every fusion then freezes
the bases of those trained single models and trains its own head on the concatenated
features (``papers.fusion`` ``head_epochs``) — the listing's design, with bases pretrained on
the task instead of ImageNet. Missing single models of a chosen fusion are added to the
run. ``scratch`` trains every fusion end to end as the text says (at ``cpu`` scale about
2.5 hours on 2 cores: five configurations hold two or three big backbones).
``--weights imagenet`` or a local file with ``--freeze`` is the listing itself.

Each configuration trains in its own worker process (``--in-process`` for one process):
TensorFlow keeps every fitted model's weights until its process exits, and the fusions
pass their bases between configurations through the exported single models anyway.

Assumptions where the report is silent (also in README, "Differences from the papers"):
Adam 1e-3, binary cross-entropy, learning rate halved every 5 epochs, early stopping
patience 5 on validation loss with the best weights restored; channel-shift range 0.1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from dfdetect import experiment, results  # noqa: E402
# Bound now, executed on first use: --help must not wait for TensorFlow.
evaluation = experiment.lazy_import("dfdetect.evaluation")
plots = experiment.lazy_import("dfdetect.plots")
training = experiment.lazy_import("dfdetect.training")
registry = experiment.lazy_import("dfdetect.models.registry")
pipeline = experiment.lazy_import("dfdetect.data.pipeline")
store = experiment.lazy_import("dfdetect.data.store")

# P1's settings and tables live in its home, dfdetect/papers/fusion.py.
from dfdetect.papers.fusion import (  # noqa: E402
    BASES, EXTRA, HOLDOUT_METHOD, PAPER_ACC_AUC, TABLES, settings_for)


def with_singles(configs) -> list[str]:
    """``configs`` with the single model of every fusion part, singles first (stable):
    a fusion built on trained single bases needs them trained before it."""
    from dfdetect.models import fusion

    names = [fusion.config_name(c) for c in configs]
    parts = [p for c in names for p in fusion.parse_config(c)]
    singles = [c for c in names if len(fusion.parse_config(c)) == 1]
    singles += [p for p in dict.fromkeys(parts) if p not in singles]
    return singles + [c for c in names if len(fusion.parse_config(c)) > 1]


def load_single_bases(model, parts, models_dir: Path) -> None:
    """Copy each part's backbone weights from its trained single model into ``model``.

    Raises:
        ModelError: a part's single model is missing or has no such backbone.
    """
    from dfdetect.errors import ModelError
    from dfdetect.models.export import load_exported

    for part in parts:
        path = models_dir / f"{part}.keras"
        if not path.is_file():
            raise ModelError(f"the fusion's {part} base comes from the trained single "
                             f"model, which is missing: run --configs {part} first", path=path)
        single, _ = load_exported(path)
        try:
            source = single.get_layer(f"{part}_features")
        except ValueError:
            raise ModelError(f"not a single {part} model (no layer {part}_features)",
                             path=path) from None
        model.get_layer(f"{part}_features").set_weights(source.get_weights())


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    experiment.add_common_args(parser, out="fusion")
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
    return parser.parse_args(argv)


def load_data(args, scale):
    """Train/val/test/cross manifest rows and the store roots they live in."""
    size = scale.image_size
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
    from dfdetect.models import fusion

    scale = experiment.scale_of(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root, splits, cross_root, cross_rows = load_data(args, scale)
    size, batch = scale.image_size, scale.batch_size
    settings = settings_for(scale.name)
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

    configs = args.configs.split(",") if args.configs else list(fusion.PAPER_CONFIGS)
    from_singles = args.bases == "singles" and weights is None
    if from_singles:
        added = [c for c in with_singles(configs) if c not in configs]
        if added:
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
        parts = fusion.parse_config(config)
        on_singles = from_singles and len(parts) > 1
        # "fusion" by name: the registry's bare "meso4" is Meso-4's own classifier.
        model = registry.build_model("fusion", backbones=config, input_shape=(size, size, 3),
                                     weights=weights, freeze=args.freeze or on_singles)
        if on_singles:
            load_single_bases(model, parts, out / "models")
        training.compile_model(model, "adam", settings.learning_rate)
        max_epochs = (args.head_epochs or settings.head_epochs) if on_singles else epochs
        fit = training.fit(model, train_ds, val_ds, epochs=max_epochs,
                           out_dir=out / "runs" / f"{config}-r{repeat}",
                           learning_rate=settings.learning_rate, patience=settings.patience,
                           decay_factor=settings.decay_factor, decay_every=settings.decay_every,
                           verbose=0 if args.quiet else 2)
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
        from dfdetect.models.export import export_model
        export_model(model, str(out / "models" / f"{config}.keras"), experiment="p1_fusion",
                     config=config, scale=scale.name, image_size=size,
                     threshold=0.5, trained_on=str(root))
        return row

    experiment.run_grid(configs, repeats, table, one_run, progress=not args.quiet,
                      worker=experiment.grid_worker(args, __file__))
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
                       **{c: m[f"{c}_mean"] for c in columns}, "repeats": m["runs"]})
    return merged


def write_tables(out: Path, rows, configs) -> None:
    """The paper's Tables 3.1-3.4 from the runs table."""
    merged = _model_rows(rows, configs)
    for name, (split, columns) in TABLES.items():
        table_rows = [{"model": m["model"],
                       **{c: m.get(f"{split} {c}") for c in columns + EXTRA},
                       "Parameters": m.get("Parameters"),
                       "Trainable parameters": m.get("Trainable parameters"),
                       "Training seconds": m.get("Training seconds"),
                       "bases": m.get("bases")} for m in merged]
        results.write_table(out / name, table_rows,
                            ["model", *columns, *EXTRA, "Parameters", "Trainable parameters",
                             "Training seconds", "bases"])


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
    panels, hatched, colors = {}, [], {}
    palette = {"in-dataset": ("tab:blue", "lightsteelblue"),
               "cross-dataset": ("tab:orange", "navajowhite")}
    for m_index, metric in enumerate(("Acc", "ROC AUC")):
        series = {}
        for s_index, (split, label) in enumerate((("test", "in-dataset"), ("cross", "cross-dataset"))):
            ours, paper = f"{label} (ours)", f"{label} (paper)"
            series[ours] = [float(merged[c].get(f"{split} {metric}") or np.nan) for c in configs]
            series[paper] = [PAPER_ACC_AUC.get(c, (np.nan,) * 4)[2 * s_index + m_index]
                             for c in configs]
            hatched.append(paper)
            colors[ours], colors[paper] = palette[label]
        panels["Accuracy" if metric == "Acc" else "ROC AUC"] = series
    plots.bar_panels(out / "accuracy_auc.png", configs, panels, hatched=hatched, colors=colors,
                     title="P1: ours (solid) beside the paper's numbers (hatched)")


def main(argv=None) -> int:
    return experiment.run_main("p1_fusion", run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
