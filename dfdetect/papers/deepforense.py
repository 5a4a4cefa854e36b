"""P5 — DeepForense (``seeds/000``): its settings and library code.

Every P5 setting lives here; ``experiments/p5_deepforense.py`` is the entry point (it
parses :func:`add_args`' flags and calls :func:`run`). The
classifiers and ensembles (SVM, random forest, dense network, bagging, boosting,
stacking) are :mod:`dfdetect.models.classical`; the normalisation layer is
:class:`dfdetect.models.layers.ColorNormalization`; the fine-tune / cross-validation
partition is :func:`dfdetect.data.splits.finetune_partition`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import re
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from dfdetect import experiment, results
from dfdetect.data import splits
from dfdetect.errors import DataError
from dfdetect.io import atomic_path
from dfdetect.papers import lookup

# Bound now, executed on first use: an experiment's --help must not wait for TensorFlow
# (features, training, pipeline) or scikit-learn (classical, evaluation, plots).
keras = experiment.lazy_import("keras")
classical = experiment.lazy_import("dfdetect.models.classical")
evaluation = experiment.lazy_import("dfdetect.evaluation")
features = experiment.lazy_import("dfdetect.features")
figures = experiment.lazy_import("dfdetect.figures")
pipeline = experiment.lazy_import("dfdetect.data.pipeline")
plots = experiment.lazy_import("dfdetect.plots")
store = experiment.lazy_import("dfdetect.data.store")
training = experiment.lazy_import("dfdetect.training")
registry = experiment.lazy_import("dfdetect.models.registry")
backbones = experiment.lazy_import("dfdetect.models.backbones")

__all__ = ["COMPARED_METRICS", "DeepForenseSettings", "Extractor", "METRICS", "PAPER_ACCURACY",
           "SETTINGS", "add_args", "compare_features", "compare_stacking", "embedding_plots",
           "fold_digests", "fold_values", "image_store", "log", "results_folder", "run",
           "run_cv", "run_selection", "settings_for", "summary_rows", "video_store",
           "video_tests"]


@dataclasses.dataclass(frozen=True)
class DeepForenseSettings:
    """What P5 runs with at one scale.

    Attributes:
        backbone: the feature extractor (the paper's ResNet50; Meso-4 on a CPU, where
            it trains in seconds: 64-d features at 64 px).
        image_size: side of the crops the extractor reads (the benchmark's crops are
            resized to it; a ``--data`` dataset is cropped at it).
        finetune_epochs: epochs of fine-tuning the backbone as a classifier before
            extracting features (early stopping may end sooner; Meso-4 needs ~30-40 on
            the cpu benchmark).
        cv_folds: k of the k-fold cross-validation.
        finetune_fraction: identities used to fine-tune, never cross-validated.
        finetune_val: of the fine-tuning identities, the share kept for early stopping.
        learning_rate, patience: fine-tuning's Adam rate and early-stopping patience.
        pca_components: PCA's components at most, in every pipeline (assumed).
        selected_features: features the selection study keeps (assumed).
        selection_pool: importance prefilter before sequential selection.
        tsne_points: points drawn in the t-SNE plot.
        threshold: the fake-probability threshold.
        holdout_method: the benchmark forgery kept for the cross test (as P1, so both
            share one benchmark store).
    """

    backbone: str
    image_size: int
    finetune_epochs: int
    cv_folds: int
    finetune_fraction: float = 0.5
    finetune_val: float = 0.1
    learning_rate: float = 1e-3
    patience: int = 8
    pca_components: int = 32
    selected_features: int = 8
    selection_pool: int = 16
    tsne_points: int = 2000
    threshold: float = 0.5
    holdout_method: str = "swap"


#: Per scale; ``paper`` is the paper's own setting (its k is assumed: 5).
SETTINGS: dict[str, DeepForenseSettings] = {
    "smoke": DeepForenseSettings(backbone="meso4", image_size=64, finetune_epochs=1,
                                 cv_folds=2),
    "cpu": DeepForenseSettings(backbone="meso4", image_size=64, finetune_epochs=40,
                               cv_folds=5),
    "paper": DeepForenseSettings(backbone="resnet50", image_size=256, finetune_epochs=60,
                                 cv_folds=5),
}


def settings_for(scale_name: str) -> DeepForenseSettings:
    """The :data:`SETTINGS` of a scale (ModelError names an unknown one)."""
    return lookup(SETTINGS, scale_name, "P5")


#: The paper's reported accuracy.
PAPER_ACCURACY = 0.875

# These do not vary by scale: the paper's own values.
_PAPER = SETTINGS["paper"]
FINETUNE_FRACTION, FINETUNE_VAL = _PAPER.finetune_fraction, _PAPER.finetune_val
LEARNING_RATE, PATIENCE = _PAPER.learning_rate, _PAPER.patience
PCA_COMPONENTS, SELECTED_FEATURES = _PAPER.pca_components, _PAPER.selected_features
SELECTION_POOL = _PAPER.selection_pool  # importance prefilter before sequential selection
TSNE_POINTS, THRESHOLD = _PAPER.tsne_points, _PAPER.threshold
HOLDOUT_METHOD = _PAPER.holdout_method
METRICS = ("Accuracy", "Precision", "Recall", "F1", "AUC")
#: What comparison.csv compares between two feature extractors, fold by fold.
COMPARED_METRICS = ("AUC", "Accuracy")
_START = time.monotonic()


def log(message: str) -> None:
    """A progress line with the seconds since the start."""
    print(f"[{time.monotonic() - _START:6.0f} s] {message}", flush=True)


def _weights_tag(weights: str | None) -> str:
    if weights is None:
        return "scratch"
    return "imagenet" if weights == "imagenet" else re.sub(r"[^A-Za-z0-9._-]+", "-",
                                                           Path(weights).stem)


def results_folder(args: argparse.Namespace) -> str:
    """A run's results folder under ``results/``: ``p5`` for the scale's own backbone
    trained from scratch (the committed tables), ``p5/<backbone>-<imagenet|scratch|file
    stem>`` for any other extractor (e.g. ``p5/lite0-imagenet``), so pretrained rows sit
    beside the from-scratch ones and never replace them."""
    default = settings_for(args.scale).backbone
    backbone = args.backbone or default
    weights = experiment.weights_arg(args.weights)
    if backbone == default and weights is None:
        return "p5"
    return f"p5/{backbone}-{_weights_tag(weights)}"


def add_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """P5's flags (common ones included) on ``parser``."""
    # The extractor names its own folder (results_folder); more repeats extend the same
    # tables (a resumed k-fold keeps its finished folds), as P1's and P3's do.
    experiment.add_common_args(parser, out="p5", out_of=results_folder,
                               committed_may_vary=("backbone", "weights", "repeats"))
    defaults = {name: s.backbone for name, s in SETTINGS.items()}
    parser.add_argument("--backbone", default=None,
                        help="feature extractor, any backbone of dfdetect.models.backbones, "
                             "e.g. lite0 with --weights imagenet for ImageNet "
                             "EfficientNet-Lite0 (default: "
                             + ", ".join(f"{b} at {n}" for n, b in defaults.items())
                             + " scale); another extractor than the scale's from scratch "
                             "writes results/p5/<backbone>-<weights> and compares itself "
                             "with the run in --reference")
    parser.add_argument("--finetune-epochs", type=int, default=None,
                        help="epochs of fine-tuning the backbone as a classifier first "
                             "(default: --epochs or the scale's finetune_epochs; 0: no "
                             "fine-tuning)")
    parser.add_argument("--finetune-fraction", type=float, default=FINETUNE_FRACTION,
                        help="fraction of identities reserved for fine-tuning")
    parser.add_argument("--no-normalize", action="store_true",
                        help="skip the brightness/contrast/colour normalisation layer")
    parser.add_argument("--models", default=None,
                        help="comma-separated subset of classifiers/ensembles "
                             "(default: all of dfdetect.models.classical.MODELS)")
    parser.add_argument("--folds", type=int, default=None,
                        help="k of k-fold (default: the scale's cv_folds)")
    parser.add_argument("--no-selection", action="store_true",
                        help="skip the feature-selection study")
    parser.add_argument("--videos", default=None,
                        help="store or dataset root of videos for the frame-by-frame plot "
                             "(default: the embedded video benchmark)")
    parser.add_argument("--frames", type=int, default=10,
                        help="frames per video when --data/--videos/--cross are video "
                             "dataset roots")
    parser.add_argument("--reference", default=None,
                        help="a P5 run on other features to compare with fold by fold in "
                             "comparison.csv (default: the folder above --out when it holds "
                             "one, e.g. results/p5 for results/p5/lite0-imagenet)")
    return parser


# --------------------------------------------------------------------------- data

def image_store(args, scale) -> Path:
    if args.data:
        return experiment.dataset_store(args.data, args.layout, args.frames,
                                        settings_for(scale.name).image_size)
    return experiment.benchmark_store("images", args.faces, scale, args.seed,
                                      holdout_method=HOLDOUT_METHOD, generator=args.generator)


def video_store(args, scale) -> Path:
    if args.videos:
        return experiment.dataset_store(args.videos, args.layout, args.frames,
                                        settings_for(scale.name).image_size)
    return experiment.benchmark_store("videos", args.faces, scale, args.seed,
                                      generator=args.generator)


# --------------------------------------------------------------------------- features

class Extractor:
    """The feature extractor, built (fine-tuned or loaded) only when a cache lacks rows."""

    def __init__(self, args, scale, backbone: str, tune_train, tune_val, root, out: Path):
        self.args, self.scale, self.backbone = args, scale, backbone
        self.size = settings_for(scale.name).image_size
        self.weights = experiment.weights_arg(args.weights)
        self.epochs = (args.finetune_epochs if args.finetune_epochs is not None
                       else args.epochs or settings_for(scale.name).finetune_epochs)
        self.normalize = not args.no_normalize
        self.tune_train, self.tune_val, self.root = tune_train, tune_val, root
        name = features.feature_name(backbone, self.weights, args.seed)
        if self.epochs > 0:
            if not 0.0 < args.finetune_fraction < 1.0:
                raise DataError(f"--finetune-fraction must lie strictly between 0 and 1, "
                                f"got {args.finetune_fraction}")
            # The fine-tuning data is part of what the features are: name the store too.
            store_tag = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(root).resolve().name)
            name += f"-ft{self.epochs}-p{round(100 * args.finetune_fraction)}-{store_tag}"
        self.name = name + ("-norm" if self.normalize else "")
        self.path = out / "models" / f"{self.name}_{self.size}.keras"
        self.model = None
        self.rebuilt = False  # this run made the extractor: recompute each store's cache once
        self._refreshed: set[str] = set()
        self.info: dict = {}

    def get(self):
        if self.model is not None:
            return self.model
        if self.path.is_file():
            # The backbones' custom layers register when their module runs (a lazily
            # bound module runs on its first attribute): before the file is loaded.
            backbones.ApplicationPreprocess  # noqa: B018
            log(f"loading the feature extractor {self.path}")
            try:
                self.model = keras.models.load_model(self.path)
                return self.model
            except Exception as err:  # noqa: BLE001 - e.g. half-written by an older dfdetect
                log(f"{self.path}: unreadable ({type(err).__name__}); building it again")
        args = dict(backbone=self.backbone, size=self.size, weights=self.weights,
                    normalize=self.normalize, seed=self.args.seed)
        if self.epochs > 0:
            if not self.tune_train:
                raise DataError("no identities left for fine-tuning; raise "
                                "--finetune-fraction or pass --finetune-epochs 0")
            # the extractor inside the classifier: fine-tuning it trains the extractor
            classifier = registry.build_model("finetune_classifier", **args)
            self.model = backbones.extractor_of(classifier)
            self._finetune(classifier)
        else:
            self.model = registry.build_model("feature_extractor", **args)
        # Temp + rename: a kill mid-save never leaves a model file the next run trusts.
        with atomic_path(self.path) as tmp:
            self.model.save(tmp)
        results.write_table(self.path.with_suffix(".csv"),
                            [{"key": k, "value": v} for k, v in self.info.items()])
        self.rebuilt = True
        return self.model

    def fit_info(self) -> dict:
        """How the extractor was fine-tuned (this run's, or saved beside its model)."""
        if self.info:
            return dict(self.info)
        return {r["key"]: r["value"] for r in results.read_table(self.path.with_suffix(".csv"))}

    def _finetune(self, classifier) -> None:
        batch = self.scale.batch_size
        training.set_seed(self.args.seed)
        training.compile_model(classifier, "adam", LEARNING_RATE)
        augment = pipeline.build_augmentation(seed=self.args.seed)
        train_ds = pipeline.image_dataset(self.tune_train, self.root, self.size, batch,
                                          training=True, seed=self.args.seed, augment=augment)
        val_ds = (pipeline.image_dataset(self.tune_val, self.root, self.size, batch)
                  if self.tune_val else None)
        log(f"fine-tuning {self.backbone} as a classifier: {len(self.tune_train)} train / "
              f"{len(self.tune_val)} val crops, <= {self.epochs} epochs")
        fit = training.fit(classifier, train_ds, val_ds, epochs=self.epochs,
                           learning_rate=LEARNING_RATE, patience=PATIENCE,
                           verbose=0 if self.args.quiet else 2)
        acc_key = "val_accuracy" if val_ds is not None else "accuracy"
        self.info = {"finetune epochs run": fit.epochs_run, "finetune best epoch": fit.best_epoch,
                     f"finetune {acc_key}": fit.best(acc_key, "max")[0],
                     "finetune seconds": round(fit.seconds, 1)}

    def features(self, root, rows):
        """Features of ``rows`` of the store at ``root`` (cached; computed when missing)."""
        key = str(Path(root).resolve())
        if not self.path.is_file():
            # No saved extractor: a cache under this name was not made by the one we build.
            self.get()
        overwrite = self.rebuilt and key not in self._refreshed
        model = None
        if overwrite or not features.is_cached(root, rows, self.name, self.size):
            model = self.get()
        array, index = features.extract_features(
            root, rows, self.backbone, self.size, batch_size=max(self.scale.batch_size, 64),
            model=model, cache_name=self.name, overwrite=overwrite, log=log)
        self._refreshed.add(key)
        return array, index


# --------------------------------------------------------------------------- CV

def _pca_size(dims: int, n_train: int) -> int | None:
    k = min(PCA_COMPONENTS, dims, n_train - 1)
    return k if k >= 2 and dims > 2 else None


def run_cv(models, x, y, groups, fold_sets, table, features_tag, seed, quiet):
    """Cross-validates every model over every repeat's folds; rows go to ``table``."""
    for name in models:
        for r, folds in enumerate(fold_sets):
            done = {}
            for row in table.rows:
                if (row.get("features") == features_tag and row.get("model") == name
                        and row.get("repeat") == str(r) and row.get("status") == "ok"):
                    done[int(row["fold"])] = {m: float(row[m]) for m in (*METRICS, "fit_seconds")}
            if len(done) == len(folds):
                continue

            def factory(train, name=name, r=r):
                inner = None
                if name == "stacking":
                    inner = classical.inner_group_folds(y[train], groups[train], seed=seed + r)
                return classical.build_pipeline(name, pca=_pca_size(x.shape[1], len(train)),
                                                seed=seed + r, inner_cv=inner)

            def record(i, metrics, name=name, r=r):
                table.append({"features": features_tag, "model": name, "repeat": r, "fold": i,
                              "status": "ok", **metrics})

            start = time.perf_counter()
            try:
                classical.cross_validate(factory, x, y, folds, name=name, done=done,
                                         on_fold=record)
            except Exception as err:  # noqa: BLE001 - a failing model must not stop the table
                reason = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
                log(f"{name} repeat {r} failed: {reason}")
                table.append({"features": features_tag, "model": name, "repeat": r,
                              "fold": "all", "status": "failed", "reason": reason})
                continue
            if not quiet:
                log(f"  {name} repeat {r}: {len(folds)} folds in "
                      f"{time.perf_counter() - start:.1f} s")


def fold_values(table, features_tag, model) -> dict[tuple[int, int], dict]:
    """(repeat, fold) -> metrics of one model's successful folds."""
    out = {}
    for row in table.rows:
        if (row.get("features") == features_tag and row.get("model") == model
                and row.get("status") == "ok"):
            out[(int(row["repeat"]), int(row["fold"]))] = {
                m: float(row[m]) if row.get(m) not in (None, "") else float("nan")
                for m in (*METRICS, "fit_seconds")}
    return out


def summary_rows(table, features_tag, models, kinds) -> list[dict]:
    rows = []
    for name in models:
        values = fold_values(table, features_tag, name)
        row = {"model": name, "kind": kinds.get(name, "")}
        if not values:
            reasons = [r.get("reason") for r in table.rows if r.get("features") == features_tag
                       and r.get("model") == name and r.get("status") == "failed"]
            row.update({"status": "failed", "reason": reasons[-1] if reasons else "not run"})
            rows.append(row)
            continue
        for m in (*METRICS, "fit_seconds"):
            arr = np.array([v[m] for v in values.values()], dtype=float)
            row[f"{m}_mean"] = float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")
            row[f"{m}_std"] = float(np.nanstd(arr)) if np.isfinite(arr).any() else float("nan")
        row.update({"folds": len(values), "status": "ok"})
        rows.append(row)
    return rows


def compare_stacking(table, features_tag, members) -> tuple[list[dict], str]:
    """Stacking vs its best member (by mean AUC) on the same (repeat, fold) pairs."""
    stack = fold_values(table, features_tag, "stacking")
    means = {}
    for m in members:
        vals = fold_values(table, features_tag, m)
        if vals:
            means[m] = np.nanmean([v["AUC"] for v in vals.values()])
    if not stack or not means:
        return [], "stacking or its members did not run"
    best = max(means, key=lambda m: (np.nan_to_num(means[m], nan=-1), -members.index(m)))
    base = fold_values(table, features_tag, best)
    rows, verdict = [], ""
    for metric in METRICS:
        c = results.paired_comparison({k: v[metric] for k, v in stack.items()},
                                      {k: v[metric] for k, v in base.items()})
        p, delta = c["paired t p"], c["difference"]
        if np.isfinite(p) and p < 0.05:
            text = "stacking better" if delta > 0 else "stacking worse"
        elif delta == 0:
            text = "tie"
        else:
            text = "no significant difference"
        rows.append({"metric": metric, "stacking_mean": c["a mean"],
                     "best_member": best, "best_member_mean": c["b mean"],
                     "difference": delta, "folds_won": c["won"],
                     "folds_lost": c["lost"], "folds": c["pairs"],
                     "paired_t_p": p, "verdict": text})
        if metric == "AUC":
            helps = "yes" if text == "stacking better" else "no"
            verdict = (f"helps: {helps} ({text} on AUC: {c['a mean']:.4f} vs {best} "
                       f"{c['b mean']:.4f}, won {c['won']}/{c['pairs']} folds, "
                       f"paired t p={p:.3g})")
    return rows, verdict


def fold_digests(index, fold_sets) -> list[str]:
    """One short SHA-256 per repeat of which crop lies in which test fold.

    Two runs whose digests agree cross-validated the same crops in the same folds, so
    their fold metrics can be paired (the extractor is the only difference).
    """
    out = []
    for folds in fold_sets:
        fold_of = {}
        for i, (_, test) in enumerate(folds):
            for j in test:
                fold_of[int(j)] = i
        text = "\n".join(f"{index[j]['crop_path']}\t{fold_of.get(j, -1)}"
                          for j in range(len(index)))
        out.append(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16])
    return out


def compare_features(table, features_tag, digests, reference: Path, models,
                     out: Path) -> list[dict]:
    """``comparison.csv``: this run's features against a reference run's, fold by fold.

    For every model both runs cross-validated and each of :data:`COMPARED_METRICS`, the
    :func:`dfdetect.results.paired_comparison` of the two runs' (repeat, fold) values:
    means, sd, mean difference (this run - the reference), folds won / lost, paired
    t-test p. Folds are paired only where both runs used the same folds: the same
    crops in the same test fold (:func:`fold_digests`, recorded in ``setup.csv``); a
    reference written before the digests existed is paired when its store, pool size,
    identities and k agree (``folds`` says which check was made).

    Args:
        table: this run's fold table; ``features_tag`` its rows' features.
        digests: this run's :func:`fold_digests`.
        reference: the other run's folder (``folds.csv``, ``setup.csv``).
        models: the models to compare.
        out: this run's folder.

    Returns:
        The rows written (none when the reference has no run or its folds differ).
    """
    ref_setup = {r["key"]: r["value"] for r in results.read_table(reference / "setup.csv")}
    ref_table = results.ResultsTable(reference / "folds.csv",
                                     key=("features", "model", "repeat", "fold"))
    if not ref_setup or not ref_table.rows:
        log(f"{reference}: no P5 run to compare with")
        return []
    ref_tag = f"{ref_setup.get('features')}@{Path(ref_setup.get('store', '')).name}"
    if ref_tag == features_tag:
        return []  # the same features: nothing to compare
    mine = {r["key"]: r["value"] for r in results.read_table(out / "setup.csv")}
    ref_digests = ref_setup.get("cv folds sha256", "").split()
    if ref_digests:
        shared = min(len(ref_digests), len(digests))
        same = shared > 0 and ref_digests[:shared] == digests[:shared]
        how = f"same crops in the same folds ({shared} repeat(s) checked)"
    else:
        keys = ("cv crops", "cv identities", "folds")
        same = (all(ref_setup.get(k) == str(mine.get(k)) for k in keys)
                and Path(ref_setup.get("store", "")).name == Path(mine.get("store", "")).name)
        shared = len(digests)
        how = "same store, pool size, identities and k (the reference has no fold digest)"
    if not same:
        log(f"{reference}: its cross-validation folds differ from this run's; not compared")
        (out / "comparison.csv").unlink(missing_ok=True)  # never leave an earlier verdict
        return []
    rows = []
    for name in models:
        a, b = fold_values(table, features_tag, name), fold_values(ref_table, ref_tag, name)
        # repeats beyond the checked digests may hold other folds: leave them out
        b = {k: v for k, v in b.items() if k[0] < shared}
        for metric in COMPARED_METRICS:
            c = results.paired_comparison({k: v[metric] for k, v in a.items()},
                                          {k: v[metric] for k, v in b.items()})
            if c["pairs"]:
                rows.append({"model": name, "metric": metric, "features": features_tag,
                             "reference": ref_tag, **c, "folds": how})
    results.write_table(out / "comparison.csv", rows)
    for row in rows:
        if row["metric"] == "AUC":
            log(f"  {row['model']}: AUC {row['a mean']:.3f} vs {row['b mean']:.3f} (reference), "
                f"won {row['won']}/{row['pairs']} folds, paired t p={row['paired t p']:.3g}")
    return rows


def run_selection(x, y, folds, table, features_tag, seed, quiet) -> list[dict]:
    """SVM after each selection method on the same folds (first repetition)."""
    dims = x.shape[1]
    k = max(1, min(SELECTED_FEATURES, dims // 2))
    configs = {"none (all features)": {},
               f"pca ({k} components)": {"pca": k}}
    for method in classical.SELECTIONS:
        prefilter = SELECTION_POOL if method in ("forward", "backward") and dims > SELECTION_POOL \
            else None
        configs[method] = {"selection": method, "n_features": k, "prefilter": prefilter}
    out = []
    for label, params in configs.items():
        done = {}
        for row in table.rows:
            if (row.get("features") == features_tag and row.get("model") == label
                    and row.get("status") == "ok"):
                done[int(row["fold"])] = {m: float(row[m]) for m in (*METRICS, "fit_seconds")}
        if len(done) < len(folds):
            start = time.perf_counter()
            try:
                classical.cross_validate(
                    lambda train, p=params: classical.build_pipeline("svm", seed=seed, **p),
                    x, y, folds, name=label, done=done,
                    on_fold=lambda i, m, lab=label: table.append(
                        {"features": features_tag, "model": lab, "repeat": 0, "fold": i,
                         "status": "ok", **m}))
            except Exception as err:  # noqa: BLE001
                reason = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
                log(f"selection {label} failed: {reason}")
                out.append({"selection": label, "status": "failed", "reason": reason})
                continue
            if not quiet:
                log(f"  selection {label}: {time.perf_counter() - start:.1f} s")
        values = fold_values(table, features_tag, label)
        row = {"selection": label, "classifier": "svm",
               "features_kept": params.get("n_features") or params.get("pca") or dims,
               "prefilter": params.get("prefilter") or ""}
        for m in (*METRICS, "fit_seconds"):
            arr = np.array([v[m] for v in values.values()], dtype=float)
            row[f"{m}_mean"], row[f"{m}_std"] = float(np.nanmean(arr)), float(np.nanstd(arr))
        row.update({"folds": len(values), "status": "ok"})
        out.append(row)
    return out


# --------------------------------------------------------------------------- plots

def embedding_plots(out: Path, x, index, seed: int) -> None:
    # deferred: sklearn (0.5 s) is not needed for --help
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    groups = np.array(["real" if int(r["label"]) == 0 else f"fake: {r.get('method') or 'fake'}"
                       for r in index])
    z = StandardScaler().fit_transform(x)
    pca = PCA(n_components=2, random_state=seed).fit(z)
    pts = pca.transform(z)
    ev = pca.explained_variance_ratio_
    plots.scatter_2d(out / "pca.png", pts, groups,
                     title=f"P5: PCA of the CNN features ({len(z)} crops)",
                     xlabel=f"PC1 ({ev[0]:.1%} of variance)", ylabel=f"PC2 ({ev[1]:.1%})")
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(z), min(len(z), TSNE_POINTS), replace=False))
    zz = z[take]
    if zz.shape[1] > 50 and len(zz) > 50:
        zz = PCA(n_components=50, random_state=seed).fit_transform(zz)
    perplexity = float(min(30.0, max(2.0, (len(zz) - 1) / 3.0)))
    emb = TSNE(n_components=2, perplexity=perplexity, init="pca",
               random_state=seed).fit_transform(zz)
    plots.scatter_2d(out / "tsne.png", emb, groups[take],
                     title=f"P5: t-SNE of the CNN features ({len(zz)} crops, perplexity "
                           f"{perplexity:g})", xlabel="t-SNE 1", ylabel="t-SNE 2")


def video_tests(out: Path, final, extractor, root) -> dict:
    """Frame scores of the test videos, video-level metrics and the Fig. 4-5 plot."""
    rows = store.read_manifest(root)
    test = [r for r in rows if r.get("split") == "test"] or rows
    x, index = extractor.features(root, test)
    scores = classical.fake_probability(final, x)
    vids = [f"{r['source']}/{r['video_id']}" for r in index]
    labels = [int(r["label"]) for r in index]
    metrics = evaluation.frame_and_video_metrics(vids, labels, scores, THRESHOLD)
    results.write_table(out / "videos.csv", [{"store": str(root), **{
        k: metrics[k] for k in ("n", "Acc", "ROC AUC", "EER", "Macro F1", "video_n",
                                "video_Acc", "video_ROC AUC", "video_EER", "video_Macro F1")}}])
    # One real and one fake video: the ones with the most frames, then by id.
    frames: dict[str, list] = {}
    for vid, row, s in zip(vids, index, scores):
        frames.setdefault(vid, []).append((int(row["frame_index"]), float(s), int(row["label"])))
    series, table = {}, []
    for label, title in ((0, "real video"), (1, "fake video")):
        cands = sorted((v for v in frames if frames[v][0][2] == label),
                       key=lambda v: (-len(frames[v]), v))
        if not cands:
            continue
        vid = cands[0]
        pts = sorted(frames[vid])
        mean = float(np.mean([p[1] for p in pts]))
        series[f"{title} {vid.split('/')[-1]} (mean {mean:.2f})"] = (
            [p[0] for p in pts], [p[1] for p in pts])
        table += [{"video": vid, "label": label, "frame_index": f, "p_fake": s}
                  for f, s, _ in pts]
    results.write_table(out / "frame_scores.csv", table)
    plots.frame_scores(out / "frame_scores.png", series, threshold=THRESHOLD,
                       title="P5 Fig. 4-5: frame-by-frame P(fake), stacking ensemble")
    return {"video test frames": metrics["n"], "video test videos": metrics["video_n"],
            "video test video_Acc": metrics["video_Acc"]}


# --------------------------------------------------------------------------- main

def run(args) -> Path:
    """P5's study (``experiments/p5_deepforense.py``): features, cross-validation, the
    stacking comparison, feature selection, plots, the final pipeline, video tests.

    Args:
        args: the flags of :func:`add_args`.

    Returns:
        The results folder.
    """
    warnings.filterwarnings("ignore", module="sklearn")
    scale, out = experiment.scale_and_results(args)
    backbone = args.backbone or settings_for(scale.name).backbone
    k = args.folds or settings_for(scale.name).cv_folds
    repeats = args.repeats or 1
    models = args.models.split(",") if args.models else list(classical.MODELS)
    for m in models:
        classical.build_estimator(m)  # unknown names fail now, not after the features
    kinds = {m: "classifier" for m in classical.CLASSIFIERS}
    kinds.update({m: "ensemble" for m in classical.ENSEMBLES})

    root = image_store(args, scale)
    rows = store.read_manifest(root)
    tune_train, tune_val, pool = splits.finetune_partition(
        rows, args.finetune_fraction, FINETUNE_VAL, args.seed)
    extractor = Extractor(args, scale, backbone, tune_train, tune_val, root, out)
    if extractor.epochs <= 0:
        tune_train, tune_val, pool = [], [], rows
    log(f"P5 DeepForense: scale={scale.name} backbone={backbone} features={extractor.name} "
          f"store={root} fine-tune={len(tune_train)}+{len(tune_val)} crops, "
          f"cross-validation pool={len(pool)} crops, k={k}, repeats={repeats}")

    x, index = extractor.features(root, pool)
    y = np.array([int(r["label"]) for r in index])
    groups = np.array([experiment.group_key(r) for r in index])
    tag = f"{extractor.name}@{Path(root).name}"
    fold_sets = [classical.group_folds(y, groups, k, seed=args.seed + r) for r in range(repeats)]
    digests = fold_digests(index, fold_sets)

    with threadpool_limits(limits=1):  # BLAS threads only fight the folds on 2 cores
        table = results.ResultsTable(out / "folds.csv", key=("features", "model", "repeat", "fold"))
        log(f"cross-validating {len(models)} classifiers/ensembles on {x.shape[0]} x "
              f"{x.shape[1]} features")
        run_cv(models, x, y, groups, fold_sets, table, tag, args.seed, args.quiet)
        summary = summary_rows(table, tag, models, kinds)
        comparison, verdict = ([], "")
        if "stacking" in models:
            comparison, verdict = compare_stacking(
                table, tag, [m for m in classical.STACK_MEMBERS if m in models])
            results.write_table(out / "stacking.csv", comparison)
            for row in summary:
                if row["model"] == "stacking":
                    row["stacking vs best member"] = verdict
        columns = ["model", "kind", *[f"{m}_{s}" for m in METRICS for s in ("mean", "std")],
                   "fit_seconds_mean", "folds", "status", "reason", "stacking vs best member"]
        results.write_table(out / "cv.csv", summary, columns)
        # from cv.csv: error bars clipped to [0, 1], the paper's 0.875 marked
        source = backbone + (" ImageNet" if extractor.weights == "imagenet" else "")
        figures.p5_cv(out, title=f"P5: {k}-fold cross-validation (grouped by identity) on "
                                 f"{source} features")
        if verdict:
            log(f"stacking vs its best member: {verdict}")

        if not args.no_selection:
            log("feature-selection study")
            sel_table = results.ResultsTable(out / "selection_folds.csv",
                                             key=("features", "model", "repeat", "fold"))
            selection = run_selection(x, y, fold_sets[0], sel_table, tag, args.seed, args.quiet)
            results.write_table(out / "selection.csv", selection)

        log("PCA and t-SNE plots")
        embedding_plots(out, x, index, args.seed)
        log(f"fitting the final {'stacking' if 'stacking' in models else models[0]} pipeline")

        final_name = "stacking" if "stacking" in models else models[0]
        final = classical.build_pipeline(
            final_name, pca=_pca_size(x.shape[1], len(y)), seed=args.seed,
            inner_cv=classical.inner_group_folds(y, groups, seed=args.seed)
            if final_name == "stacking" else None)
        final.fit(x, y)
        path = classical.save_pipeline(final, out / "models" / f"{final_name}.skops")
        final = classical.load_pipeline(path)  # what a user gets is what is evaluated

        info = {}
        log("frame-by-frame scores of the test videos")
        try:
            info = video_tests(out, final, extractor, video_store(args, scale))
        except Exception as err:  # noqa: BLE001 - the CV results stand without the video plot
            log(f"frame-by-frame plot skipped: {type(err).__name__}: "
                  f"{' '.join(str(err).split())[:300]}")
        if args.cross:
            cross_root = experiment.dataset_store(args.cross, args.layout, args.frames,
                                                  extractor.size)
            cx, cindex = extractor.features(cross_root, store.read_manifest(cross_root))
            cm = evaluation.binary_metrics([int(r["label"]) for r in cindex],
                                           classical.fake_probability(final, cx), THRESHOLD)
            results.write_table(out / "cross.csv", [{"store": str(cross_root), "model": final_name,
                                                     **cm}])

    setup = {"scale": scale.name, "store": str(root), "backbone": backbone,
             "weights": args.weights or "none (random init)", "features": extractor.name,
             "feature dims": x.shape[1], "normalisation": not args.no_normalize,
             "fine-tuning": (f"{backbone} fitted as a classifier for <= {extractor.epochs} "
                             f"epochs on {len(tune_train)} crops ({args.finetune_fraction:.0%} "
                             "of identities, never cross-validated) before extraction"
                             if extractor.epochs > 0 else "none: features from --weights"),
             "cv crops": len(y), "cv identities": len(set(groups)), "folds": k,
             "repeats": repeats, "pca components (max)": PCA_COMPONENTS,
             "cv folds sha256": " ".join(digests),
             "final model": f"models/{final_name}.skops", **extractor.fit_info(), **info}
    results.write_table(out / "setup.csv", [{"key": a, "value": b} for a, b in setup.items()])
    reference = Path(args.reference) if args.reference else out.parent
    if reference.resolve() != out.resolve() and (reference / "folds.csv").is_file():
        log(f"comparing with the features of {reference}, fold by fold")
        compare_features(table, tag, digests, reference, models, out)
    elif args.reference:
        log(f"{reference}: no P5 run to compare with")
    log(f"results written to {out}")
    return out
