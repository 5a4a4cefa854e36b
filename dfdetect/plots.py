"""Every figure dfdetect draws (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

# 'figures' names family_figures' argument, hence the module's alias.
from dfdetect import figures as paper_figures  # noqa: E402
from dfdetect.figures import roc_styles  # noqa: E402
from dfdetect.io import atomic_path  # noqa: E402


def _save(fig, path: str | os.PathLike) -> str:
    # Temp + rename: a full disk or a kill mid-write leaves the previous figure (or
    # none), never a truncated PNG; the temp keeps the extension savefig reads.
    path = os.fspath(path)
    try:
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format=os.path.splitext(path)[1][1:] or None)
    finally:
        plt.close(fig)
    return path


def _save_laid_out(fig, path: str | os.PathLike) -> str:
    """Like :func:`_save` for a figure its caller laid out (no second tight_layout)."""
    path = os.fspath(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight",
                        format=os.path.splitext(path)[1][1:] or None)
    finally:
        plt.close(fig)
    return path


#: A ROC curve over fewer videos than this of either class is drawn dashed and flagged.
FEW_PER_CLASS = 5


def roc_curves(path: str | os.PathLike, curves: Mapping[str, tuple], title: str = "ROC") -> str:
    """All ROC curves in one axes.

    The legend gives each curve's AUC and its reals and fakes. A curve over fewer than
    :data:`FEW_PER_CLASS` of either class is dashed and flagged: 2 videos make a curve of
    two steps whose AUC is 0, 0.5 or 1 by chance alone. The axes reach a little past 0
    and 1, so a curve running along an edge (a perfect or a hopeless one) is not hidden
    under the frame.

    Args:
        curves: name -> (labels, scores).
    """
    from sklearn.metrics import roc_auc_score  # deferred: sklearn (0.5 s)

    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    few = False
    for name, (labels, scores) in curves.items():
        labels = np.asarray(labels)
        if np.unique(labels).size < 2:
            continue
        fpr, tpr, _ = roc_curve(labels, scores)
        n_fake = int(labels.sum())
        n_real = int(labels.size - n_fake)
        small = min(n_real, n_fake) < FEW_PER_CLASS
        few |= small
        ax.plot(fpr, tpr, lw=1.0 if small else 1.5, ls="--" if small else "-",
                clip_on=False, label=f"{name}: AUC {roc_auc_score(labels, scores):.3f}, "
                f"{n_real} real / {n_fake} fake" + (" (too few to judge)" if small else ""))
    ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=0.8, label="chance")
    ax.set(xlabel="false positive rate (real called fake)",
           ylabel="true positive rate (fake caught)", title=title, xlim=(-0.02, 1.02),
           ylim=(-0.02, 1.02))
    ax.legend(fontsize=7, loc="lower right")
    if few:
        ax.text(0.02, 0.98, f"dashed: fewer than {FEW_PER_CLASS} videos of a class; each "
                "step is one video", transform=ax.transAxes, fontsize=7, va="top",
                color="0.3")
    return _save(fig, path)


def ranked_bars(path: str | os.PathLike, names: Sequence[str], values: Sequence[float],
                groups: Sequence[str] | None = None,
                markers: Mapping[str, Sequence[float]] | None = None,
                lines: Mapping[str, float] | None = None, title: str = "",
                xlabel: str = "", xlim: tuple | None = (0, 1),
                intervals: Sequence[tuple[float, float]] | None = None,
                interval_label: str = "95 % interval") -> str:
    """Horizontal bars, best first: many models on one readable chart.

    Args:
        names: one label per bar.
        values: the bar lengths (NaN bars are left empty and ranked last).
        groups: optional family of each bar; one colour (and legend entry) per family.
        markers: optional extra values drawn as points on each bar's row (e.g. accuracy
            beside AUC), one legend entry per series.
        lines: reference values drawn as labelled vertical lines (e.g. chance, a target).
        intervals: optional ``(low, high)`` per bar, drawn as a whisker over its end (NaN:
            none); one legend entry, ``interval_label``.
    """
    values = np.asarray(values, dtype=float)
    # best first, NaN last, ties in the given order
    order = np.argsort(np.where(np.isnan(values), np.inf, -values), kind="stable").tolist()
    groups = list(groups) if groups is not None else [""] * len(values)
    families = list(dict.fromkeys(groups[i] for i in order))
    palette = plt.get_cmap("tab10")
    color = {g: palette(k % 10) for k, g in enumerate(families)}
    fig, ax = plt.subplots(figsize=(8.0, 1.2 + 0.24 * len(values)))
    y = np.arange(len(order))
    for family in families:
        rows = [k for k, i in enumerate(order) if groups[i] == family]
        ax.barh(y[rows], np.nan_to_num(values[[order[k] for k in rows]]), 0.7,
                color=color[family], label=family or None)
    if intervals is not None:
        bounds = np.asarray(intervals, dtype=float).reshape(-1, 2)[order]
        ax.errorbar(values[order], y, xerr=np.abs(bounds - values[order][:, None]).T,
                    fmt="none", ecolor="0.15", elinewidth=1, capsize=2,
                    label=interval_label)
    for k, (name, series) in enumerate((markers or {}).items()):
        series = np.asarray(series, dtype=float)
        ax.plot(series[order], y, "Dos^v"[k % 5], color="black", ls="none", ms=4,
                label=name)
    for k, (name, value) in enumerate((lines or {}).items()):
        ax.axvline(value, color="0.3", ls=("--", ":", "-.")[k % 3], lw=1, label=name)
    ax.set_yticks(y, [names[i] for i in order], fontsize=7)
    ax.invert_yaxis()  # best on top
    ax.set(title=title, xlabel=xlabel)
    if xlim:
        ax.set_xlim(*xlim)
    ax.grid(axis="x", alpha=0.3)
    # Below the axes: inside, it covered the shortest bars and their whiskers.
    below = 0.55 / (fig.get_figheight() * ax.get_position().height)  # 0.55 in: the x label
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -below), ncol=2,
              frameon=False)
    return _save_laid_out(fig, path)


def interval_dots(path: str | os.PathLike, categories: Sequence[str],
                  series: Mapping[str, Sequence[tuple]], reference: float | None = None,
                  title: str = "", xlabel: str = "", xlim: tuple | None = (0, 1)) -> str:
    """Point estimates with their intervals: one row per category, one marker per series.

    Args:
        categories: one label per row (top to bottom).
        series: name -> one ``(value, low, high)`` per category (NaN: not drawn).
        reference: a value drawn as a dashed vertical line (e.g. chance at 0.5).
    """
    names = list(series)
    fig, ax = plt.subplots(figsize=(8.0, 1.4 + 0.55 * len(categories) * max(1, len(names)) / 2))
    palette = plt.get_cmap("tab10")
    step = 0.7 / max(1, len(names))
    for k, name in enumerate(names):
        values = np.asarray(series[name], dtype=float).reshape(-1, 3)
        y = np.arange(len(categories)) - 0.35 + step * (k + 0.5)
        err = np.abs(values[:, 1:] - values[:, :1]).T
        ax.errorbar(values[:, 0], y, xerr=err, fmt="o", ms=4, capsize=2, lw=1,
                    color=palette(k % 10), label=name)
    if reference is not None:
        ax.axvline(reference, color="0.4", ls="--", lw=1, label=f"chance ({reference:g})")
    ax.set_yticks(np.arange(len(categories)), categories, fontsize=8)
    ax.invert_yaxis()
    ax.set(title=title, xlabel=xlabel)
    if xlim:
        ax.set_xlim(*xlim)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def _draw_confusion(ax, counts: tuple, title: str) -> None:
    tn, fp, fn, tp = counts
    m = np.array([[tn, fp], [fn, tp]])
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if v > m.max() / 2 else "black", fontsize=12)
    ax.set_xticks([0, 1], ["real", "fake"])
    ax.set_yticks([0, 1], ["real", "fake"])
    ax.set(xlabel="predicted", ylabel="true", title=title)


def confusion_matrix(path: str | os.PathLike, tn: int, fp: int, fn: int, tp: int,
                     title: str = "Confusion matrix") -> str:
    """A 2x2 confusion matrix with counts (rows: truth, columns: prediction)."""
    fig, ax = plt.subplots(figsize=(4, 3.6))
    _draw_confusion(ax, (tn, fp, fn, tp), title)
    return _save(fig, path)


def confusion_matrices(path: str | os.PathLike, matrices: Mapping[str, tuple]) -> str:
    """Several 2x2 confusion matrices side by side: name -> (tn, fp, fn, tp)."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.6 * len(matrices), 3.4), squeeze=False)
    for ax, (name, counts) in zip(axes[0], matrices.items()):
        _draw_confusion(ax, counts, name)
    return _save(fig, path)


def training_curves(path: str | os.PathLike, histories: Mapping[str, Mapping[str, Sequence[float]]],
                    keys: Sequence[str] = ("loss", "val_loss", "accuracy", "val_accuracy"),
                    title: str = "") -> str:
    """One panel per metric key, one line per run (e.g. P4's optimizer study); runs that
    coincide stay visible (:func:`dfdetect.figures.training_curves`)."""
    return paper_figures.training_curves(path, histories, title=title, keys=keys)


def frame_scores(path: str | os.PathLike, series: Mapping[str, tuple], threshold: float = 0.5,
                 title: str = "Frame-by-frame fake probability", xlabel: str = "frame") -> str:
    """P5 Fig. 4-5: fake probability per frame with the decision threshold.

    The legend sits outside the axes, so it never covers a series at P(fake) 0 or 1.

    Args:
        series: name -> (x positions (frame index or seconds), scores).
        xlabel: what the x positions are (``frame``, ``time (s)``).
    """
    fig, ax = plt.subplots(figsize=(8.5, 3.6))
    for name, (xs, scores) in series.items():
        ax.plot(xs, scores, marker="o", ms=3, lw=1.2, label=name, clip_on=False)
    ax.axhline(threshold, color="red", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set(ylim=(-0.02, 1.02), ylabel="P(fake)", xlabel=xlabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _save(fig, path)


def scatter_2d(path: str | os.PathLike, points: np.ndarray, groups: Sequence,
               title: str = "", xlabel: str = "", ylabel: str = "") -> str:
    """2-D scatter coloured by group (PCA / t-SNE plots)."""
    points = np.asarray(points)
    groups = np.asarray([str(g) for g in groups])
    fig, ax = plt.subplots(figsize=(6, 5))
    for g in sorted(set(groups)):
        sel = groups == g
        ax.scatter(points[sel, 0], points[sel, 1], s=8, alpha=0.6, label=f"{g} ({sel.sum()})")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=7, markerscale=2)
    return _save(fig, path)


def roc_panels(path: str | os.PathLike, panels: Mapping[str, Mapping[str, tuple]]) -> str:
    """Several ROC axes side by side in one PNG: panel title -> {name: (labels, scores)}.

    Every curve has its own colour and line style (:func:`dfdetect.figures.roc_styles`),
    the same in every panel, and one legend beside the panels gives each panel's AUC.
    """
    from sklearn.metrics import roc_auc_score  # deferred: sklearn (0.5 s)

    panels = {k: v for k, v in panels.items() if v}
    names = list(dict.fromkeys(n for curves in panels.values() for n in curves))
    styles = roc_styles(names)
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5.6 * max(len(panels), 1) + 3.6,
                                                              5.8), squeeze=False)
    aucs = {n: [] for n in names}
    for ax, (title, curves) in zip(axes[0], panels.items()):
        for name in names:
            labels, scores = curves.get(name, ([], []))
            labels = np.asarray(labels)
            if np.unique(labels).size < 2:
                aucs[name].append("-")
                continue
            fpr, tpr, _ = roc_curve(labels, scores)
            ax.plot(fpr, tpr, **styles[name])
            aucs[name].append(f"{roc_auc_score(labels, scores):.3f}")
        ax.plot([0, 1], [0, 1], color="grey", ls=(0, (1, 3)), lw=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title,
               xlim=(0, 1), ylim=(0, 1.01))
        ax.set_aspect("equal")
        ax.grid(alpha=0.25)
    handles = [plt.Line2D([], [], **styles[n]) for n in names]
    labels = [f"{n}  (AUC {' / '.join(aucs[n])})" for n in names]
    fig.legend(handles, labels, loc="center right", fontsize=7.5, frameon=False,
               title="AUC: " + " / ".join(panels), title_fontsize=7.5)
    fig.tight_layout(rect=(0, 0, 1 - 3.6 / (5.6 * max(len(panels), 1) + 3.6), 1))
    return _save_laid_out(fig, path)


def bar_panels(path: str | os.PathLike, categories: Sequence[str],
               panels: Mapping[str, Mapping[str, Sequence[float]]],
               hatched: Sequence[str] = (), colors: Mapping[str, str] | None = None,
               ylim: tuple | None = (0, 1.05), title: str = "",
               errors: Mapping[str, Mapping[str, Sequence[float]]] | None = None) -> str:
    """One grouped-bar panel per metric, stacked vertically, sharing categories.

    Args:
        panels: panel title -> {series name: one value per category}.
        hatched: series drawn hatched and pale (reference numbers such as the paper's).
        colors: optional fixed colour per series, so a series keeps its colour across panels.
        errors: optional panel title -> {series name: one standard deviation per
            category}, drawn as error bars clipped to [0, 1] (a metric's range).
    """
    categories = list(categories)
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(7.0, 0.9 * len(categories) + 3),
                                                      3.3 * len(panels)), squeeze=False)
    x = np.arange(len(categories))
    for ax, (panel, series) in zip(axes[:, 0], panels.items()):
        width = 0.8 / max(len(series), 1)
        for i, (name, values) in enumerate(series.items()):
            style = dict(hatch="//", alpha=0.5) if name in hatched else {}
            if colors and name in colors:
                style["color"] = colors[name]
            values = np.asarray(values, float)
            sd = (errors or {}).get(panel, {}).get(name)
            if sd is not None:
                sd = np.nan_to_num(np.asarray(sd, float))
                # one sd each way, never past the metric's range [0, 1]
                style["yerr"] = np.stack([np.minimum(sd, np.nan_to_num(values)),
                                          np.minimum(sd, 1 - np.nan_to_num(values))])
                style["capsize"] = 2
            ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width,
                   label=name, **style)
        ax.set_xticks(x, categories, rotation=30, ha="right", fontsize=8)
        ax.set(title=panel)
        if ylim:
            ax.set_ylim(*ylim)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, ncol=len(series), loc="lower left", bbox_to_anchor=(0, 1.0),
                  frameon=False)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def contact_sheet(path: str | os.PathLike, rows: Mapping[str, Sequence[np.ndarray]],
                  title: str = "", captions: Sequence[str] = ()) -> str:
    """A grid of images: one labelled row per kind (e.g. real, fake, mask), one column each.

    Args:
        rows: row label -> images (H x W x 3 uint8 RGB, or H x W grey); rows may be
            shorter than the longest (blank cells).
        captions: optional text under each column (e.g. the identity).
    """
    n_rows = len(rows)
    n_cols = max((len(v) for v in rows.values()), default=0)
    if n_rows == 0 or n_cols == 0:
        raise ValueError("contact_sheet needs at least one image")
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.3 * n_cols + 0.6, 1.4 * n_rows + 0.5),
                             squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                image = np.asarray(images[c])
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None,
                          vmin=0, vmax=255, interpolation="nearest")
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
            if r == n_rows - 1 and c < len(captions):
                ax.set_xlabel(captions[c], fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def family_figures(out: str | os.PathLike, summary: Sequence[Mapping],
                   figures: Sequence, family: str, **kwargs) -> list[str]:
    """P2's figures for one model family (e.g. Figures 13, 14, 15 for the custom CNNs):
    :func:`dfdetect.figures.p2_family` (``kwargs``: ``chosen``, ``paper``, ``runs``,
    ``epochs``; read from the folder when not given)."""
    return paper_figures.p2_family(out, summary, figures, family, **kwargs)
