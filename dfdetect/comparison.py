"""Detectors compared on one labelled video set, with the uncertainty beside every number.

Reads the ``scores.csv`` that ``dfdetect evaluate`` writes per model and reports, for
each model and each subset of the set (all clips; the FaceForensics++ selection clips,
c23 and c40 apart; the cross-dataset test clips of Celeb-DF and DFDC; each method with
the reals of its dataset):

* the video ROC AUC with a 95 % bootstrap interval, reals and fakes resampled apart
  (:func:`dfdetect.evaluation.auc_interval`);
* accuracy at the model's own threshold with its Wilson interval, balanced accuracy, and
  the accuracy of calling every clip FAKE (the class balance a detector must beat);
* against each reference model, the paired bootstrap difference of AUCs on the same clips
  (:func:`dfdetect.evaluation.paired_auc_interval`).

Many clips share source sequences and each c40 clip recompresses a c23 one, so the clips
are not independent: the intervals are, if anything, too narrow.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from dfdetect import plots
from dfdetect.errors import DataError
from dfdetect.evaluate import parse_name
from dfdetect.evaluation import auc_interval, balanced_accuracy, paired_auc_interval, wilson_interval
from dfdetect.results import read_table, to_float, write_table

COMPARISON_COLUMNS = ("model", "subset", "role", "n_videos", "n_real", "n_fake", "n_scored",
                      "video_auc", "auc_low", "auc_high", "accuracy", "acc_low", "acc_high",
                      "balanced_accuracy", "always_fake_acc")
PAIRED_COLUMNS = ("model", "reference", "subset", "n_scored", "auc_difference", "diff_low",
                  "diff_high", "p")
#: What each subset is for (the data's rule: select on FF++, test on Celeb-DF / DFDC).
ROLES = {"all": "all", "ffpp": "selection", "ffpp_c23": "selection",
         "ffpp_c40": "selection", "test": "cross-dataset test", "celebdf": "cross-dataset test",
         "dfdc": "cross-dataset test"}


def _clip(row: Mapping) -> dict:
    name = os.path.basename(str(row["path"]))
    label, source, method = parse_name(name)
    tokens = os.path.splitext(name)[0].split("_")
    score = to_float(row.get("score"))
    return {"name": name, "label": int(row["label"]) if row.get("label") not in (None, "")
            else label, "source": row.get("source") or source,
            "method": row.get("method") or method,
            "compression": "c40" if "c40" in tokens else "c23",
            "score": score, "fake_call": str(row.get("verdict", "")).upper() == "FAKE"}


def read_scores(path: str | os.PathLike) -> list[dict]:
    """The clips of one evaluation (``scores.csv`` or the folder holding it).

    Raises:
        DataError: no ``scores.csv`` there.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "scores.csv")
    rows = read_table(path)
    if not rows:
        raise DataError("no scores here: run `dfdetect evaluate --out` first", path)
    return [_clip(r) for r in rows]


def subsets(clips: Sequence[dict]) -> dict[str, list[str]]:
    """Subset name -> clip names: all, ffpp, ffpp_c23, ffpp_c40, test, celebdf, dfdc, and
    ``method:<name>`` (that method's fakes with the reals of its dataset)."""
    out: dict[str, list[str]] = {"all": [c["name"] for c in clips]}
    ffpp = [c for c in clips if c["source"] == "ffpp"]
    out["ffpp"] = [c["name"] for c in ffpp]
    for comp in ("c23", "c40"):
        out[f"ffpp_{comp}"] = [c["name"] for c in ffpp if c["compression"] == comp]
    out["test"] = [c["name"] for c in clips if c["source"] in ("celebdf", "dfdc")]
    for source in ("celebdf", "dfdc"):
        out[source] = [c["name"] for c in clips if c["source"] == source]
    for method in sorted({c["method"] for c in clips if c["label"] == 1}):
        fakes = [c for c in clips if c["label"] == 1 and c["method"] == method]
        sources = {c["source"] for c in fakes}
        reals = [c for c in clips if c["label"] == 0 and c["source"] in sources]
        out[f"method:{method}"] = [c["name"] for c in fakes + reals]
    return {k: v for k, v in out.items() if v}


def subset_row(model: str, subset: str, clips: Sequence[dict], n_boot: int = 2000) -> dict:
    """One model on one subset: AUC with interval, accuracies with the always-FAKE rate."""
    scored = [c for c in clips if np.isfinite(c["score"])]
    y = np.array([c["label"] for c in scored], int)
    s = np.array([c["score"] for c in scored], float)
    auc, lo, hi = auc_interval(y, s, n_boot=n_boot)
    correct = sum(c["fake_call"] == bool(c["label"]) for c in scored)
    acc, acc_lo, acc_hi = wilson_interval(correct, len(scored))
    n_fake = sum(c["label"] == 1 for c in clips)
    calls = np.array([c["fake_call"] for c in scored], float)
    return {"model": model, "subset": subset,
            "role": ROLES.get(subset, "selection" if subset.startswith("method:") and
                              all(c["source"] == "ffpp" for c in clips)
                              else "cross-dataset test" if subset.startswith("method:")
                              else ""),
            "n_videos": len(clips), "n_real": len(clips) - n_fake, "n_fake": n_fake,
            "n_scored": len(scored), "video_auc": auc, "auc_low": lo, "auc_high": hi,
            "accuracy": acc, "acc_low": acc_lo, "acc_high": acc_hi,
            # the verdict already applied the model's threshold: 0.5 splits the 0/1 calls
            "balanced_accuracy": balanced_accuracy(y, calls, 0.5),
            "always_fake_acc": n_fake / len(clips) if clips else float("nan")}


def compare(evaluations: Mapping[str, str | os.PathLike], references: Sequence[str] = (),
            out: str | os.PathLike | None = None, n_boot: int = 2000,
            title: str = "") -> tuple[list[dict], list[dict]]:
    """Every model on every subset, and each model against each reference.

    Args:
        evaluations: model name -> its ``dfdetect evaluate`` folder (or scores.csv).
        references: names of ``evaluations`` to test the others against (paired); the
            references are not tested against each other.
        out: a folder for ``comparison.csv``, ``paired.csv`` and ``comparison.png``.
        n_boot: bootstrap resamples.
        title: the figure's title.

    Returns:
        ``(comparison rows, paired rows)``.

    Raises:
        DataError: the evaluations do not hold the same clips.
    """
    clips = {m: {c["name"]: c for c in read_scores(p)} for m, p in evaluations.items()}
    names = None
    for model, by_name in clips.items():
        if names is None:
            names = set(by_name)
        elif set(by_name) != names:
            raise DataError(f"{model} was evaluated on other clips than the first model "
                            f"({len(set(by_name) ^ names)} differ); evaluate each on the "
                            "same folder")
    first = next(iter(clips.values()))
    groups = subsets(list(first.values()))
    rows, paired = [], []
    for model, by_name in clips.items():
        for subset, members in groups.items():
            rows.append(subset_row(model, subset, [by_name[n] for n in members], n_boot))
    # each model that is not a reference, against each reference
    for reference in references:
        for model, by_name in clips.items():
            if model in references:
                continue
            for subset, members in groups.items():
                both = [n for n in members if np.isfinite(by_name[n]["score"])
                        and np.isfinite(clips[reference][n]["score"])]
                y = [by_name[n]["label"] for n in both]
                diff, lo, hi, p = paired_auc_interval(
                    y, [by_name[n]["score"] for n in both],
                    [clips[reference][n]["score"] for n in both], n_boot=n_boot)
                paired.append({"model": model, "reference": reference, "subset": subset,
                               "n_scored": len(both), "auc_difference": diff,
                               "diff_low": lo, "diff_high": hi, "p": p})
    if out is not None:
        out = os.fspath(out)
        os.makedirs(out, exist_ok=True)
        write_table(os.path.join(out, "comparison.csv"), _rounded(rows), COMPARISON_COLUMNS)
        if paired:
            write_table(os.path.join(out, "paired.csv"), _rounded(paired), PAIRED_COLUMNS)
        draw(os.path.join(out, "comparison.png"), rows, title=title)
    return rows, paired


def _rounded(rows: Sequence[dict]) -> list[dict]:
    return [{k: (round(v, 4) if isinstance(v, float) and np.isfinite(v) else v)
             for k, v in r.items()} for r in rows]


#: The subsets the figure shows, in order.
FIGURE_SUBSETS = ("all", "ffpp", "ffpp_c23", "ffpp_c40", "test")


def draw(path: str, rows: Sequence[dict], title: str = "") -> str:
    """AUC with its 95 % interval per subset (rows of panels) and model (markers)."""
    shown = [s for s in FIGURE_SUBSETS if any(r["subset"] == s for r in rows)]
    models = list(dict.fromkeys(r["model"] for r in rows))
    by = {(r["model"], r["subset"]): r for r in rows}
    series = {m: [(to_float(by[m, s]["video_auc"]), to_float(by[m, s]["auc_low"]),
                   to_float(by[m, s]["auc_high"])) if (m, s) in by else
                  (float("nan"),) * 3 for s in shown] for m in models}
    labels = [f"{s}\n({by[models[0], s]['n_real']} real / {by[models[0], s]['n_fake']} fake)"
              for s in shown]
    return plots.interval_dots(path, labels, series, reference=0.5,
                               title=title or "video ROC AUC with 95 % bootstrap intervals",
                               xlabel="video ROC AUC")
