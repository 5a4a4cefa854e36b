"""Result tables: one CSV row per (config, repeat), appended atomically, resumable.

A grid killed midway keeps every finished row; on restart ``ResultsTable.done`` tells
the experiment which (config, repeat) pairs to skip.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

# The CSV helpers live on the ground floor (dfdetect.io) so data/ can write tables
# without importing this module; re-exported because every experiment reads them here.
from dfdetect import precision
from dfdetect.io import atomic_write_text, read_table, rows_to_csv, write_table  # noqa: F401
from dfdetect.io import format_cell as _format


class ResultsTable:
    """An append-only runs table keyed by (config, repeat).

    Every ``append`` rewrites the file atomically (tables are small), so a kill at any
    moment leaves either the old or the new file, never a torn one.

    Args:
        path: the ``runs.csv`` file.
        key: column names that identify a run (default ``config`` and ``repeat``).
    """

    def __init__(self, path: str | os.PathLike, key: Sequence[str] = ("config", "repeat")):
        self.path = os.fspath(path)
        self.key = tuple(key)
        self.rows = read_table(self.path)

    def _key_of(self, row: Mapping) -> tuple:
        return tuple(str(row.get(k, "")) for k in self.key)

    def reload(self) -> None:
        """Read the file again (another process may have appended rows)."""
        self.rows = read_table(self.path)

    def done(self, **key) -> bool:
        """True when a row with these key values is already recorded."""
        wanted = tuple(str(key[k]) for k in self.key)
        return any(self._key_of(row) == wanted for row in self.rows)

    def append(self, row: Mapping) -> None:
        """Record one finished run (replacing an earlier row with the same key)."""
        row = {k: _format(v) for k, v in row.items()}
        wanted = self._key_of(row)
        self.rows = [r for r in self.rows if self._key_of(r) != wanted] + [row]
        write_table(self.path, self.rows)


def to_float(value) -> float:
    """A table cell as a float; NaN when it is empty or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def summarize(rows: Iterable[Mapping], group: str, metrics: Sequence[str]) -> list[dict]:
    """Mean and standard deviation of ``metrics`` per value of ``group``.

    Rows whose metric is empty (a failed run) are left out of that metric's statistics.
    Output columns: ``group``, ``n``, then ``<metric>_mean`` and ``<metric>_std`` each.
    """
    groups: dict[str, list[Mapping]] = {}
    for row in rows:
        groups.setdefault(str(row[group]), []).append(row)
    summary = []
    for name, members in groups.items():
        out = {group: name, "n": len(members)}
        for metric in metrics:
            values = np.array([to_float(r.get(metric)) for r in members])
            values = values[~np.isnan(values)]
            out[f"{metric}_mean"] = float(values.mean()) if values.size else float("nan")
            out[f"{metric}_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0 if values.size else float("nan")
        summary.append(out)
    return summary


RUN_KEY_FILE = "run_key.json"


def start_or_resume(out: str | os.PathLike, key: Mapping, also: Sequence[str] = (),
                    log: Callable[[str], None] = print) -> bool:
    """Resume ``<out>/runs.csv`` only if it was made with the same settings.

    ``key`` holds what makes runs comparable (scale, store, image size, frames,
    epochs...), not what a resumed grid may change (repeats, configurations). When
    ``runs.csv`` exists with another key (e.g. a ``smoke`` run before a ``cpu`` one),
    it and the files named in ``also`` (relative to ``out``) move to
    ``<out>/previous/<time>/`` and the grid starts afresh.

    Returns:
        True when earlier runs are resumed.
    """
    out = Path(out)
    # A bfloat16 run is not resumed from float32 rows; the default adds nothing, so the
    # committed runs' keys stay as they were.
    key = json.loads(json.dumps({**key, **precision.run_key_entry()}, default=str))
    key_path, runs = out / RUN_KEY_FILE, out / "runs.csv"
    old = json.loads(key_path.read_text()) if key_path.is_file() else None
    resumed = runs.is_file() and old == key
    if runs.is_file() and old != key:
        archive = out / "previous" / time.strftime("%Y%m%d-%H%M%S")
        archive.mkdir(parents=True, exist_ok=True)
        for name in ("runs.csv", RUN_KEY_FILE, *also):
            if (out / name).exists():
                os.replace(out / name, archive / Path(name).name)
        log(f"{runs} was made with other settings; moved to {archive}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(key_path, json.dumps(key, indent=2, sort_keys=True))
    return resumed


#: Columns of a runs table that describe a run rather than measure it.
RUN_TEXT_COLUMNS = ("config", "repeat", "status", "reason", "model")


def mean_over_repeats(rows: Sequence[Mapping], configs: Sequence[str],
                      metrics: Sequence[str] | None = None,
                      text: Sequence[str] = RUN_TEXT_COLUMNS) -> list[dict]:
    """One row per configuration (in ``configs`` order): its metrics over the repeats
    that finished. The one "mean over repeats" every paper's tables are made from.

    Args:
        rows: a runs table (``config``, ``status`` = ``ok`` or ``failed``, ``reason``,
            metric columns).
        configs: the configurations, in table order (one not run gets a row too).
        metrics: the columns to average; default: every column of the finished runs
            (first-seen order) that is not in ``text``.
        text: columns that are never averaged.

    Returns:
        Rows with ``config``, ``status`` (``ok`` when a repeat finished, else
        ``failed``), ``runs`` (finished repeats), ``failed`` (failed ones), ``reason``
        (the first failure's, ``""`` when none), ``first`` (the first finished row, for
        its text columns; ``{}`` when none), ``metrics`` (the columns averaged), then
        ``<metric>_mean`` and
        ``<metric>_std`` of each metric (NaN when no repeat finished; std 0 for one).
    """
    out = []
    for config in configs:
        mine = [r for r in rows if r.get("config") == config]
        ok = [r for r in mine if r.get("status") == "ok"]
        failed = [r for r in mine if r.get("status") != "ok"]
        columns = list(metrics) if metrics is not None else list(dict.fromkeys(
            k for r in ok for k in r if k not in text))
        row = {"config": config, "status": "ok" if ok else "failed", "runs": len(ok),
               "failed": len(failed),
               "reason": (failed[0].get("reason") or "") if failed else "",
               "first": dict(ok[0]) if ok else {}, "metrics": columns}
        if ok:
            stats = summarize(ok, "config", columns)[0]
            row.update({k: v for k, v in stats.items() if k not in ("config", "n")})
        else:
            row.update({f"{m}_{s}": float("nan") for m in columns for s in ("mean", "std")})
        out.append(row)
    return out


# ----------------------------------------------------------------------- run columns

#: The paper's four training metrics (P2, section 1.4): column -> (Keras history key,
#: which is best). Also what the fixed-epoch runs of :func:`dfdetect.training.train_run`
#: record, and what the family figures plot.
RUN_HISTORY_METRICS: dict[str, tuple[str, str]] = {
    "L_t": ("loss", "min"), "L_v": ("val_loss", "min"),
    "A_t": ("accuracy", "max"), "A_v": ("val_accuracy", "max"),
}
#: L_r (1-based epoch of the best value) of each metric.
LR_COLUMNS: dict[str, str] = {"L_t": "L_r_Lt", "L_v": "L_r_Lv", "A_t": "L_r_At",
                              "A_v": "L_r_Av"}
#: T_s (seconds of fit), N_p (parameters), W_s (bytes of the saved weights).
COST_COLUMNS = ("T_s", "N_p", "W_s")
#: Every numeric column of a run, in runs.csv order.
RUN_METRICS = (*RUN_HISTORY_METRICS, *LR_COLUMNS.values(), *COST_COLUMNS)


def run_metrics(history: Mapping[str, Sequence[float]]) -> dict:
    """Best value and its 1-based epoch (L_r) of each run metric in a Keras history.

    Args:
        history: per-epoch values by Keras key (``loss``, ``val_accuracy``...).

    Returns:
        ``{L_t, L_v, A_t, A_v, L_r_Lt, L_r_Lv, L_r_At, L_r_Av}``; NaN for a metric the
        history lacks.
    """
    best, epoch = {}, {}
    for column, (key, mode) in RUN_HISTORY_METRICS.items():
        values = np.asarray(history.get(key, []), dtype=float)
        if values.size == 0 or np.isnan(values).all():
            best[column], epoch[LR_COLUMNS[column]] = float("nan"), float("nan")
            continue
        i = int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))
        best[column], epoch[LR_COLUMNS[column]] = float(values[i]), i + 1
    return {**best, **epoch}


def paired_comparison(a: Mapping, b: Mapping) -> dict:
    """Two configurations' values of one metric, paired by run (same repeat or fold).

    Args:
        a: ``{pairing key (a repeat, a (repeat, fold)): value}`` of configuration a.
        b: the same for configuration b; only keys both have are compared.

    Returns:
        ``a mean``, ``a sd``, ``b mean``, ``b sd`` (over the paired runs; sd with
        ddof 1, 0 for one run), ``difference`` (mean of a - b), ``won`` / ``lost``
        (runs where a is above / below b), ``pairs``, and ``paired t p`` (two-sided
        paired t-test; NaN with fewer than 2 pairs or no spread in the differences).
    """
    from scipy import stats  # deferred: scipy.stats (0.3 s) for the paired t-test only

    keys = [k for k in a if k in b and np.isfinite(to_float(a[k])) and np.isfinite(to_float(b[k]))]
    x = np.array([to_float(a[k]) for k in keys])
    y = np.array([to_float(b[k]) for k in keys])
    diff = x - y
    p = float("nan")
    if len(keys) >= 2 and np.std(diff) > 0:
        p = float(stats.ttest_rel(x, y).pvalue)

    def sd(v):
        return float(v.std(ddof=1)) if v.size > 1 else 0.0 if v.size else float("nan")

    return {"a mean": float(x.mean()) if x.size else float("nan"), "a sd": sd(x),
            "b mean": float(y.mean()) if y.size else float("nan"), "b sd": sd(y),
            "difference": float(diff.mean()) if diff.size else float("nan"),
            "won": int(np.sum(diff > 0)), "lost": int(np.sum(diff < 0)), "pairs": len(keys),
            "paired t p": p}


#: Columns that name a test item in a saved scores file, in order of preference.
ITEM_COLUMNS = ("crop_path", "video_id", "path")


def compare_runs(rows: Sequence[Mapping], pairs: Sequence[tuple[str, str, str]], metric: str,
                 splits: Sequence[str] = ("test", "cross"), scores_dir: Path | None = None,
                 n_boot: int = 2000) -> list[dict]:
    """Paired comparisons of configurations over a runs table, one row per pair and split.

    Each row: the :func:`paired_comparison` of ``<split> <metric>`` over the repeats both
    configurations finished (training noise), and, when ``scores_dir`` holds
    ``<config>-r<repeat>-<split>.csv`` (``label``, ``score`` and an item column) for
    every such repeat of both, a paired bootstrap over the test items
    (:func:`dfdetect.evaluation.paired_auc_bootstrap`: test-set noise; AUC metrics only).

    Args:
        rows: the runs table (``config``, ``repeat``, ``status``, metric columns).
        pairs: ``(a, b, why)`` per comparison.
        metric: the metric's column name without the split prefix (e.g. ``ROC AUC``).
        splits: the splits to compare on (skipped where a side has no value).
        scores_dir: the per-item scores folder, or None for the repeat test only.
        n_boot: bootstrap resamples.
    """
    # deferred: evaluation imports scikit-learn, and every --help imports this module
    from dfdetect import evaluation

    ok = [r for r in rows if r.get("status") == "ok"]
    table = []
    for a, b, why in pairs:
        for split in splits:
            column = f"{split} {metric}"
            values = {c: {int(r["repeat"]): r.get(column) for r in ok if r["config"] == c
                          and np.isfinite(to_float(r.get(column)))} for c in (a, b)}
            stats = paired_comparison(values[a], values[b])
            if not stats["pairs"]:
                continue
            p = float("nan")
            if scores_dir is not None and "AUC" in metric:
                repeats = sorted(k for k in values[a] if k in values[b])
                items = [_item_scores(Path(scores_dir), c, split, repeats) for c in (a, b)]
                if all(i is not None for i in items) and items[0][0] == items[1][0]:
                    _, p = evaluation.paired_auc_bootstrap(items[0][1], items[0][2],
                                                           items[1][2], n_boot=n_boot)
            table.append({"a": a, "b": b, "comparison": why, "split": split, "metric": metric,
                          **stats, "bootstrap p (test items)": p})
    return with_holm(table)


#: Raw p-value column -> its Holm-adjusted column, written right after it.
HOLM_COLUMNS = {"paired t p": "paired t p (Holm)",
                "bootstrap p (test items)": "bootstrap p (Holm)"}


def with_holm(table: Sequence[Mapping]) -> list[dict]:
    """The comparison rows with a Holm-adjusted column beside each raw p-value column.

    The family is every row of the table (all pairs and splits one experiment reads
    together), each test kind adjusted on its own: a README that scans 16 comparisons for
    a significant one must discount the scan (:func:`dfdetect.evaluation.holm_adjust`).
    Works on a committed table too (string cells), so the adjustment can be recomputed
    without rerunning anything.
    """
    from dfdetect import evaluation  # deferred: scikit-learn, see compare_runs

    rows = [dict(r) for r in table]
    adjusted = {raw: evaluation.holm_adjust([to_float(r.get(raw)) for r in rows])
                for raw in HOLM_COLUMNS if any(raw in r for r in rows)}
    out = []
    for i, row in enumerate(rows):
        new = {}
        for key, value in row.items():
            if key in HOLM_COLUMNS.values():
                continue  # recomputed below, beside its raw column
            new[key] = value
            if key in adjusted:
                new[HOLM_COLUMNS[key]] = adjusted[key][i]
        out.append(new)
    return out


def _item_scores(scores_dir: Path, config: str, split: str, repeats: Sequence[int]):
    """(item ids, labels, scores of shape (repeats, items)) from the saved scores files,
    or None when one is missing or the repeats scored different items."""
    tables = [read_table(scores_dir / f"{config}-r{r}-{split}.csv") for r in repeats]
    if not tables or not all(tables):
        return None
    key = next((c for c in ITEM_COLUMNS if c in tables[0][0]), None)
    if key is None:
        return None
    ids = [str(x[key]) for x in tables[0]]
    if any([str(x[key]) for x in t] != ids for t in tables[1:]):
        return None
    return ids, [int(to_float(x["label"])) for x in tables[0]], \
        np.array([[to_float(x["score"]) for x in t] for t in tables])
