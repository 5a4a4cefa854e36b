"""Inference variants of a finished detector, compared on the FF++ selection clips.

The SBI protocol lets the FF++ clips choose a checkpoint, a threshold and a *variant*.
Here a variant is how ``predict`` turns a clip's frames into one score: the frame scores'
aggregation (:data:`AGGREGATIONS`) and whether each crop is also scored mirrored and the
two averaged (:data:`VIEWS`). Every variant of a model is scored on the same clips and
compared with the shipped one (``plain`` / ``mean``) by a paired bootstrap, so a variant
is adopted only when it helps on these clips by more than their sampling noise, and on
more than one model. Several finished runs can also be combined (:data:`COMBINATIONS`:
their scores or their weights averaged) and paired against the shipped model on the same
clips. Nothing here trains, and the Celeb-DF / DFDC test clips are never
scored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from dfdetect.detector.selection import SelectionSet, frame_scores, selection_metrics
from dfdetect.evaluation import paired_auc_interval
from dfdetect.io import read_table, write_table

#: How frame scores become a clip score. ``mean`` is what predict does.
AGGREGATIONS = ("mean", "median", "mean_logit", "max")
#: ``flip_average``: each crop is also scored mirrored left-right, the two averaged.
VIEWS = ("plain", "flip_average")
#: The variant predict uses.
SHIPPED = ("plain", "mean")
VARIANT_COLUMNS = ("model", "view", "aggregation", "ffpp_auc", "ffpp_auc_c23", "ffpp_auc_c40",
                   "diff", "diff_low", "diff_high", "diff_p", "n_real", "n_fake")
#: Ways several finished detectors become one: ``ensemble`` averages their frame scores
#: (inference costs one pass per member), ``soup`` averages their weights (one pass).
COMBINATIONS = ("ensemble", "soup")
COMBINATION_COLUMNS = ("combination", "how", "members", "ffpp_auc", "ffpp_auc_c23",
                       "ffpp_auc_c40", "against", "diff", "diff_low", "diff_high", "diff_p",
                       "n_real", "n_fake")


def aggregate(scores: np.ndarray, video: np.ndarray, n_videos: int,
              how: str) -> np.ndarray:
    """One score per clip from its frames' P(fake) (NaN for a clip without a frame).

    Args:
        scores: ``(N,)`` P(fake) per crop.
        video: ``(N,)`` the clip index of each crop.
        n_videos: number of clips.
        how: one of :data:`AGGREGATIONS`; ``mean_logit`` averages log-odds, which lets
            a few confident frames count more than ``mean`` does.

    Raises:
        ValueError: an unknown aggregation.
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; one of {', '.join(AGGREGATIONS)}")
    s = np.asarray(scores, np.float64)
    if how == "mean_logit":
        q = np.clip(s, 1e-6, 1 - 1e-6)
        s = np.log(q / (1 - q))
    out = np.full(n_videos, np.nan)
    for v in range(n_videos):
        part = s[video == v]
        if part.size:
            out[v] = {"mean": np.mean, "median": np.median, "mean_logit": np.mean,
                      "max": np.max}[how](part)
    return out


def view_scores(predict_fn: Callable[[np.ndarray], np.ndarray], crops: np.ndarray,
                view: str, batch: int = 64, plain: np.ndarray | None = None) -> np.ndarray:
    """P(fake) of each uint8 crop under ``view``; ``predict_fn`` maps [0, 1] crops.
    ``plain``: the crops' plain scores where they are already known (not scored again)."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; one of {', '.join(VIEWS)}")
    if plain is None:
        plain = frame_scores(predict_fn, crops, batch)
    if view == "plain":
        return plain
    return (plain + frame_scores(predict_fn, np.ascontiguousarray(crops[:, :, ::-1]), batch)) / 2


def variant_rows(model_name: str, predict_fn: Callable[[np.ndarray], np.ndarray],
                 sel: SelectionSet, n_boot: int = 2000,
                 plain: np.ndarray | None = None) -> list[dict]:
    """Every variant of one model on the selection clips, each against :data:`SHIPPED`.

    ``plain``: the model's plain P(fake) per crop of ``sel`` where the caller has it;
    either way the crops are scored once as they are and once mirrored.

    Returns:
        One row per (view, aggregation) with the columns of :data:`VARIANT_COLUMNS`:
        AUC on all FF++ clips, c23 and c40, and the paired difference to the shipped
        variant on all clips with its 95 % interval and two-sided p.
    """
    n = len(sel.names)
    if plain is None:
        plain = frame_scores(predict_fn, sel.crops)
    scores = {}
    for view in VIEWS:
        per_frame = view_scores(predict_fn, sel.crops, view, plain=plain)
        for how in AGGREGATIONS:
            scores[view, how] = aggregate(per_frame, sel.video, n, how)
    base = scores[SHIPPED]
    ok = np.isfinite(base)
    rows = []
    for (view, how), s in scores.items():
        m = selection_metrics(s, sel)
        diff, lo, hi, p = paired_auc_interval(sel.labels[ok], s[ok], base[ok], n_boot=n_boot)
        rows.append({"model": model_name, "view": view, "aggregation": how,
                     **{k: round(float(m[k]), 4) for k in
                        ("ffpp_auc", "ffpp_auc_c23", "ffpp_auc_c40")},
                     "diff": round(diff, 4), "diff_low": round(lo, 4), "diff_high": round(hi, 4),
                     "diff_p": round(p, 4), "n_real": int(np.sum(sel.labels[ok] == 0)),
                     "n_fake": int(np.sum(sel.labels[ok] == 1))})
    return rows


def combination_row(name: str, how: str, members: list[str], per_frame: np.ndarray,
                    against: str, against_per_frame: np.ndarray, sel: SelectionSet,
                    n_boot: int = 2000) -> dict:
    """One combined detector on the selection clips, paired against a single model.

    Args:
        name: the combination's label.
        how: one of :data:`COMBINATIONS`.
        members: the combined models' labels.
        per_frame: the combination's ``(N,)`` P(fake) per crop of ``sel``.
        against: the label of the model it is compared with (the shipped one).
        against_per_frame: that model's P(fake) per crop.
        sel: the selection clips; clip scores are predict's (plain crops, mean).

    Returns:
        A row with the columns of :data:`COMBINATION_COLUMNS`.
    """
    if how not in COMBINATIONS:
        raise ValueError(f"unknown combination {how!r}; one of {', '.join(COMBINATIONS)}")
    n = len(sel.names)
    s = aggregate(per_frame, sel.video, n, SHIPPED[1])
    base = aggregate(against_per_frame, sel.video, n, SHIPPED[1])
    ok = np.isfinite(s) & np.isfinite(base)
    m = selection_metrics(s, sel)
    diff, lo, hi, p = paired_auc_interval(sel.labels[ok], s[ok], base[ok], n_boot=n_boot)
    return {"combination": name, "how": how, "members": "+".join(members),
            **{k: round(float(m[k]), 4) for k in ("ffpp_auc", "ffpp_auc_c23", "ffpp_auc_c40")},
            "against": against, "diff": round(diff, 4), "diff_low": round(lo, 4),
            "diff_high": round(hi, 4), "diff_p": round(p, 4),
            "n_real": int(np.sum(sel.labels[ok] == 0)), "n_fake": int(np.sum(sel.labels[ok] == 1))}


def _record(path: Path, rows: list[dict], key: str, columns: tuple) -> str:
    names = {r[key] for r in rows}
    kept = [r for r in read_table(path) if r.get(key) not in names]
    write_table(path, kept + rows, columns)
    return str(path)


def record_variants(results_dir: str | os.PathLike, rows: list[dict]) -> str:
    """Adds ``rows`` to ``<results_dir>/variants.csv``, replacing earlier rows of the
    same models."""
    return _record(Path(results_dir) / "variants.csv", rows, "model", VARIANT_COLUMNS)


def record_combinations(results_dir: str | os.PathLike, rows: list[dict]) -> str:
    """Adds ``rows`` to ``<results_dir>/combinations.csv``, replacing earlier rows of
    the same combinations."""
    return _record(Path(results_dir) / "combinations.csv", rows, "combination",
                   COMBINATION_COLUMNS)


def adopted(rows: list[Mapping]) -> list[tuple[str, str]]:
    """The variants that beat the shipped one on every model in ``rows`` with a paired
    interval above zero (empty: keep :data:`SHIPPED`)."""
    models = {r["model"] for r in rows}
    wins: dict[tuple[str, str], set] = {}
    for r in rows:
        if (r["view"], r["aggregation"]) != SHIPPED and float(r["diff_low"]) > 0:
            wins.setdefault((r["view"], r["aggregation"]), set()).add(r["model"])
    return sorted(k for k, v in wins.items() if v == models)
