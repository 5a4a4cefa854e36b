"""P2 — comparison of ANNs (``seeds/003``): its settings, tables and library code.

The three grid scripts (``experiments/p2_custom_cnn_grid.py``,
``p2_inception_unfreeze.py``, ``p2_sequence_grid.py``) parse their flags and call the
grid's run here (:func:`run_custom_cnn`, :func:`run_inception`,
:func:`run_sequence`); its pieces:

- settings: :data:`SETTINGS` per scale (frames, epochs, widths; the grids' content is
  data in :mod:`dfdetect.models.custom_cnn` and :mod:`dfdetect.models.sequence`);
- data: the videos of a store split as the paper does (80 % train / 20 % validation:
  :func:`dfdetect.data.splits.train_heldout`), frames as labelled images for the CNNs,
  per-video feature sequences for the heads;
- one run: :func:`dfdetect.training.train_run` (fixed epochs, the paper's columns, see
  :data:`dfdetect.results.RUN_METRICS`);
- summaries (:func:`summarize_runs`, over :func:`dfdetect.results.mean_over_repeats`),
  the Table 3 choice (:func:`select_best`), Table 3 itself beside the paper's numbers
  (:data:`PAPER_TABLE_3`); figures: :func:`dfdetect.plots.family_figures`;
- InceptionV3: initialisation offline (a first training phase standing in for
  ImageNet), the unfreezing grid itself (:func:`run_inception`, which the sequence grid
  also calls to train its default feature extractor), and the best transfer model as
  the sequence grids' feature extractor; the same grid on ImageNet EfficientNet-Lite0
  (``--network lite0``, :data:`UNFREEZE_NETWORKS`), compared run by run with the
  InceptionV3 one (:func:`compare_unfreeze`);
- the custom CNN grid itself (:func:`run_custom_cnn`; Table 1 on frames, each
  configuration in a worker process running :data:`CUSTOM_CNN_SCRIPT`);
- the LSTM, GRU and MLP grids over cached feature sequences (:func:`run_sequence`,
  its extractor from :func:`resolve_extractor`; workers run :data:`SEQUENCE_SCRIPT`).

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

import argparse
import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from dfdetect import experiment, results
from dfdetect.data import splits as data_splits
from dfdetect.data import store
from dfdetect.errors import DataError, ModelError
from dfdetect.io import atomic_path, atomic_write_text, read_table, sha256_of, write_table
from dfdetect.papers import lookup
from dfdetect.results import RUN_METRICS, run_metrics

# Bound now, executed on first use: an experiment's --help must not wait for TensorFlow.
keras = experiment.lazy_import("keras")
features = experiment.lazy_import("dfdetect.features")
plots = experiment.lazy_import("dfdetect.plots")
pipeline = experiment.lazy_import("dfdetect.data.pipeline")
training = experiment.lazy_import("dfdetect.training")
transfer = experiment.lazy_import("dfdetect.models.transfer")
registry = experiment.lazy_import("dfdetect.models.registry")
export = experiment.lazy_import("dfdetect.models.export")
backbones = experiment.lazy_import("dfdetect.models.backbones")
efficientnet_lite = experiment.lazy_import("dfdetect.models.efficientnet_lite")
custom_cnn = experiment.lazy_import("dfdetect.models.custom_cnn")
sequence = experiment.lazy_import("dfdetect.models.sequence")

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
        inception_size: InceptionV3's input side (paper 299); None: the video
            benchmark's frame side (below 75 px the model upsamples to 75 itself).
        learning_rate: Adam's rate for every P2 model (assumed: the paper names no
            optimizer; Keras' Adam default).
    """

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
    "smoke": P2Settings(cnn_frames=2, cnn_epochs=1, inception_frames=2, inception_epochs=1,
                        phase1_epochs=1, sequence_epochs=2, rnn_widths=(8, 16)),
    "cpu": P2Settings(cnn_frames=4, cnn_epochs=5, inception_frames=10, inception_epochs=10,
                      phase1_epochs=8, sequence_epochs=15, rnn_widths=(128, 256, 512, 1024)),
    "paper": P2Settings(cnn_frames=40, cnn_epochs=60, inception_frames=40,
                        inception_epochs=60, phase1_epochs=20, sequence_epochs=60,
                        rnn_widths=(128, 512, 1024, 2048), inception_size=299),
}


def settings_for(scale_name: str) -> P2Settings:
    """The :data:`SETTINGS` of a scale (ModelError names an unknown one)."""
    return lookup(SETTINGS, scale_name, "P2")


def help_settings() -> dict:
    """What the P2 scripts' ``--help`` texts quote, by placeholder name
    (:func:`dfdetect.experiment.with_settings`): ``paper`` / ``cpu`` / ``smoke`` are
    P2's settings, ``paper_scale`` / ``cpu_scale`` / ``smoke_scale`` the shared scales."""
    from dfdetect.scales import SCALES

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
        scale: the scale preset (benchmark size, ``video_size``).
        frames: frames per video to crop when ``--data`` is a dataset root.

    Raises:
        DataError: no training or no validation videos.
    """
    if args.data:
        root = experiment.dataset_store(args.data, args.layout, frames, scale.video_size)
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


# ------------------------------------------------------------------------ InceptionV3

#: Keras' cache file of the ImageNet notop weights (used when present, never fetched).
KERAS_NOTOP = Path(os.path.expanduser("~/.keras/models")) / \
    "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
PHASE1_FILE = "phase1_notop.h5"
BEST_FILE = "best.json"
#: The chosen model exported for ``dfdetect predict`` / ``evaluate`` (an image model).
BEST_MODEL = "best.keras"


def inception_size(scale) -> int:
    """InceptionV3's input side: the paper's 299 at ``paper`` scale, else the frames' side
    (below 75 px the model upsamples to 75 itself)."""
    return SETTINGS["paper"].inception_size if scale.name == "paper" else int(scale.video_size)


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
    models_dir = Path(models_dir)
    path, record_path = models_dir / PHASE1_FILE, models_dir / "phase1.json"
    key = {k: (str(v) if isinstance(v, Path) else v) for k, v in key.items()}
    key.update(size=int(size), epochs=int(epochs), seed=int(seed),
               bn_momentum=backbones.SCRATCH_BN_MOMENTUM)
    if path.is_file() and record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("key") == key:
            return path, record
    log(f"InceptionV3 first phase: {epochs} epochs, every layer, plain BatchNormalization")
    training.set_seed(seed)
    model = registry.build_model("inception_phase1", input_shape=(size, size, 3))
    training.compile_model(model, "adam", SETTINGS["paper"].learning_rate)
    fit = training.fit(model, train_ds, val_ds, epochs=epochs, patience=None,
                       decay_factor=None, verbose=verbose)
    models_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        keras.saving.save_model(model.get_layer("inception_v3"), tmp)
    metrics = run_metrics(fit.history)
    record = {"key": key, "seconds": round(fit.seconds, 1), **metrics}
    atomic_write_text(record_path, json.dumps(record, indent=2, default=float))
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


def export_best_inception(inception_dir: str | os.PathLike) -> Path | None:
    """Export the chosen InceptionV3 as ``models/best.keras`` for predict and evaluate.

    The grid keeps each option's best weights (what the sequence grids read); the chosen
    one also becomes a scorable image model, exported again whenever its weights are
    newer than the export.

    Returns:
        The exported file, or None when the grid has chosen no model yet.
    """
    record = best_inception(inception_dir)
    if record is None:
        return None
    path = Path(inception_dir) / "models" / BEST_MODEL
    weights = Path(record["weights"])
    if path.is_file() and path.stat().st_mtime >= weights.stat().st_mtime:
        return path
    size = int(record["size"])
    # records written before the Lite0 study name no network: InceptionV3's
    model = build_unfreeze_model(record.get("network", DEFAULT_NETWORK), record["config"],
                                 size, os.fspath(weights))
    export.export_model(model, path, experiment="p2_inception_unfreeze",
                        config=record["config"], image_size=size, threshold=0.5,
                        repeat=record.get("repeat"), selected_by=record.get("selected_by", ""),
                        trained_on=record.get("store", ""))
    return path


def inception_extractor(weights: str | os.PathLike, size: int):
    """A trained InceptionV3 transfer model without its head, and its cache name.

    Returns:
        ``(extractor: [0, 1] image -> 2048-d, cache name "p2-inception-<sha12>")``: the
        name identifies the weights, so another model never reads these features.
    """
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


# ------------------------------------------------------------------------ the InceptionV3 grid

INCEPTION_FAMILY = "InceptionV3"
INCEPTION_FIGURES = (16, 17, "17b")
INCEPTION_CONFIGS = ("top50", "top25", "head")  # dfdetect.models.transfer.UNFREEZE_OPTIONS


@dataclasses.dataclass(frozen=True)
class UnfreezeNetwork:
    """A network the unfreezing study runs on (same options, head and training).

    Attributes:
        family: its name in Table 3 and on the figures.
        builder: its registry name (``unfreeze``, ``input_shape``, ``weights`` and, for
            EfficientNet-Lite, ``variant``).
        folder: its committed results folder under ``results/``.
        variant: the EfficientNet-Lite variant; None for InceptionV3.
    """

    family: str
    builder: str
    folder: str
    variant: str | None = None


#: ``--network`` -> the network. InceptionV3 is the paper's (from a first phase on the
#: benchmark offline, the committed results); ``lite0`` runs the same protocol on
#: ImageNet EfficientNet-Lite0, the one ImageNet network installable here.
UNFREEZE_NETWORKS: dict[str, UnfreezeNetwork] = {
    "inceptionv3": UnfreezeNetwork(INCEPTION_FAMILY, "inception_transfer", "p2/inception"),
    "lite0": UnfreezeNetwork("EfficientNet-Lite0", "lite_transfer", "p2/lite0_unfreeze",
                             variant="lite0"),
}
DEFAULT_NETWORK = "inceptionv3"
#: A Lite study's runs compared with these of the InceptionV3 study (comparison.csv).
COMPARED_METRICS = ("A_v", "L_v")
#: Within one network: does unfreezing more than the head help?
UNFREEZE_CONTRASTS = (("top50", "head"), ("top25", "head"), ("top50", "top25"))


def build_unfreeze_model(network: str, config: str, size: int, weights):
    """The study's model for ``network`` (a key of :data:`UNFREEZE_NETWORKS`)."""
    net = UNFREEZE_NETWORKS[network]
    extra = {"variant": net.variant} if net.variant else {}
    return registry.build_model(net.builder, unfreeze=config, input_shape=(size, size, 3),
                                weights=weights, **extra)


def unfreeze_size(network: str, scale) -> int:
    """The study's input side: at ``paper`` scale the network's own (InceptionV3 299,
    Lite its ImageNet resolution), else the frames' side (both networks alike)."""
    net = UNFREEZE_NETWORKS[network]
    if net.variant is None:
        return inception_size(scale)
    if scale.name == "paper":
        return int(efficientnet_lite.VARIANTS[net.variant].resolution)
    return int(scale.video_size)


def resolve_lite_init(variant: str, weights: str | None, init: str) -> tuple[str | None, str]:
    """Where a Lite study's weights come from, and how to say it in results.

    ``--init auto`` is ImageNet (the installed package): the point of this network.
    ``phase1`` is InceptionV3's offline stand-in for ImageNet and is refused here.

    Returns:
        ``(weights argument for build_lite_transfer, description)``.
    """
    package = efficientnet_lite.VARIANTS[variant].package
    if weights == "imagenet" or (not weights and init == "auto"):
        return "imagenet", f"imagenet ({package})"
    if weights:
        if not os.path.isfile(weights):
            raise ModelError("weights file not found", weights)
        return os.fspath(weights), f"file {Path(weights).name}"
    if init == "random":
        return None, "random (no pretraining)"
    raise ModelError(f"--init {init} is InceptionV3's offline stand-in for ImageNet; "
                     f"{variant} has ImageNet weights (--init auto) or none (--init random)")


def _study_folder(args: argparse.Namespace) -> str:
    return UNFREEZE_NETWORKS[args.network].folder


def inception_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The unfreezing grid's flags (common ones included) on ``parser``."""
    # One committed folder per network: --network lite0 writes results/p2/lite0_unfreeze
    # and never touches InceptionV3's tables.
    experiment.add_common_args(parser, out=UNFREEZE_NETWORKS[DEFAULT_NETWORK].folder,
                               committed_may_vary=("network",), out_of=_study_folder)
    parser.add_argument("--network", choices=tuple(UNFREEZE_NETWORKS), default=DEFAULT_NETWORK,
                        help="the network whose top 50 %% / top 25 %% / head is retrained: "
                             + "; ".join(f"{k} = {v.family} (results/{v.folder})"
                                         for k, v in UNFREEZE_NETWORKS.items())
                             + f" (default {DEFAULT_NETWORK})")
    parser.add_argument("--configs", default=None,
                        help="comma-separated subset of top50,top25,head (default: all)")
    parser.add_argument("--init", choices=("auto", "phase1", "random"), default="auto",
                        help="initial weights when --weights is not given (see above; "
                             "for lite0 auto = ImageNet, phase1 is refused)")
    parser.add_argument("--reference", default=None,
                        help="for another network than InceptionV3: the InceptionV3 study "
                             "its runs are compared with in comparison.csv (default: the "
                             "folder 'inception' beside --out)")
    parser.add_argument("--phase1-epochs", type=int, default=None,
                        help="epochs of the first phase (default: the scale's)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per video used as images (default: the scale's)")
    parser.add_argument("--size", type=int, default=None,
                        help=f"input side (default at paper scale: InceptionV3 "
                             f"{SETTINGS['paper'].inception_size}, Lite its ImageNet "
                             "resolution; else the frames')")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size (default: the scale's)")
    return parser


def describe_inception(config: str) -> dict:
    """The summary's description columns of an unfreezing option."""
    return {"unfreeze": config}


def run_inception(args) -> Path:
    """The unfreezing grid (``experiments/p2_inception_unfreeze.py``) on InceptionV3,
    or with ``--network lite0`` the same grid on ImageNet EfficientNet-Lite0 (same
    options, head, data, epochs, optimiser and seeds), then compared with the
    InceptionV3 study (:func:`compare_unfreeze`).

    Args:
        args: the flags of :func:`inception_parser`.

    Returns:
        The results folder.
    """
    scale = experiment.scale_of(args)
    settings = settings_for(scale.name)
    network = getattr(args, "network", None) or DEFAULT_NETWORK
    net = UNFREEZE_NETWORKS[network]
    configs = parse_configs(args.configs, list(INCEPTION_CONFIGS))
    out = Path(args.out)
    models_dir = out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    size = args.size or unfreeze_size(network, scale)
    frames = args.frames or settings.inception_frames
    epochs = args.epochs or settings.inception_epochs
    phase1_epochs = args.phase1_epochs or settings.phase1_epochs
    repeats = args.repeats or scale.repeats
    batch = args.batch_size or scale.batch_size
    verbose = 0 if args.quiet else 2
    if args.cross:
        print("p2: the paper has no cross-dataset test; --cross is ignored")

    splits = load_videos(args, scale, max(frames, scale.p2_frames))
    train_ds, val_ds, n_train, n_val = frame_datasets(splits, size, frames, batch,
                                                         seed=args.seed)

    def phase1():
        key = {"store": str(splits.root), "frames_per_video": frames, "train_frames": n_train}
        return train_phase1(models_dir, train_ds, val_ds, size, phase1_epochs, args.seed,
                               key, verbose=verbose)

    key = {"scale": scale.name, "store": str(splits.root), "size": size,
           "frames_per_video": frames, "epochs": epochs, "batch_size": batch,
           "learning_rate": settings.learning_rate, "init": args.init, "weights": args.weights,
           "phase1_epochs": phase1_epochs}
    if network != DEFAULT_NETWORK:  # InceptionV3's key stays as committed: no new entry
        key["network"] = network
    results.start_or_resume(out, key, also=[f"models/{c}{ext}" for c in INCEPTION_CONFIGS
                                       for ext in (".json", ".weights.h5")]
                       + [f"models/{BEST_FILE}"])
    table = results.ResultsTable(out / "runs.csv")
    pending = [(c, r) for c in configs for r in range(repeats)
               if not table.done(config=c, repeat=r)]
    if not pending:  # a finished grid: nothing to initialise (and no first phase to redo)
        init_weights, init = None, next((r["init"] for r in table.rows if r.get("init")), "")
    elif net.variant is None:
        init_weights, init = resolve_inception_init(experiment.weights_arg(args.weights),
                                                       args.init, phase1)
    else:
        init_weights, init = resolve_lite_init(net.variant,
                                               experiment.weights_arg(args.weights), args.init)
    info = {"scale": scale.name, "store": str(splits.root), "videos": splits.videos,
            "frames_per_video": frames, "train_frames": n_train, "val_frames": n_val,
            "size": size, "epochs": epochs, "repeats": repeats, "batch_size": batch,
            "learning_rate": settings.learning_rate, "init": init, "configs": configs}
    if network != DEFAULT_NETWORK:
        info["network"] = network
    atomic_write_text(out / "settings.json", json.dumps(info, indent=2))
    print(f"P2 {net.family} unfreezing: scale={scale.name} {configs} x {repeats} repeats, "
          f"{epochs} epochs, {size} px, {n_train} train / {n_val} val frames, init: {init}")

    inits = {r.get("init") for r in table.rows if r.get("status") == "ok"}
    if inits - {init}:
        print(f"warning: runs.csv already holds runs with init {sorted(inits - {init})}; "
              f"new runs use {init!r} (delete runs.csv to start over)")

    def one_run(config: str, repeat: int) -> dict:
        keras.backend.clear_session()
        seed = args.seed + repeat
        training.set_seed(seed)
        model = build_unfreeze_model(network, config, size, init_weights)
        tmp = models_dir / f".{config}-r{repeat}.weights.h5"
        row = training.train_run(model, train_ds, val_ds, epochs, tmp, keep_weights=True,
                                 verbose=verbose)
        _keep_if_best(models_dir, config, repeat, tmp, row["A_v"], init, size, str(splits.root),
                      network)
        return {**describe_inception(config), **row, "seed": seed, "size": size, "init": init,
                "trainable_layers": transfer.count_trainable_layers(model),
                "trainable_params": int(sum(int(w.numpy().size) for w in model.trainable_weights)),
                "train_frames": n_train, "val_frames": n_val}

    experiment.run_grid(configs, repeats, table, one_run, progress=not args.quiet)
    finish_inception(out, table.rows, configs, network)
    if network != DEFAULT_NETWORK:
        reference = Path(args.reference) if getattr(args, "reference", None) else \
            out.parent / Path(UNFREEZE_NETWORKS[DEFAULT_NETWORK].folder).name
        compare_unfreeze(out, reference, network)
    print(f"results written to {out}")
    return out


def _keep_if_best(models_dir: Path, config: str, repeat: int, tmp: Path, a_v: float,
                  init: str, size: int, store: str, network: str = DEFAULT_NETWORK) -> None:
    """Keep ``tmp`` as ``<config>.weights.h5`` when it is the option's best repeat so far."""
    record_path = models_dir / f"{config}.json"
    dest = models_dir / f"{config}.weights.h5"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if dest.is_file() and record and a_v <= record.get("A_v", -1.0):
        tmp.unlink()
        return
    os.replace(tmp, dest)
    atomic_write_text(record_path, json.dumps(
        {"config": config, "repeat": repeat, "A_v": a_v, "init": init, "size": size,
         "store": store, "weights": dest.name, "network": network}, indent=2))


def finish_inception(out: Path, rows, configs, network: str = DEFAULT_NETWORK) -> None:
    """summary.csv, table_3.csv, models/best.json and the figures of one network's study.

    InceptionV3's Table 3 column joins ``results/p2/table_3.csv``; another network's
    stays in its own folder, the paper's InceptionV3 column beside it.
    """
    family = UNFREEZE_NETWORKS[network].family
    summary = summarize_runs(rows, configs, describe_inception)
    write_table(out / "summary.csv", summary)
    best, why = select_best(summary)
    if best is not None:
        chosen = next(r for r in summary if r["config"] == best)
        write_table_3(out / "table_3.csv", {family: table_3_column(chosen, why)},
                      paper_of={family: INCEPTION_FAMILY})
        if out.name == "inception" and network == DEFAULT_NETWORK:
            merge_table_3(out.parent)
        record_path = out / "models" / f"{best}.json"
        if record_path.is_file():
            record = json.loads(record_path.read_text())
            record.update(selected_by=why, A_v_mean=chosen.get("A_v_mean"))
            atomic_write_text(out / "models" / BEST_FILE,
                                      json.dumps(record, indent=2, default=float))
            export_best_inception(out)
        print(f"Table 3 ({family}): {best} — {why}")
    plots.family_figures(out, summary, INCEPTION_FIGURES, family)


def _setup_differences(mine: Mapping, theirs: Mapping) -> str:
    """What differs between two studies' settings.json in what makes runs comparable."""
    keys = ("store", "frames_per_video", "train_frames", "val_frames", "size", "epochs",
            "batch_size", "learning_rate")
    diff = []
    for k in keys:
        a, b = mine.get(k), theirs.get(k)
        if k == "store":  # the same store may sit under another checkout's path
            a, b = Path(str(a)).name, Path(str(b)).name
        if a != b:
            diff.append(f"{k} {a} vs {b}")
    return "same data, size and training" if not diff else "differs: " + "; ".join(diff)


def compare_unfreeze(out: str | os.PathLike, reference: str | os.PathLike,
                     network: str, log: Callable[[str], None] = print) -> list[dict]:
    """``comparison.csv``: a network's unfreezing study against InceptionV3's, run by run.

    Rows, for each of :data:`COMPARED_METRICS` (A_v, L_v):

    - each option on this network against the same option on InceptionV3 (the
      reference), paired by repeat: repeat r of both used seed ``--seed + r``, so the same
      shuffling of the same frames (the networks' initial weights differ by design);
    - within each network, the options against each other (:data:`UNFREEZE_CONTRASTS`:
      does retraining more than the head help, on ImageNet features and on the
      first-phase base?).

    Each row holds :func:`dfdetect.results.paired_comparison` (means, sd, mean
    difference a - b, repeats won / lost, paired t-test p; NaN below 2 pairs) and
    ``setup``: whether both studies ran on the same data, size and training (from their
    ``settings.json``).

    Args:
        out: this network's study (``runs.csv``, ``settings.json``).
        reference: the InceptionV3 study; when it has no ``runs.csv`` only the
            within-network rows are written.
        network: this study's network (a key of :data:`UNFREEZE_NETWORKS`).

    Returns:
        The rows written.
    """
    out, reference = Path(out), Path(reference)
    family = UNFREEZE_NETWORKS[network].family
    studies = {family: (read_table(out / "runs.csv"), out)}
    if (reference / "runs.csv").is_file() and reference.resolve() != out.resolve():
        studies[INCEPTION_FAMILY] = (read_table(reference / "runs.csv"), reference)
    else:
        log(f"{reference}: no InceptionV3 study to compare with; within-network rows only")

    def values(rows, config, metric):
        return {int(r["repeat"]): r.get(metric) for r in rows
                if r.get("status") == "ok" and r.get("config") == config}

    def settings_of(folder):
        path = folder / "settings.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    table = []
    for metric in COMPARED_METRICS:
        if INCEPTION_FAMILY in studies:
            setup = _setup_differences(settings_of(out), settings_of(reference))
            for config in INCEPTION_CONFIGS:
                stats = results.paired_comparison(
                    values(studies[family][0], config, metric),
                    values(studies[INCEPTION_FAMILY][0], config, metric))
                if stats["pairs"]:
                    table.append({"a": f"{family} {config}", "b": f"{INCEPTION_FAMILY} {config}",
                                  "comparison": "network, same option", "metric": metric,
                                  **stats, "setup": setup})
        for name, (rows, _) in studies.items():
            for a, b in UNFREEZE_CONTRASTS:
                stats = results.paired_comparison(values(rows, a, metric),
                                                  values(rows, b, metric))
                if stats["pairs"]:
                    table.append({"a": f"{name} {a}", "b": f"{name} {b}",
                                  "comparison": "option, same network", "metric": metric,
                                  **stats, "setup": "one study"})
    write_table(out / "comparison.csv", table)
    for row in table:
        if row["metric"] == "A_v" and row["comparison"] == "network, same option":
            log(f"{row['a']} vs {row['b']}: A_v {row['a mean']:.3f} vs {row['b mean']:.3f}, "
                f"won {row['won']}/{row['pairs']}, paired t p={row['paired t p']:.3g}")
    return table


def train_default_extractor(args, out: Path) -> dict:
    """The paper's best InceptionV3 option (top 50 %), trained once as the sequence
    grids' feature extractor, into ``<out>/extractor`` (one repeat, the scale's epochs
    and initialisation) by :func:`run_inception` itself.

    Args:
        args: the sequence grid's flags (scale, faces, seed, layout, data, weights).
        out: the sequence grid's results folder.

    Returns:
        The chosen model's record (:func:`best_inception`).

    Raises:
        ModelError: the run saved no model.
    """
    argv = ["--scale", args.scale, "--faces", args.faces, "--seed", str(args.seed),
            "--layout", args.layout, "--configs", "top50", "--repeats", "1",
            "--out", str(out / "extractor")]
    argv += ["--data", args.data] if args.data else []
    argv += ["--weights", args.weights] if args.weights else []
    argv += ["--quiet"] if args.quiet else []
    print("no InceptionV3 results found: training the paper's best option (top50) once "
          f"as the feature extractor, into {out / 'extractor'}")
    run_inception(inception_parser(argparse.ArgumentParser()).parse_args(argv))
    record = best_inception(out / "extractor")
    if record is None:
        raise ModelError("the fallback InceptionV3 run saved no model", out / "extractor")
    return record


# ------------------------------------------------------------------------ the custom CNN grid

CUSTOM_CNN_FAMILY = "Custom CNN"
CUSTOM_CNN_FIGURES = (13, 14, 15)
#: The script a custom CNN grid worker runs (one configuration in a fresh process).
CUSTOM_CNN_SCRIPT = experiment.REPO_ROOT / "experiments" / "p2_custom_cnn_grid.py"


def custom_cnn_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The custom CNN grid's flags (common and grid-worker ones included) on ``parser``."""
    experiment.add_common_args(parser, out="p2/custom_cnn")
    parser.add_argument("--configs", default=None,
                        help="comma-separated Table 1 names, e.g. '2-asc,3-const128' "
                             "(default: all 23)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per video used as training/validation images "
                             f"(default: the scale's; paper {SETTINGS['paper'].cnn_frames})")
    parser.add_argument("--size", type=int, default=None,
                        help="image side (default: the scale's video_size)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size (default: the scale's)")
    parser.add_argument("--keep-models", action="store_true",
                        help="keep the weights of each configuration's best repeat in "
                             "models/<config>.weights.h5")
    experiment.add_grid_args(parser)
    return parser


def custom_cnn_grid() -> list[str]:
    """The custom CNN grid's configuration names: Table 1, in the paper's order."""
    return [c.name for c in custom_cnn.TABLE_1]


def describe_custom_cnn(config: str) -> dict:
    """The summary's description columns of a Table 1 configuration."""
    c = custom_cnn.get_table_1_config(config)
    return {"depth": c.depth, "pattern": c.family, "widths": "-".join(map(str, c.widths))}


def run_custom_cnn(args) -> Path:
    """The custom CNN grid (``experiments/p2_custom_cnn_grid.py``): Table 1 on frames.

    Each configuration (all its repeats) trains in a worker process running
    :data:`CUSTOM_CNN_SCRIPT` unless ``--in-process``.

    Args:
        args: the flags of :func:`custom_cnn_parser`.

    Returns:
        The results folder.
    """
    scale = experiment.scale_of(args)
    settings = settings_for(scale.name)
    configs = parse_configs(args.configs, custom_cnn_grid())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = args.size or scale.video_size
    frames = args.frames or settings.cnn_frames
    epochs = args.epochs or settings.cnn_epochs
    repeats = args.repeats or scale.repeats
    batch = args.batch_size or scale.batch_size
    if args.cross:
        print("p2: the paper has no cross-dataset test; --cross is ignored")

    splits = load_videos(args, scale, max(frames, scale.p2_frames))
    train_ds, val_ds, n_train, n_val = frame_datasets(splits, size, frames, batch,
                                                      seed=args.seed)
    info = {"scale": scale.name, "store": str(splits.root), "videos": splits.videos,
            "frames_per_video": frames, "train_frames": n_train, "val_frames": n_val,
            "size": size, "epochs": epochs, "repeats": repeats, "batch_size": batch,
            "learning_rate": settings.learning_rate, "configs": configs}
    if not args.runs_only:  # a worker process runs one configuration of this grid
        results.atomic_write_text(out / "settings.json", json.dumps(info, indent=2))
    print(f"P2 custom CNN grid: scale={scale.name} {len(configs)} configs x {repeats} "
          f"repeats, {epochs} epochs, {size} px, {n_train} train / {n_val} val frames "
          f"({frames} per video), store={splits.root}")

    results.start_or_resume(out, {k: info[k] for k in ("scale", "store", "size",
                                                       "frames_per_video", "epochs",
                                                       "batch_size", "learning_rate")},
                            also=("models",))
    table = results.ResultsTable(out / "runs.csv")
    best_av = _best_custom_cnn_so_far(table.rows)

    def one_run(config: str, repeat: int) -> dict:
        keras.backend.clear_session()
        seed = args.seed + repeat
        training.set_seed(seed)
        widths = custom_cnn.get_table_1_config(config).widths
        model = registry.build_model("custom_cnn", widths=widths, input_shape=(size, size, 3))
        tmp = out / "models" / f".{config}-r{repeat}.weights.h5"
        row = training.train_run(model, train_ds, val_ds, epochs, tmp,
                                 keep_weights=args.keep_models,
                                 verbose=0 if args.quiet else 2)
        if args.keep_models:
            _keep_custom_cnn_if_best(tmp, out / "models" / f"{config}.weights.h5", row["A_v"],
                                     best_av, config)
        return {**describe_custom_cnn(config), **row, "seed": seed, "size": size,
                "train_frames": n_train, "val_frames": n_val}

    experiment.run_grid(configs, repeats, table, one_run, progress=not args.quiet,
                        worker=experiment.grid_worker(args, CUSTOM_CNN_SCRIPT))
    if args.runs_only:
        return out
    finish_custom_cnn(out, table.rows, configs)
    print(f"results written to {out}")
    return out


def _best_custom_cnn_so_far(rows) -> dict:
    """config -> the best A_v of its finished runs."""
    best: dict[str, float] = {}
    for row in rows:
        if row.get("status") == "ok":
            best[row["config"]] = max(best.get(row["config"], -1.0), float(row["A_v"]))
    return best


def _keep_custom_cnn_if_best(tmp: Path, dest: Path, a_v: float, best: dict,
                             config: str) -> None:
    """Keep ``tmp`` as ``dest`` when it is the configuration's best repeat so far."""
    if a_v > best.get(config, -1.0) or not dest.exists():
        os.replace(tmp, dest)
        best[config] = a_v
    else:
        tmp.unlink()


def finish_custom_cnn(out: Path, rows, configs) -> None:
    """summary.csv, table_3.csv (+ results/p2/table_3.csv) and the three figures."""
    summary = summarize_runs(rows, configs, describe_custom_cnn)
    results.write_table(out / "summary.csv", summary)
    best, why = select_best(summary)
    if best is not None:
        chosen = next(r for r in summary if r["config"] == best)
        write_table_3(out / "table_3.csv",
                      {CUSTOM_CNN_FAMILY: table_3_column(chosen, why)})
        if out.name == "custom_cnn":  # beside the other P2 grids: merge their tables
            merge_table_3(out.parent)
        print(f"Table 3 ({CUSTOM_CNN_FAMILY}): {best} — {why}")
    plots.family_figures(out, summary, CUSTOM_CNN_FIGURES, CUSTOM_CNN_FAMILY)


# ------------------------------------------------------------------------ the sequence grids

#: family -> (Table 3 family name, the paper's figure numbers).
SEQUENCE_FAMILIES = {"lstm": ("LSTM", (18, 19, 20)), "gru": ("GRU", (21, 22, 23)),
                     "mlp": ("MLP", (24, 25, 26))}
#: The script a sequence grid worker runs (one configuration in a fresh process).
SEQUENCE_SCRIPT = experiment.REPO_ROOT / "experiments" / "p2_sequence_grid.py"


def sequence_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The sequence grids' flags (common and grid-worker ones included) on ``parser``."""
    experiment.add_common_args(parser, out="p2/sequence")
    parser.add_argument("--configs", default=None,
                        help="comma-separated names, e.g. 'gru-1x128,lstm-2x256,mlp-3-const128' "
                             "(default: the LSTM and GRU grids, then Table 2)")
    parser.add_argument("--rnn-widths", default=None,
                        help="LSTM/GRU widths of the grid, e.g. 128,256,512,1024 "
                             "(default: the scale's; paper "
                             f"{','.join(map(str, SETTINGS['paper'].rnn_widths))})")
    parser.add_argument("--backbone", default="auto",
                        help="auto, a transfer model's .weights.h5, or a backbone name")
    parser.add_argument("--inception-dir", default=None,
                        help="results of the InceptionV3 grid (default: beside --out, "
                             "results/p2/inception)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per video in a sequence (default: the scale's "
                             "p2_frames; paper 40)")
    parser.add_argument("--size", type=int, default=None,
                        help="side the frames are fed to the extractor at (default: the "
                             "extractor's training size)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size (default: the scale's)")
    experiment.add_grid_args(parser)
    return parser


def sequence_grid(widths) -> list[str]:
    """The sequence grids' configuration names: LSTM, GRU (cell x depth x width), then
    Table 2."""
    return ([c.name for c in sequence.rnn_grid(tuple(widths))]
            + [c.name for c in sequence.TABLE_2])


def describe_sequence(config: str) -> dict:
    """The summary's description columns of an LSTM, GRU or MLP configuration."""
    c = sequence.get_sequence_config(config)
    if isinstance(c, sequence.RnnConfig):
        return {"family": c.cell, "depth": c.depth, "widths": str(c.width)}
    return {"family": "mlp", "depth": c.depth, "widths": "-".join(map(str, c.widths))}


def resolve_extractor(args, scale, out: Path, store_root: Path) -> dict:
    """The feature extractor ``--backbone`` names, as a dict for :func:`sequence_data`.

    Returns:
        ``{"extractor", "cache_name", "backbone", "weights", "size", "source",
        "N_p", "W_s"}``.
    """
    choice = args.backbone
    if choice == "auto" or choice.endswith(".weights.h5"):
        if choice == "auto":
            inception_dir = Path(args.inception_dir or out.parent / "inception")
            record = best_inception(inception_dir)
            if record and record.get("store", str(store_root)) != str(store_root):
                print(f"{inception_dir}: its best model was trained on {record['store']}, "
                      f"not on {store_root}: not used")
                record = None
            if record is None:
                record = best_inception(out / "extractor")
                if record and record.get("store", str(store_root)) != str(store_root):
                    record = None
            record = record or train_default_extractor(args, out)
            weights, size = record["weights"], int(args.size or record["size"])
            source = (f"InceptionV3 {record['config']} (repeat {record['repeat']}, "
                      f"init {record.get('init', '?')}) from {Path(weights).parent.parent}")
        else:
            weights, size = choice, int(args.size or inception_size(scale))
            source = f"InceptionV3 transfer weights {Path(choice).name}"
        if args.runs_only:  # a grid worker: the parent filled the feature cache
            cache_name = inception_cache_name(weights)
            if not store.has_features(store_root, cache_name, size):
                raise DataError(f"grid worker: no cached features {cache_name} at {size} px",
                                store_root)
            return {"extractor": None, "cache_name": cache_name,
                    "backbone": "inceptionv3", "weights": None, "size": size,
                    "source": source, "N_p": 0, "W_s": 0}
        extractor, cache_name = inception_extractor(weights, size)
        info = {"extractor": extractor, "cache_name": cache_name, "backbone": "inceptionv3",
                "weights": None, "size": size, "source": source}
    else:
        size = int(args.size or scale.video_size)
        weights = experiment.weights_arg(args.weights)
        extractor = features.build_extractor(choice, size, weights, seed=args.seed)
        info = {"extractor": extractor,
                "cache_name": features.feature_name(choice, weights, args.seed),
                "backbone": choice, "weights": weights, "size": size,
                "source": f"{choice} ({weights or f'random init, seed {args.seed}'})"}
    tmp = out / ".extractor.weights.h5"
    info["N_p"] = int(extractor.count_params())
    info["W_s"] = training.weights_file_size(extractor, tmp)
    tmp.unlink()
    return info


def run_sequence(args) -> Path:
    """The LSTM, GRU and MLP grids over cached CNN feature sequences
    (``experiments/p2_sequence_grid.py``).

    Each configuration (all its repeats) trains in a worker process running
    :data:`SEQUENCE_SCRIPT` unless ``--in-process``; the workers read the feature cache
    this process filled.

    Args:
        args: the flags of :func:`sequence_parser`.

    Returns:
        The results folder.
    """
    scale = experiment.scale_of(args)
    settings = settings_for(scale.name)
    widths = ([int(w) for w in args.rnn_widths.split(",")] if args.rnn_widths
              else list(settings.rnn_widths))
    configs = parse_configs(args.configs, sequence_grid(widths),
                            accept=sequence.get_sequence_config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = args.frames or scale.p2_frames
    epochs = args.epochs or settings.sequence_epochs
    repeats = args.repeats or scale.repeats
    batch = args.batch_size or scale.batch_size
    if args.cross:
        print("p2: the paper has no cross-dataset test; --cross is ignored")

    splits = load_videos(args, scale, frames)
    ext = resolve_extractor(args, scale, out, splits.root)
    data = sequence_data(splits, ext["size"], frames, extractor=ext["extractor"],
                         cache_name=ext["cache_name"], backbone=ext["backbone"],
                         weights=ext["weights"], seed=args.seed)
    input_shape = (frames, data["dims"])
    info = {"source": ext["source"], "cache_name": data["cache_name"], "size": ext["size"],
            "frames": frames, "dims": data["dims"], "store": str(splits.root),
            "train_videos": int(len(data["y_train"])), "val_videos": int(len(data["y_val"])),
            "extract_or_read_seconds": round(data["seconds"], 2),
            "extractor_N_p": ext["N_p"], "extractor_W_s": ext["W_s"]}
    if not args.runs_only:  # a worker process runs one configuration of this grid
        results.atomic_write_text(out / "features.json", json.dumps(info, indent=2))
        results.atomic_write_text(out / "settings.json", json.dumps(
            {"scale": scale.name, "epochs": epochs, "repeats": repeats, "batch_size": batch,
             "learning_rate": settings.learning_rate, "rnn_widths": widths, "configs": configs,
             **info}, indent=2))
    print(f"P2 sequence grids: scale={scale.name} {len(configs)} configs x {repeats} repeats, "
          f"{epochs} epochs, sequences {input_shape} of {info['train_videos']} train / "
          f"{info['val_videos']} val videos; features: {ext['source']} "
          f"({data['seconds']:.1f} s, cache {data['cache_name']})")
    del ext["extractor"]
    results.start_or_resume(out, {"scale": scale.name, "store": str(splits.root),
                                  "frames": frames, "features": data["cache_name"],
                                  "feature_size": ext["size"], "epochs": epochs,
                                  "batch_size": batch,
                                  "learning_rate": settings.learning_rate})

    train_ds = pipeline.array_dataset(data["x_train"], data["y_train"], batch, training=True,
                                      seed=args.seed)
    val_ds = pipeline.array_dataset(data["x_val"], data["y_val"], batch)
    table = results.ResultsTable(out / "runs.csv")

    def one_run(config: str, repeat: int) -> dict:
        keras.backend.clear_session()
        seed = args.seed + repeat
        training.set_seed(seed)
        model = registry.get_builder("sequence_head")(config, input_shape)
        row = training.train_run(model, train_ds, val_ds, epochs,
                                 out / "models" / f".{config}-r{repeat}.weights.h5",
                                 verbose=0 if args.quiet else 2)
        return {**describe_sequence(config), **row, "seed": seed,
                "features": data["cache_name"],
                "train_videos": info["train_videos"], "val_videos": info["val_videos"]}

    experiment.run_grid(configs, repeats, table, one_run, progress=not args.quiet,
                        worker=experiment.grid_worker(args, SEQUENCE_SCRIPT))
    if args.runs_only:
        return out
    finish_sequence(out, table.rows, configs,
                    {"N_p": info["extractor_N_p"], "W_s": info["extractor_W_s"]})
    print(f"results written to {out}")
    return out


def finish_sequence(out: Path, rows, configs, extractor) -> None:
    """summary.csv, table_3.csv (best LSTM, GRU, MLP) and three figures per family."""
    summary = summarize_runs(rows, configs, describe_sequence)
    results.write_table(out / "summary.csv", summary)
    columns = {}
    for family, (name, figures) in SEQUENCE_FAMILIES.items():
        members = [r for r in summary if r["family"] == family]
        if not members:
            continue
        best, why = select_best(members)
        if best is not None:
            chosen = next(r for r in members if r["config"] == best)
            columns[name] = table_3_column(chosen, why, extractor=extractor)
            print(f"Table 3 ({name}): {best} — {why}")
        # the pick is known before table_3.csv is written: pass it so the figure bolds it
        plots.family_figures(out, members, figures, name, chosen=best)
    if columns:
        write_table_3(out / "table_3.csv", columns)
        if out.name == "sequence":
            merge_table_3(out.parent)
