"""P3 — Xception + CBAM + bidirectional ConvLSTM (``seeds/004``): settings, tables and
library code.

Every P3 hyperparameter lives here; ``experiments/p3_convlstm_cbam.py`` is the entry
point (it parses :func:`add_args`' flags and calls :func:`run`). The models are
:mod:`dfdetect.models.video`; the imbalance schedule (Table 4) is
:func:`dfdetect.training.imbalance_schedule`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

from dfdetect import experiment, results
from dfdetect.errors import DataError, DfdetectError, ModelError
from dfdetect.io import atomic_path
from dfdetect.papers import lookup

# Bound now, executed on first use: an experiment's --help must not wait for TensorFlow.
keras = experiment.lazy_import("keras")
evaluation = experiment.lazy_import("dfdetect.evaluation")
plots = experiment.lazy_import("dfdetect.plots")
figures = experiment.lazy_import("dfdetect.figures")
training = experiment.lazy_import("dfdetect.training")
registry = experiment.lazy_import("dfdetect.models.registry")
explain_lib = experiment.lazy_import("dfdetect.explain")
export = experiment.lazy_import("dfdetect.models.export")
pipeline = experiment.lazy_import("dfdetect.data.pipeline")
store = experiment.lazy_import("dfdetect.data.store")
backbones = experiment.lazy_import("dfdetect.models.backbones")

__all__ = ["ConvLstmCbamSettings", "COLUMNS", "COUNTS", "FINER_CAM_LAYER", "MASS_ALPHA",
           "MIN_CAM_SIDE", "MIN_MASS_PAIRS", "MODELS", "PAPER", "PAPER_COLUMNS", "Runner",
           "PROPOSED", "SCHEDULES", "SCRIPT", "SD_METRICS", "SETTINGS", "WARMUP_CONFIG",
           "comparison_pairs", "add_args", "clip_differences", "clip_labels",
           "clip_masks", "explain", "first_frames", "gradcam_layer",
           "load_data", "load_mask", "mass_verdict", "paired_p_value", "run", "settings_for",
           "subsample_reals", "twin_mass_pairs", "twin_mass_rows", "write_plots",
           "write_schedule", "write_tables"]


@dataclasses.dataclass(frozen=True)
class ConvLstmCbamSettings:
    """What P3 trains with at one scale.

    Attributes:
        frames: frames per clip, the first of each video benchmark clip (the paper's 30).
        size: side of the frames (the paper's 240).
        epochs: maximum epochs of each video model (early stopping may end sooner).
        warmup_epochs: epochs of the per-frame Xception warm-up whose weights start the
            video models (0: none; the paper starts from ImageNet weights).
        learning_rate, beta_1, beta_2, batch_size: the paper's Adam 1e-4 (0.9, 0.999)
            and batch 2.
        patience: early-stopping patience (assumed).
        warmup_learning_rate, warmup_patience: the warm-up's Adam rate and patience.
        bn_momentum: BatchNormalization momentum of the scratch-trained Xception (Keras'
            default 0.99 is too slow for a few dozen steps per epoch).
        holdout_method: the benchmark forgery kept for the cross test.
    """

    frames: int
    size: int
    epochs: int
    warmup_epochs: int
    learning_rate: float = 1e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    batch_size: int = 2
    patience: int = 5
    warmup_learning_rate: float = 1e-3
    warmup_patience: int = 2
    bn_momentum: float = 0.9
    holdout_method: str = "identity_swap"


#: Per scale; ``paper`` is the paper's own setting.
SETTINGS: dict[str, ConvLstmCbamSettings] = {
    "smoke": ConvLstmCbamSettings(frames=4, size=64, epochs=1, warmup_epochs=1),
    "cpu": ConvLstmCbamSettings(frames=8, size=64, epochs=8, warmup_epochs=8),
    "paper": ConvLstmCbamSettings(frames=30, size=240, epochs=60, warmup_epochs=0),
}


def settings_for(scale_name: str) -> ConvLstmCbamSettings:
    """The :data:`SETTINGS` of a scale (ModelError names an unknown one)."""
    return lookup(SETTINGS, scale_name, "P3")


#: The video models in the paper's table order; ``xception`` is the warm-up frame model.
MODELS = ("xception_lstm", "xception_convlstm", "convlstm_cbam")
WARMUP_CONFIG = "xception"
#: The paper's model, compared with each baseline in ``comparisons.csv``.
PROPOSED = "convlstm_cbam"
#: Metrics whose spread over repeats the tables show beside the mean (``<metric> sd``).
SD_METRICS = ("AUC", "Accuracy")
#: Table columns -> keys of evaluation.binary_metrics (fake = positive class).
COLUMNS = {"AUC": "ROC AUC", "Accuracy": "Acc", "Precision": "Prec(1)", "Recall": "Rec(1)",
           "F1": "F1(1)", "EER": "EER", "AP": "AP"}
COUNTS = ("TN", "FP", "FN", "TP")
#: The paper's numbers (Celeb-DF v2): Table 5 (AUC), Table 6 (accuracy), Table 7 (P/R/F1).
PAPER = {
    WARMUP_CONFIG: {"AUC": 0.676},
    "xception_lstm": {"AUC": 0.897, "Accuracy": 0.695},
    "xception_convlstm": {"AUC": 0.886, "Accuracy": 0.850},
    "convlstm_cbam": {"AUC": 0.989, "Accuracy": 0.935, "Precision": 0.989, "Recall": 0.880,
                      "F1": 0.931},
}
PAPER_COLUMNS = ("AUC", "Accuracy", "Precision", "Recall", "F1")

#: Grad-CAM target when the default map is coarser than MIN_CAM_SIDE pixels a side: the
#: last Xception map before its final 2x downsampling.
FINER_CAM_LAYER, MIN_CAM_SIDE = "block13_sepconv2_act", 4
# The mask-mass verdict needs the fake clips' mass above their real twins' clip for
# clip, not just on average: a one-sided Wilcoxon signed-rank test at this level over the
# test clips (each clip's fake-minus-twin difference averaged over the runs: the runs
# re-score the same clips, so counting a clip once per run would be pseudo-replication),
# when at least this many clips have a heat map in both; with fewer: "undetermined".
MASS_ALPHA, MIN_MASS_PAIRS = 0.05, 6
SCHEDULES = ("table4", "class-weights", "plain")
#: The entry point; the warm-up's and each model's worker process runs it.
SCRIPT = experiment.REPO_ROOT / "experiments" / "p3_convlstm_cbam.py"


# --------------------------------------------------------------------------- the run

def add_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """P3's flags (common ones included) on ``parser``."""
    # The committed tables hold 3 repeats (REPEATS=3): a run with fewer resumes them
    # and rewrites the same tables, so --repeats does not move a run to scratch.
    experiment.add_common_args(parser, out="p3", committed_may_vary=("repeats",))
    parser.add_argument("--models", default=None,
                        help=f"comma-separated subset of {', '.join(MODELS)} (default: all)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per clip (default: "
                             + ", ".join(f"{name} {s.frames}" for name, s in SETTINGS.items())
                             + ")")
    parser.add_argument("--schedule", choices=SCHEDULES, default="table4",
                        help="table4: the paper's rounds; class-weights: one round with "
                             "balanced class weights; plain: one round, no weighting")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="fakes per round of the table4 schedule (default: the number "
                             "of real training clips)")
    parser.add_argument("--real-ratio", type=float, default=None,
                        help="keep this many real training clips per fake one (e.g. 0.088 "
                             "= Celeb-DF's 490:5,539); default: keep all")
    parser.add_argument("--warmup-epochs", type=int, default=None,
                        help="epochs of the per-frame Xception warm-up (default: "
                             + ", ".join(f"{name} {s.warmup_epochs}"
                                         for name, s in SETTINGS.items())
                             + "; 0 disables it)")
    parser.add_argument("--gradcam-videos", type=int, default=2,
                        help="Grad-CAM grids drawn per class (real, fake) and model")
    parser.add_argument("--gradcam-layer", default=None,
                        help=f"Grad-CAM target layer (default: the last per-frame map before "
                             f"the sequence layer, or {FINER_CAM_LAYER} when that map is "
                             f"under {MIN_CAM_SIDE} x {MIN_CAM_SIDE})")
    parser.add_argument("--eager", action="store_true",
                        help="run Keras eagerly (default at smoke scale)")
    experiment.add_grid_args(parser)
    # what a worker process runs: the warm-up or one model (set by the grid runner)
    parser.add_argument("--configs", default=None, help=argparse.SUPPRESS)
    return parser


# ----------------------------------------------------------------------------- data

def first_frames(rows, frames: int) -> list[dict]:
    """The first ``frames`` frames of every clip (all of a shorter clip), clip by clip."""
    out = []
    for members in pipeline.group_clips(rows).values():
        out.extend(members[:frames])
    return out


def subsample_reals(rows, ratio: float | None, rng: np.random.Generator) -> list[dict]:
    """Keep ``round(ratio * fakes)`` (at least one) real clips of ``rows``; all fakes."""
    if ratio is None:
        return list(rows)
    if ratio <= 0:
        raise ValueError(f"--real-ratio must be > 0, got {ratio}")
    groups = pipeline.group_clips(rows)
    reals = [k for k, m in groups.items() if int(m[0]["label"]) == 0]
    fakes = [k for k, m in groups.items() if int(m[0]["label"]) == 1]
    keep_n = min(len(reals), max(1, int(round(ratio * len(fakes)))))
    keep = {reals[i] for i in rng.choice(len(reals), keep_n, replace=False)} | set(fakes)
    return [r for k, m in groups.items() if k in keep for r in m]


def load_data(args, scale, frames: int):
    """Splits (first ``frames`` frames per clip), cross rows and their store roots."""
    size = settings_for(scale.name).size
    if args.data:
        root = experiment.dataset_store(args.data, args.layout, frames, size)
    else:
        root = experiment.benchmark_store("videos", args.faces, scale, args.seed,
                                          holdout_method=settings_for(scale.name).holdout_method,
                                          generator=args.generator)
    splits = experiment.split_rows(store.read_manifest(root), seed=args.seed)
    if args.cross:
        cross_root = experiment.dataset_store(args.cross, args.layout, frames, size)
        cross_splits = experiment.split_rows(store.read_manifest(cross_root), seed=args.seed)
        cross = cross_splits["test"] or [r for rows in cross_splits.values() for r in rows]
    else:
        cross_root, cross = root, splits.get("cross", [])
    splits = {k: first_frames(v, frames) for k, v in splits.items()}
    return root, splits, cross_root, first_frames(cross, frames)


def clip_labels(rows) -> np.ndarray:
    """One 0/1 label per clip of ``rows``, in :func:`pipeline.clip_keys` order."""
    return np.array([int(m[0]["label"]) for m in pipeline.group_clips(rows).values()], int)


def write_schedule(path: Path, rounds, clips) -> None:
    """One row per (round, training clip) of the schedule."""
    rows = [{"round": c, "source": clips[i][0][0], "video_id": clips[i][0][1],
             "label": int(clips[i][1][0]["label"])}
            for c, idx in enumerate(rounds) for i in idx]
    results.write_table(path, rows, ["round", "source", "video_id", "label"])


# ----------------------------------------------------------------------------- Grad-CAM

def load_mask(root: Path, rel: str, size: int) -> np.ndarray | None:
    """A forgery mask as a boolean (size, size) array (None when there is none)."""
    import cv2  # deferred: 0.3 s, and the script's --help runs this module


    if not rel:
        return None
    mask = cv2.imread(str(Path(root) / rel), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        return None
    if mask.shape != (size, size):
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
    return mask >= 128


def clip_masks(rows, root: Path, size: int, frames: int) -> dict[tuple, np.ndarray]:
    """(source, video_id) -> (frames, size, size) forgery masks, for every clip of ``rows``
    that has one; a real clip borrows its fake twin's (``..._real`` -> ``..._fake``)."""
    groups = pipeline.group_clips(rows)
    fake_masks = {}
    for key, members in groups.items():
        chosen = pipeline.take_frames(members, frames)
        masks = [load_mask(root, r.get("mask_path", ""), size) for r in chosen]
        if int(members[0]["label"]) == 1 and all(m is not None for m in masks):
            fake_masks[key] = np.stack(masks)
    out = dict(fake_masks)
    for (source, vid), members in groups.items():
        if int(members[0]["label"]) == 0 and vid.endswith("_real"):
            twin = (source, vid[:-len("_real")] + "_fake")
            if twin in fake_masks:
                out[(source, vid)] = fake_masks[twin]
    return out


def gradcam_layer(model, requested: str | None) -> str:
    """The Grad-CAM target: ``requested``, else the model's default per-frame map unless it
    is coarser than ``MIN_CAM_SIDE`` a side (64-px clips: 2 x 2), then ``FINER_CAM_LAYER``."""
    if requested:
        return requested
    path = explain_lib.default_layer_path(model)
    # A nested backbone built on (None, None, 3) knows no map size: ask its wrapper.
    side = next((lay.output.shape[-3] for lay in reversed(path)
                 if lay.output.shape[-3] is not None), None)
    if side is not None and side < MIN_CAM_SIDE:
        try:
            explain_lib.find_layer_path(model, FINER_CAM_LAYER)
            return FINER_CAM_LAYER
        except ModelError:  # a model without that layer keeps its default
            pass
    return path[-1].name


def explain(model, name: str, repeat: int, rows, root: Path, frames: int, size: int,
            out: Path, n_grids: int, layer: str | None) -> dict:
    """Grad-CAM on every test clip: grids for a few, mask mass for all with a mask."""
    layer = gradcam_layer(model, layer)
    keys = pipeline.clip_keys(rows)
    labels = clip_labels(rows)
    masks = clip_masks(rows, root, size, frames)
    groups = pipeline.group_clips(rows)
    ds = pipeline.clip_dataset(rows, root, frames, size, batch_size=1, cache=False)
    drawn = {0: 0, 1: 0}
    per_video = []
    for key, label, (clip, _) in zip(keys, labels, ds):
        mask = masks.get(key)
        if mask is None and drawn[int(label)] >= n_grids:
            continue
        clip = clip.numpy()
        heats = explain_lib.grad_cam(model, clip, layer_name=layer, class_index=1)[0]
        if drawn[int(label)] < n_grids:
            kind = "fake" if label else "real"
            # the clip's own frames (their numbers in the video), its score, its mask
            shown = pipeline.take_frames(groups[key], frames)
            score = float(np.asarray(model(clip, training=False)).reshape(-1)[-1])
            explain_lib.save_gradcam_grid(out / "gradcam" / f"{name}_{kind}_{key[1]}.png", clip[0], heats,
                              title=f"{name} (repeat {repeat}): {kind} test video {key[1]}\n"
                                    f"Grad-CAM of class fake at {layer}",
                              masks=mask, score=score,
                              frame_labels=[r.get("frame_index", i)
                                            for i, r in enumerate(shown)])
            drawn[int(label)] += 1
        if mask is not None:
            per_video.append({"model": name, "repeat": repeat, "source": key[0],
                              "video_id": key[1], "label": int(label),
                              "mass_in_mask": explain_lib.mask_mass(heats, mask),
                              "mask_area": float(mask.mean())})
    results.write_table(out / "gradcam" / f"{name}-r{repeat}-mass.csv", per_video,
                        ["model", "repeat", "source", "video_id", "label", "mass_in_mask",
                         "mask_area"])
    row = {"gradcam layer": layer}
    for label, kind in ((1, "fake"), (0, "real")):
        vals = np.array([v["mass_in_mask"] for v in per_video if v["label"] == label], float)
        areas = [v["mask_area"] for v in per_video if v["label"] == label]
        row[f"gradcam {kind} mass"] = float(np.nanmean(vals)) if np.isfinite(vals).any() else ""
        row[f"gradcam {kind} videos"] = int(np.isfinite(vals).sum())
        row[f"gradcam {kind} empty"] = int((~np.isfinite(vals)).sum())
        row[f"gradcam {kind} mask area"] = float(np.mean(areas)) if areas else ""
    return row


# ----------------------------------------------------------------------------- runs

class Runner:
    """Everything one P3 invocation shares between its (model, repeat) runs."""

    def __init__(self, args, scale, out: Path):
        self.args, self.scale, self.out = args, scale, out
        self.settings = settings_for(scale.name)
        self.frames = int(args.frames or self.settings.frames)
        self.size = self.settings.size
        self.epochs = int(args.epochs or self.settings.epochs)
        self.warmup_epochs = (self.settings.warmup_epochs if args.warmup_epochs is None
                              else int(args.warmup_epochs))
        self.eager = bool(args.eager or scale.name == "smoke")
        self.weights = experiment.weights_arg(args.weights)
        self.root, self.splits, self.cross_root, self.cross = load_data(args, scale, self.frames)
        for split in ("train", "val", "test"):
            if not self.splits.get(split):
                raise DataError(f"no '{split}' clips in the store", self.root)
        self.verbose = 0 if args.quiet else 2

    # -- data ---------------------------------------------------------------------
    def clips(self, rows, root=None, training_=False, seed=0, batch=None):
        return pipeline.clip_dataset(rows, root or self.root, self.frames, self.size,
                                     batch_size=batch or self.settings.batch_size,
                                     training=training_, seed=seed)

    def evaluations(self):
        evals = {"test": (self.splits["test"], self.root)}
        if self.cross:
            evals["cross"] = (self.cross, self.cross_root)
        return evals

    def score_row(self, name, repeat, split, keys, labels, scores) -> dict:
        """Metrics of one split (prefixed ``<split> ``); per-video scores to scores/."""
        metrics = evaluation.binary_metrics(labels, scores)
        results.write_table(self.out / "scores" / f"{name}-r{repeat}-{split}.csv", [
            {"source": k[0], "video_id": k[1], "label": int(l), "score": float(s)}
            for k, l, s in zip(keys, labels, scores)])
        keys_of = {**COLUMNS, **{c: c for c in COUNTS}}
        return {f"{split} {c}": metrics[k] for c, k in keys_of.items()}

    # -- warm-up ------------------------------------------------------------------
    def warmup_path(self, repeat: int) -> Path:
        return self.out / "warmup" / f"xception-r{repeat}.weights.h5"

    def _warmup_extras(self, repeat: int) -> tuple[Path, Path]:
        # The frame model's head and its training record, beside the backbone weights.
        base = self.out / "warmup" / f"xception-r{repeat}"
        return base.with_name(base.name + ".head.npz"), base.with_name(base.name + ".json")

    def warmup_done(self, repeat: int) -> bool:
        return self.warmup_path(repeat).exists() and all(
            p.exists() for p in self._warmup_extras(repeat))

    def frame_model(self, weights):
        """The registry's per-frame warm-up classifier and its Xception backbone."""
        model = registry.build_model("xception_frames", weights=weights)
        return model, model.get_layer("xception_maps")

    def warm_up(self, repeat: int) -> tuple[object, dict]:
        """Train (or reload) the per-frame Xception; returns the frame model and its row."""
        training.set_seed(self.args.seed + repeat)
        model, backbone = self.frame_model(self.weights)
        path = self.warmup_path(repeat)
        head_path, info_path = self._warmup_extras(repeat)
        if self.warmup_done(repeat):
            try:
                backbone.load_weights(path)
                with np.load(head_path, allow_pickle=False) as head:
                    model.get_layer("predictions").set_weights([head["kernel"], head["bias"]])
                return model, json.loads(info_path.read_text())
            except Exception as err:  # noqa: BLE001 - e.g. half-written by an older dfdetect
                print(f"{path}: unreadable warm-up ({type(err).__name__}); training it "
                      "again", file=sys.stderr)
                training.set_seed(self.args.seed + repeat)  # a fresh start, as if never run
                model, backbone = self.frame_model(self.weights)
        rows = self.splits["train"]
        if self.args.real_ratio is not None:
            rows = subsample_reals(rows, self.args.real_ratio,
                                   np.random.default_rng(self.args.seed + repeat))
        labels = pipeline.labels_of(rows)
        clips = clip_labels(rows)
        batch = self.scale.batch_size
        train_ds = pipeline.image_dataset(rows, self.root, self.size, batch, training=True,
                                          seed=self.args.seed + repeat, label_dtype="float32")
        val_ds = pipeline.image_dataset(self.splits["val"], self.root, self.size, batch)
        backbones.scratch_batchnorm(model, self.settings.bn_momentum)
        training.compile_model(model, "adam", self.settings.warmup_learning_rate)
        model.run_eagerly = self.eager
        fit = training.fit(model, train_ds, val_ds, epochs=self.warmup_epochs,
                           learning_rate=self.settings.warmup_learning_rate,
                           patience=self.settings.warmup_patience, decay_factor=None,
                           class_weight=training.class_weights(labels),
                           verbose=self.verbose,
                           extra_callbacks=[keras.callbacks.CSVLogger(
                               str(self._log(WARMUP_CONFIG, repeat)))])
        path.parent.mkdir(parents=True, exist_ok=True)
        kernel, bias = model.get_layer("predictions").get_weights()
        # Every file temp + rename: a kill mid-save never leaves a file a rerun trusts.
        with atomic_path(head_path) as tmp:
            np.savez(tmp, kernel=kernel, bias=bias)
        row = {"Parameters": model.count_params(), "Training seconds": round(fit.seconds, 1),
               "epochs": fit.epochs_run, "best_epoch": fit.best_epoch, "rounds": 1,
               "train reals": int((clips == 0).sum()), "train fakes": int((clips == 1).sum())}
        results.atomic_write_text(info_path, json.dumps(row))
        with atomic_path(path) as tmp:  # last: its presence marks a finished warm-up
            backbone.save_weights(tmp)
        return model, row

    def _log(self, name, repeat) -> Path:
        path = self.out / "runs" / f"{name}-r{repeat}" / "log.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def run_warmup(self, repeat: int) -> dict:
        """Row ``xception``: the warm-up frame model, video score = mean frame score."""
        model, row = self.warm_up(repeat)
        for split, (rows, root) in self.evaluations().items():
            ds = pipeline.image_dataset(rows, root, self.size, self.scale.batch_size)
            frame_scores = training.predict_scores(model, ds)
            vids = [f"{r['source']}\t{r['video_id']}" for r in rows]
            order, labels, scores = evaluation.aggregate_by_video(
                vids, pipeline.labels_of(rows), frame_scores)
            keys = [tuple(v.split("\t", 1)) for v in order]
            row.update(self.score_row(WARMUP_CONFIG, repeat, split, keys, labels, scores))
        # Exported like the video models, so predict / evaluate score it as an image model
        # (a video's score is its frames' mean, as in this row). Without optimizer state.
        lean, _ = self.frame_model(None)
        lean.set_weights(model.get_weights())
        export.export_model(lean, str(self.out / "models" / f"{WARMUP_CONFIG}.keras"),
                            experiment="p3_convlstm_cbam", config=WARMUP_CONFIG,
                            scale=self.scale.name, image_size=self.size, threshold=0.5,
                            repeat=repeat, trained_on=str(self.root))
        return {"model": WARMUP_CONFIG, **row}

    # -- video models -------------------------------------------------------------
    def build(self, name: str):
        return registry.build_model(name, frames=self.frames, size=self.size,
                                    weights=self.weights)

    def run_video(self, name: str, repeat: int) -> dict:
        seed = self.args.seed + repeat
        backbone_weights = None
        if self.warmup_epochs > 0:
            if not self.warmup_done(repeat):  # e.g. --models without the xception row's run
                self.warm_up(repeat)
            backbone_weights = self.warmup_path(repeat)
        training.set_seed(seed)
        model = self.build(name)
        if backbone_weights is not None:
            model.get_layer("frame_features").layer.load_weights(backbone_weights)
        backbones.scratch_batchnorm(model, self.settings.bn_momentum)
        st = self.settings
        optimizer = keras.optimizers.Adam(st.learning_rate, beta_1=st.beta_1, beta_2=st.beta_2)
        training.compile_model(model, optimizer)
        model.run_eagerly = self.eager

        train_rows = subsample_reals(self.splits["train"], self.args.real_ratio,
                                     np.random.default_rng(seed))
        groups = list(pipeline.group_clips(train_rows).items())
        labels = np.array([int(m[0]["label"]) for _, m in groups], int)
        if self.args.schedule == "table4":
            rounds = training.imbalance_schedule(labels, np.random.default_rng(seed),
                                                 chunk_size=self.args.chunk_size)
        else:
            rounds = [np.random.default_rng(seed).permutation(len(groups))]
        write_schedule(self.out / f"schedule-r{repeat}.csv", rounds, groups)
        class_weight = (training.class_weights(labels)
                        if self.args.schedule == "class-weights" else None)
        val_ds = self.clips(self.splits["val"])
        log = keras.callbacks.CSVLogger(str(self._log(name, repeat)), append=False)
        seconds, epochs_run = 0.0, 0
        for c, idx in enumerate(rounds):
            rows = [r for i in idx for r in groups[i][1]]
            train_ds = self.clips(rows, training_=True, seed=seed + c)
            if c == 1:
                log.append = True
            fit = training.fit(model, train_ds, val_ds, epochs=self.epochs,
                               learning_rate=self.settings.learning_rate,
                               patience=self.settings.patience,
                               decay_factor=None, class_weight=class_weight,
                               verbose=self.verbose, extra_callbacks=[log])
            seconds += fit.seconds
            epochs_run += fit.epochs_run
            if not self.args.quiet:
                print(f"{name} r{repeat} round {c + 1}/{len(rounds)}: {len(idx)} clips, "
                      f"{fit.epochs_run} epochs, best val_loss {fit.best('val_loss')[0]:.4f}")
        row = {"model": name, "Parameters": model.count_params(),
               "Training seconds": round(seconds, 1), "epochs": epochs_run,
               "rounds": len(rounds), "train reals": int((labels == 0).sum()),
               "train fakes": int((labels == 1).sum())}
        for split, (rows, root) in self.evaluations().items():
            scores = training.predict_scores(model, self.clips(rows, root))
            row.update(self.score_row(name, repeat, split, pipeline.clip_keys(rows),
                                      clip_labels(rows), scores))
        row.update(explain(model, name, repeat, self.splits["test"], self.root, self.frames,
                           self.size, self.out, self.args.gradcam_videos,
                           self.args.gradcam_layer))
        # Exported without the optimizer state (a third of the size): a fresh build
        # carrying the trained weights.
        lean = self.build(name)
        lean.set_weights(model.get_weights())
        export.export_model(lean, str(self.out / "models" / f"{name}.keras"),
                     experiment="p3_convlstm_cbam", config=name, scale=self.scale.name,
                     frames=self.frames, image_size=self.size, threshold=0.5,
                     repeat=repeat, trained_on=str(self.root))
        return row


# ----------------------------------------------------------------------------- tables

def _model_rows(rows, configs) -> list[dict]:
    """One row per configuration, P3's shape of :func:`results.mean_over_repeats`."""
    merged = []
    for m in results.mean_over_repeats(rows, configs):
        if m["status"] != "ok":
            merged.append({"model": m["config"], "status": "failed",
                           "reason": m["reason"] or "not run"})
            continue
        merged.append({"model": m["config"], **{c: m[f"{c}_mean"] for c in sorted(m["metrics"])},
                       **{f"{c} sd": m[f"{c}_std"] for c in sorted(m["metrics"])},
                       "repeats": m["runs"]})
    return merged


def comparison_pairs(configs) -> list[tuple[str, str, str]]:
    """(a, b, why) for README's comparisons: the paper's model against each baseline."""
    return [(PROPOSED, b, "the paper's model vs a baseline")
            for b in configs if b != PROPOSED] if PROPOSED in configs else []


def twin_mass_rows(out: Path, model: str) -> list[tuple[int, tuple[str, str], float, float]]:
    """(repeat, clip, fake mass, real twin's mass) per fake test clip with a finite value
    in both, over every repeat's ``gradcam/<model>-r<k>-mass.csv``; empty when none were
    written. ``clip`` is ``(source, video id without _fake)``, the same in every repeat."""
    found = []
    for path in sorted((out / "gradcam").glob(f"{model}-r*-mass.csv")):
        repeat = int(path.stem.rsplit("-r", 1)[1].split("-")[0])
        by_id = {(r["source"], r["video_id"]): r.get("mass_in_mask", "")
                 for r in results.read_table(path)}
        for (source, vid), fake in by_id.items():
            if not vid.endswith("_fake"):
                continue
            clip = vid[:-len("_fake")]
            real = by_id.get((source, clip + "_real"), "")
            try:
                f, r = float(fake), float(real)
            except ValueError:
                continue
            if math.isfinite(f) and math.isfinite(r):
                found.append((repeat, (source, clip), f, r))
    return found


def twin_mass_pairs(out: Path, model: str) -> list[tuple[float, float]]:
    """(fake mass, real twin's mass) per fake test clip and repeat (see
    :func:`twin_mass_rows`); empty when none were written."""
    return [(f, r) for _, _, f, r in twin_mass_rows(out, model)]


def paired_p_value(pairs) -> float:
    """One-sided Wilcoxon signed-rank p that the fake mass exceeds its real twin's; NaN
    with fewer than ``MIN_MASS_PAIRS`` pairs or no difference at all."""
    from scipy.stats import wilcoxon  # deferred: scipy (sklearn's) is 0.5 s to import

    diff = np.array([f - r for f, r in pairs], float)
    if len(diff) < MIN_MASS_PAIRS or not np.any(diff):
        return float("nan")
    return float(wilcoxon(diff, alternative="greater").pvalue)


def clip_differences(rows) -> dict[tuple[str, str], float]:
    """Each clip's fake-minus-twin mass, averaged over the repeats that scored it: the
    unit of the verdict's test (:func:`twin_mass_rows` rows in)."""
    by_clip: dict[tuple[str, str], list[float]] = {}
    for _, clip, f, r in rows:
        by_clip.setdefault(clip, []).append(f - r)
    return {clip: float(np.mean(d)) for clip, d in by_clip.items()}


def mass_verdict(fake: float, real: float, area: float, clip_p: float) -> str:
    """``yes`` (fake mass above the mask's area and above the twins', and the clip test
    significant), ``not significant`` (above on average only), ``undetermined`` (above on
    average, too few clips to test), ``no`` (not above both)."""
    if not (fake > area and fake > real):
        return "no"
    if not math.isfinite(clip_p):
        return "undetermined"
    return "yes" if clip_p < MASS_ALPHA else "not significant"


def write_tables(out: Path, rows, configs) -> None:
    """``table_5_6_7.csv`` (+ ``_cross``), ``gradcam_mask_mass.csv`` from the runs table."""
    merged = _model_rows(rows, configs)
    extra = ("Parameters", "Training seconds", "rounds", "repeats")
    for split, name in (("test", "table_5_6_7.csv"), ("cross", "table_5_6_7_cross.csv")):
        if split == "cross" and not any(m.get("cross AUC") not in (None, "")
                                        or m.get("cross Accuracy") not in (None, "")
                                        for m in merged):
            continue
        table = []
        for m in merged:
            row = {"model": m["model"], **{c: m.get(f"{split} {c}") for c in (*COLUMNS, *COUNTS)},
                   **{c: m.get(c) for c in extra}}
            if split == "test":
                row.update({f"paper {c}": PAPER.get(m["model"], {}).get(c)
                            for c in PAPER_COLUMNS})
            if m.get("status") == "failed":
                row["status"] = f"failed: {m.get('reason')}"
            table.append(row)
        for m, row in zip(merged, table):
            row.update({f"{c} sd": m.get(f"{split} {c} sd") for c in SD_METRICS})
        columns = ["model", *COLUMNS, *COUNTS, *[f"{c} sd" for c in SD_METRICS], *extra]
        if split == "test":
            columns += [f"paper {c}" for c in PAPER_COLUMNS]
        if any("status" in r for r in table):
            columns.append("status")
        results.write_table(out / name, table, columns)

    comparisons = results.compare_runs(rows, comparison_pairs(configs), "AUC",
                                       scores_dir=out / "scores")
    if comparisons:
        results.write_table(out / "comparisons.csv", comparisons)

    mass = []
    for m in merged:
        if m["model"] == WARMUP_CONFIG or m.get("status") == "failed":
            continue
        fake, real = m.get("gradcam fake mass"), m.get("gradcam real mass")
        area = m.get("gradcam fake mask area")
        ok = all(isinstance(v, float) and math.isfinite(v) for v in (fake, real, area))
        layer = next((r.get("gradcam layer") for r in rows
                      if r.get("config") == m["model"] and r.get("gradcam layer")), "")
        found = twin_mass_rows(out, m["model"])
        pairs = [(f, r) for _, _, f, r in found]
        clips = clip_differences(found)
        clip_p = paired_p_value([(d, 0.0) for d in clips.values()])
        runs = sorted({k for k, _, _, _ in found})
        run_p = [paired_p_value([(f, r) for k, _, f, r in found if k == run]) for run in runs]
        p_value = paired_p_value(pairs)
        verdict = mass_verdict(fake, real, area, clip_p) if ok else ""
        mass.append({"model": m["model"], "layer": layer, "fake mass in mask": fake,
                     "real mass in twin mask": real, "mask area": area,
                     "fake videos": m.get("gradcam fake videos"),
                     "real videos": m.get("gradcam real videos"),
                     "empty heat maps": (m.get("gradcam fake empty") or 0)
                     + (m.get("gradcam real empty") or 0),
                     "twin pairs": len(pairs),
                     "fake above twin": int(sum(f > r for f, r in pairs)),
                     "paired p": p_value if math.isfinite(p_value) else "",
                     "clips": len(clips),
                     "clips above twin": int(sum(d > 0 for d in clips.values())),
                     "clip p": clip_p if math.isfinite(clip_p) else "",
                     "run p": " / ".join(f"{p:.3g}" if math.isfinite(p) else "-"
                                         for p in run_p),
                     "on_forgery": verdict})
    if mass:
        results.write_table(out / "gradcam_mask_mass.csv", mass)


def write_plots(out: Path, rows, configs) -> None:
    """Confusion matrices (summed over repeats) and ROC curves (repeat 0)."""
    matrices = {}
    for config in configs:
        ok = [r for r in rows if r.get("config") == config and r.get("status") == "ok"]
        if ok:
            matrices[config] = tuple(int(sum(float(r.get(f"test {c}") or 0) for r in ok))
                                     for c in COUNTS)
    if matrices:
        plots.confusion_matrices(out / "confusion_matrix.png", matrices)
    # test and cross ROC from scores/, the paper's AUCs (table_5_6_7.csv) in the legend
    figures.p3_roc(out, configs)


def run(args) -> Path:
    """P3's grid (``experiments/p3_convlstm_cbam.py``): warm-up, video models, tables,
    Grad-CAM and plots.

    Args:
        args: the flags of :func:`add_args`.

    Returns:
        The results folder.
    """
    scale, out = experiment.scale_and_results(args)
    models = args.models.split(",") if args.models else list(MODELS)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise DfdetectError(f"unknown model(s) {', '.join(unknown)}; choose from "
                            f"{', '.join(MODELS)}")
    if args.real_ratio is not None and args.real_ratio <= 0:
        raise DfdetectError(f"--real-ratio must be > 0, got {args.real_ratio}")
    runner = Runner(args, scale, out)
    repeats = args.repeats or 1  # the paper reports one run per model
    configs = ([WARMUP_CONFIG] if runner.warmup_epochs > 0 else []) + models
    if args.configs:  # a worker process: the video models find the warm-up's weights on disk
        configs = [c for c in args.configs.split(",") if c in (WARMUP_CONFIG, *MODELS)]
    s = runner.splits
    print(f"P3: scale={scale.name} clips {runner.frames}x{runner.size}px epochs<={runner.epochs} "
          f"warm-up epochs={runner.warmup_epochs} schedule={args.schedule} repeats={repeats} "
          f"eager={runner.eager} train={len(pipeline.group_clips(s['train']))} "
          f"val={len(pipeline.group_clips(s['val']))} "
          f"test={len(pipeline.group_clips(s['test']))} "
          f"cross={len(pipeline.group_clips(runner.cross))} clips, store={runner.root}")

    def one_run(config: str, repeat: int) -> dict:
        keras.backend.clear_session()  # free the previous run's models
        if config == WARMUP_CONFIG:
            return runner.run_warmup(repeat)
        return runner.run_video(config, repeat)

    table = results.ResultsTable(out / "runs.csv")
    experiment.run_grid(configs, repeats, table, one_run, progress=not args.quiet,
                      worker=experiment.grid_worker(args, SCRIPT))
    if args.runs_only:  # a worker process: the parent writes the tables and plots
        return out
    # Tables also keep the rows of models an earlier invocation (other --models) ran.
    done = {r.get("config") for r in table.rows}
    shown = [c for c in (WARMUP_CONFIG, *MODELS) if c in configs or c in done]
    write_tables(out, table.rows, shown)
    write_plots(out, table.rows, shown)
    mass = results.read_table(out / "gradcam_mask_mass.csv")
    for m in mass:
        print(f"Grad-CAM {m['model']}: fake mass in mask {m['fake mass in mask']}, real "
              f"{m['real mass in twin mask']}, mask area {m['mask area']} -> on the forgery: "
              f"{m['on_forgery'] or 'n/a'}")
    print(f"results written to {out}")
    return out
