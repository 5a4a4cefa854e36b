"""The detector's training loop: fresh SBI pairs every step, selection every epoch.

Each epoch trains on new pairs (:mod:`dfdetect.detector.pairs`), then scores

* the benchmark's own validation split: held-out photos and videos as SBI pairs and as
  identity swaps (a forgery never trained on) -- the second signal; and
* when a selection folder is given, the real FaceForensics++ clips of ``realworld/``
  (:mod:`dfdetect.detector.selection`) -- the published SBI protocol's selection set.

The checkpoint with the best FF++ video AUC (or, without a selection folder, the best
mean validation AUC) is exported with its threshold; the threshold is the balanced-
accuracy point on the FF++ clips (else the equal-error point of validation). Training
is resumable: every epoch ends with the full training state on disk, and a rerun of the
same command continues from there.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from dfdetect import precision
from dfdetect.detector import selection as selection_mod
from dfdetect.detector.pairs import training_dataset, validation_set
from dfdetect.detector.pool import FacePool, split_pool
from dfdetect.detector.settings import (DEFAULT_EXPORT, PREDICT_FRAMES, RECIPE_DEFAULTS,
                                        TEST_PREFIXES, DetectorScale)
from dfdetect.errors import DataError, ModelError
from dfdetect.io import atomic_write_bytes, atomic_write_text, read_table, write_table


def _lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def _p_fake(model, x: np.ndarray) -> np.ndarray:
    out = model.predict_on_batch(x)
    return np.asarray(out["p_fake"] if isinstance(out, dict) else out)[:, 0]


def _val_scores(model, val: dict) -> dict:
    from sklearn.metrics import roc_auc_score  # deferred: sklearn is slow to import

    out = {}
    for name, (x, y) in val.items():
        pred = np.concatenate([_p_fake(model, x[i:i + 128]) for i in range(0, len(x), 128)]) \
            if len(x) else np.zeros(0)
        out[f"val_auc_{name}"] = float(roc_auc_score(y, pred)) if len(set(y)) == 2 else float("nan")
        out[f"_scores_{name}"] = pred
    out["val_auc"] = float(np.nanmean([out["val_auc_sbi"], out["val_auc_swap"]]))
    return out


def choose_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The validation threshold at the equal-error point (balanced accuracy)."""
    from sklearn.metrics import roc_curve  # deferred: sklearn is slow to import

    fpr, tpr, thr = roc_curve(labels, scores)
    i = int(np.argmin(np.abs(fpr - (1 - tpr))))
    return float(np.clip(thr[i], 0.0, 1.0))


def recipe(sc: DetectorScale) -> dict:
    """What must not change when a run resumes: network, side and rates."""
    return {"backbone": sc.backbone, "size": sc.size, "lr": sc.lr,
            "backbone_lr": sc.backbone_lr, "weights": sc.weights,
            "steps": sc.steps, "batch_pairs": sc.batch_pairs,
            "frame_share": sc.frame_share, "swap_share": sc.swap_share}


def build_training_model(sc: DetectorScale, boundary_weight: float = 1.0,
                         weight_decay: float = 1e-4):
    """The two-output training network of ``sc``, compiled.

    A pretrained backbone trains at ``backbone_lr x lr`` (:class:`ScaledAdamW`), the heads
    at ``lr``; the from-scratch network trains every layer at ``lr``.
    """
    import keras  # deferred: starts TensorFlow; `import dfdetect.detector` must not

    # deferred: these pull TensorFlow; dfdetect.cli imports it silently first
    from dfdetect.models import registry
    from dfdetect.models.detector import BACKBONE_PREFIXES
    from dfdetect.training import ScaledAdamW

    name, kwargs = sc.builder
    model = registry.build_model(name, **kwargs)
    precision.prepare_model(model)  # sigmoid outputs stay float32 under bf16
    if sc.backbone == "scratch" or sc.backbone_lr == 1.0:
        optimizer = keras.optimizers.AdamW(sc.lr, weight_decay=weight_decay, clipnorm=5.0)
    else:
        optimizer = ScaledAdamW(slow_prefixes=BACKBONE_PREFIXES,
                                slow_multiplier=sc.backbone_lr, learning_rate=sc.lr,
                                weight_decay=weight_decay, clipnorm=5.0)
    model.compile(optimizer=optimizer,
                  loss={"p_fake": "binary_crossentropy", "boundary": "binary_crossentropy"},
                  loss_weights={"p_fake": 1.0, "boundary": boundary_weight})
    return model


def train_detector(pool: FacePool, sc: DetectorScale, out_dir: str | os.PathLike,
                   export_path: str | os.PathLike | None = DEFAULT_EXPORT, seed: int = 0,
                   boundary_weight: float = 1.0, hours: float | None = None,
                   say: Callable[[str], None] = print, command: str = "",
                   precision_choice: str | None = None,
                   selection: selection_mod.SelectionSet | None = None,
                   init_weights: str | os.PathLike | None = None,
                   stop_after: int | None = None) -> dict:
    """Trains (or resumes) the detector and exports the selected checkpoint.

    Args:
        pool: prepared canvases (:func:`dfdetect.detector.pool.prepare_pool`).
        sc: the scale: network, input side, rates, epochs.
        out_dir: run folder: ``last.keras`` (full state), ``best.keras``,
            ``history.csv``, ``state.json``.
        export_path: where the selected model is exported for ``predict`` (None: not).
        seed: randomness of the splits, pairs and initialisation.
        boundary_weight: weight of the boundary loss beside the label loss.
        hours: stop after the epoch that passes this wall-clock budget (rerun resumes).
        say: progress lines.
        command: the command line, recorded in the metadata.
        precision_choice: ``float32`` (default), ``mixed_bfloat16`` or ``auto``
            (:mod:`dfdetect.precision`; the probe's cache lives in the run folder). A
            resumed run keeps the precision its checkpoint was saved in.
        selection: the FF++ selection clips at ``sc.size`` (``None``: select on the
            validation split, as the first release did).
        init_weights: a ``.keras`` training checkpoint of the same network (any input
            side) to start from instead of the scale's weights, e.g. a run at a smaller
            side continued at a larger one; the optimizer and schedule start afresh.
        stop_after: stop after this epoch although the schedule spans ``sc.epochs``
            (a first stage that hands its weights to the next before its rate decays).

    Returns:
        The state dict (epochs done, best epoch and its scores).

    Raises:
        DataError: ``out_dir`` holds a run of another scale, seed or recipe, or the
            selection crops do not match the input side.
    """
    import keras  # deferred: starts TensorFlow; `import dfdetect.detector` must not

    # deferred: these pull TensorFlow; dfdetect.cli imports it silently first
    from dfdetect.models.detector import detector_for_export
    from dfdetect.models.export import export_model

    tested = [n for n in (selection.names if selection is not None else [])
              if os.path.basename(n).startswith(TEST_PREFIXES)]
    if tested:
        raise DataError(f"the selection set holds {len(tested)} cross-dataset test clip(s) "
                        f"({os.path.basename(tested[0])}...): only the FF++ clips may select "
                        "a checkpoint")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.json"
    select_on = "ffpp_auc" if selection is not None else "val_auc"
    this_recipe = {**recipe(sc), **({"init": os.path.basename(os.fspath(init_weights))}
                                    if init_weights else {})}
    state = json.loads(state_path.read_text()) if state_path.exists() else {
        "epoch": 0, "best_epoch": None, "best_score": -1.0, "history": [],
        "seconds": 0.0, "scale": sc.name, "seed": seed, "recipe": this_recipe,
        "select_on": select_on}
    if state.get("scale") != sc.name or state.get("seed") != seed:
        raise DataError(f"this run folder holds a {state.get('scale')} run with seed "
                        f"{state.get('seed')}; use another --out", str(out))
    if {**RECIPE_DEFAULTS, **state.get("recipe", this_recipe)} != this_recipe:
        raise DataError(f"this run folder holds a run of another recipe "
                        f"({state.get('recipe')}); use another --out", str(out))
    if state.get("select_on", select_on) != select_on:
        raise DataError(f"this run folder selects on {state.get('select_on')}, not "
                        f"{select_on}; use another --out", str(out))
    if selection is not None and selection.side != sc.size:
        raise DataError(f"selection crops are {selection.side} px, the model takes "
                        f"{sc.size}", str(out))
    train_idx, val_idx = split_pool(pool, seed=seed)
    say(f"detector: {len(train_idx)} training canvases, {len(val_idx)} validation "
        f"(held-out photos and videos); selecting on "
        f"{'the FF++ clips' if selection is not None else 'validation'}")
    val = validation_set(pool, val_idx, sc, seed)
    keras.utils.set_random_seed(seed)
    last = out / "last.keras"
    if last.exists() and state["epoch"] > 0:
        # loading registers dfdetect's optimizer (ScaledAdamW lives in dfdetect.training)
        import dfdetect.training  # noqa: F401

        model = keras.models.load_model(last)
        say(f"detector: resuming after epoch {state['epoch']} of {sc.epochs}")
    else:
        precision.configure(precision_choice, cache_dir=out, log=say)
        model = build_training_model(sc, boundary_weight)
        if init_weights:
            if not os.path.isfile(init_weights):
                raise DataError("no such checkpoint to start from", init_weights)
            with warnings.catch_warnings():
                # the checkpoint's optimizer state is left behind on purpose: a new schedule
                warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
                model.load_weights(os.fspath(init_weights))
            say(f"detector: starting from the weights of {init_weights}")
    total = sc.epochs * sc.steps
    started = time.time()

    class StepLR(keras.callbacks.Callback):
        def __init__(self, first_step):
            super().__init__()
            self.step = first_step

        def on_train_batch_begin(self, batch, logs=None):
            self.model.optimizer.learning_rate.assign(_lr(self.step, total, sc.lr, sc.steps))
            self.step += 1

    last_epoch = min(sc.epochs, stop_after or sc.epochs)
    while state["epoch"] < last_epoch:
        epoch = state["epoch"]
        t0 = time.perf_counter()
        ds = training_dataset(pool, train_idx, sc, seed, epoch)
        hist = model.fit(ds, epochs=1, verbose=0, shuffle=False,
                         callbacks=[StepLR(epoch * sc.steps)])
        train_s = time.perf_counter() - t0
        scores = _val_scores(model, val)
        row = {"epoch": epoch + 1, "loss": hist.history["loss"][-1],
               "p_fake_loss": hist.history.get("p_fake_loss", [float("nan")])[-1],
               "boundary_loss": hist.history.get("boundary_loss", [float("nan")])[-1],
               "val_auc_sbi": scores["val_auc_sbi"], "val_auc_swap": scores["val_auc_swap"],
               "val_auc": scores["val_auc"]}
        sel_scores = None
        if selection is not None:
            sel_scores = selection_mod.score_selection(lambda x: _p_fake(model, x), selection)
            row.update({k: round(v, 4) for k, v in
                        selection_mod.selection_metrics(sel_scores, selection).items()})
        row.update(seconds=round(train_s, 1),
                   images_per_s=round(2 * sc.steps * sc.batch_pairs / train_s, 1))
        tmp = out / "last.tmp.keras"
        model.save(tmp)
        score = row[select_on]
        improved = np.isfinite(score) and score > state["best_score"]
        if improved:
            if sel_scores is not None:
                threshold = selection_mod.balanced_threshold(selection.labels, sel_scores)
                how = "balanced-accuracy point of the FF++ selection clips"
            else:
                labels = np.concatenate([val["sbi"][1], val["swap"][1]])
                val_scores = np.concatenate([scores["_scores_sbi"], scores["_scores_swap"]])
                threshold = choose_threshold(labels, val_scores)
                how = "equal-error point of the validation pairs"
            meta = {"experiment": "default_detector", "config": "sbi_boundary",
                    "backbone": sc.backbone, "scale": sc.name, "image_size": sc.size,
                    "frames": PREDICT_FRAMES, "threshold": round(threshold, 4),
                    "threshold_from": how, "selected_on": select_on,
                    "epoch": epoch + 1, "seed": seed,
                    "val_auc_sbi": round(scores["val_auc_sbi"], 4),
                    "val_auc_swap": round(scores["val_auc_swap"], 4),
                    "training": "SBI (published recipe) on face photos and real video "
                                "frames; boundary head; realworld/ never trained on",
                    "command": command}
            if sel_scores is not None:
                meta["ffpp_auc"] = row["ffpp_auc"]
            export_model(detector_for_export(model), out / "best.keras", **meta)
            state.update(best_epoch=epoch + 1, best_score=float(score),
                         best_threshold=threshold)
        os.replace(tmp, last)
        state["epoch"] = epoch + 1
        state["seconds"] = round(state["seconds"] + time.perf_counter() - t0, 1)
        state["history"].append(row)
        write_table(out / "history.csv", state["history"])
        atomic_write_text(state_path, json.dumps(state, indent=2) + "\n")
        ffpp = (f"  FF++ AUC {row['ffpp_auc']:.3f} (c23 {row['ffpp_auc_c23']:.3f}, c40 "
                f"{row['ffpp_auc_c40']:.3f})" if selection is not None else "")
        say(f"detector: epoch {epoch + 1}/{sc.epochs}  loss {row['loss']:.4f}  val AUC sbi "
            f"{row['val_auc_sbi']:.3f} swap {row['val_auc_swap']:.3f}{ffpp}  "
            f"{row['images_per_s']:.0f} img/s{'  (best)' if improved else ''}")
        out_of_time = hours is not None and time.time() - started > hours * 3600
        if out_of_time and state["epoch"] < last_epoch:
            say(f"detector: time budget of {hours} h spent after epoch {state['epoch']}; "
                "rerun the same command to continue (the best epoch so far is exported)")
            break
    if export_path is not None and (out / "best.keras").exists():
        Path(export_path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(export_path, (out / "best.keras").read_bytes())
        say(f"detector: best epoch {state['best_epoch']} ({select_on} "
            f"{state['best_score']:.3f}) exported to {export_path}")
        _write_twin(export_path, say)
    return state


def _write_twin(export_path: str | os.PathLike, say) -> None:
    """The exported detector's LiteRT twin, which ``predict`` starts faster with; without
    one predict uses Keras, so a failure here is a line, not the run's end."""
    from dfdetect.models import litert

    if not litert.available():
        say(f"detector: no LiteRT twin written ({litert.INSTALL} for a faster predict)")
        return
    try:
        say(f"detector: LiteRT twin written to {litert.export_litert(export_path)}")
    except ModelError as err:
        say(f"detector: no LiteRT twin written: {err}")


def write_training_record(out_dir: str | os.PathLike, results_dir: str | os.PathLike) -> str:
    """Copies a run's per-epoch history and its outcome to ``results_dir`` (committed).

    ``history.csv``: losses, validation AUCs and FF++ selection AUCs per epoch;
    ``training.json``: the recipe, epochs done, the selected epoch, its scores and
    threshold, wall seconds.
    """
    out, res = Path(out_dir), Path(results_dir)
    state = json.loads((out / "state.json").read_text())
    res.mkdir(parents=True, exist_ok=True)
    write_table(res / "history.csv", read_table(out / "history.csv"))
    best = next((r for r in state["history"] if r["epoch"] == state["best_epoch"]), {})
    record = {"scale": state["scale"], "seed": state["seed"],
              "recipe": state.get("recipe"), "selected_on": state.get("select_on", "val_auc"),
              "epochs_done": state["epoch"], "best_epoch": state["best_epoch"],
              "best_val_auc_sbi": best.get("val_auc_sbi"),
              "best_val_auc_swap": best.get("val_auc_swap"),
              "best_ffpp_auc": best.get("ffpp_auc"),
              "threshold": state.get("best_threshold"), "train_seconds": state["seconds"]}
    atomic_write_text(res / "training.json", json.dumps(record, indent=2) + "\n")
    return str(res)


__all__ = ["build_training_model", "choose_threshold", "recipe", "train_detector",
           "write_training_record"]
