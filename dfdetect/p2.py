"""P2 — comparison of ANNs (``seeds/003``): what its three grid scripts share.

The scripts (``experiments/p2_custom_cnn_grid.py``, ``p2_inception_unfreeze.py``,
``p2_sequence_grid.py``) compose these pieces:

- data: the videos of a store split as the paper does (80 % train / 20 % validation:
  our ``train`` split, and ``val`` + ``test`` together as the paper's held-out part),
  frames as labelled images for the CNNs, per-video feature sequences for the heads;
- one run: train ``epochs`` epochs (the paper: 60, no early stopping, no decay; Adam
  1e-3 assumed), then the paper's columns (:data:`RUN_METRICS`);
- summaries (mean +- std per configuration), the Table 3 choice (:func:`select_best`),
  Table 3 itself, and the three figures per family (Figures 13-26);
- InceptionV3 initialisation offline (a first training phase standing in for ImageNet),
  the best transfer model as the sequence grids' feature extractor, and the
  feature-cache speed measurement the benchmarks call
  (:func:`measure_feature_cache_speedup`).

The run columns (``runs.csv``), as the paper defines them (section 1.4):

- ``L_t``, ``L_v``, ``A_t``, ``A_v``: the best (lowest loss, highest accuracy) training
  and validation values over the epochs, the paper's "optimal metric value";
- ``L_r_Lt``, ``L_r_Lv``, ``L_r_At``, ``L_r_Av``: L_r, the 1-based epoch at which each of
  them was reached (Table 3 reports the two validation ones; Figures 14, 17... all four);
- ``T_s``: seconds of ``fit`` (every epoch, validation included);
- ``N_p``: parameters; ``W_s``: bytes of the saved ``.weights.h5``. The paper's W_s is
  about 12 bytes per parameter (e.g. GRU 970,498 parameters -> "11.1MB" = 11.1 MiB,
  MLP 10.5 M -> "120MB"): its files held Adam's two moment tensors beside the weights.
  Ours hold the weights only, ~4 bytes per parameter, so ours x 3 ~ the paper's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import keras
import numpy as np

from dfdetect import results
from dfdetect.results import RUN_KEY_FILE, start_or_resume  # noqa: F401  (shared with P1)
from dfdetect.errors import DataError, ModelError
from dfdetect.models.backbones import SCRATCH_BN_MOMENTUM, scratch_batchnorm

__all__ = [
    "COST_COLUMNS", "FAMILIES", "LR_COLUMNS", "METRICS", "PAPER_TABLE_3", "P2Settings",
    "RUN_METRICS", "SETTINGS", "VideoSplits", "EpochTimer", "build_end_to_end",
    "build_phase1_model", "best_inception", "frame_datasets", "frames_of",
    "inception_cache_name", "inception_extractor", "inception_size", "load_video_splits", "measure_feature_cache_speedup",
    "merge_table_3", "parse_configs", "plot_family", "resolve_inception_init",
    "run_metrics", "select_best", "sequence_data", "settings_for", "sha256_of",
    "start_or_resume", "summarize_runs",
    "table_3_column", "train_phase1", "train_run", "write_table_3",
]

# ------------------------------------------------------------------------ settings


@dataclasses.dataclass(frozen=True)
class P2Settings:
    """What a scale changes in P2 (data size, frames, epochs; never the grids' content).

    Attributes:
        cnn_frames: frames per video the custom CNNs train and validate on, each an
            image (paper 40, all of them).
        cnn_epochs: epochs of each custom CNN run (paper 60).
        inception_frames: frames per video the InceptionV3 models train and validate on.
        inception_epochs: epochs of each InceptionV3 unfreezing run (paper 60).
        phase1_epochs: epochs of the offline first phase (all layers, plain BN) that
            stands in for ImageNet weights when none are available.
        sequence_epochs: epochs of each LSTM / GRU / MLP run (paper 60).
        rnn_widths: LSTM / GRU widths of the grid (paper 128, 512, 1024, 2048).
    """

    cnn_frames: int
    cnn_epochs: int
    inception_frames: int
    inception_epochs: int
    phase1_epochs: int
    sequence_epochs: int
    rnn_widths: tuple[int, ...]


#: Per scale. ``cpu`` fits each grid in under an hour on 2 cores with the scale's 3
#: repeats (measurements and estimates in results/p2/README.md): the 23 custom CNNs
#: train on 4 of each video's 10 frames for 5 epochs; InceptionV3 on all 10 for 10
#: epochs after an 8-epoch first phase; the heads read all 10 frames' features for 15
#: epochs, LSTM / GRU widths 128 / 256 / 512 / 1024: the 2048-wide RNNs alone would
#: cost twice the rest of the grid (LSTM 4 x 2048 is 136 M parameters), and 256 is the
#: width the paper's own results discuss. ``paper`` is the paper's setting: 40 frames,
#: 60 epochs, every configuration.
SETTINGS: dict[str, P2Settings] = {
    "smoke": P2Settings(cnn_frames=2, cnn_epochs=1, inception_frames=2, inception_epochs=1,
                        phase1_epochs=1, sequence_epochs=2, rnn_widths=(8, 16)),
    "cpu": P2Settings(cnn_frames=4, cnn_epochs=5, inception_frames=10, inception_epochs=10,
                      phase1_epochs=8, sequence_epochs=15, rnn_widths=(128, 256, 512, 1024)),
    "paper": P2Settings(cnn_frames=40, cnn_epochs=60, inception_frames=40,
                        inception_epochs=60, phase1_epochs=20, sequence_epochs=60,
                        rnn_widths=(128, 512, 1024, 2048)),
}


def settings_for(scale_name: str) -> P2Settings:
    """The :data:`SETTINGS` of a scale."""
    try:
        return SETTINGS[scale_name]
    except KeyError:
        raise ModelError(f"no P2 settings for scale {scale_name!r}; "
                         f"known: {', '.join(SETTINGS)}") from None


def parse_configs(text: str | None, default: Sequence[str],
                  accept: Callable[[str], object] | None = None) -> list[str]:
    """``--configs a,b`` as a list (default: ``default``), every name checked.

    Args:
        text: the flag's value, or None.
        default: the grid's configurations.
        accept: called on names not in ``default``; raises for unknown ones (without
            it every name must be in ``default``).

    Raises:
        ModelError: an unknown or repeated name.
    """
    if not text:
        return list(default)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise ModelError(f"--configs lists a configuration twice: {text}")
    for name in names:
        if name not in default:
            if accept is None:
                raise ModelError(f"unknown configuration {name!r}; known: {', '.join(default)}")
            accept(name)
    return names


# ------------------------------------------------------------------------ data


@dataclasses.dataclass
class VideoSplits:
    """The videos of a store as P2 splits them.

    Attributes:
        root: the store.
        train: manifest rows (every frame) of the training videos.
        val: rows of the validation videos: the store's ``val`` and ``test`` splits,
            the paper's held-out 20 % (it had no third split).
    """

    root: Path
    train: list[dict]
    val: list[dict]

    @property
    def videos(self) -> tuple[int, int]:
        """(training videos, validation videos)."""
        from dfdetect.data import pipeline

        return len(pipeline.group_clips(self.train)), len(pipeline.group_clips(self.val))


def load_video_splits(args, scale, frames: int) -> VideoSplits:
    """The store of ``--data`` (cropped once if a dataset root) or the video benchmark.

    Args:
        args: parsed common flags (``data``, ``layout``, ``faces``, ``seed``).
        scale: the scale preset (benchmark size, ``video_size``).
        frames: frames per video to crop when ``--data`` is a dataset root.

    Raises:
        DataError: no training or no validation videos.
    """
    from dfdetect import experiment
    from dfdetect.data import store

    if args.data:
        root = experiment.dataset_store(args.data, args.layout, frames, scale.video_size)
    else:
        root = experiment.benchmark_store("videos", args.faces, scale, args.seed)
    splits = experiment.split_rows(store.read_manifest(root), seed=args.seed)
    train, val = splits["train"], splits["val"] + splits["test"]
    if not train or not val:
        raise DataError(f"P2 needs training and validation videos; the store has "
                        f"{len(train)} training and {len(val)} val/test rows", root)
    return VideoSplits(Path(root), train, val)


def frames_of(rows: Sequence[Mapping], frames: int) -> list[dict]:
    """``frames`` evenly spaced frames of every video (each crop once), video by video."""
    from dfdetect.data import pipeline

    out, seen = [], set()
    for members in pipeline.group_clips(rows).values():
        for row in pipeline.take_frames(members, int(frames)):
            if row["crop_path"] not in seen:
                seen.add(row["crop_path"])
                out.append(dict(row))
    return out


def frame_datasets(splits: VideoSplits, size: int, frames: int, batch_size: int,
                   seed: int = 0):
    """Frames as labelled images (the video's label), as the paper's CNNs saw them.

    Returns:
        ``(train_ds, val_ds, n_train_frames, n_val_frames)``, int32 labels for the
        2-way softmax heads. Decoded frames are cached in memory when they fit in 2 GB.
    """
    from dfdetect.data import pipeline

    train_rows, val_rows = frames_of(splits.train, frames), frames_of(splits.val, frames)
    cache = (len(train_rows) + len(val_rows)) * size * size * 3 * 4 < 2 * 1024 ** 3
    train_ds = pipeline.image_dataset(train_rows, splits.root, size, batch_size,
                                      training=True, seed=seed, cache=cache,
                                      label_dtype="int32")
    val_ds = pipeline.image_dataset(val_rows, splits.root, size, batch_size, cache=cache,
                                    label_dtype="int32")
    return train_ds, val_ds, len(train_rows), len(val_rows)


# ------------------------------------------------------------------------ one run

#: The paper's four training metrics: column -> (Keras history key, which is best).
METRICS: dict[str, tuple[str, str]] = {
    "L_t": ("loss", "min"), "L_v": ("val_loss", "min"),
    "A_t": ("accuracy", "max"), "A_v": ("val_accuracy", "max"),
}
#: L_r (epoch of the best value) of each metric.
LR_COLUMNS: dict[str, str] = {"L_t": "L_r_Lt", "L_v": "L_r_Lv", "A_t": "L_r_At",
                              "A_v": "L_r_Av"}
COST_COLUMNS = ("T_s", "N_p", "W_s")
#: Every numeric column of a run, in runs.csv order.
RUN_METRICS = (*METRICS, *LR_COLUMNS.values(), *COST_COLUMNS)
LEARNING_RATE = 1e-3  # assumed: the paper names no optimizer (Keras' Adam default)


def run_metrics(history: Mapping[str, Sequence[float]]) -> dict:
    """Best value and its 1-based epoch (L_r) of each paper metric in a Keras history."""
    best, epoch = {}, {}
    for column, (key, mode) in METRICS.items():
        values = np.asarray(history.get(key, []), dtype=float)
        if values.size == 0 or np.isnan(values).all():
            best[column], epoch[LR_COLUMNS[column]] = float("nan"), float("nan")
            continue
        i = int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))
        best[column], epoch[LR_COLUMNS[column]] = float(values[i]), i + 1
    return {**best, **epoch}


def train_run(model, train_ds, val_ds, epochs: int, weights_path: str | os.PathLike, *,
              learning_rate: float = LEARNING_RATE, verbose: int | str = 0,
              keep_weights: bool = False, extra_callbacks=()) -> dict:
    """Train as the paper did (fixed epochs) and measure one run.

    No early stopping and no learning-rate decay (every model "trained for the same
    number of epochs"); the weights of the lowest validation loss are restored at the
    end (``training.fit``'s behaviour), and those are what ``weights_path`` gets.

    Args:
        model: an uncompiled 2-way softmax model.
        train_ds, val_ds: (inputs, int labels) datasets.
        epochs: epochs to train.
        weights_path: where the weights are saved to measure W_s (``.weights.h5``).
        learning_rate: Adam's rate.
        verbose: Keras verbosity.
        keep_weights: keep the file (else it is deleted after measuring).

    Returns:
        The run's :data:`RUN_METRICS` plus ``epochs`` (epochs run).
    """
    from dfdetect import training

    weights_path = os.fspath(weights_path)
    if not weights_path.endswith(".weights.h5"):
        raise ModelError("a weights file name must end in .weights.h5", weights_path)
    training.compile_model(model, "adam", learning_rate)
    fit = training.fit(model, train_ds, val_ds, epochs=epochs, patience=None,
                       decay_factor=None, verbose=verbose, extra_callbacks=extra_callbacks)
    row = run_metrics(fit.history)
    row["T_s"] = round(fit.seconds, 2)
    row["N_p"] = int(model.count_params())
    os.makedirs(os.path.dirname(os.path.abspath(weights_path)), exist_ok=True)
    row["W_s"] = training.weights_file_size(model, weights_path)
    if not keep_weights:
        os.remove(weights_path)
    row["epochs"] = fit.epochs_run
    return row


# ------------------------------------------------------------------------ summaries


def summarize_runs(rows: Sequence[Mapping], configs: Sequence[str],
                   describe: Callable[[str], Mapping] = lambda c: {}) -> list[dict]:
    """One row per configuration (in ``configs`` order): mean and std of every metric.

    Columns: ``config``, ``describe(config)``'s columns, ``runs`` (finished),
    ``failed`` and ``reason`` (the first failure's, e.g. "out of memory": the paper's
    blank rows), then ``<metric>_mean`` and ``<metric>_std`` of :data:`RUN_METRICS`
    over the finished runs (empty when none finished).
    """
    out = []
    for config in configs:
        mine = [r for r in rows if r.get("config") == config]
        ok = [r for r in mine if r.get("status") == "ok"]
        failed = [r for r in mine if r.get("status") != "ok"]
        row = {"config": config, **describe(config), "runs": len(ok), "failed": len(failed),
               "reason": failed[0].get("reason", "") if failed else ""}
        if ok:
            stats = results.summarize(ok, "config", RUN_METRICS)[0]
            row.update({k: v for k, v in stats.items() if k not in ("config", "n")})
        else:
            row.update({f"{m}_{s}": float("nan") for m in RUN_METRICS for s in ("mean", "std")})
        out.append(row)
    return out


def _num(row: Mapping, key: str) -> float:
    try:
        value = float(row.get(key, "nan"))
    except (TypeError, ValueError):
        return float("nan")
    return value


def select_best(summary: Sequence[Mapping], shortlist: int = 3,
                tolerance: float = 0.06) -> tuple[str | None, str]:
    """The paper's choice of a family's best model for Table 3, made mechanical.

    The paper (section 3.2) names each family's notable models (the best validation
    values), lets a "relatively large performance difference" in A_v decide alone,
    and otherwise weighs A_v against convergence speed (L_r) and size: it passed over
    its best custom CNN by A_v (0.6599, 110 M parameters, "unfeasible to realistically
    use") for one 0.05 lower that converged at epoch 7 with half the parameters.
    Written as a rule:

    1. candidates: configurations with at least one finished run (failed rows are
       "not included in the comparison");
    2. shortlist: the ``shortlist`` best by mean A_v, plus the best by mean L_v;
    3. comparable: those whose mean A_v is within ``tolerance`` of the best (0.06: the
       custom CNN gap of 0.0514 was weighed against size and L_r);
    4. the lowest sum of ranks on mean A_v (higher better), mean L_r (the mean of
       L_r for L_v and for A_v; lower better) and N_p (lower better) wins; equal
       values share a rank; ties go to the higher A_v, then the lower L_v, then
       table order.

    The rule is ours: the paper gives none. It was written so that, on the numbers of
    section 3.2 (with the values the paper does not give filled in from its text), it
    picks the paper's five Table 3 models (custom CNN constant 128 x 3, InceptionV3
    top 50 %, LSTM "128 x 2", GRU 128 x 1, MLP constant 128 x 3) — which is how it was
    designed, not evidence for it. ``tests/test_p2_experiments.py`` checks each step of
    the rule as written here, on rows whose outcome is known by construction.

    Args:
        summary: rows of :func:`summarize_runs` (``config``, ``A_v_mean``, ...).

    Returns:
        ``(config or None when nothing finished, one-line explanation)``.
    """
    rows = [r for r in summary if not math.isnan(_num(r, "A_v_mean"))]
    if not rows:
        return None, "no configuration finished a run"
    order = {r["config"]: i for i, r in enumerate(summary)}
    by_av = sorted(rows, key=lambda r: (-_num(r, "A_v_mean"), order[r["config"]]))
    picked = by_av[:shortlist]
    finite_lv = [r for r in rows if not math.isnan(_num(r, "L_v_mean"))]
    if finite_lv:
        best_lv = min(finite_lv, key=lambda r: (_num(r, "L_v_mean"), order[r["config"]]))
        if best_lv not in picked:
            picked.append(best_lv)
    top_av = _num(by_av[0], "A_v_mean")
    comparable = [r for r in picked if _num(r, "A_v_mean") >= top_av - tolerance]

    def lr(r):
        values = [_num(r, "L_r_Lv_mean"), _num(r, "L_r_Av_mean")]
        values = [v for v in values if not math.isnan(v)]
        return sum(values) / len(values) if values else float("inf")

    def ranks(values, higher_better):
        keyed = [-v if higher_better else v for v in values]
        return [1 + sum(other < mine for other in keyed) for mine in keyed]

    score = [sum(parts) for parts in zip(
        ranks([_num(r, "A_v_mean") for r in comparable], True),
        ranks([lr(r) for r in comparable], False),
        ranks([_num(r, "N_p_mean") for r in comparable], False))]
    best_i = min(range(len(comparable)), key=lambda i: (
        score[i], -_num(comparable[i], "A_v_mean"), _num(comparable[i], "L_v_mean"),
        order[comparable[i]["config"]]))
    text = (f"shortlist {', '.join(r['config'] for r in picked)}; "
            f"A_v within {tolerance:g} of the best: "
            f"{', '.join(r['config'] for r in comparable)}; rank sums (A_v, L_r, N_p): "
            + ", ".join(f"{r['config']} {s}" for r, s in zip(comparable, score)))
    return comparable[best_i]["config"], text


# ------------------------------------------------------------------------ Table 3

#: Table 3's columns, in the paper's order: our family name -> the paper's heading.
FAMILIES = {"Custom CNN": "Custom CNN Constant 128 units 3-layer",
            "InceptionV3": "InceptionV3 50% trainable",
            "LSTM": "LSTM 128 units 2-layer",
            "GRU": "GRU 128 units 1-layer",
            "MLP": "MLP constant 128 units 3-layer"}
#: The paper's Table 3 (W_s in MB as the paper writes them, which are MiB). Its LSTM
#: column is labelled "128 units 2-layer" but holds the 256-unit 2-layer model's
#: validation numbers and size (see dfdetect/models/sequence.py).
PAPER_TABLE_3: dict[str, dict] = {
    "Custom CNN": dict(model="3-const128", L_t=0.6679, L_v=0.6941, A_t=0.5689, A_v=0.6085,
                       L_r_Lv=7, L_r_Av=7, N_p=51.7e6, N_p_total=51.7e6, W_s_MB=591,
                       W_s_total_MB=591),
    "InceptionV3": dict(model="top50", L_t=0.2995, L_v=0.5474, A_t=0.8774, A_v=0.7434,
                        L_r_Lv=21, L_r_Av=21, N_p=23.9e6, N_p_total=23.9e6, W_s_MB=163,
                        W_s_total_MB=163),
    "LSTM": dict(model="lstm-2x128", L_t=0.2917, L_v=0.6283, A_t=0.8548, A_v=0.7052,
                 L_r_Lv=18, L_r_Av=14, N_p=3.1e6, N_p_total=27e6, W_s_MB=36.1,
                 W_s_total_MB=199.1),
    "GRU": dict(model="gru-1x128", L_t=0.5999, L_v=0.6064, A_t=0.7021, A_v=0.7119,
                L_r_Lv=45, L_r_Av=13, N_p=0.9e6, N_p_total=24.8e6, W_s_MB=11.1,
                W_s_total_MB=174.1),
    "MLP": dict(model="mlp-3-const128", L_t=0.3526, L_v=0.6275, A_t=0.8378, A_v=0.7432,
                L_r_Lv=3, L_r_Av=9, N_p=10.5e6, N_p_total=34.4e6, W_s_MB=120,
                W_s_total_MB=283),
}
#: Table 3's rows: label -> key of a column dict.
TABLE_3_ROWS = {
    "model": "model", "L_t": "L_t", "L_v": "L_v", "A_t": "A_t", "A_v": "A_v",
    "L_r (for L_v)": "L_r_Lv", "L_r (for A_v)": "L_r_Av",
    "Individual N_p": "N_p", "Total N_p": "N_p_total",
    "Individual W_s (MB)": "W_s_MB", "Total W_s (MB)": "W_s_total_MB",
    "T_s (s)": "T_s", "repeats": "repeats", "selected by": "selected_by",
}
_MIB = 1024 ** 2


def table_3_column(summary_row: Mapping, selected_by: str = "",
                   extractor: Mapping | None = None) -> dict:
    """One family's Table 3 column from its chosen configuration's summary row.

    Args:
        summary_row: the chosen row of :func:`summarize_runs`.
        selected_by: the explanation from :func:`select_best`.
        extractor: ``{"N_p": ..., "W_s": bytes}`` of the feature extractor the model
            reads (sequence heads), added into the "Total" rows.
    """
    col = {"model": summary_row["config"], "repeats": summary_row.get("runs", ""),
           "selected_by": selected_by}
    for key in ("L_t", "L_v", "A_t", "A_v", "L_r_Lv", "L_r_Av", "T_s"):
        col[key] = _num(summary_row, f"{key}_mean")
    n_p, w_s = _num(summary_row, "N_p_mean"), _num(summary_row, "W_s_mean")
    extra_np = float(extractor["N_p"]) if extractor else 0.0
    extra_ws = float(extractor["W_s"]) if extractor else 0.0
    col.update(N_p=n_p, N_p_total=n_p + extra_np, W_s_MB=round(w_s / _MIB, 2),
               W_s_total_MB=round((w_s + extra_ws) / _MIB, 2))
    return col


def write_table_3(path: str | os.PathLike, columns: Mapping[str, Mapping],
                  with_paper: bool = True) -> None:
    """Table 3 as the paper lays it out: one row per metric, one column per family.

    Args:
        columns: family name (a key of :data:`FAMILIES`) -> :func:`table_3_column`.
        with_paper: add ``<family> (paper)`` beside each family's column.
    """
    header = ["metric"]
    for family in columns:
        header.append(family)
        if with_paper and family in PAPER_TABLE_3:
            header.append(f"{family} (paper)")
    rows = []
    for label, key in TABLE_3_ROWS.items():
        row = {"metric": label}
        for family, col in columns.items():
            row[family] = col.get(key, "")
            if with_paper and family in PAPER_TABLE_3:
                row[f"{family} (paper)"] = PAPER_TABLE_3[family].get(key, "")
        rows.append(row)
    results.write_table(path, rows, header)


def merge_table_3(p2_dir: str | os.PathLike,
                  parts: Sequence[str] = ("custom_cnn", "inception", "sequence")) -> Path | None:
    """``<p2_dir>/table_3.csv``: every grid's ``table_3.csv`` side by side.

    Families come in the paper's order; grids that have not run yet are left out.

    Returns:
        The path written, or None when no grid has a Table 3 yet.
    """
    p2_dir = Path(p2_dir)
    merged: dict[str, dict] = {}
    header = ["metric"]
    for part in parts:
        table = results.read_table(p2_dir / part / "table_3.csv")
        if not table:
            continue
        for column in list(table[0].keys())[1:]:
            header.append(column)
            for row in table:
                merged.setdefault(row["metric"], {"metric": row["metric"]})[column] = row[column]
    if len(header) == 1:
        return None
    family_order = {name: i for i, name in enumerate(FAMILIES)}
    header = ["metric"] + sorted(header[1:], key=lambda c: (
        family_order.get(c.replace(" (paper)", ""), len(FAMILIES)), c.endswith("(paper)")))
    path = p2_dir / "table_3.csv"
    results.write_table(path, [merged[label] for label in TABLE_3_ROWS if label in merged],
                        header)
    return path


# ------------------------------------------------------------------------ figures


def plot_family(out: str | os.PathLike, summary: Sequence[Mapping], figures: Sequence[int],
                family: str) -> list[str]:
    """The paper's figures for one family (e.g. Figures 13, 14, 15 for the custom CNNs).

    - ``fig<a>_<family>_metrics.png``: mean L_t, L_v, A_t, A_v with std error bars
      (failed configurations stay blank, as the paper's rows that ran out of memory);
    - ``fig<b>_<family>_convergence.png``: L_r of each metric (mean, std bars);
    - ``fig<c>_<family>_cost.png`` (when a third number is given): T_s, N_p, W_s.

    Returns:
        The PNG paths written.
    """
    from dfdetect import plots

    out = Path(out)
    slug = family.lower().replace(" ", "_")
    names = [r["config"] for r in summary]

    def series(keys, suffix="mean", scale=1.0):
        return {k: [_num(r, f"{k}_{suffix}") * scale for r in summary] for k in keys}

    paths = []
    metrics = list(METRICS)
    paths.append(plots.grouped_bars(
        out / f"fig{figures[0]}_{slug}_metrics.png", names, series(metrics),
        errors=series(metrics, "std"), ylabel="loss / accuracy",
        title=f"Figure {figures[0]} ({family}): mean and std over repeats "
              "(blank = failed)"))
    lrs = list(LR_COLUMNS.values())
    paths.append(plots.grouped_bars(
        out / f"fig{figures[1]}_{slug}_convergence.png", names,
        {f"L_r of {m}": v for m, v in zip(METRICS, series(lrs).values())},
        errors={f"L_r of {m}": v for m, v in zip(METRICS, series(lrs, "std").values())},
        ylabel="epoch of the best value",
        title=f"Figure {figures[1]} ({family}): convergence (L_r)"))
    if len(figures) > 2:
        panels = {"T_s: training seconds": {"T_s": series(["T_s"])["T_s"]},
                  "N_p: parameters (millions)": {"N_p": series(["N_p"], scale=1e-6)["N_p"]},
                  "W_s: weights file (MB)": {"W_s": series(["W_s"], scale=1 / _MIB)["W_s"]}}
        paths.append(plots.bar_panels(
            out / f"fig{figures[2]}_{slug}_cost.png", names, panels, ylim=None,
            title=f"Figure {figures[2]} ({family}): training time, parameters, weight size"))
    return paths


# ------------------------------------------------------------------------ InceptionV3

#: Keras' cache file of the ImageNet notop weights (used when present, never fetched).
KERAS_NOTOP = Path(os.path.expanduser("~/.keras/models")) / \
    "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
PHASE1_FILE = "phase1_notop.h5"
BEST_FILE = "best.json"


def inception_size(scale) -> int:
    """InceptionV3's input side: the paper's 299 at ``paper`` scale, else the frames' side
    (below 75 px the model upsamples to 75 itself)."""
    return 299 if scale.name == "paper" else int(scale.video_size)


def build_phase1_model(input_shape) -> keras.Model:
    """InceptionV3 + the paper's head, every layer trainable, ordinary BatchNormalization.

    The first training phase that stands in for ImageNet pretraining offline: the
    transfer models keep BN statistics frozen (``InferenceBatchNormalization``), which
    only makes sense for statistics learnt somewhere, so this phase learns them with
    plain BN in training mode. Same preprocessing as ``build_inception_transfer``
    ([0, 1] -> [-1, 1], upsampling below 75 px); its base (layer ``inception_v3``) is
    saved in Keras' legacy ``.h5`` notop format and loaded like the ImageNet file.
    """
    from dfdetect.models import transfer

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name=transfer.PREPROCESS_NAME)(inputs)
    height, width = input_shape[0], input_shape[1]
    if any(side is not None and side < transfer.MIN_SIZE for side in (height, width)):
        x = keras.layers.Resizing(max(height or 75, 75), max(width or 75, 75),
                                  interpolation="bilinear", name=transfer.UPSAMPLE_NAME)(x)
    base = keras.applications.InceptionV3(include_top=False, weights=None,
                                          input_shape=(None, None, 3))
    # Keras' 0.99 leaves the moving statistics near their init after a few hundred
    # steps: inference then predicts one class for every frame (measured: A_v 0.500
    # at every epoch of an 8-epoch cpu run while A_t rose to 0.86).
    scratch_batchnorm(base)
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(1024, activation="relu", name="fc1024")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="inception_phase1")


def train_phase1(models_dir: str | os.PathLike, train_ds, val_ds, size: int, epochs: int,
                 seed: int, key: Mapping, verbose: int | str = 0,
                 log: Callable[[str], None] = print) -> tuple[Path, dict]:
    """Train (once) the first phase and save its base as a notop ``.h5``.

    Reused when ``phase1.json`` beside it records the same ``key`` (store, size,
    epochs, seed...), so every repeat, unfreezing option and later run starts from
    the same weights, as they would from ImageNet's.

    Returns:
        ``(path of the notop .h5, its record)``.
    """
    from dfdetect import training

    models_dir = Path(models_dir)
    path, record_path = models_dir / PHASE1_FILE, models_dir / "phase1.json"
    key = {k: (str(v) if isinstance(v, Path) else v) for k, v in key.items()}
    key.update(size=int(size), epochs=int(epochs), seed=int(seed),
               bn_momentum=SCRATCH_BN_MOMENTUM)
    if path.is_file() and record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("key") == key:
            return path, record
    log(f"InceptionV3 first phase: {epochs} epochs, every layer, plain BatchNormalization")
    training.set_seed(seed)
    model = build_phase1_model((size, size, 3))
    training.compile_model(model, "adam", LEARNING_RATE)
    fit = training.fit(model, train_ds, val_ds, epochs=epochs, patience=None,
                       decay_factor=None, verbose=verbose)
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = models_dir / f".{PHASE1_FILE}.tmp.h5"
    keras.saving.save_model(model.get_layer("inception_v3"), tmp)
    os.replace(tmp, path)
    metrics = run_metrics(fit.history)
    record = {"key": key, "seconds": round(fit.seconds, 1), **metrics}
    results.atomic_write_text(record_path, json.dumps(record, indent=2, default=float))
    return path, record


def resolve_inception_init(weights: str | None, init: str,
                           phase1: Callable[[], tuple[Path, dict]]) -> tuple[str | None, str]:
    """Where the transfer models' base weights come from, and how to say it in results.

    Args:
        weights: ``--weights``: ``"imagenet"``, a local weights file, or None.
        init: ``--init``: ``auto`` (Keras' cached ImageNet notop file when present,
            else the first phase), ``phase1`` or ``random``.
        phase1: trains (or reuses) the first phase; called only when needed.

    Returns:
        ``(weights argument for build_inception_transfer, description)``.
    """
    if weights == "imagenet":
        return "imagenet", "imagenet"
    if weights:
        if not os.path.isfile(weights):
            raise ModelError("weights file not found", weights)
        return os.fspath(weights), f"file {Path(weights).name}"
    if init == "random":
        return None, "random (no pretraining)"
    if init == "auto" and KERAS_NOTOP.is_file():
        return str(KERAS_NOTOP), "imagenet (Keras cache file)"
    if init in ("auto", "phase1"):
        path, record = phase1()
        return str(path), (f"phase1 ({record['key']['epochs']} epochs, all layers, "
                           f"on the training frames; A_v {record.get('A_v', float('nan')):.3f})")
    raise ModelError(f"unknown --init {init!r}; expected auto, phase1 or random")


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def best_inception(inception_dir: str | os.PathLike) -> dict | None:
    """The record of the best InceptionV3 transfer model an inception grid saved.

    Returns:
        ``models/best.json`` of ``inception_dir`` with ``weights`` made an absolute
        path, or None when there is none (or its weights file is gone).
    """
    path = Path(inception_dir) / "models" / BEST_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    weights = path.parent / record["weights"]
    if not weights.is_file():
        return None
    return {**record, "weights": str(weights)}


def inception_extractor(weights: str | os.PathLike, size: int):
    """A trained InceptionV3 transfer model without its head, and its cache name.

    Returns:
        ``(extractor: [0, 1] image -> 2048-d, cache name "p2-inception-<sha12>")``: the
        name identifies the weights, so another model never reads these features.
    """
    from dfdetect.models import transfer

    model = transfer.build_inception_transfer("head", (int(size), int(size), 3),
                                              weights=os.fspath(weights))
    return transfer.transfer_feature_extractor(model), inception_cache_name(weights)


def inception_cache_name(weights: str | os.PathLike) -> str:
    """The feature-cache name of an InceptionV3 transfer model's weights file."""
    return f"p2-inception-{sha256_of(weights)[:12]}"


# ------------------------------------------------------------------------ sequences


def sequence_data(splits: VideoSplits, size: int, frames: int, *, extractor=None,
                  cache_name: str | None = None, backbone: str = "inceptionv3",
                  weights=None, seed: int = 0, batch_size: int = 64) -> dict:
    """Every video's ``(frames, D)`` feature sequence, through the store's feature cache.

    The CNN runs once per crop, ever: later calls (and later grids) read the cache.

    Args:
        splits: the videos.
        size: side the crops are fed to the extractor at.
        frames: evenly spaced frames per video.
        extractor, cache_name: a trained extractor and its cache name (e.g. from
            :func:`inception_extractor`); or None to use ``backbone`` by name with
            ``weights`` (``None`` = random init seeded with ``seed``).

    Returns:
        ``x_train, y_train, x_val, y_val`` (float32 / int32 arrays), ``dims``,
        ``seconds`` (extraction or cache read), ``cache_name``.
    """
    from dfdetect import features

    rows = splits.train + splits.val
    start = time.perf_counter()
    array, index = features.extract_features(
        splits.root, rows, backbone, size, weights, batch_size, model=extractor,
        cache_name=cache_name, frames=int(frames), seed=seed)
    seconds = time.perf_counter() - start
    train_keys = {(r["source"], r["video_id"]) for r in splits.train}
    is_train = np.array([(r["source"], r["video_id"]) in train_keys for r in index])
    labels = np.array([int(r["label"]) for r in index], dtype=np.int32)
    return {"x_train": array[is_train], "y_train": labels[is_train],
            "x_val": array[~is_train], "y_val": labels[~is_train],
            "dims": int(array.shape[-1]), "seconds": seconds,
            "cache_name": cache_name or features.feature_name(backbone, weights, seed)}


class EpochTimer(keras.callbacks.Callback):
    """Records each epoch's wall time in ``seconds``."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def build_end_to_end(extractor, head, frames: int, size: int):
    """The uncached alternative: the frozen CNN runs on every frame in every epoch.

    ``(frames, size, size, 3)`` clips -> ``TimeDistributed(extractor)`` -> ``head``:
    what training a sequence head costs without the feature cache.
    """
    extractor.trainable = False
    inputs = keras.Input((int(frames), int(size), int(size), 3), name="clip")
    x = keras.layers.TimeDistributed(extractor, name="cnn_per_frame")(inputs)
    return keras.Model(inputs, head(x), name=f"{head.name}_end_to_end")


def measure_feature_cache_speedup(splits: VideoSplits, size: int, frames: int, *,
                                  extractor=None, cache_name: str | None = None,
                                  backbone: str = "inceptionv3", weights=None,
                                  config: str = "gru-1x128", epochs: int = 2,
                                  batch_size: int = 32, grid_epochs: int | None = None,
                                  seed: int = 0) -> dict:
    """How much faster a sequence head trains on cached features than end to end.

    Trains ``config`` for ``epochs`` epochs twice on the training videos: on the cached
    ``(frames, D)`` sequences, and end to end (:func:`build_end_to_end`, the frozen
    extractor re-run on every frame each epoch, decoded frames cached in memory so only
    the CNN's cost differs). Per-epoch times are the last epoch's (the first one
    traces). The extraction itself (or the cache read) is timed once.

    Args:
        splits, size, frames, extractor, cache_name, backbone, weights: as for
            :func:`sequence_data`.
        config: the head (a sequence grid name).
        epochs: epochs per measurement (>= 2 so one untraced epoch is timed).
        grid_epochs: epochs of a grid run for ``run_speedup`` (default: ``epochs``).

    Returns:
        ``cached_epoch_s``, ``uncached_epoch_s``, ``epoch_speedup`` (their ratio),
        ``extract_s`` (this call's extraction or cache read), ``run_speedup``: one
        ``grid_epochs``-epoch run end to end over extraction + the run on the cache.
    """
    from dfdetect import training
    from dfdetect.data import pipeline
    from dfdetect.models.sequence import build_sequence_head

    epochs = max(2, int(epochs))
    data = sequence_data(splits, size, frames, extractor=extractor, cache_name=cache_name,
                         backbone=backbone, weights=weights, seed=seed)
    input_shape = (int(frames), data["dims"])

    training.set_seed(seed)
    head = build_sequence_head(config, input_shape)
    training.compile_model(head, "adam", LEARNING_RATE)
    timer = EpochTimer()
    ds = pipeline.array_dataset(data["x_train"], data["y_train"], batch_size, training=True,
                                seed=seed)
    head.fit(ds, epochs=epochs, shuffle=False, verbose=0, callbacks=[timer])
    cached = timer.seconds[-1]

    if extractor is None:
        from dfdetect.features import build_extractor

        extractor = build_extractor(backbone, size, weights, seed=seed)
    training.set_seed(seed)
    model = build_end_to_end(extractor, build_sequence_head(config, input_shape), frames, size)
    training.compile_model(model, "adam", LEARNING_RATE)
    clips = pipeline.clip_dataset(splits.train, splits.root, int(frames), int(size),
                                  batch_size, training=True, seed=seed)
    for _ in clips:  # fill the decoded-frame cache before timing
        pass
    timer = EpochTimer()
    model.fit(clips, epochs=epochs, shuffle=False, verbose=0, callbacks=[timer])
    uncached = timer.seconds[-1]
    keras.backend.clear_session()
    n = int(grid_epochs or epochs)
    return {"config": config, "videos": int(len(data["y_train"])), "frames": int(frames),
            "size": int(size), "cached_epoch_s": cached, "uncached_epoch_s": uncached,
            "epoch_speedup": uncached / cached if cached > 0 else float("inf"),
            "extract_s": data["seconds"],
            "run_speedup": n * uncached / (data["seconds"] + n * cached)}
