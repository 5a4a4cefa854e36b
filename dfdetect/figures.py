"""The papers' figures, drawn from the tables a results folder commits.

Every function here reads only files that an experiment writes and the repository
commits (``summary.csv``, ``runs.csv``, ``table_3.csv``, ``scores/*.csv``, ``cv.csv``...),
so the figures can be redrawn without training anything::

    python -m dfdetect.figures            # every figure under results/
    python -m dfdetect.figures results/p2 # one paper's

The experiments call the same functions after writing their tables, so a new run
draws the same figures (P4's Fig. 8 and Fig. 10 from the per-epoch ``curves.csv`` its
runs commit). What the redraw cannot do: P3's Grad-CAM grids need the trained models;
they are drawn by the experiment only.

Conventions: loss and accuracy on separate axes; abbreviations spelled out in a caption;
error bars (one standard deviation) clipped to the values a metric can take; the
paper's numbers drawn beside ours (dashed lines or hatched bars) wherever it gives them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dfdetect.io import atomic_path, read_table  # noqa: E402

__all__ = ["p2_family", "p2_folder", "fusion_roc", "p3_roc", "p4_curves", "p5_cv", "roc_styles",
           "training_curves", "redraw", "main"]

LN2 = math.log(2.0)
#: Colours of the four P2 metrics, kept across every P2 figure.
_P2_COLORS = {"L_t": "tab:blue", "L_v": "tab:orange", "A_t": "tab:green", "A_v": "tab:red"}
_P2_NAMES = {"L_t": "L_t: training loss (lowest over the epochs)",
             "L_v": "L_v: validation loss (lowest)",
             "A_t": "A_t: training accuracy (highest)",
             "A_v": "A_v: validation accuracy (highest)"}
_P2_LR = {"L_t": "L_r_Lt", "L_v": "L_r_Lv", "A_t": "L_r_At", "A_v": "L_r_Av"}
#: Figure numbers and file slugs of each P2 folder's families.
P2_FIGURES = {"custom_cnn": {"Custom CNN": (13, 14, 15)},
              "inception": {"InceptionV3": (16, 17, "17b")},
              # the same study on ImageNet EfficientNet-Lite0 (--network lite0)
              "lite0_unfreeze": {"EfficientNet-Lite0": (16, 17, "17b")},
              "sequence": {"LSTM": (18, 19, 20), "GRU": (21, 22, 23), "MLP": (24, 25, 26)}}
#: How each family's configuration names read.
_P2_NAMING = {
    "Custom CNN": "configuration = <conv layers>-<filters>: const<N> = N filters in every "
                  "layer, asc = filter counts rising layer by layer, desc = falling",
    "InceptionV3": "configuration = what of InceptionV3 trains: top50 / top25 = its top "
                   "50 % / 25 % of layers and the head, head = the classification head only",
    "EfficientNet-Lite0": "configuration = what of ImageNet EfficientNet-Lite0 trains: "
                          "top50 / top25 = its top 50 % / 25 % of layers and the head, head "
                          "= the classification head only; dashed: the paper's InceptionV3",
    "LSTM": "configuration = lstm-<layers>x<units>: stacked LSTM layers of that many units",
    "GRU": "configuration = gru-<layers>x<units>: stacked GRU layers of that many units",
    "MLP": "configuration = mlp-<layers>-<widths>: dense layers, const<N> = N units each, "
           "asc / desc = widths rising / falling",
}


# ----------------------------------------------------------------------------- helpers

def _num(row: Mapping | None, key: str) -> float:
    try:
        return float((row or {}).get(key, "nan"))
    except (TypeError, ValueError):
        return float("nan")


def _save(fig, path) -> str:
    """Atomic write (temp + rename) of a figure laid out by its caller; the bounding box
    is widened to every legend and caption placed outside the axes."""
    path = os.fspath(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", pad_inches=0.15,
                        format=os.path.splitext(path)[1][1:] or None)
    finally:
        plt.close(fig)
    return path


def clipped_errors(means, stds, low: float = 0.0, high: float = math.inf) -> np.ndarray:
    """(2, n) asymmetric error bars of mean +- std that never leave [low, high]."""
    means = np.asarray(means, float)
    stds = np.nan_to_num(np.asarray(stds, float))
    lower = np.clip(np.minimum(stds, means - low), 0.0, None)
    upper = np.clip(np.minimum(stds, high - means), 0.0, None)
    return np.nan_to_num(np.vstack([lower, upper]))


def _bars(ax, x, values, errors, width, offset, color, label, hatch=None):
    ax.bar(x + offset, np.asarray(values, float), width, yerr=errors, capsize=2,
           color=color, label=label, error_kw=dict(lw=0.8, alpha=0.8),
           **({"hatch": hatch, "alpha": 0.5} if hatch else {}))


def _mark_ticks(ax, names, chosen: str | None, paper_pick: str | None) -> None:
    for tick, name in zip(ax.get_xticklabels(), names):
        if name == chosen:
            tick.set_fontweight("bold")
            tick.set_color("black")
        if name == paper_pick:
            tick.set_fontstyle("italic")
            tick.set_color("tab:purple")


def _caption(fig, lines: Sequence[str], size: float = 7.5) -> None:
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=size, va="bottom", ha="left",
             wrap=True)


# ------------------------------------------------------------------------------- P2

def _table_3_pick(out: Path, family: str) -> str | None:
    """The family's pick in ``table_3.csv`` when that table is not older than
    ``summary.csv`` (a grid that plots before writing its Table 3 gets no stale pick)."""
    table, summary = out / "table_3.csv", out / "summary.csv"
    if not table.is_file() or (summary.is_file()
                               and table.stat().st_mtime < summary.stat().st_mtime):
        return None
    return next((r.get(family) for r in read_table(table) if r.get("metric") == "model"),
                None) or None


def _p2_reading(out: Path, family: str, chosen, paper, runs, epochs):
    """Fill what the caller did not give from the folder's committed files."""
    table = read_table(out / "table_3.csv") if (out / "table_3.csv").is_file() else []
    by_metric = {r["metric"]: r for r in table}
    # A family the paper did not have shows the paper's column its table holds (the
    # Lite0 unfreezing study: the paper's InceptionV3).
    paper_cols = [c for c in (table[0] if table else {}) if c.endswith(" (paper)")]
    col = f"{family} (paper)" if f"{family} (paper)" in paper_cols else \
        (paper_cols[0] if len(paper_cols) == 1 else None)
    if paper is None and col:
        paper = {"model": by_metric.get("model", {}).get(col)}
        for key, label in (("L_t", "L_t"), ("L_v", "L_v"), ("A_t", "A_t"), ("A_v", "A_v"),
                           ("L_r_Lv", "L_r (for L_v)"), ("L_r_Av", "L_r (for A_v)"),
                           ("N_p", "Individual N_p"), ("W_s_MB", "Individual W_s (MB)")):
            paper[key] = _num(by_metric.get(label), col)
    if runs is None and (out / "runs.csv").is_file():
        runs = read_table(out / "runs.csv")
    if epochs is None and (out / "settings.json").is_file():
        try:
            epochs = int(json.loads((out / "settings.json").read_text()).get("epochs") or 0)
        except (ValueError, TypeError, OSError):
            epochs = None
    return chosen, paper or {}, runs or [], epochs or None


def p2_family(out: str | os.PathLike, summary: Sequence[Mapping], figures: Sequence,
              family: str, chosen: str | None = None, paper: Mapping | None = None,
              runs: Sequence[Mapping] | None = None, epochs: int | None = None) -> list[str]:
    """The paper's three figures for one P2 family (e.g. Figures 13, 14, 15).

    - ``fig<a>_<family>_metrics.png``: mean L_t, L_v (top) and A_t, A_v (bottom) with
      one-sd error bars clipped at 0 (accuracies also at 1); failed configurations stay
      blank, as the paper's rows that ran out of memory. The paper's Table 3 values of
      its chosen model are dashed lines; ln 2 and 0.5 mark chance.
    - ``fig<b>_<family>_convergence.png``: L_r (the epoch of each best value), losses
      on top, accuracies below, bars clipped to [1, epochs].
    - ``fig<c>_<family>_cost.png``: T_s, N_p (trainable beside total when the runs
      record it) and W_s, the paper's N_p and W_s of its pick as dashed lines.

    Args:
        out: the grid's folder (its ``table_3.csv``, ``runs.csv`` and ``settings.json``
            fill ``chosen``, ``paper``, ``runs`` and ``epochs`` when not given).
        summary: mean-over-repeats rows (``config``, ``<metric>_mean``, ``_std``).
        figures: the paper's figure numbers (two or three).
        family: the family's name (its slug names the files).
        chosen: the configuration our selection rule picked (bold tick label); None:
            the folder's ``table_3.csv`` pick, if that table is not older than
            ``summary.csv``.
        paper: the paper's Table 3 column for this family (``model``, ``L_t``...,
            ``L_r_Lv``, ``L_r_Av``, ``N_p``, ``W_s_MB``).

    Returns:
        The PNG paths written.
    """
    out = Path(out)
    if chosen is None:
        chosen = _table_3_pick(out, family)
    chosen, paper, runs, epochs = _p2_reading(out, family, chosen, paper, runs, epochs)
    slug = family.lower().replace(" ", "_")
    names = [r["config"] for r in summary]
    n = len(names)
    x = np.arange(n)
    paper_pick = paper.get("model") if paper else None
    repeats = sorted({int(_num(r, "runs")) for r in summary if _num(r, "runs") > 0})
    rep_text = "/".join(str(r) for r in repeats) or "?"
    width_in = max(9.0, 0.38 * n + 4.5)
    common = [f"{_P2_NAMING.get(family, '')}; bold: the configuration our selection rule "
              f"picked for Table 3" + (f", purple italic: the paper's pick ({paper_pick})"
                                       if paper_pick in names else
                                       (f"; the paper's pick: {paper_pick}" if paper_pick
                                        else "")) + "."]
    paths = []

    def finish(fig, axes, number, what: str, name: str) -> None:
        # Title, tick labels (ours bold, the paper's pick marked), caption, saved PNG.
        axes[0].set_title(f"Figure {number} ({family}): {what}", fontsize=10)
        axes[-1].set_xticks(x, names, rotation=40, ha="right", fontsize=8)
        _mark_ticks(axes[-1], names, chosen, paper_pick)
        _caption(fig, common)
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        paths.append(_save(fig, out / f"fig{number}_{slug}_{name}.png"))

    # ---- metrics: losses and accuracies on their own axes
    fig, axes = plt.subplots(2, 1, figsize=(width_in, 7.6), sharex=True)
    for ax, keys, ylabel, chance, chance_text, high in (
            (axes[0], ("L_t", "L_v"), "cross-entropy loss", LN2,
             "ln 2 = 0.693: a model that always answers 0.5", math.inf),
            (axes[1], ("A_t", "A_v"), "accuracy", 0.5, "0.5: chance", 1.0)):
        w = 0.8 / len(keys)
        for i, key in enumerate(keys):
            means = [_num(r, f"{key}_mean") for r in summary]
            stds = [_num(r, f"{key}_std") for r in summary]
            _bars(ax, x, means, clipped_errors(means, stds, 0.0, high), w,
                  (i - (len(keys) - 1) / 2) * w, _P2_COLORS[key], _P2_NAMES[key])
            value = _num(paper, key)
            if math.isfinite(value):
                ax.axhline(value, color=_P2_COLORS[key], ls="--", lw=1.4,
                           label=f"paper's {key} of its pick ({paper_pick}): {value:.3f}")
        ax.axhline(chance, color="grey", ls=":", lw=1.2, label=chance_text)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 1.05 if high == 1.0 else None)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
    finish(fig, axes, figures[0], f"best value over the epochs, mean of {rep_text} repeats, "
           "error bars one standard deviation (blank = failed)", "metrics")

    # ---- convergence: L_r of losses and of accuracies
    fig, axes = plt.subplots(2, 1, figsize=(width_in, 7.0), sharex=True)
    top = float(epochs) if epochs else math.inf
    for ax, keys in ((axes[0], ("L_t", "L_v")), (axes[1], ("A_t", "A_v"))):
        w = 0.8 / len(keys)
        for i, key in enumerate(keys):
            col = _P2_LR[key]
            means = [_num(r, f"{col}_mean") for r in summary]
            stds = [_num(r, f"{col}_std") for r in summary]
            _bars(ax, x, means, clipped_errors(means, stds, 1.0, top), w,
                  (i - (len(keys) - 1) / 2) * w, _P2_COLORS[key],
                  f"epoch of the best {_P2_NAMES[key].split(': ', 1)[1].split(' (')[0]} "
                  f"(L_r of {key})")
        if epochs:
            ax.axhline(epochs, color="grey", ls=":", lw=1.2, label=f"last epoch ({epochs})")
            ax.set_ylim(0, epochs + 0.8)
        notes = [f"L_r of {k} {int(_num(paper, c))}" for k, c in (("L_v", "L_r_Lv"),
                                                                   ("A_v", "L_r_Av"))
                 if k in keys and math.isfinite(_num(paper, c))]
        if notes:  # the paper trained 60 epochs: its L_r cannot share our axis
            ax.plot([], [], " ", label=f"paper's pick ({paper_pick}, 60 epochs): "
                                       + ", ".join(notes))
        ax.set_ylabel("epoch (1-based)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
    finish(fig, axes, figures[1], "convergence, the epoch at which each best value was "
           f"reached (L_r), mean of {rep_text} repeats, +- one sd", "convergence")

    # ---- cost: T_s, N_p (total, trainable), W_s
    if len(figures) > 2:
        trainable = {}
        for r in runs:
            value = _num(r, "trainable_params")
            if r.get("status", "ok") == "ok" and math.isfinite(value):
                trainable.setdefault(r.get("config"), []).append(value)
        fig, axes = plt.subplots(3, 1, figsize=(width_in, 8.4), sharex=True)
        t_s = [_num(r, "T_s_mean") for r in summary]
        _bars(axes[0], x, t_s, clipped_errors(t_s, [_num(r, "T_s_std") for r in summary]),
              0.6, 0, "tab:gray", "T_s: seconds of training a run (validation included)")
        n_p = np.array([_num(r, "N_p_mean") for r in summary]) / 1e6
        if trainable:
            t_p = np.array([np.mean(trainable.get(c, [np.nan])) for c in names]) / 1e6
            _bars(axes[1], x, n_p, None, 0.4, -0.2, "tab:purple", "N_p: parameters, all")
            _bars(axes[1], x, t_p, None, 0.4, 0.2, "tab:pink", "trainable parameters")
        else:
            _bars(axes[1], x, n_p, None, 0.6, 0, "tab:purple", "N_p: parameters")
        w_s = np.array([_num(r, "W_s_mean") for r in summary]) / 1024 ** 2
        _bars(axes[2], x, w_s, None, 0.6, 0, "tab:brown", "W_s: size of the weights file")
        for ax, key, scale in ((axes[1], "N_p", 1e-6), (axes[2], "W_s_MB", 1.0)):
            value = _num(paper, key) * scale
            if math.isfinite(value):
                ax.axhline(value, color="black", ls="--", lw=1.2,
                           label=f"paper's pick ({paper_pick}): {value:.3g}")
        for ax, data, ylabel in ((axes[0], t_s, "seconds"), (axes[1], n_p, "millions"),
                                 (axes[2], w_s, "MiB")):
            finite = np.asarray(data, float)[np.isfinite(np.asarray(data, float))]
            if finite.size and finite.min() > 0 and finite.max() / finite.min() > 30:
                ax.set_yscale("log")
                ylabel += " (log scale)"
            ax.set_ylabel(ylabel)
            ax.grid(axis="y", alpha=0.3)
            ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.005, 1.0),
                      frameon=False)
        finish(fig, axes, figures[2], "training time (T_s), parameters (N_p) and "
               f"weight-file size (W_s), mean of {rep_text} repeats", "cost")
    return paths


def p2_folder(folder: str | os.PathLike) -> list[str]:
    """Redraw one P2 grid folder's figures (``custom_cnn``, ``inception``, ``sequence``)
    from its ``summary.csv``; nothing when the folder has no summary yet."""
    folder = Path(folder)
    summary = read_table(folder / "summary.csv") if (folder / "summary.csv").is_file() else []
    families = P2_FIGURES.get(folder.name)
    if not summary or not families:
        return []
    paths = []
    for family, numbers in families.items():
        rows = summary if len(families) == 1 else [
            r for r in summary if r.get("family", "").lower() == family.lower()]
        table = read_table(folder / "table_3.csv") if (folder / "table_3.csv").is_file() else []
        chosen = next((r.get(family) for r in table if r.get("metric") == "model"), None)
        if rows:
            paths += p2_family(folder, rows, numbers, family, chosen=chosen or "")
    return paths


# ------------------------------------------------------------------------------ ROC

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
           "tab:pink", "tab:gray", "tab:olive", "tab:cyan", "black", "gold")
_LINESTYLES = ("-", "--", "-.", ":")


def roc_styles(names: Sequence[str]) -> dict[str, dict]:
    """A distinct colour and line style per curve: P1's single models solid, pairs with
    Meso-4 dashed, other pairs dash-dotted, the triple dotted; other names cycle."""
    styles = {}
    for i, name in enumerate(names):
        parts = name.split("+")
        if len(parts) == 1:
            ls = "-" if "+" in "".join(names) else _LINESTYLES[(i // len(_COLORS)) % 4]
        elif len(parts) == 2:
            ls = "--" if "meso4" in parts else "-."
        else:
            ls = ":"
        styles[name] = dict(color=_COLORS[i % len(_COLORS)], ls=ls,
                            lw=2.2 if ls == ":" else 1.6)
    return styles


def _read_scores(path: Path):
    table = read_table(path) if path.is_file() else []
    if not table:
        return None
    return [int(r["label"]) for r in table], [float(r["score"]) for r in table]


def _roc_axes(ax, curves, styles, title, labels=None) -> None:
    from sklearn.metrics import roc_auc_score, roc_curve  # deferred: sklearn (0.5 s)

    for name, (y, s) in curves.items():
        y = np.asarray(y)
        if np.unique(y).size < 2:
            continue
        fpr, tpr, _ = roc_curve(y, s)
        text = (labels or {}).get(name) or f"{name}: AUC {roc_auc_score(y, s):.3f}"
        ax.plot(fpr, tpr, label=text, **styles.get(name, {}))
    ax.plot([0, 1], [0, 1], color="grey", ls=(0, (1, 3)), lw=0.8, label="chance")
    ax.set(xlabel="false positive rate (real called fake)",
           ylabel="true positive rate (fake caught)", title=title,
           xlim=(0, 1), ylim=(0, 1.01))
    ax.set_aspect("equal")
    ax.grid(alpha=0.25)


def fusion_roc(folder: str | os.PathLike, configs: Sequence[str] | None = None) -> str | None:
    """P1 ``roc.png``: every configuration's ROC on the in-dataset and the cross-dataset
    test, each curve its own colour and line style, one legend with both AUCs."""
    from sklearn.metrics import roc_auc_score  # deferred: sklearn (0.5 s)

    folder = Path(folder)
    if configs is None:
        table = read_table(folder / "table_3_1.csv") if (folder / "table_3_1.csv").is_file() \
            else []
        configs = [r["model"] for r in table]
    curves = {split: {c: v for c in configs
                      if (v := _read_scores(folder / "scores" / f"{c}-r0-{split}.csv"))}
              for split in ("test", "cross")}
    names = [c for c in configs if c in curves["test"] or c in curves["cross"]]
    if not names:
        return None
    styles = roc_styles(names)
    fig, axes = plt.subplots(1, 2, figsize=(13.5, 6.4))
    for ax, split, title in ((axes[0], "test", "in-dataset test (the forgery trained on)"),
                             (axes[1], "cross", "cross-dataset test (held-out forgery)")):
        _roc_axes(ax, curves[split], styles, title)
        ax.get_legend() and ax.get_legend().remove()

    # the tables' AUCs (from unrounded scores) where they exist, so legend and README agree
    tables = {split: {r["model"]: _num(r, "ROC AUC") for r in (
        read_table(folder / name) if (folder / name).is_file() else [])}
        for split, name in (("test", "table_3_1.csv"), ("cross", "table_3_3.csv"))}

    def auc(split, c):
        if math.isfinite(_num(tables[split], c)):
            return f"{_num(tables[split], c):.3f}"
        y, s = curves[split].get(c, ([], []))
        return f"{roc_auc_score(y, s):.3f}" if len(set(y)) == 2 else "-"

    handles = [plt.Line2D([], [], **styles[c]) for c in names]
    labels = [f"{c}  (AUC {auc('test', c)} / cross {auc('cross', c)})" for c in names]
    handles.append(plt.Line2D([], [], color="grey", ls=(0, (1, 3)), lw=0.8))
    labels.append("chance")
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.80, 0.5), fontsize=8,
               frameon=False, title="configuration (line: solid single, dashed with Meso-4,\n"
                                    "dash-dot other pair, dotted the triple)",
               title_fontsize=7.5)
    fig.suptitle("P1: ROC of every configuration (repeat 0)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.80, 0.96))
    return _save(fig, folder / "roc.png")


def p3_roc(folder: str | os.PathLike, configs: Sequence[str] | None = None,
           paper_auc: Mapping[str, float] | None = None) -> str | None:
    """P3 ``roc.png``: ROC of each model on the test and the cross (held-out forgery)
    videos; the legend puts the paper's AUC (Celeb-DF v2, its Table 5) beside ours."""
    folder = Path(folder)
    table = read_table(folder / "table_5_6_7.csv") if (folder / "table_5_6_7.csv").is_file() \
        else []
    if configs is None:
        configs = [r["model"] for r in table]
    if paper_auc is None:
        paper_auc = {r["model"]: _num(r, "paper AUC") for r in table}
    curves = {split: {c: v for c in configs
                      if (v := _read_scores(folder / "scores" / f"{c}-r0-{split}.csv"))}
              for split in ("test", "cross")}
    if not curves["test"] and not curves["cross"]:
        return None
    from sklearn.metrics import roc_auc_score  # deferred: sklearn (0.5 s)

    styles = {c: dict(color=_COLORS[i % len(_COLORS)], ls=_LINESTYLES[i % 4], lw=1.8)
              for i, c in enumerate(configs)}
    panels = [(s, t) for s, t in (("test", "test videos (the forgery trained on)"),
                                  ("cross", "cross videos (held-out identity swap)"))
              if curves[s]]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 6.0), squeeze=False)
    for ax, (split, title) in zip(axes[0], panels):
        labels = {}
        name = "table_5_6_7.csv" if split == "test" else "table_5_6_7_cross.csv"
        ours = {r["model"]: _num(r, "AUC") for r in (
            read_table(folder / name) if (folder / name).is_file() else [])}
        for c, (y, s) in curves[split].items():
            p = _num(paper_auc, c)
            a = _num(ours, c) if math.isfinite(_num(ours, c)) else roc_auc_score(y, s)
            labels[c] = (f"{c}: AUC {a:.3f}"
                         + (f"  (paper {p:.3f})" if math.isfinite(p) and split == "test"
                            else ""))
        _roc_axes(ax, curves[split], styles, title, labels)
        ax.legend(fontsize=8, loc="lower right",
                  title="paper: Celeb-DF v2, its Table 5;\nno curves given" if split == "test"
                  else None, title_fontsize=7)
    fig.suptitle("P3: ROC on the test clips (repeat 0); the paper's AUCs beside ours",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _save(fig, folder / "roc.png")


# ------------------------------------------------------------------------------- P5

#: DeepForense's one reported number: 0.875 accuracy of the whole framework.
P5_PAPER_ACCURACY = 0.875


def p5_cv(folder: str | os.PathLike, title: str | None = None) -> str | None:
    """P5 ``cv.png``: accuracy, F1 and ROC AUC of each classifier and ensemble (mean over
    the folds, one-sd bars clipped to [0, 1]) with the paper's 0.875 accuracy marked."""
    folder = Path(folder)
    rows = [r for r in (read_table(folder / "cv.csv") if (folder / "cv.csv").is_file() else [])
            if r.get("status", "ok") == "ok"]
    if not rows:
        return None
    if title is None:
        setup = {r.get("key"): r.get("value") for r in (
            read_table(folder / "setup.csv") if (folder / "setup.csv").is_file() else [])}
        # k from the setup: cv.csv's "folds" counts folds over every repeat
        k = setup.get("folds") or "/".join(sorted({r.get("folds", "") for r in rows}))
        source = (setup.get("backbone") or "CNN") + (
            " ImageNet" if setup.get("weights") == "imagenet" else "")
        title = (f"P5: {k}-fold cross-validation (grouped by identity) on {source} features")
    readable = {"svm": "SVM (RBF)", "mlp": "MLP (dense network)", "adaboost": "AdaBoost"}
    names = [readable.get(r["model"], r["model"].replace("_", " ")) for r in rows]
    folds = sorted({r.get("folds", "") for r in rows})
    x = np.arange(len(rows))
    metrics = {"Accuracy": "tab:blue", "F1": "tab:orange", "AUC": "tab:green"}
    fig, ax = plt.subplots(figsize=(max(8.0, 1.05 * len(rows) + 2), 5.2))
    w = 0.8 / len(metrics)
    for i, (metric, color) in enumerate(metrics.items()):
        means = [_num(r, f"{metric}_mean") for r in rows]
        stds = [_num(r, f"{metric}_std") for r in rows]
        label = {"AUC": "ROC AUC"}.get(metric, metric)
        _bars(ax, x, means, clipped_errors(means, stds, 0.0, 1.0), w,
              (i - 1) * w, color, f"{label} (ours, mean +- sd over {'/'.join(folds)} folds)")
    ax.axhline(P5_PAPER_ACCURACY, color="tab:blue", ls="--", lw=1.5,
               label="paper: accuracy 0.875 (its whole framework, on fake videos it\n"
                     "made with GANs; it gives no per-model numbers)")
    ax.axhline(0.5, color="grey", ls=":", lw=1, label="0.5: chance")
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
              frameon=False)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, folder / "cv.png")


# ------------------------------------------------------------------------------- P4

_CURVE_TITLES = {"loss": "training loss", "val_loss": "validation loss",
                 "accuracy": "training accuracy", "val_accuracy": "validation accuracy"}


def training_curves(path: str | os.PathLike,
                    histories: Mapping[str, Mapping[str, Sequence[float]]],
                    title: str = "",
                    keys: Sequence[str] = ("loss", "val_loss", "accuracy", "val_accuracy")
                    ) -> str | None:
    """Per-epoch curves, one panel per metric, one line per run (P4 Fig. 8 and 10).

    Runs that coincide stay visible: each has its own colour, line style, width
    (the first widest, drawn first) and markers at staggered epochs.
    """
    keys = [k for k in keys if any(h.get(k) for h in histories.values())]
    if not keys:
        return None
    markers = ("o", "s", "^", "D", "v", "P")
    fig, axes = plt.subplots(1, len(keys), figsize=(3.9 * len(keys), 3.9), squeeze=False)
    n = max(len(histories), 1)
    for ax, key in zip(axes[0], keys):
        for i, (name, hist) in enumerate(histories.items()):
            values = list(hist.get(key) or [])
            if not values:
                continue
            epochs = np.arange(1, len(values) + 1)
            every = max(1, len(values) // 6)
            ax.plot(epochs, values, label=name, color=_COLORS[i % len(_COLORS)],
                    ls=_LINESTYLES[i % 4], lw=max(1.0, 2.8 - 0.7 * i), zorder=2 + i,
                    marker=markers[i % len(markers)], ms=4,
                    markevery=(min(i * max(1, every // n), len(values) - 1), every))
        if key.endswith("loss"):
            ax.axhline(LN2, color="grey", ls=":", lw=0.9, label="ln 2: answers 0.5")
        else:
            ax.axhline(0.5, color="grey", ls=":", lw=0.9, label="0.5: chance")
        ax.set(title=_CURVE_TITLES.get(key, key), xlabel="epoch")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7.5)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def p4_curves(folder: str | os.PathLike) -> list[str]:
    """P4's Fig. 8 (``fig8_optimizers.png``: the optimizer study's runs) and Fig. 10
    (``fig10_final.png``: the final model) of one PoI folder, from its ``curves.csv``
    (``config``, ``label``, ``epoch`` and the four curves). Returns the paths written."""
    folder = Path(folder)
    rows = read_table(folder / "curves.csv")
    runs: dict[str, dict] = {}
    for row in rows:
        run = runs.setdefault(row["config"], {"label": row.get("label") or row["config"],
                                              **{k: [] for k in _CURVE_TITLES}})
        for key in _CURVE_TITLES:
            if row.get(key) not in (None, ""):
                run[key].append(float(row[key]))
    fig8 = {r["label"]: r for c, r in runs.items() if c.startswith("fig8-")}
    final = {r["label"]: r for c, r in runs.items() if not c.startswith("fig8-")}
    poi = folder.name
    paths = []
    if fig8:
        paths.append(training_curves(
            folder / "fig8_optimizers.png", fig8,
            title=f"P4 Fig. 8, PoI {poi}: optimizers on the 1x128 start model "
                  "(best val. accuracy epoch in fig8_optimizers.csv)"))
    if final:
        paths.append(training_curves(
            folder / "fig10_final.png", final,
            title=f"P4 Fig. 10, PoI {poi}: final model, learning-rate and weight decay"))
    return [p for p in paths if p]


# ----------------------------------------------------------------------------- redraw

def redraw(root: str | os.PathLike = "results") -> list[str]:
    """Every figure that can be drawn from committed files under ``root`` (``results/``
    or one paper's folder such as ``results/p2``). Returns the paths written."""
    root = Path(root)
    paths: list[str] = []
    for folder in sorted({root, *[p for p in root.rglob("*") if p.is_dir()]}):
        if "scratch" in folder.parts and "scratch" not in root.parts:
            continue
        if folder.name in P2_FIGURES and (folder / "summary.csv").is_file():
            paths += p2_folder(folder)
        elif (folder / "table_3_1.csv").is_file() and (folder / "scores").is_dir():
            paths.append(fusion_roc(folder))
        elif (folder / "table_5_6_7.csv").is_file() and (folder / "scores").is_dir():
            paths.append(p3_roc(folder))
        elif (folder / "cv.csv").is_file() and (folder / "folds.csv").is_file():
            paths.append(p5_cv(folder))
        elif (folder / "curves.csv").is_file():
            paths += p4_curves(folder)
    return [p for p in paths if p]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dfdetect.figures",
        description="Redraw the papers' figures from the committed tables (no training): "
                    "P2 Figures 13-26, P1 roc.png, P3 roc.png, P4 Fig. 8 and 10, "
                    "P5 cv.png.")
    parser.add_argument("roots", nargs="*", default=["results"],
                        help="results folders to search (default: results)")
    args = parser.parse_args(argv)
    written = []
    for root in args.roots:
        if not Path(root).is_dir():
            print(f"dfdetect.figures: error: {root}: not a folder", file=sys.stderr)
            return 2
        written += redraw(root)
    for path in written:
        print(path)
    print(f"{len(written)} figures redrawn")
    return 0


if __name__ == "__main__":
    sys.exit(main())
