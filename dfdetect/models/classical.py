"""P5 (DeepForense): scikit-learn pipelines over per-image CNN features.

A pipeline is ``StandardScaler -> [importance prefilter] -> [selection] -> [PCA] ->
classifier``, built by name with :func:`build_pipeline`:

- classifiers (:data:`CLASSIFIERS`): ``svm`` (RBF kernel with Platt-scaled probabilities),
  ``random_forest``, ``mlp`` (a small dense network, scikit-learn's ``MLPClassifier``);
- ensembles (:data:`ENSEMBLES`): ``bagging`` (10 SVMs on random 80 % subsets, P(fake) =
  the fraction of their votes), ``gradient_boosting`` and ``adaboost`` (boosting),
  ``stacking`` (SVM + random forest + MLP under a logistic-regression meta-learner);
- selection (:data:`SELECTIONS`): ``importance`` (random-forest importance ranking),
  ``forward`` / ``backward`` (``SequentialFeatureSelector``), ``rfe`` (recursive feature
  elimination); each keeps exactly ``n_features`` features.

:func:`group_folds` gives stratified, grouped k-fold splits (no identity in two folds) and
:func:`cross_validate` runs one pipeline over them.

Saving: pipelines are written with ``skops.io`` (:func:`save_pipeline`), not pickle.
A pickle runs arbitrary code when it is loaded, so a model file received from elsewhere
would be a program; skops stores the object tree as data and :func:`load_pipeline`
refuses any file that names a type outside skops' default safe set (scikit-learn
estimators, NumPy) plus the short :data:`TRUSTED_TYPES` allow-list (types these pipelines
really contain), before constructing anything. Nothing is ever unpickled.

Paper settings the text leaves open (assumed here; also in the experiment's docstring):
SVM ``C=1, gamma="scale"``; forest of 100 trees; MLP 128-64 ReLU, L2 1e-3, Adam, at
most 200 epochs; 10 bagged SVMs on 80 % subsets drawn without replacement; 100 boosting
rounds (depth-3 trees for gradient boosting, stumps for AdaBoost); 5-fold inner CV for
stacking. Scikit-learn 1.9 deprecates ``SVC(probability=True)``;
``CalibratedClassifierCV(SVC(), ensemble=False)`` is the replacement it names and
computes the same Platt scaling, here on 3 internal folds (libsvm used 5; 3 keeps it
working on the few rows of a ``smoke`` run).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import (AdaBoostClassifier, BaggingClassifier,
                              GradientBoostingClassifier, RandomForestClassifier,
                              StackingClassifier)
from sklearn.feature_selection import RFE, SelectFromModel, SequentialFeatureSelector
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from dfdetect.errors import DataError, ModelError
from dfdetect.evaluation import binary_metrics

__all__ = ["CLASSIFIERS", "ENSEMBLES", "MODELS", "SELECTIONS", "STACK_MEMBERS",
           "TRUSTED_TYPES", "CVResult", "build_estimator", "build_pipeline",
           "build_selector", "cross_validate", "fake_probability", "fold_metrics",
           "group_folds", "inner_group_folds",
           "load_pipeline", "save_pipeline", "selected_features"]

CLASSIFIERS: tuple[str, ...] = ("svm", "random_forest", "mlp")
ENSEMBLES: tuple[str, ...] = ("bagging", "gradient_boosting", "adaboost", "stacking")
MODELS: tuple[str, ...] = CLASSIFIERS + ENSEMBLES
SELECTIONS: tuple[str, ...] = ("importance", "forward", "backward", "rfe")
#: The base classifiers the stacking ensemble combines.
STACK_MEMBERS: tuple[str, ...] = CLASSIFIERS

#: Types outside skops' default safe set that these pipelines hold (measured by fitting
#: every model and selection and asking ``skops.io.get_untrusted_types``): the calibrated
#: SVM's parts, the stacking folds, tree structures, the MLP's optimiser state, bunches.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.tree._tree.Tree",
    "sklearn.utils._bunch.Bunch",
)

SVM_C, SVM_GAMMA = 1.0, "scale"
FOREST_TREES = 100
MLP_LAYERS = (128, 64)
BAGGING_ESTIMATORS, BAGGING_SAMPLES = 10, 0.8
BOOSTING_ROUNDS = 100
INNER_FOLDS = 5
CALIBRATION_FOLDS = 3


def _svc(seed: int) -> SVC:
    return SVC(kernel="rbf", C=SVM_C, gamma=SVM_GAMMA, random_state=seed)


def _svm(seed: int) -> BaseEstimator:
    # Platt scaling on internal folds, then a refit on everything: what probability=True did.
    return CalibratedClassifierCV(_svc(seed), method="sigmoid", cv=CALIBRATION_FOLDS,
                                  ensemble=False)


def _forest(seed: int) -> BaseEstimator:
    return RandomForestClassifier(n_estimators=FOREST_TREES, random_state=seed, n_jobs=1)


def _mlp(seed: int) -> BaseEstimator:
    # Stops when the training loss stalls; early stopping on a held-out 10 % would need
    # more rows than a smoke fold (or a stacking inner fold) has.
    return MLPClassifier(hidden_layer_sizes=MLP_LAYERS, alpha=1e-3, learning_rate_init=1e-3,
                         max_iter=200, n_iter_no_change=10, random_state=seed)


def build_estimator(name: str, seed: int = 0,
                    inner_cv: int | Iterable | None = None) -> BaseEstimator:
    """One classifier or ensemble by name (no scaling; see :func:`build_pipeline`).

    Args:
        name: one of :data:`MODELS`.
        seed: random state of every randomised part.
        inner_cv: folds of the stacking meta-learner's out-of-fold predictions: an int
            (stratified k-fold) or precomputed ``(train, test)`` index pairs over the rows
            the pipeline will be fitted on, e.g. grouped folds so no identity leaks
            between the members' training and the meta-learner's inputs. Default 5.

    Returns:
        An unfitted estimator with ``predict_proba``.

    Raises:
        ModelError: an unknown name.
    """
    if name == "svm":
        return _svm(seed)
    if name == "random_forest":
        return _forest(seed)
    if name == "mlp":
        return _mlp(seed)
    if name == "bagging":
        # Plain SVMs: the bag's P(fake) is the fraction of votes (calibrating every
        # bootstrap sample would cost 4x and fails on tiny bootstraps).
        # Subsets drawn without replacement ("subagging"): a bootstrap of a small fold
        # can hold one class only, which an SVM cannot fit; 80 % without replacement
        # always holds both classes unless one is under 20 % of the data.
        return BaggingClassifier(_svc(seed), n_estimators=BAGGING_ESTIMATORS,
                                 max_samples=BAGGING_SAMPLES, bootstrap=False,
                                 random_state=seed, n_jobs=1)
    if name == "gradient_boosting":
        return GradientBoostingClassifier(n_estimators=BOOSTING_ROUNDS, max_depth=3,
                                          learning_rate=0.1, subsample=0.8, random_state=seed)
    if name == "adaboost":
        return AdaBoostClassifier(n_estimators=BOOSTING_ROUNDS, learning_rate=0.5,
                                  random_state=seed)
    if name == "stacking":
        if inner_cv is None:
            inner_cv = StratifiedKFold(INNER_FOLDS, shuffle=True, random_state=seed)
        elif not isinstance(inner_cv, int):
            inner_cv = [(np.asarray(a), np.asarray(b)) for a, b in inner_cv]
        return StackingClassifier(
            [(m, build_estimator(m, seed)) for m in STACK_MEMBERS],
            final_estimator=LogisticRegression(), cv=inner_cv,
            stack_method="predict_proba", n_jobs=1)
    raise ModelError(f"unknown classifier {name!r}; choose one of {', '.join(MODELS)}")


def build_selector(method: str, n_features: int, seed: int = 0, cv: int = 3) -> BaseEstimator:
    """A feature selector that keeps exactly ``n_features`` columns.

    Args:
        method: ``importance`` (ranking by random-forest impurity importance),
            ``forward`` / ``backward`` (sequential selection scored by linear
            discriminant analysis' ``cv``-fold accuracy), ``rfe`` (recursive elimination of the
            features with the smallest logistic-regression weights, 10 % per step).
        n_features: how many features to keep (>= 1).
        seed: random state of the importance forest.
        cv: folds of sequential selection's scoring.

    Raises:
        ModelError: an unknown method or a bad ``n_features``.
    """
    if not isinstance(n_features, (int, np.integer)) or n_features < 1:
        raise ModelError(f"n_features must be a positive integer, got {n_features!r}")
    n_features = int(n_features)
    if method == "importance":
        forest = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
        # threshold=-inf: rank only, so exactly max_features columns survive.
        return SelectFromModel(forest, max_features=n_features, threshold=-np.inf)
    if method in ("forward", "backward"):
        # LDA scores a candidate subset in closed form: sequential selection fits
        # ~dims x n_features x cv models, so the scorer must be cheap.
        return SequentialFeatureSelector(LinearDiscriminantAnalysis(),
                                         n_features_to_select=n_features,
                                         direction=method, cv=cv, n_jobs=1)
    if method == "rfe":
        return RFE(LogisticRegression(max_iter=500), n_features_to_select=n_features, step=0.1)
    raise ModelError(f"unknown selection {method!r}; choose one of {', '.join(SELECTIONS)}")


def build_pipeline(name: str, selection: str | None = None, n_features: int | None = None,
                   pca: int | float | None = None, prefilter: int | None = None,
                   seed: int = 0, inner_cv: int | Iterable | None = None) -> Pipeline:
    """Standardisation, optional selection and PCA, then a classifier or ensemble.

    Args:
        name: one of :data:`MODELS`.
        selection: one of :data:`SELECTIONS`, or None.
        n_features: features the selection keeps (required with ``selection``).
        pca: PCA components (an int, at most the fitted rows and columns) or a variance
            fraction in (0, 1); None or 0 for none.
        prefilter: keep this many features by importance ranking before ``selection``
            (sequential selection costs ~dims^2 fits; 2048-d ResNet features need this).
        seed: random state of every randomised step.
        inner_cv: see :func:`build_estimator` (stacking only).

    Returns:
        An unfitted ``sklearn.pipeline.Pipeline`` whose last step is named ``model``.
    """
    steps: list[tuple[str, BaseEstimator]] = [("scale", StandardScaler())]
    if prefilter:
        steps.append(("prefilter", build_selector("importance", prefilter, seed)))
    if selection:
        if n_features is None:
            raise ModelError(f"selection {selection!r} needs n_features")
        steps.append(("select", build_selector(selection, n_features, seed)))
    if pca:
        steps.append(("pca", PCA(n_components=pca, random_state=seed)))
    steps.append(("model", build_estimator(name, seed, inner_cv)))
    return Pipeline(steps)


def fake_probability(model, features: np.ndarray) -> np.ndarray:
    """P(fake) of each row from a fitted classifier/pipeline (class 1 = fake)."""
    probs = np.asarray(model.predict_proba(np.asarray(features, dtype=np.float32)))
    classes = list(getattr(model, "classes_", [0, 1]))
    if 1 not in classes:
        return np.zeros(len(probs))
    return probs[:, classes.index(1)].astype(np.float64)


def selected_features(pipeline: Pipeline, n_inputs: int) -> np.ndarray:
    """Indices (into the pipeline's input columns) of the features its selectors keep."""
    keep = np.arange(n_inputs)
    for step in ("prefilter", "select"):
        if step in pipeline.named_steps:
            keep = keep[pipeline.named_steps[step].get_support()]
    return keep


# --------------------------------------------------------------------------- folds

def group_folds(labels: Sequence[int], groups: Sequence, k: int,
                seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified group k-fold: each group (identity/video) lies in exactly one test fold.

    Args:
        labels: 0/1 labels per row.
        groups: group key per row (rows of one identity share it).
        k: folds (>= 2).
        seed: shuffles which groups go to which fold.

    Returns:
        ``k`` pairs of (train indices, test indices).

    Raises:
        DataError: fewer groups than folds, or a single class.
    """
    labels = np.asarray(labels, dtype=int)
    groups = np.asarray([str(g) for g in groups])
    n_groups = len(np.unique(groups))
    if k < 2:
        raise DataError(f"cross-validation needs at least 2 folds, got {k}")
    if n_groups < k:
        raise DataError(f"{n_groups} identities/videos cannot fill {k} folds")
    if np.unique(labels).size < 2:
        raise DataError("cross-validation needs both real and fake samples")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(np.asarray(tr), np.asarray(te))
            for tr, te in splitter.split(np.zeros(len(labels)), labels, groups)]


@dataclasses.dataclass
class CVResult:
    """One model's cross-validation.

    Attributes:
        name: model name.
        folds: one metrics dict per fold (``Accuracy, Precision, Recall, F1, AUC``,
            ``fit_seconds``), in fold order.
        scores: out-of-fold P(fake) per input row (NaN for rows no fold tested).
    """

    name: str
    folds: list[dict]
    scores: np.ndarray

    def summary(self) -> dict:
        """Mean and standard deviation (ddof 0) of every fold metric."""
        out: dict = {"model": self.name, "folds": len(self.folds)}
        for key in self.folds[0] if self.folds else ():
            values = np.array([f[key] for f in self.folds], dtype=float)
            out[f"{key}_mean"] = float(np.nanmean(values))
            out[f"{key}_std"] = float(np.nanstd(values))
        return out


def fold_metrics(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> dict:
    """Accuracy, precision / recall / F1 of the fake class, and ROC AUC."""
    m = binary_metrics(labels, scores, threshold)
    return {"Accuracy": m["Acc"], "Precision": m["Prec(1)"], "Recall": m["Rec(1)"],
            "F1": m["F1(1)"], "AUC": m["ROC AUC"]}


def cross_validate(factory: Callable[[np.ndarray], BaseEstimator], features: np.ndarray,
                   labels: Sequence[int], folds: Sequence[tuple[np.ndarray, np.ndarray]],
                   name: str = "model", done: Mapping[int, dict] | None = None,
                   on_fold: Callable[[int, dict], None] | None = None) -> CVResult:
    """Fits a fresh pipeline per fold and scores the held-out fold.

    Args:
        factory: ``factory(train_indices) -> unfitted estimator`` (the indices let a
            caller build grouped inner folds for stacking).
        features: ``(rows, dims)``.
        labels: 0/1 per row.
        folds: from :func:`group_folds`.
        name: recorded in the result.
        done: fold index -> metrics already computed (a resumed run skips them; their
            out-of-fold scores stay NaN).
        on_fold: called with (fold index, metrics) after each new fold.
    """
    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels, dtype=int)
    scores = np.full(len(labels), np.nan)
    results = []
    for i, (train, test) in enumerate(folds):
        if done and i in done:
            results.append(dict(done[i]))
            continue
        model = factory(np.asarray(train))
        start = time.perf_counter()
        model.fit(features[train], labels[train])
        seconds = time.perf_counter() - start
        scores[test] = fake_probability(model, features[test])
        metrics = {**fold_metrics(labels[test], scores[test]), "fit_seconds": seconds}
        results.append(metrics)
        if on_fold:
            on_fold(i, metrics)
    return CVResult(name, results, scores)


def inner_group_folds(labels: Sequence[int], groups: Sequence, k: int = INNER_FOLDS,
                      seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]] | int:
    """Grouped folds for stacking's meta-learner within one training fold.

    Falls back to plain ``min(k, rows per class)``-fold when there are too few groups.
    """
    groups = np.asarray([str(g) for g in groups])
    labels = np.asarray(labels, dtype=int)
    k = int(min(k, len(np.unique(groups)), np.bincount(labels, minlength=2).min()))
    if k < 2:
        raise DataError("too few samples per class for stacking's inner folds")
    try:
        return group_folds(labels, groups, k, seed)
    except (DataError, ValueError):
        return k


# --------------------------------------------------------------------------- saving

def save_pipeline(model: BaseEstimator, path: str | os.PathLike) -> Path:
    """Writes a fitted pipeline with ``skops.io`` (atomic: a temporary file then rename).

    Returns:
        The path written (``.skops`` is the conventional suffix).
    """
    import skops.io as sio  # deferred: skops only to save or load a pipeline

    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sio.dump(model, tmp)
    os.replace(tmp, path)
    return path


def load_pipeline(path: str | os.PathLike, trusted: Sequence[str] = ()) -> BaseEstimator:
    """Loads a pipeline written by :func:`save_pipeline`, refusing unknown types.

    Args:
        path: a ``.skops`` file.
        trusted: further type names (``module.Class``) to accept besides
            :data:`TRUSTED_TYPES`; only for files you produced yourself.

    Raises:
        ModelError: missing or unreadable file, or a file naming a type outside the
            allow-list (it is not loaded).
    """
    import skops.io as sio  # deferred: skops only to save or load a pipeline

    path = Path(os.fspath(path))
    if not path.is_file():
        raise ModelError("no such pipeline file", path)
    allowed = set(TRUSTED_TYPES) | set(trusted)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as err:  # noqa: BLE001 - any parse failure means "not a skops file"
        raise ModelError(f"not a skops pipeline file ({type(err).__name__})", path) from None
    unexpected = sorted(set(untrusted) - allowed)
    if unexpected:
        raise ModelError(f"refusing to load: the file names untrusted type(s) "
                         f"{', '.join(unexpected)}", path)
    try:
        return sio.load(path, trusted=sorted(set(untrusted)))
    except Exception as err:  # noqa: BLE001
        raise ModelError(f"cannot load pipeline ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:200]})", path) from None
