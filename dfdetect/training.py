"""Compile + fit shared by every experiment.

Early stopping on validation with the best weights restored, step learning-rate decay,
a best-model checkpoint in ``.keras``, a CSV log per run, optional TensorBoard, seeded
repeats, ``tf.distribute`` strategies, P2's fixed-epoch measured run
(:func:`train_run`), and P3's imbalance schedule. The resumable grid runner is one
floor up, in :mod:`dfdetect.experiment` (it writes result tables).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from dfdetect import precision
from dfdetect.errors import DfdetectError, ModelError
from dfdetect.progress import progress
from dfdetect.results import run_metrics


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the backend so a repeat is reproducible."""
    keras.utils.set_random_seed(int(seed))


def get_strategy(name: str = "default") -> tf.distribute.Strategy:
    """A ``tf.distribute`` strategy by name: ``default``, ``mirrored`` or ``multiworker``.

    ``mirrored`` uses every visible GPU, or every logical CPU device when there is no
    GPU; ``multiworker`` reads its cluster from ``TF_CONFIG``.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise DfdetectError(f"unknown strategy {name!r}; choose default, mirrored or multiworker")


def output_kind(model: keras.Model) -> str:
    """``sigmoid`` for a 1-unit head, ``softmax`` for a 2-unit head."""
    units = model.output_shape[-1]
    if units == 1:
        return "sigmoid"
    if units == 2:
        return "softmax"
    raise DfdetectError(f"model {model.name!r} has {units} outputs; expected 1 or 2")


def compile_model(model: keras.Model, optimizer: str | keras.optimizers.Optimizer = "adam",
                  learning_rate: float = 1e-3, run_eagerly: bool = False,
                  auc: bool = False, **optimizer_kwargs) -> keras.Model:
    """Compile with the loss that matches the head (binary or sparse categorical CE).

    The model is first put into the run's precision (``--precision``: a no-op for the
    default float32; see :func:`dfdetect.precision.prepare_model`). ``run_eagerly``:
    fit, evaluate and predict without tracing a graph (a smoke run's few steps cost
    less than the tracing; :attr:`dfdetect.scales.Scale.eager`). ``auc``: a sigmoid
    head also tracks ROC AUC (``auc``, ``val_auc`` per epoch; Keras' 200-threshold
    estimate), the number a detector is judged by.
    """
    precision.prepare_model(model)
    if isinstance(optimizer, str):
        optimizer = keras.optimizers.get({"class_name": optimizer, "config": {
            "learning_rate": learning_rate, **optimizer_kwargs}})
    loss = ("binary_crossentropy" if output_kind(model) == "sigmoid"
            else "sparse_categorical_crossentropy")
    metrics: list = ["accuracy"]
    if auc and output_kind(model) == "sigmoid":
        metrics.append(keras.metrics.AUC(name="auc"))
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                  run_eagerly=bool(run_eagerly))
    return model


@keras.saving.register_keras_serializable(package="dfdetect")
class ScaledAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate is multiplied by ``slow_multiplier`` for some layers.

    Fine-tuning a pretrained backbone under new heads wants a smaller rate for the
    backbone than for the heads: a full-network AdamW at the heads' rate can wash the
    ImageNet features out in the first epoch. A gradient-scaling layer would not do it
    (Adam divides the scale away), so the rate itself is scaled per variable. Layers are
    picked by the start of their names (a variable's ``path`` begins with its layer's).

    Args:
        slow_prefixes: layer-name prefixes trained at the lower rate.
        slow_multiplier: their rate = ``learning_rate x slow_multiplier``.
        **kwargs: ``keras.optimizers.AdamW``'s.
    """

    def __init__(self, slow_prefixes: Sequence[str] = (), slow_multiplier: float = 0.1,
                 **kwargs):
        super().__init__(**kwargs)
        self.slow_prefixes = tuple(slow_prefixes)
        self.slow_multiplier = float(slow_multiplier)

    def _is_slow(self, variable) -> bool:
        # the TF backend hands update_step the raw tf.Variable: find the Keras one (with
        # its layer path) through the optimizer's own index
        own = self._trainable_variables[self._get_variable_index(variable)]
        return str(own.path).startswith(self.slow_prefixes)

    def update_step(self, gradient, variable, learning_rate):
        if self._is_slow(variable):
            learning_rate = learning_rate * self.slow_multiplier
        super().update_step(gradient, variable, learning_rate)

    def _apply_weight_decay(self, variables):
        # the decay step uses the optimizer's own rate: scale it for the slow layers too
        if self.weight_decay is None:
            return
        slow = [v for v in variables if self._is_slow(v)]
        fast = [v for v in variables if not self._is_slow(v)]
        super()._apply_weight_decay(fast)
        if slow:
            decay = self.weight_decay
            try:
                self.weight_decay = decay * self.slow_multiplier
                super()._apply_weight_decay(slow)
            finally:
                self.weight_decay = decay

    def get_config(self):
        config = super().get_config()
        config.update(slow_prefixes=list(self.slow_prefixes),
                      slow_multiplier=self.slow_multiplier)
        return config


def step_decay(initial_lr: float, factor: float = 0.5, every: int = 5) -> Callable[[int], float]:
    """Step-wise decay: the rate is multiplied by ``factor`` every ``every`` epochs."""
    def schedule(epoch: int, lr=None) -> float:
        return float(initial_lr * factor ** (epoch // every))
    return schedule


@dataclasses.dataclass
class FitResult:
    """What one training run produced.

    Attributes:
        history: per-epoch metrics (``loss``, ``accuracy``, ``val_loss``...).
        seconds: wall time of ``fit``.
        epochs_run: epochs actually run (early stopping may cut them).
        best_epoch: 1-based epoch of the best monitored value.
        checkpoint: path of the best model (``.keras``) or None.
    """

    history: dict
    seconds: float
    epochs_run: int
    best_epoch: int
    checkpoint: str | None

    def best(self, key: str, mode: str = "min") -> tuple[float, int]:
        """Best value of ``key`` and its 1-based epoch."""
        values = np.asarray(self.history.get(key, []), dtype=float)
        if values.size == 0:
            return float("nan"), 0
        i = int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))
        return float(values[i]), i + 1


def epoch_line(epoch: int, epochs: int, logs: Mapping, seconds: float,
               name: str | None = None) -> str:
    """``meso4 r0 epoch 2/10: loss 0.6812  accuracy 0.5625  val_loss 0.6901  val_accuracy
    0.5000  val_auc 0.6250  lr 0.001  (12.3 s)``: one finished epoch, for a log file.

    Args:
        epoch: the 0-based epoch.
        epochs: the epochs asked for.
        logs: Keras' epoch logs (training and validation metrics, ``learning_rate``).
        seconds: the epoch's wall time.
        name: what is training (the model or configuration); ``None``: left out.
    """
    # loss first, then the other training metrics, then validation's in the same order
    def order(key: str) -> tuple:
        bare = key[4:] if key.startswith("val_") else key
        return key.startswith("val_"), bare != "loss", bare

    parts = [f"{key} {float(logs[key]):.4f}" for key in sorted(logs, key=order)
             if key != "learning_rate"]
    if "learning_rate" in logs:
        parts.append(f"lr {float(logs['learning_rate']):.3g}")
    head = f"{name} epoch" if name else "epoch"
    return f"{head} {epoch + 1}/{epochs}: {'  '.join(parts)}  ({seconds:.1f} s)"


class EpochProgress(keras.callbacks.Callback):
    """Training progress the way every dfdetect command shows progress
    (:func:`dfdetect.progress.progress`): a bar over an epoch's steps on a terminal, a
    timed line every 30 s in a log file, and one line per finished epoch with its
    training and validation metrics, named, so a make log of a grid says which model
    each line is about (Keras' own lines, ``2/2 - 18s - 9s/step - ...``, did not).

    Args:
        epochs: the epochs asked for (``N`` of ``epoch n/N``).
        name: what is training (e.g. ``meso4+xception r0``); ``None``: left out.
        log: where the epoch lines go.
    """

    def __init__(self, epochs: int, name: str | None = None,
                 log: Callable[[str], None] = print):
        super().__init__()
        self.epochs, self.name, self.log = int(epochs), name, log
        self._bar = None
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        steps = (self.params or {}).get("steps")
        head = f"{self.name} epoch" if self.name else "epoch"
        self._bar = progress(total=steps, desc=f"{head} {epoch + 1}/{self.epochs}",
                             unit="step", final=False)

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        logs = dict(logs or {})
        if "learning_rate" not in logs:  # no scheduler ran before this callback
            optimizer = getattr(self._model, "optimizer", None)
            try:
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(
                    optimizer.learning_rate))
            except (AttributeError, TypeError, ValueError):
                pass
        self.log(epoch_line(epoch, self.epochs, logs, time.perf_counter() - self._start,
                            self.name))

    def on_train_end(self, logs=None):
        if self._bar is not None:  # stopped inside an epoch
            self._bar.close()
            self._bar = None


class TimeBudget(keras.callbacks.Callback):
    """Stops training before an epoch would end past ``seconds`` of wall time.

    The next epoch is assumed to last as long as the slowest one so far, so a budget
    (e.g. "Meso-4 trained for at most 10 minutes") is kept, not overrun by an epoch.
    """

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = float(seconds)
        self.stopped_early = False

    def on_train_begin(self, logs=None):
        self._start = self._last = time.perf_counter()
        self._longest = 0.0

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self._longest = max(self._longest, now - self._last)
        self._last = now
        if now - self._start + self._longest > self.seconds:
            self.stopped_early = True
            self.model.stop_training = True


def fit(model: keras.Model, train_ds, val_ds=None, epochs: int = 10,
        out_dir: str | os.PathLike | None = None, learning_rate: float | None = None,
        patience: int | None = 5, decay_factor: float | None = 0.5, decay_every: int = 5,
        monitor: str = "val_loss", mode: str = "min", tensorboard: bool = False,
        class_weight: Mapping[int, float] | None = None, verbose: int | str = "auto",
        extra_callbacks: Sequence[keras.callbacks.Callback] = (),
        initial_epoch: int = 0, name: str | None = None,
        log: Callable[[str], None] = print, save_best: bool = True) -> FitResult:
    """Train a compiled model with the house callbacks.

    Args:
        model: a compiled model.
        train_ds, val_ds: tf.data datasets of (inputs, labels).
        epochs: maximum epochs.
        out_dir: where ``best.keras``, ``log.csv`` and TensorBoard logs go (None: nowhere).
        learning_rate: base rate for the step decay (default: the optimizer's).
        patience: early-stopping patience on ``monitor`` (None: no early stopping);
            the best weights are restored at the end either way.
        decay_factor, decay_every: step decay (None factor: constant rate).
        monitor, mode: the validation quantity that picks the best epoch.
        tensorboard: also write TensorBoard logs.
        class_weight: optional class weights, e.g. for imbalanced data.
        verbose: 0: silent; anything else: :class:`EpochProgress` (a bar on a
            terminal, timed lines in a log file, a line per epoch naming ``name``), in
            place of Keras' own output.
        initial_epoch: 0-based epoch to start at, resuming a training whose weights were
            restored (the decay and the callbacks see the true epoch numbers; the
            history and early stopping cover only the epochs run by this call).
        name: what the progress lines call the run (default: the model's name).
        log: where the epoch lines go (default: printed).
        save_best: with ``out_dir``, also save the best epoch's model as ``best.keras``
            (False: only ``log.csv``, for a caller that exports the model itself: the
            best weights are restored at the end either way, and a whole model with its
            optimizer state is 3x the weights, 250 MB for Xception, on every improving
            epoch).
    """
    if val_ds is None and monitor.startswith("val_"):
        monitor = monitor[4:]
    callbacks: list[keras.callbacks.Callback] = list(extra_callbacks)
    if decay_factor is not None:
        base = learning_rate if learning_rate is not None else float(
            keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        callbacks.append(keras.callbacks.LearningRateScheduler(
            step_decay(base, decay_factor, decay_every)))
    # EarlyStopping with an infinite patience still restores the best weights.
    callbacks.append(keras.callbacks.EarlyStopping(
        monitor=monitor, mode=mode, restore_best_weights=True,
        patience=patience if patience is not None else epochs + 1))
    checkpoint = None
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        if save_best:
            checkpoint = os.path.join(os.fspath(out_dir), "best.keras")
            callbacks.append(keras.callbacks.ModelCheckpoint(
                checkpoint, monitor=monitor, mode=mode, save_best_only=True))
        callbacks.append(keras.callbacks.CSVLogger(os.path.join(os.fspath(out_dir), "log.csv")))
        if tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(os.fspath(out_dir), "tb")))
    if verbose not in (0, "0"):  # last: it reports what the others put in the logs (lr)
        callbacks.append(EpochProgress(epochs, model.name if name is None else name, log))
    start = time.perf_counter()
    # The tf.data pipelines shuffle themselves; Keras' default shuffle=True only warns.
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, shuffle=False,
                        callbacks=callbacks, class_weight=class_weight, verbose=0,
                        initial_epoch=initial_epoch)
    seconds = time.perf_counter() - start
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    result = FitResult(hist, seconds, len(hist.get("loss", [])), 0, checkpoint)
    result.best_epoch = result.best(monitor, mode)[1]
    if checkpoint and not os.path.exists(checkpoint):
        checkpoint = result.checkpoint = None
    return result


def predict_scores(model: keras.Model, dataset) -> np.ndarray:
    """Fake-probabilities for every sample of ``dataset`` (inputs, labels) or inputs."""
    probs = model.predict(dataset, verbose=0)
    probs = np.asarray(probs, dtype=np.float64)
    return probs[:, 1] if probs.ndim == 2 and probs.shape[1] == 2 else probs.reshape(-1)


def dataset_labels(dataset) -> np.ndarray:
    """The labels of a (inputs, labels) dataset, in iteration order."""
    return np.concatenate([np.asarray(y).reshape(-1) for _, y in dataset]).astype(int)


def is_out_of_memory(err: BaseException) -> bool:
    """True for the errors a too-large configuration raises."""
    return isinstance(err, (MemoryError, tf.errors.ResourceExhaustedError)) or \
        "OOM" in str(err) or "out of memory" in str(err).lower()


def imbalance_schedule(labels: Sequence[int], rng: np.random.Generator | int = 0,
                       chunk_size: int | None = None) -> list[np.ndarray]:
    """P3's Table 4 schedule: every real each round, the fakes in rotating chunks.

    With N reals and M fakes, the fakes are shuffled and cut into chunks of
    ``chunk_size`` (default N, as the algorithm of Table 4 indexes fakes by N*c + i);
    round c trains on all reals plus chunk c, the weights carrying over between rounds.
    (The paper's prose cuts Celeb-DF's 5,539 fakes into 9 x 590 + 229, 590 being the
    real count before the test split: pass ``chunk_size=590`` for that reading.)
    With M <= chunk size there is one round holding everything.

    Returns:
        One index array per round (indices into ``labels``), shuffled within the round.
        Every fake appears in exactly one round; every real in every round.
    """
    rng = np.random.default_rng(rng)
    labels = np.asarray(labels).astype(int)
    reals = np.flatnonzero(labels == 0)
    fakes = np.flatnonzero(labels == 1)
    size = int(chunk_size or reals.size)
    if size <= 0 or fakes.size <= size:
        return [rng.permutation(np.arange(labels.size))]
    shuffled = rng.permutation(fakes)
    chunks = [shuffled[i:i + size] for i in range(0, fakes.size, size)]
    return [rng.permutation(np.concatenate([reals, chunk])) for chunk in chunks]


def class_weights(labels: Sequence[int]) -> dict[int, float]:
    """Balanced class weights (the plain alternative to the imbalance schedule)."""
    labels = np.asarray(labels).astype(int)
    counts = np.bincount(labels, minlength=2).astype(float)
    return {c: float(labels.size / (2 * counts[c])) if counts[c] else 0.0 for c in (0, 1)}


def weights_file_size(model: keras.Model, path: str | os.PathLike) -> int:
    """Save the model's weights to ``path`` and return its size in bytes (P2's W_s)."""
    path = os.fspath(path)
    if not path.endswith(".weights.h5"):
        path += ".weights.h5"
    model.save_weights(path)
    return os.path.getsize(path)


def train_run(model, train_ds, val_ds, epochs: int, weights_path: str | os.PathLike, *,
              learning_rate: float = 1e-3, verbose: int | str = 0,
              keep_weights: bool = False, extra_callbacks=()) -> dict:
    """Train as P2 did (fixed epochs) and measure one run.

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
        The run's :data:`dfdetect.results.RUN_METRICS` plus ``epochs`` (epochs run).
    """
    weights_path = os.fspath(weights_path)
    if not weights_path.endswith(".weights.h5"):
        raise ModelError("a weights file name must end in .weights.h5", weights_path)
    compile_model(model, "adam", learning_rate)
    result = fit(model, train_ds, val_ds, epochs=epochs, patience=None,
                 decay_factor=None, verbose=verbose, extra_callbacks=extra_callbacks)
    row = run_metrics(result.history)
    row["T_s"] = round(result.seconds, 2)
    row["N_p"] = int(model.count_params())
    os.makedirs(os.path.dirname(os.path.abspath(weights_path)), exist_ok=True)
    row["W_s"] = weights_file_size(model, weights_path)
    if not keep_weights:
        os.remove(weights_path)
    row["epochs"] = result.epochs_run
    return row


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
