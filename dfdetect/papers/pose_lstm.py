"""P4 — the body-language LSTM (``seeds/001``): its settings, tables and library code.

Every P4 training setting and the run itself live here; ``experiments/p4_pose_lstm.py``
is the entry point (it parses :func:`add_args`' flags and calls :func:`run`). The
optimizers themselves (Adam / SGD by name, gradient clipping at global norm 0.25, the
step decay x0.5 every 30 epochs) are built by
:func:`dfdetect.models.sequence.pose_optimizer` from ``POSE_OPTIMIZERS``,
``POSE_CLIPNORM`` and ``POSE_LR_DECAY`` there; the data (12 keypoints, 150-frame
segments, z-scores) is :mod:`dfdetect.data.pose`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import numpy as np

from dfdetect import experiment, results
from dfdetect.errors import DataError, ModelError
from dfdetect.papers import lookup

# Bound now, executed on first use: an experiment's --help must not wait for TensorFlow
# (and this module must not import Keras).
evaluation = experiment.lazy_import("dfdetect.evaluation")
training = experiment.lazy_import("dfdetect.training")
registry = experiment.lazy_import("dfdetect.models.registry")
pose = experiment.lazy_import("dfdetect.data.pose")
pose_benchmark = experiment.lazy_import("dfdetect.synthetic.poses")
pipeline = experiment.lazy_import("dfdetect.data.pipeline")
sequence = experiment.lazy_import("dfdetect.models.sequence")
export = experiment.lazy_import("dfdetect.models.export")
figures = experiment.lazy_import("dfdetect.figures")

#: The entry point; each configuration's worker process runs it (``--in-process`` not).
SCRIPT = experiment.REPO_ROOT / "experiments" / "p4_pose_lstm.py"

__all__ = ["BASELINES", "BASELINE_NAMES", "CONFIG_GROUPS", "FIG8_OPTIMIZERS", "MAIN_OPTIMIZER",
           "PAPER", "PAPER_EPOCHS", "PAPER_TABLE_4", "PAPER_TABLE_5", "PAPER_TABLE_6",
           "POI_TABLES", "PoseLstmSettings", "SCRIPT", "SEGMENT_COLUMNS", "SETTINGS",
           "add_args", "all_configs", "baseline_configs", "decay_every", "load_data", "make_model",
           "parse_configs", "poi_groups", "recorded_configs", "run", "run_group",
           "settings_for", "table_4_configs", "write_plots", "write_poi_tables",
           "write_tables"]


@dataclasses.dataclass(frozen=True)
class PoseLstmSettings:
    """What P4 trains with at one scale.

    Attributes:
        epochs: training epochs (paper 200; the best validation epoch is kept).
        batch_size: paper 1; larger on a CPU, where batch 1 through a 512 x 2 LSTM over
            150 steps is far too slow.
        optimizer: the main optimizer (Table 4, Table 5), a name of
            ``dfdetect.models.sequence.POSE_OPTIMIZERS``: the paper's Adam 1e-2 at its
            batch 1; with the larger CPU batch, stacked LSTMs diverge at 1e-2 and
            oscillate at 1e-3, so ``cpu`` and ``smoke`` use Adam 3e-4 (measured on the
            cpu pose benchmark, one PoI, batch 16, 8 epochs: 2x512 validation accuracy
            0.50 / 0.47-0.88 swinging / 0.78 steady; 2x256 at 1e-2: 0.50).
        hidden, layers, dropout: the main model, 2 x 512 with dropout 0.5 between layers.
        l2: weight decay (L2) of every kernel, paper 1e-4.
    """

    epochs: int
    batch_size: int
    optimizer: str
    hidden: int = 512
    layers: int = 2
    dropout: float = 0.5
    l2: float = 1e-4


#: Per scale; ``paper`` is the paper's own setting.
SETTINGS: dict[str, PoseLstmSettings] = {
    "smoke": PoseLstmSettings(epochs=1, batch_size=8, optimizer="adam-3e-4"),
    "cpu": PoseLstmSettings(epochs=20, batch_size=16, optimizer="adam-3e-4"),
    "paper": PoseLstmSettings(epochs=200, batch_size=1, optimizer="adam-1e-2"),
}


def settings_for(scale_name: str) -> PoseLstmSettings:
    """The :data:`SETTINGS` of a scale (ModelError names an unknown one)."""
    return lookup(SETTINGS, scale_name, "P4")


#: Table 4 of the paper (test accuracy of models A, B, C).
PAPER_TABLE_4 = {"lstm-2x512": 0.9439, "lstm-2x256": 0.9124, "lstm-3x128": 0.8662}
#: Table 5 / Table 6's image-network baselines: config -> registry name. They are
#: trained like the proposed LSTM (the scale's main optimizer, batch, epochs and decay);
#: how a movement enters them is our reading, ``dfdetect/models/pose_baselines.py``.
BASELINES = {"vgg16": "pose_vgg16", "resnet50": "pose_resnet50",
             "resnet101": "pose_resnet101", "resnet152": "pose_resnet152",
             "resnet152-face": "pose_resnet152_face"}
#: Table 5 of the paper (train, validation, test accuracy); the baselines' rows are
#: ``pose_baselines.PAPER_TABLE_5_BASELINES`` (a test keeps the two equal; this module
#: must not import Keras).
PAPER_TABLE_5 = {"vgg16": (0.8210, 0.7634, 0.7403), "resnet50": (0.9129, 0.8764, 0.8449),
                 "resnet101": (0.9300, 0.8990, 0.8800), "resnet152": (0.9600, 0.9290, 0.9201),
                 "lstm-2x512": (0.9906, 0.9623, 0.9439), "cnn+lstm": (0.9811, 0.9400, 0.9378)}
#: Table 6 of the paper (test accuracy): Li et al.'s ResNet152 on the facial landmarks
#: only, beside the proposed LSTM.
PAPER_TABLE_6 = {"resnet152-face": 0.9320, "lstm-2x512": 0.9439}
#: The optimizer study of Fig. 8 (run without learning-rate decay).
FIG8_OPTIMIZERS = ("sgd-1e-3", "sgd-1e-4", "adam-1e-3")


# --------------------------------------------------------------------------- the run

PAPER = SETTINGS["paper"]  # dropout and L2 are the paper's at every scale
MAIN_OPTIMIZER = PAPER.optimizer
#: Table 5 / 6 row names of the image-network baselines.
BASELINE_NAMES = {"vgg16": "VGG16 (pose image)", "resnet50": "ResNet50 (pose image)",
                  "resnet101": "ResNet101 (pose image)", "resnet152": "ResNet152 (pose image)",
                  "resnet152-face": "Li et al. ResNet152 (facial landmarks)"}
PAPER_EPOCHS = PAPER.epochs
SEGMENT_COLUMNS = ("Acc", "ROC AUC", "EER", "AP", "Prec(0)", "Prec(1)", "Rec(0)", "Rec(1)",
                   "F1(0)", "F1(1)", "Macro F1", "TN", "FP", "FN", "TP", "n")


def table_4_configs() -> list[str]:
    """Model A, B, C of Table 4 as config names (``lstm-<layers>x<hidden>``)."""
    return [f"lstm-{layers}x{hidden}" for layers, hidden in sequence.POSE_TABLE_4]


def baseline_configs() -> list[str]:
    """Table 5's image networks and Table 6's face-only ResNet152 (``BASELINES``)."""
    return list(BASELINES)


def all_configs() -> list[str]:
    return (table_4_configs() + ["cnn+lstm"] + [f"fig8-{o}" for o in FIG8_OPTIMIZERS]
            + baseline_configs())


#: ``--configs`` groups: ``baselines`` trains only Table 5 / 6's image networks, e.g. to
#: add their rows beside LSTM rows already in ``runs.csv`` without retraining those.
CONFIG_GROUPS = {"baselines": baseline_configs, "all": all_configs}


def parse_configs(text: str | None) -> list[str]:
    """``--configs``: names and groups (``baselines``, ``all``), in order, no repeats.

    Raises:
        ModelError: an unknown name.
    """
    if not text:
        return all_configs()
    names = []
    for item in (t.strip() for t in text.split(",")):
        for config in CONFIG_GROUPS[item]() if item in CONFIG_GROUPS else [item]:
            if config not in all_configs():
                raise ModelError(f"unknown P4 config {config!r}; choose from "
                                 f"{', '.join(all_configs())} or a group "
                                 f"({', '.join(CONFIG_GROUPS)})")
            if config not in names:
                names.append(config)
    return names


def recorded_configs(rows, configs) -> list[str]:
    """What the tables show: every configuration with a row in ``runs.csv`` and every one
    asked for, in :func:`all_configs` order. A run of a subset (``--configs baselines``)
    then adds its rows and keeps the earlier ones, which are rewritten byte for byte."""
    seen = {r.get("config") for r in rows} | set(configs)
    return [c for c in all_configs() if c in seen]


def decay_every(epochs: int) -> int:
    """The paper's "x0.5 every 30 epochs" stretched to ``epochs`` (30 at 200 epochs)."""
    return max(1, int(round(sequence.POSE_LR_DECAY[0] * epochs / PAPER_EPOCHS)))


def make_model(config: str, main_optimizer: str = MAIN_OPTIMIZER):
    """The compiled model of one configuration and whether it uses the step decay.

    ``lstm-<L>x<H>``: the paper's LSTM (dropout 0.5 between layers, weight decay 1e-4),
    ``main_optimizer`` (the paper's Adam 1e-2; the scale's) with the decay.
    ``cnn+lstm``: Table 5's baseline, same training.
    ``vgg16``, ``resnet50``, ``resnet101``, ``resnet152`` (Table 5) and
    ``resnet152-face`` (Table 6): the Keras applications, no weights, over the movement
    read as a pose image (``dfdetect.models.pose_baselines``); same training, weight
    decay on the head only.
    ``fig8-<optimizer>``: the study's start model (one layer of 128, no dropout, no
    weight decay, no decay). Every optimizer clips the global gradient norm at 0.25.

    Returns:
        ``(model, optimizer name, uses decay)``.
    """

    if config.startswith("lstm-"):
        try:
            layers, hidden = (int(v) for v in config[5:].split("x"))
        except ValueError:
            raise ModelError(f"bad config {config!r}; expected lstm-<layers>x<hidden>") from None
        model = registry.build_model("pose_lstm", hidden=hidden, layers=layers,
                                     dropout=PAPER.dropout, l2=PAPER.l2)
        name, decay = main_optimizer, True
    elif config == "cnn+lstm":
        model = registry.build_model("pose_cnn_lstm", l2=PAPER.l2)
        name, decay = main_optimizer, True
    elif config in BASELINES:
        model = registry.build_model(BASELINES[config], l2=PAPER.l2)
        name, decay = main_optimizer, True
    elif config.startswith("fig8-"):
        layers, hidden = sequence.POSE_FIG8_MODEL
        model = registry.build_model("pose_lstm", hidden=hidden, layers=layers, dropout=0.0,
                                     l2=0.0)
        name, decay = config[5:], False
    else:
        raise ModelError(f"unknown P4 config {config!r}; choose from {', '.join(all_configs())}")
    training.compile_model(model, sequence.pose_optimizer(name))
    return model, name, decay


def add_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """P4's flags (common ones included) on ``parser``."""
    experiment.add_common_args(parser, out="p4")
    parser.add_argument("--configs", default=None,
                        help="comma-separated subset of " + ", ".join(
                            ["lstm-2x512", "lstm-2x256", "lstm-3x128", "cnn+lstm",
                             "fig8-sgd-1e-3", "fig8-sgd-1e-4", "fig8-adam-1e-3"]
                            + list(BASELINES))
                        + ", or the group 'baselines' (Table 5 / 6's image networks) "
                          "(default: all); the tables show every configuration "
                          "already in runs.csv too")
    parser.add_argument("--optimizer", default=None,
                        help="main optimizer of Tables 4 and 5: adam-1e-2 (the paper's, "
                             "at batch 1) or adam-3e-4 (default below paper scale, where "
                             "the batch is larger); the Fig. 8 study keeps its own")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="training batch size (default: the scale's; the paper's is 1)")
    parser.add_argument("--poi", default="each",
                        help="'each' (default, the paper's setting): one model per person "
                             "of interest, in <out>/<poi>/, with every PoI's rows in the "
                             "top-level tables; a PoI's name: that PoI only; 'all': one "
                             "model on every PoI's movements pooled (not in the paper)")
    experiment.add_grid_args(parser)
    return parser


def load_data(args, scale):
    """Movements, their label rows, and where they came from."""
    if args.data:
        folders = args.data.split(",")
        chunks, rows = [], []
        for folder in folders:
            segs, labs = pose.read_segments(folder)
            chunks.append(segs)
            # Two folders may both hold a video called "speech1": keep them apart.
            rows += [{**r, "video_id": f"{Path(folder).name}/{r['video_id']}"}
                     if len(folders) > 1 else r for r in labs]
        segments, root = np.concatenate(chunks), args.data
    else:

        root = Path(experiment.DATA_ROOT) / f"bench-poses-{scale.name}-seed{args.seed}"
        print(pose_benchmark.build_pose_benchmark(root, scale=scale, seed=args.seed).report())
        segments, rows = pose.read_segments(root)
    return segments, rows, root


def poi_groups(rows, choice: str | None, root) -> list[tuple[str | None, list[int]]]:
    """Which models to train: ``(PoI or None, movement indices)`` per model.

    The paper trains one model per person of interest; movements without a ``poi``
    column (e.g. a single speaker's ``dfdetect pose extract`` output) are one group.

    Raises:
        DataError: ``choice`` names a PoI the data does not have.
    """
    by_poi: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_poi.setdefault(str(row.get("poi") or ""), []).append(i)
    pois = sorted(by_poi)
    if choice in (None, "", "all") or pois == [""]:
        return [(None, list(range(len(rows))))]
    if choice == "each":
        return [(poi, by_poi[poi]) for poi in pois]
    if choice not in by_poi:
        raise DataError(f"no movements of PoI {choice!r} (the data has "
                        f"{', '.join(p or '<none>' for p in pois)})", root)
    return [(choice, by_poi[choice])]


def run(args) -> Path:
    """P4's grid (``experiments/p4_pose_lstm.py``): one model set per PoI (or one for all),
    tables, curves, scores and models under ``args.out``.

    Returns:
        The output folder.
    """
    scale, out = experiment.scale_and_results(args)
    segments, rows, root = load_data(args, scale)
    configs = parse_configs(args.configs)
    groups = poi_groups(rows, args.poi, root)
    for poi, idx in groups:
        run_group(args, scale, segments[idx], [rows[i] for i in idx], root,
                  out / poi if poi else out, configs, poi)
    if args.runs_only:  # a worker process: the parent writes the tables and plots
        return out
    if any(poi for poi, _ in groups):
        write_poi_tables(out, [poi for poi, _ in groups])
    print(f"results written to {out}")
    return out


def run_group(args, scale, segments, rows, root, out: Path, configs, poi: str | None) -> None:
    """The configuration grid on one group of movements (one PoI, or all), into ``out``."""
    import tensorflow as tf  # deferred: TensorFlow starts when a run trains, not at --help


    out.mkdir(parents=True, exist_ok=True)
    splits = pose.split_by_video(rows, seed=args.seed)
    for name in ("train", "val", "test"):
        labels = {rows[i]["label"] for i in splits[name]}
        if labels != {0, 1}:
                raise DataError(f"the {name} split needs real and fake movements (has labels "
                            f"{sorted(labels)}); give more videos of each", root)
    x = pose.zscore_segments(segments)
    y = np.array([r["label"] for r in rows], dtype=np.float32)
    settings = settings_for(scale.name)
    epochs = args.epochs or settings.epochs
    batch = args.batch_size or settings.batch_size
    every = decay_every(epochs)
    repeats = args.repeats or 1  # the paper reports one run per model
    main_optimizer = args.optimizer or settings.optimizer
    print(f"P4 pose LSTM{f' (PoI {poi})' if poi else ''}: scale={scale.name} "
          f"epochs={epochs} batch={batch} optimizer={main_optimizer} "
          f"decay x0.5 every {every} epochs, repeats={repeats}; movements "
          f"train={len(splits['train'])} val={len(splits['val'])} test={len(splits['test'])} "
          f"from {root}")

    def ds(idx, training_=False, size=None):
        data = pipeline.array_dataset(x[idx], y[idx], size or batch, training=training_,
                             seed=args.seed, label_dtype="float32")
        # In-memory arrays gain nothing from tf.data's autotuning, whose thread makes a
        # short fit or predict wait seconds after its last batch (ENVIRONMENT.md).
        options = tf.data.Options()
        options.autotune.enabled = False
        return data.with_options(options)

    eval_batch = max(batch, 64)
    table = results.ResultsTable(out / "runs.csv")

    def one_run(config: str, repeat: int) -> dict:
        training.set_seed(args.seed + repeat)
        model, optimizer, decay = make_model(config, main_optimizer)
        run_dir = out / "runs" / f"{config}-r{repeat}"
        fit = training.fit(model, ds(splits["train"], True), ds(splits["val"], size=eval_batch),
                           epochs=epochs,
                           out_dir=run_dir, patience=None, monitor="val_accuracy", mode="max",
                           decay_factor=0.5 if decay else None, decay_every=every,
                           verbose=0 if args.quiet else 2)
        row = {"model": config, "optimizer": optimizer, "batch": batch,
               "Parameters": model.count_params(), "Training seconds": round(fit.seconds, 1),
               "epochs": fit.epochs_run, "best_epoch": fit.best_epoch}
        # The best-validation-accuracy weights are restored; score every split with them
        # (in one pass: each predict call on a new dataset costs a trace).
        everything = np.arange(len(y))
        all_scores = training.predict_scores(model, ds(everything, size=eval_batch))
        for name in ("train", "val", "test"):
            idx = splits[name]
            scores = all_scores[idx]
            metrics = evaluation.binary_metrics(y[idx], scores)
            row[f"{name} Acc"] = metrics["Acc"]
            if name != "test":
                continue
            row.update({f"test {k}": v for k, v in metrics.items()})
            vids = [rows[i]["video_id"] for i in idx]
            verdicts = pose.video_verdicts(vids, scores, y[idx].astype(int))
            vlabels = [v.label for v in verdicts]
            vmetrics = evaluation.binary_metrics(vlabels, [v.fake_fraction for v in verdicts])
            # Scoring a video by its share of fake votes at threshold 0.5 is exactly the
            # majority vote with ties called fake, so video Acc is the vote's accuracy.
            row.update({f"video {k}": v for k, v in vmetrics.items()})
            results.write_table(out / "scores" / f"{config}-r{repeat}-test.csv", [
                {"video_id": rows[i]["video_id"], "start_frame": rows[i].get("start_frame", ""),
                 "poi": rows[i].get("poi", ""), "label": int(y[i]), "score": float(s)}
                for i, s in zip(idx, scores)])
            results.write_table(out / "scores" / f"{config}-r{repeat}-videos.csv",
                                [v.as_row() for v in verdicts])
        if repeat == 0:
            export.export_model(model, str(out / "models" / f"{config}.keras"),
                         experiment="p4_pose_lstm", config=config, scale=scale.name,
                         optimizer=optimizer, segment_frames=pose.SEGMENT_FRAMES,
                         features=list(pose.FEATURE_NAMES), normalization="z-score per "
                         "segment and feature, NaN -> 0", threshold=0.5,
                         video_rule="real only if real segments outnumber fake ones",
                         trained_on=str(root), poi=poi or "")
        return row

    # One worker process per configuration, as P1 and P3 do: the Table 5 ResNets in one
    # process grew it to 11 GiB and out of memory. The worker trains this PoI only.
    worker = experiment.grid_worker(args, SCRIPT)
    if worker is not None and poi:
        worker += ["--poi", poi]
    experiment.run_grid(configs, repeats, table, one_run, progress=not args.quiet,
                        worker=worker)
    if args.runs_only:
        return
    shown = recorded_configs(table.rows, configs)
    write_tables(out, table.rows, shown)
    write_plots(out, table.rows, shown)


#: Tables every PoI folder holds, merged at the top level with a ``PoI`` column.
POI_TABLES = ("table_4.csv", "table_5.csv", "table_6.csv", "segment_metrics.csv",
              "video_metrics.csv")


def write_poi_tables(out: Path, pois) -> None:
    """Top-level tables: every PoI's rows (first column ``PoI``), then per configuration
    the mean over the PoIs whose run finished (``PoI`` = ``mean``, ``PoIs`` = how many)."""
    for name in POI_TABLES:
        merged, by_config = [], {}
        for poi in pois:
            for row in results.read_table(out / poi / name):
                merged.append({"PoI": poi, **row})
                if row.get("status") in ("ok", None, ""):
                    by_config.setdefault(row["config"], []).append(row)
        if not merged:
            continue
        for config, members in by_config.items():
            mean = {"PoI": "mean", "PoIs": len(members)}
            for column, value in members[0].items():
                numbers = [results.to_float(m.get(column)) for m in members]
                if column in ("config", "Model", "level", "optimizer", "status") or \
                        any(math.isnan(v) for v in numbers):
                    mean[column] = value if all(m.get(column) == value for m in members) else ""
                else:
                    mean[column] = float(sum(numbers) / len(numbers))
            merged.append(mean)
        columns = ["PoI", "PoIs"] + [c for c in merged[0] if c not in ("PoI", "PoIs")]
        results.write_table(out / name, merged, columns)


def _config_rows(rows, configs) -> dict[str, dict]:
    """config -> P4's shape of :func:`results.mean_over_repeats` (or a failed marker)."""
    merged = {}
    text = (*results.RUN_TEXT_COLUMNS, "optimizer")
    for m in results.mean_over_repeats(rows, configs, text=text):
        if m["status"] != "ok":
            merged[m["config"]] = {"status": "failed", "reason": m["reason"] or "not run"}
            continue
        merged[m["config"]] = {"status": "ok", "repeats": m["runs"],
                               "optimizer": m["first"].get("optimizer"),
                               **{c: m[f"{c}_mean"] for c in m["metrics"]}}
    return merged


def write_tables(out: Path, rows, configs) -> None:
    """Table 4, Table 5, and the movement- and video-level metric tables."""
    merged = _config_rows(rows, configs)
    table4 = []
    for label, config in zip("ABCDEFG", [c for c in table_4_configs() if c in configs]):
        m = merged[config]
        layers, hidden = config[5:].split("x")
        table4.append({
            "Model": f"Model {label} LSTM", "config": config, "Hidden layers": int(layers),
            "Hidden units": int(hidden), "Train Acc": m.get("train Acc"),
            "Val Acc": m.get("val Acc"), "Test Acc": m.get("test Acc"),
            "Test ROC AUC": m.get("test ROC AUC"), "Test EER": m.get("test EER"),
            "Video Acc (majority vote)": m.get("video Acc"),
            "Video ROC AUC": m.get("video ROC AUC"),
            "Paper Test Acc": PAPER_TABLE_4.get(config), "Parameters": m.get("Parameters"),
            "Best epoch": m.get("best_epoch"), "Training seconds": m.get("Training seconds"),
            "status": m.get("status"), "reason": m.get("reason", "")})
    results.write_table(out / "table_4.csv", table4)
    table5 = []
    for config, name in (*[(c, BASELINE_NAMES[c]) for c in BASELINES if c in PAPER_TABLE_5],
                         ("cnn+lstm", "CNN (VGG16-style) + LSTM"),
                         ("lstm-2x512", "Proposed LSTM")):
        if config not in configs:
            continue
        m = merged[config]
        paper = PAPER_TABLE_5.get(config, (None,) * 3)
        table5.append({"Model": name, "config": config,
                       "Training Accuracy": m.get("train Acc"),
                       "Validation Accuracy": m.get("val Acc"),
                       "Testing Accuracy": m.get("test Acc"),
                       "Video Accuracy (majority vote)": m.get("video Acc"),
                       "Paper Training": paper[0], "Paper Validation": paper[1],
                       "Paper Testing": paper[2], "status": m.get("status")})
    results.write_table(out / "table_5.csv", table5)
    table6 = []
    for config in [c for c in PAPER_TABLE_6 if c in configs]:
        m = merged[config]
        table6.append({"Model": BASELINE_NAMES.get(config, "Proposed LSTM"), "config": config,
                       "Testing Accuracy": m.get("test Acc"),
                       "Test ROC AUC": m.get("test ROC AUC"),
                       "Video Accuracy (majority vote)": m.get("video Acc"),
                       "Paper Testing": PAPER_TABLE_6[config], "status": m.get("status")})
    if any(c in BASELINES for c in configs if c in PAPER_TABLE_6):
        results.write_table(out / "table_6.csv", table6)
    for level, prefix, path in (("segment", "test", "segment_metrics.csv"),
                                ("video", "video", "video_metrics.csv")):
        table = []
        for config in configs:
            m = merged[config]
            table.append({"config": config, "level": level, "optimizer": m.get("optimizer"),
                          "repeats": m.get("repeats"),
                          **{c: m.get(f"{prefix} {c}") for c in SEGMENT_COLUMNS},
                          "status": m.get("status")})
        results.write_table(out / path, table)


#: Per-epoch curves of the Fig. 8 and Fig. 10 runs, committed beside the tables so
#: ``python -m dfdetect.figures`` can redraw both figures without the git-ignored logs.
CURVES_FILE = "curves.csv"
CURVE_KEYS = ("loss", "val_loss", "accuracy", "val_accuracy")


def _histories(out: Path, configs) -> dict[str, dict]:
    """Each configuration's per-epoch curves: its log in ``runs/`` (git-ignored, present
    after a run), else its rows of the committed ``curves.csv`` (read once)."""
    committed = results.read_table(out / CURVES_FILE)
    histories = {}
    for config in configs:
        log = results.read_table(out / "runs" / f"{config}-r0" / "log.csv") or \
            [r for r in committed if r.get("config") == config]
        histories[config] = {k: [float(r[k]) for r in log if r.get(k) not in (None, "")]
                             for k in CURVE_KEYS}
    return histories


def write_plots(out: Path, rows, configs) -> None:
    """Fig. 8 (optimizer study) and Fig. 10 (the final model's curves), through
    ``curves.csv`` (written here from the run logs) and
    :func:`dfdetect.figures.p4_curves`."""
    merged = _config_rows(rows, configs)
    wanted = [c for c in configs if c.startswith("fig8-") or c in table_4_configs()]
    histories = _histories(out, wanted)
    fig8 = {c: h for c, h in histories.items() if c.startswith("fig8-") and h["loss"]}
    if fig8:
        results.write_table(out / "fig8_optimizers.csv", [{
            "optimizer": c[5:], "best_epoch": merged[c].get("best_epoch"),
            "val Acc": merged[c].get("val Acc"),
            "test Acc": merged[c].get("test Acc"),
            "final train loss": h["loss"][-1], "final val loss": h["val_loss"][-1]
            if h["val_loss"] else None} for c, h in fig8.items()])
    # Fig. 10 shows the final model (2x512); with a subset of configs, the first Table 4
    # model that ran.
    main = next((c for c in table_4_configs() if c in configs and histories[c]["loss"]),
                None)
    curves = dict(fig8)
    labels = {c: c[5:] for c in fig8}
    if main:
        curves[main] = histories[main]
        labels[main] = f"{main[5:]}, {merged[main].get('optimizer') or MAIN_OPTIMIZER}, decay"
    if not curves:
        return
    results.write_table(out / CURVES_FILE, [
        {"config": c, "label": labels[c], "epoch": i + 1,
         **{k: (h[k][i] if i < len(h[k]) else None) for k in CURVE_KEYS}}
        for c, h in curves.items() for i in range(len(h["loss"]))],
        ["config", "label", "epoch", *CURVE_KEYS])
    figures.p4_curves(out)
