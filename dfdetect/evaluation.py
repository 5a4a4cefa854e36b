"""Every metric the papers report, plus EER and AP, as one flat dict per evaluation.

Scores are fake-probabilities (label 1 = fake). Column names follow P1's tables.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from sklearn import metrics as skm

#: P1 Tables 3.1-3.4 columns, in the paper's order.
PAPER_COLUMNS = (
    "Acc", "Prec(0)", "Prec(1)", "Rec(0)", "Rec(1)", "ROC AUC",
    "F1(0)", "F1(1)", "Macro Prec", "Macro Rec", "Macro F1",
)
EXTRA_COLUMNS = ("EER", "AP")


def equal_error_rate(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Equal error rate: where the false-positive and false-negative rates cross.

    Interpolates linearly between the two ROC points that bracket the crossing.
    Returns NaN when only one class is present.
    """
    labels = np.asarray(labels)
    if np.unique(labels).size < 2:
        return float("nan")
    fpr, tpr, _ = skm.roc_curve(labels, scores)
    fnr = 1.0 - tpr
    diff = fpr - fnr
    idx = int(np.argmax(diff >= 0))  # first point where FPR >= FNR
    if idx == 0:
        return float((fpr[0] + fnr[0]) / 2)
    x0, x1 = diff[idx - 1], diff[idx]
    t = x0 / (x0 - x1) if x1 != x0 else 0.0
    return float(fpr[idx - 1] + t * (fpr[idx] - fpr[idx - 1]))


def binary_metrics(labels: Sequence[int], scores: Sequence[float],
                   threshold: float = 0.5) -> dict:
    """All metrics of a binary detector.

    Args:
        labels: 1 fake, 0 real.
        scores: probability of fake, same length.
        threshold: a score >= threshold is called fake.

    Returns:
        A flat dict: the P1 columns (``Acc``, ``Prec(0)`` ... ``Macro F1``), ``EER``,
        ``AP``, the confusion counts ``TN FP FN TP`` and ``n``. AUC, EER and AP are NaN
        when the labels hold a single class.
    """
    labels = np.asarray(labels, dtype=int).ravel()
    scores = np.asarray(scores, dtype=float).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in length")
    preds = (scores >= threshold).astype(int)
    prec, rec, f1, _ = skm.precision_recall_fscore_support(
        labels, preds, labels=[0, 1], zero_division=0)
    two_classes = np.unique(labels).size == 2
    tn, fp, fn, tp = skm.confusion_matrix(labels, preds, labels=[0, 1]).ravel()
    return {
        "Acc": float(skm.accuracy_score(labels, preds)),
        "Prec(0)": float(prec[0]), "Prec(1)": float(prec[1]),
        "Rec(0)": float(rec[0]), "Rec(1)": float(rec[1]),
        "ROC AUC": float(skm.roc_auc_score(labels, scores)) if two_classes else float("nan"),
        "F1(0)": float(f1[0]), "F1(1)": float(f1[1]),
        "Macro Prec": float(prec.mean()), "Macro Rec": float(rec.mean()),
        "Macro F1": float(f1.mean()),
        "EER": equal_error_rate(labels, scores),
        "AP": float(skm.average_precision_score(labels, scores)) if two_classes else float("nan"),
        "TN": int(tn), "FP": int(fp), "FN": int(fn), "TP": int(tp),
        "n": int(labels.size),
    }


def aggregate_by_video(video_ids: Sequence[str], labels: Sequence[int],
                       scores: Sequence[float]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Frame scores -> one score per video (the mean, as DeepfakeBench does).

    Returns:
        ``(video_ids, labels, scores)`` with one entry per video, in first-seen order.

    Raises:
        ValueError: when one video's frames carry different labels.
    """
    order: list[str] = []
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    video_label: dict[str, int] = {}
    for vid, lab, score in zip(video_ids, labels, scores):
        vid = str(vid)
        if vid not in sums:
            order.append(vid)
            sums[vid], counts[vid], video_label[vid] = 0.0, 0, int(lab)
        elif video_label[vid] != int(lab):
            raise ValueError(f"video {vid!r} has frames labelled both real and fake")
        sums[vid] += float(score)
        counts[vid] += 1
    return (order, np.array([video_label[v] for v in order]),
            np.array([sums[v] / counts[v] for v in order]))


def frame_and_video_metrics(video_ids: Sequence[str], labels: Sequence[int],
                            scores: Sequence[float], threshold: float = 0.5) -> dict:
    """Frame-level metrics plus video-level ones prefixed ``video_``."""
    out = binary_metrics(labels, scores, threshold)
    _, vlabels, vscores = aggregate_by_video(video_ids, labels, scores)
    out.update({f"video_{k}": v for k, v in binary_metrics(vlabels, vscores, threshold).items()})
    return out


def select(metrics: Mapping, columns: Sequence[str]) -> dict:
    """The chosen columns of a metrics dict, in order."""
    return {c: metrics[c] for c in columns}


def auc_chance_p(auc: float, n_positive: int, n_negative: int) -> float:
    """One-sided p-value that a scorer with no skill reaches ROC AUC ``auc`` or more.

    The AUC is the Mann-Whitney U over ``n_positive * n_negative`` pairs; under the null
    it is ~Normal(0.5, (n_pos + n_neg + 1) / (12 n_pos n_neg)) (no ties). With 12 reals
    and 20 fakes its sd is 0.107, so one model's 0.70 is no proof of skill.

    Returns:
        The p-value, NaN when an input is missing or a class is empty.
    """
    if not (n_positive > 0 and n_negative > 0) or auc is None or math.isnan(auc):
        return float("nan")
    sd = math.sqrt((n_positive + n_negative + 1) / (12.0 * n_positive * n_negative))
    return 0.5 * math.erfc((auc - 0.5) / sd / math.sqrt(2.0))


def _auc_of_rows(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``scores`` (..., n) against ``labels`` (..., n), by ranks
    (the Mann-Whitney statistic, ties counted half) so thousands of resamples cost one
    vectorised call instead of a loop over ``roc_auc_score``."""
    from scipy.stats import rankdata  # deferred: scipy.stats (0.3 s) serves two functions

    ranks = rankdata(scores, axis=-1)
    pos = labels.sum(-1)
    neg = labels.shape[-1] - pos
    with np.errstate(invalid="ignore", divide="ignore"):  # one class: NaN, as sklearn's
        return (np.where(labels, ranks, 0.0).sum(-1) - pos * (pos + 1) / 2) / (pos * neg)


def paired_auc_bootstrap(labels: Sequence[int], scores_a, scores_b, n_boot: int = 2000,
                         seed: int = 0) -> tuple[float, float]:
    """Is model a's mean ROC AUC different from b's on the same test items?

    A stratified bootstrap over the test items (reals and fakes resampled separately,
    so every resample has both): each resample recomputes every repeat's AUC for both
    models on the same items, and the difference of their means over repeats. This is
    the test-set half of the uncertainty; the spread between repeats (training noise)
    is the other, which a paired test over repeats measures.

    Args:
        labels: 0 (real) / 1 (fake) per test item.
        scores_a: P(fake) of model a, shape (n,) or (repeats, n), items in ``labels``
            order.
        scores_b: the same for model b (its own number of repeats).
        n_boot: resamples.
        seed: the resampling seed (the p-value is reproducible).

    Returns:
        (mean AUC of a - mean AUC of b on the items as they are, two-sided p-value);
        p is NaN when a class is missing.
    """
    observed, diff = _paired_differences(labels, scores_a, scores_b, n_boot, seed)
    if diff is None:
        return observed, float("nan")
    # Two-sided: how often the resampled difference falls on either side of zero,
    # with the +1 that keeps a bootstrap p-value above 0.
    tail = min(np.sum(diff <= 0), np.sum(diff >= 0))
    return observed, float(min(1.0, 2 * (tail + 1) / (n_boot + 1)))


def _stratified_indices(y: np.ndarray, n_boot: int, seed: int) -> np.ndarray | None:
    """``(n_boot, n)`` resampled item indices, reals and fakes drawn separately."""
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    if not pos.size or not neg.size:
        return None
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(pos, (n_boot, pos.size)),
                           rng.choice(neg, (n_boot, neg.size))], axis=1)


def _paired_differences(labels, scores_a, scores_b, n_boot: int, seed: int):
    """(observed difference of mean AUCs, its bootstrap resamples or None)."""
    y = np.asarray(labels).astype(bool)
    a = np.atleast_2d(np.asarray(scores_a, float))
    b = np.atleast_2d(np.asarray(scores_b, float))
    if a.shape[-1] != y.size or b.shape[-1] != y.size:
        raise ValueError(f"scores for {a.shape[-1]} and {b.shape[-1]} items, labels for {y.size}")
    observed = float(_auc_of_rows(y, a).mean() - _auc_of_rows(y, b).mean())
    idx = _stratified_indices(y, n_boot, seed)
    if idx is None:
        return observed, None
    ys = y[idx]
    return observed, (_auc_of_rows(ys, a[:, idx]).mean(0) - _auc_of_rows(ys, b[:, idx]).mean(0))


def paired_auc_interval(labels: Sequence[int], scores_a, scores_b, n_boot: int = 2000,
                        seed: int = 0, level: float = 0.95) -> tuple[float, float, float, float]:
    """AUC(a) - AUC(b) on the same items with its paired bootstrap interval and p-value.

    The resampling of :func:`paired_auc_bootstrap` (stratified by label, the same items
    for both models); the interval is the percentile interval of the resampled
    differences.

    Returns:
        ``(difference, low, high, two-sided p)``; the last three NaN when a class is missing.
    """
    observed, diff = _paired_differences(labels, scores_a, scores_b, n_boot, seed)
    if diff is None:
        return observed, float("nan"), float("nan"), float("nan")
    tail = min(np.sum(diff <= 0), np.sum(diff >= 0))
    lo, hi = np.nanpercentile(diff, [50 * (1 - level), 50 * (1 + level)])
    return observed, float(lo), float(hi), float(min(1.0, 2 * (tail + 1) / (n_boot + 1)))


def auc_interval(labels: Sequence[int], scores: Sequence[float], n_boot: int = 2000,
                 seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """ROC AUC with a percentile bootstrap interval, reals and fakes resampled apart.

    Stratified so every resample has both classes, as the test set itself does: with 3
    reals and 5 fakes the interval is honest about how little such a set can say.

    Returns:
        ``(auc, low, high)``; all NaN when a class is missing.
    """
    y = np.asarray(labels).astype(bool)
    x = np.asarray(scores, float)
    idx = _stratified_indices(y, n_boot, seed)
    if idx is None:
        return float("nan"), float("nan"), float("nan")
    auc = float(_auc_of_rows(y, x))
    lo, hi = np.nanpercentile(_auc_of_rows(y[idx], x[idx]), [50 * (1 - level), 50 * (1 + level)])
    return auc, float(lo), float(hi)


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """A proportion with its Wilson score interval (sound at small n and near 0 or 1).

    Returns:
        ``(proportion, low, high)``; NaN for ``n == 0``.
    """
    if n <= 0:
        return float("nan"), float("nan"), float("nan")
    from scipy.stats import norm  # deferred: see _auc_of_rows

    z = float(norm.ppf(0.5 + level / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def balanced_accuracy(labels: Sequence[int], scores: Sequence[float], threshold: float) -> float:
    """Mean of the true-positive and true-negative rates at ``threshold`` (NaN without
    both classes): 0.5 for calling everything fake, whatever the class balance."""
    y = np.asarray(labels).astype(bool)
    pred = np.asarray(scores, float) >= threshold
    if y.all() or not y.any():
        return float("nan")
    return float(0.5 * (pred[y].mean() + (~pred[~y]).mean()))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (family-wise error control).

    A family of tests read together (P1's fusion-vs-part comparisons, P3's model-vs-
    baseline ones) finds something "significant" by chance more often than one test
    does; Holm keeps the chance of any false rejection at the level without assuming
    the tests are independent, and is never less powerful than Bonferroni.

    Args:
        p_values: raw p-values in any order; NaN ones (no test possible) are left out of
            the family and stay NaN.

    Returns:
        The adjusted p-values in the input order: the k-th smallest of m finite ones is
        ``max over j <= k of min(1, (m - j + 1) * p_(j))`` (monotone in the raw order).
    """
    p = np.asarray(p_values, float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    running = 0.0
    for rank, i in enumerate(finite[np.argsort(p[finite], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return [float(v) for v in out]
