"""The detector's ablation table: what each change did, on each kind of evidence.

One row per training run (``results/detector/ablation.csv``): its recipe, the epoch its
FF++ selection chose, the validation AUCs (self-blends and identity swaps of held-out
faces) and FF++ selection AUCs at that epoch, and -- scored once, after the selection,
never looked at during it -- the cross-dataset test clips (Celeb-DF, DFDC) at the
selected threshold. Each run's per-epoch history is kept beside it
(``results/detector/histories/<run>.csv``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from dfdetect.detector.selection import SelectionSet, score_selection
from dfdetect.detector.settings import RECIPE_DEFAULTS
from dfdetect.evaluation import auc_interval
from dfdetect.io import read_table, write_table

ABLATION_COLUMNS = ("run", "backbone", "size", "lr", "backbone_lr", "frame_share",
                    "swap_share", "epochs_done", "best_epoch", "val_auc_sbi", "val_auc_swap", "ffpp_auc", "ffpp_auc_c23",
                    "ffpp_auc_c40", "threshold", "test_auc", "test_auc_low", "test_auc_high",
                    "test_acc", "test_n_real", "test_n_fake", "train_hours", "note")


def ablation_row(run_dir: str | os.PathLike, name: str, test: SelectionSet | None,
                 note: str = "") -> dict:
    """The table's row of one finished (or stopped) run.

    Args:
        run_dir: the run folder (``state.json``, ``best.keras``).
        name: the run's name in the table.
        test: the cross-dataset test clips at the run's input side (or None).
        note: what the run changed, in words.
    """
    import keras  # deferred: starts TensorFlow (the ablation table itself does not)

    import dfdetect.models  # noqa: F401  (registers dfdetect's layers for loading)
    from dfdetect.models.export import read_metadata  # deferred with keras (it imports it)

    run = Path(run_dir)
    state = json.loads((run / "state.json").read_text())
    recipe = state.get("recipe") or {}
    best = next((r for r in state["history"] if r["epoch"] == state["best_epoch"]), {})
    row = {"run": name, "backbone": recipe.get("backbone", "scratch"),
           "size": recipe.get("size"), "lr": recipe.get("lr"),
           "backbone_lr": recipe.get("backbone_lr"),
           **{key: recipe.get(key, old) for key, old in RECIPE_DEFAULTS.items()},
           "epochs_done": state["epoch"],
           "best_epoch": state["best_epoch"], "threshold": round(state["best_threshold"], 4),
           "train_hours": round(state["seconds"] / 3600, 2), "note": note}
    for key in ("val_auc_sbi", "val_auc_swap", "ffpp_auc", "ffpp_auc_c23", "ffpp_auc_c40"):
        value = best.get(key)
        row[key] = round(float(value), 4) if value not in (None, "") else None
    if test is not None:
        model = keras.models.load_model(run / "best.keras")
        threshold = float(read_metadata(run / "best.keras")["threshold"])
        scores = score_selection(lambda x: np.asarray(model.predict_on_batch(x))[:, 0], test)
        ok = np.isfinite(scores)
        auc, lo, hi = auc_interval(test.labels[ok], scores[ok])
        row.update(test_auc=round(auc, 4), test_auc_low=round(lo, 4), test_auc_high=round(hi, 4),
                   test_acc=round(float(np.mean((scores[ok] >= threshold) == test.labels[ok])), 4),
                   test_n_real=int(np.sum(test.labels == 0)),
                   test_n_fake=int(np.sum(test.labels == 1)))
    return row


def record(results_dir: str | os.PathLike, row: dict, run_dir: str | os.PathLike) -> str:
    """Adds or replaces ``row`` in ``<results_dir>/ablation.csv`` and copies the run's
    history to ``<results_dir>/histories/<run>.csv``."""
    res = Path(results_dir)
    table = [r for r in read_table(res / "ablation.csv") if r.get("run") != row["run"]]
    write_table(res / "ablation.csv", table + [row], ABLATION_COLUMNS)
    history = read_table(Path(run_dir) / "history.csv")
    write_table(res / "histories" / f"{row['run']}.csv", history)
    return str(res / "ablation.csv")
