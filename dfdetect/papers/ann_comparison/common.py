"""P2's shared pieces: its settings per scale, the videos of a store split as the paper
does, the run summaries, the paper's Table 3 rule and Table 3 itself beside the paper's
numbers."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

from dfdetect import experiment, results
from dfdetect.data import splits as data_splits
from dfdetect.data import store
from dfdetect.errors import DataError, ModelError
from dfdetect.io import read_table, write_table
from dfdetect.papers import lookup
from dfdetect.results import RUN_METRICS
from dfdetect.scales import SCALES

# Bound now, executed on first use: an experiment's --help must not wait for TensorFlow.
pipeline = experiment.lazy_import("dfdetect.data.pipeline")

# ------------------------------------------------------------------------ settings


@dataclasses.dataclass(frozen=True)
class P2Settings:
    """What a scale changes in P2 (data size, frames, epochs; never the grids' content).

    Attributes:
        frame_size: side of the frames every P2 model reads (custom CNNs, the sequence
            extractor, InceptionV3 unless ``inception_size``; the paper's 240).
        sequence_frames: frames per video of a sequence (paper 40); a ``--data``
            dataset is cropped with at least these.
        cnn_frames: frames per video the custom CNNs train and validate on, each an
            image (paper 40, all of them).
        cnn_epochs: epochs of each custom CNN run (paper 60).
        inception_frames: frames per video the InceptionV3 models train and validate on.
        inception_epochs: epochs of each InceptionV3 unfreezing run (paper 60).
        phase1_epochs: epochs of the offline first phase (all layers, plain BN) that
            stands in for ImageNet weights when none are available.
        sequence_epochs: epochs of each LSTM / GRU / MLP run (paper 60).
        rnn_widths: LSTM / GRU widths of the grid (paper 128, 512, 1024, 2048).
        inception_size: InceptionV3's input side (paper 299); None: ``frame_size``
            (below 75 px the model upsamples to 75 itself).
        learning_rate: Adam's rate for every P2 model (assumed: the paper names no
            optimizer; Keras' Adam default).
    """

    frame_size: int
    sequence_frames: int
    cnn_frames: int
    cnn_epochs: int
    inception_frames: int
    inception_epochs: int
    phase1_epochs: int
    sequence_epochs: int
    rnn_widths: tuple[int, ...]
    inception_size: int | None = None
    learning_rate: float = 1e-3


#: Per scale. ``cpu`` fits each grid in under an hour on 2 cores with the scale's 3
#: repeats (measurements and estimates in results/p2/README.md): the 23 custom CNNs
#: train on 4 of each video's 10 frames for 5 epochs; InceptionV3 on all 10 for 10
#: epochs after an 8-epoch first phase; the heads read all 10 frames' features for 15
#: epochs, LSTM / GRU widths 128 / 256 / 512 / 1024: the 2048-wide RNNs alone would
#: cost twice the rest of the grid (LSTM 4 x 2048 is 136 M parameters), and 256 is the
#: width the paper's own results discuss. ``paper`` is the paper's setting: 40 frames,
#: 60 epochs, every configuration.
SETTINGS: dict[str, P2Settings] = {
    "smoke": P2Settings(frame_size=64, sequence_frames=4, cnn_frames=2, cnn_epochs=1,
                        inception_frames=2, inception_epochs=1, phase1_epochs=1,
                        sequence_epochs=2, rnn_widths=(8, 16)),
    "cpu": P2Settings(frame_size=64, sequence_frames=10, cnn_frames=4, cnn_epochs=5,
                      inception_frames=10, inception_epochs=10, phase1_epochs=8,
                      sequence_epochs=15, rnn_widths=(128, 256, 512, 1024)),
    "paper": P2Settings(frame_size=240, sequence_frames=40, cnn_frames=40, cnn_epochs=60,
                        inception_frames=40, inception_epochs=60, phase1_epochs=20,
                        sequence_epochs=60, rnn_widths=(128, 512, 1024, 2048),
                        inception_size=299),
}


def settings_for(scale_name: str) -> P2Settings:
    """The :data:`SETTINGS` of a scale (ModelError names an unknown one)."""
    return lookup(SETTINGS, scale_name, "P2")


def help_settings() -> dict:
    """What the P2 scripts' ``--help`` texts quote, by placeholder name
    (:func:`dfdetect.experiment.with_settings`): ``paper`` / ``cpu`` / ``smoke`` are
    P2's settings, ``paper_scale`` / ``cpu_scale`` / ``smoke_scale`` the shared scales."""
    return {**{name: SETTINGS[name] for name in SETTINGS},
            **{f"{name}_scale": SCALES[name] for name in SCALES}}


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
        return len(pipeline.group_clips(self.train)), len(pipeline.group_clips(self.val))


def load_videos(args, scale, frames: int) -> VideoSplits:
    """The store of ``--data`` (cropped once if a dataset root) or the video benchmark.

    Args:
        args: parsed common flags (``data``, ``layout``, ``faces``, ``seed``).
        scale: the scale preset (the benchmark's size).
        frames: frames per video to crop when ``--data`` is a dataset root (at P2's
            ``frame_size``).

    Raises:
        DataError: no training or no validation videos.
    """
    if args.data:
        root = experiment.dataset_store(args.data, args.layout, frames,
                                        settings_for(scale.name).frame_size)
    else:
        root = experiment.benchmark_store("videos", args.faces, scale, args.seed,
                                          generator=getattr(args, "generator", None))
    train, val = data_splits.train_heldout(store.read_manifest(root), seed=args.seed)
    if not train or not val:
        raise DataError(f"P2 needs training and validation videos; the store has "
                        f"{len(train)} training and {len(val)} val/test rows", root)
    return VideoSplits(Path(root), train, val)


def frames_of(rows: Sequence[Mapping], frames: int) -> list[dict]:
    """``frames`` evenly spaced frames of every video (each crop once), video by video."""
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
    train_rows, val_rows = frames_of(splits.train, frames), frames_of(splits.val, frames)
    cache = (len(train_rows) + len(val_rows)) * size * size * 3 * 4 < 2 * 1024 ** 3
    train_ds = pipeline.image_dataset(train_rows, splits.root, size, batch_size,
                                      training=True, seed=seed, cache=cache,
                                      label_dtype="int32")
    val_ds = pipeline.image_dataset(val_rows, splits.root, size, batch_size, cache=cache,
                                    label_dtype="int32")
    return train_ds, val_ds, len(train_rows), len(val_rows)


# ------------------------------------------------------------------------ summaries


def summarize_runs(rows: Sequence[Mapping], configs: Sequence[str],
                   describe: Callable[[str], Mapping] = lambda c: {}) -> list[dict]:
    """One row per configuration (in ``configs`` order): mean and std of every metric.

    Columns: ``config``, ``describe(config)``'s columns, ``runs`` (finished),
    ``failed`` and ``reason`` (the first failure's, e.g. "out of memory": the paper's
    blank rows), then ``<metric>_mean`` and ``<metric>_std`` of
    :data:`dfdetect.results.RUN_METRICS` over the finished runs (empty when none
    finished). P2's shape of :func:`dfdetect.results.mean_over_repeats`.
    """
    out = []
    for m in results.mean_over_repeats(rows, configs, RUN_METRICS):
        row = {"config": m["config"], **describe(m["config"]), "runs": m["runs"],
               "failed": m["failed"], "reason": m["reason"]}
        row.update({f"{k}_{s}": m[f"{k}_{s}"] for k in RUN_METRICS for s in ("mean", "std")})
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
                  with_paper: bool = True, paper_of: Mapping[str, str] | None = None) -> None:
    """Table 3 as the paper lays it out: one row per metric, one column per family.

    Args:
        columns: family name (a key of :data:`FAMILIES`) -> :func:`table_3_column`.
        with_paper: add ``<family> (paper)`` beside each family's column.
        paper_of: family -> the paper's family to put beside it, for a family the
            paper did not have (EfficientNet-Lite0 beside the paper's InceptionV3).
    """
    paper_of = {f: f for f in columns} | dict(paper_of or {})
    header = ["metric"]
    for family in columns:
        header.append(family)
        if with_paper and paper_of[family] in PAPER_TABLE_3:
            header.append(f"{paper_of[family]} (paper)")
    rows = []
    for label, key in TABLE_3_ROWS.items():
        row = {"metric": label}
        for family, col in columns.items():
            row[family] = col.get(key, "")
            if with_paper and paper_of[family] in PAPER_TABLE_3:
                row[f"{paper_of[family]} (paper)"] = PAPER_TABLE_3[paper_of[family]].get(key, "")
        rows.append(row)
    write_table(path, rows, header)


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
        table = read_table(p2_dir / part / "table_3.csv")
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
    write_table(path, [merged[label] for label in TABLE_3_ROWS if label in merged],
                        header)
    return path
