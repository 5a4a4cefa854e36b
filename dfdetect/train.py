"""``dfdetect train``: one registered image model, trained on a store, exported as .keras.

The model is built by name through :func:`dfdetect.models.registry.build_model` (the
same path the experiments and ``predict`` use), fed by the tf.data builders of
:mod:`dfdetect.data.pipeline`, fitted by :func:`dfdetect.training.fit` (early stopping on
validation loss with the best weights restored, step learning-rate decay: P1's recipe)
and written with :func:`dfdetect.models.export.export_model`, so ``predict``,
``explain`` and ``evaluate`` read its input size and threshold from the file.

Training is resumable: after every epoch the model's and the optimizer's weights, the
history and the early-stopping state go to ``<out>.checkpoint/``
(:class:`TrainingCheckpoint`), so a Ctrl-C or a full disk at epoch 9 of 300 loses at
most the epoch it interrupted, and the same command run again continues at the next
epoch (the data order of the resumed epochs differs from an uninterrupted run's). The
folder goes once the model is exported; a checkpoint made with other settings is refused,
not mixed.

Importing this module is cheap (no TensorFlow): TensorFlow starts inside
:func:`train_model`, so the CLI refuses a bad name, store or output path before paying
for it; the imports of the registry, training, pipeline and export stay in the functions
for that reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

from dfdetect.data import store
from dfdetect.errors import DataError, ModelError, note_kept, one_line
from dfdetect.io import atomic_path, atomic_write_text
from dfdetect.precision import configure as configure_precision

#: Registered models ``dfdetect train`` refuses, with what to do instead.
NOT_TRAINABLE_HERE = {
    "default_detector": "has two outputs (P(fake) and a blend-boundary map) and its own "
                        "self-blended training recipe: build it with 'make detector'",
}
#: The step decay and early stopping of P1 (experiments/p1_fusion.py).
DECAY_FACTOR, DECAY_EVERY, PATIENCE = 0.5, 5, 5
DEFAULT_SIZE = 256
#: The registered image classifiers that build from a name and an image size alone
#: (a hint for messages: :func:`build_image_model` checks any name by building it).
IMAGE_MODELS = "meso4, mesoinception4, inception_transfer"
THRESHOLD = 0.5
#: ``<out>`` + this: the folder holding an unfinished training's checkpoint.
CHECKPOINT_SUFFIX = ".checkpoint"


@dataclasses.dataclass
class TrainSummary:
    """What ``dfdetect train`` did.

    Attributes:
        path: the exported model.
        name: the registry name it was built from.
        image_size: input side in pixels.
        epochs_run, best_epoch: epochs fitted and the epoch whose weights were kept.
        seconds: wall time of the fit.
        val_auc: ROC AUC on the store's val split (NaN without one, or with one class).
        train, val: sample counts.
        resumed_at: the 1-based epoch this run resumed at (0: it started afresh).
    """

    path: str
    name: str
    image_size: int
    epochs_run: int
    best_epoch: int
    seconds: float
    val_auc: float
    train: int
    val: int
    resumed_at: int = 0

    def report(self) -> str:
        auc = "n/a" if math.isnan(self.val_auc) else f"{self.val_auc:.3f}"
        resumed = f", resumed at epoch {self.resumed_at}" if self.resumed_at else ""
        return (f"{self.name}: {self.epochs_run} epochs in {self.seconds:.0f} s (kept epoch "
                f"{self.best_epoch}{resumed}), val AUC {auc} on {self.val} crops -> "
                f"{self.path}")


class TrainingCheckpoint:
    """The state of an unfinished ``dfdetect train``, one folder beside the model.

    ``state.json`` names the weights files (model and optimizer, ``model.save_weights``)
    of the last finished epoch and of the best one, with the history, the early-stopping
    state and the settings. Each epoch's weights get a new name and ``state.json`` is
    replaced last (both atomically), so a kill at any moment leaves a state that names
    whole files.

    Args:
        folder: the checkpoint folder (``<out>.checkpoint``).
        settings: what must match for a rerun to resume (model, store, size, batch...).
        monitor: the quantity that picks the best epoch (``val_loss``, or ``loss``).
        patience: epochs without improvement that end the training.
    """

    STATE = "state.json"

    def __init__(self, folder: str | os.PathLike, settings: Mapping, monitor: str,
                 patience: int):
        self.folder = Path(folder)
        self.settings = dict(settings)
        self.patience = int(patience)
        self.state = {"settings": self.settings, "monitor": monitor, "epochs_done": 0,
                      "history": {}, "best": None, "best_epoch": 0, "wait": 0,
                      "latest": None, "best_weights": None, "seconds": 0.0,
                      "finished": False}

    @property
    def epochs_done(self) -> int:
        return int(self.state["epochs_done"])

    @property
    def finished(self) -> bool:
        return bool(self.state["finished"])

    def load(self) -> bool:
        """Reads an earlier run's state; False when there is none.

        Raises:
            DataError: the checkpoint is damaged, or was made with other settings.
        """
        path = self.folder / self.STATE
        if not path.is_file():
            return False
        try:
            state = json.loads(path.read_text())
            recorded = dict(state["settings"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"damaged training checkpoint ({one_line(err, 120)}): delete "
                            "the folder to train afresh", self.folder) from None
        differ = {k: v for k, v in recorded.items() if self.settings.get(k) != v}
        if differ:
            diff = ", ".join(f"{k} {v!r} (asked {self.settings.get(k)!r})"
                             for k, v in differ.items())
            raise DataError(f"holds the checkpoint of another training: {diff}; rerun "
                            "with those settings to resume it, or delete the folder to "
                            "train afresh", self.folder)
        self.state = state
        return True

    def restore(self, model, best: bool = False) -> None:
        """Loads the last finished epoch's weights (or the best epoch's) into ``model``,
        the optimizer's state included."""
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # its variables must exist
        model.load_weights(self.folder / self.state["best_weights" if best else "latest"])

    def epoch_end(self, model, epoch: int, logs: Mapping, seconds: float) -> bool:
        """Records a finished epoch (0-based ``epoch``); True when training should stop."""
        state = self.state
        for key, value in logs.items():
            state["history"].setdefault(key, []).append(float(value))
        value = float(logs.get(state["monitor"], math.nan))
        improved = state["best"] is None or value < state["best"]  # NaN never improves
        if improved:
            state["best"], state["best_epoch"], state["wait"] = value, epoch + 1, 0
        else:
            state["wait"] += 1
        name = f"epoch-{epoch + 1:04d}.weights.h5"
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / name) as tmp:
            model.save_weights(tmp)
        state["latest"], state["epochs_done"] = name, epoch + 1
        if improved:
            state["best_weights"] = name
        state["seconds"] += seconds
        self._write()
        for old in self.folder.glob("epoch-*.weights.h5"):  # kept: the latest and the best
            if old.name not in (state["latest"], state["best_weights"]):
                old.unlink(missing_ok=True)
        return state["wait"] >= self.patience

    def finish(self) -> None:
        """Marks the training done: a rerun exports the best epoch without training."""
        self.state["finished"] = True
        self._write()

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write(self) -> None:
        atomic_write_text(self.folder / self.STATE, json.dumps(self.state, indent=1) + "\n")

    def kept(self) -> str:
        """What an interrupted run keeps, in the words the CLI prints."""
        done, best = self.epochs_done, self.state["best_epoch"]
        if self.finished:
            return (f"the training finished ({done} epochs, best epoch {best}) and is "
                    f"checkpointed in {self.folder}: rerun the same command to export it "
                    "without training again")
        if not done:
            return "no epoch had finished: nothing was kept"
        epochs = "epoch 1 is" if done == 1 else f"epochs 1-{done} are"
        return (f"{epochs} checkpointed in {self.folder} (best: epoch {best}); rerun the "
                f"same command to resume at epoch {done + 1}")


def checkpoint_callback(checkpoint: TrainingCheckpoint):
    """A Keras callback that hands every finished epoch to ``checkpoint`` and stops the
    training when it says so (the early stopping that survives a resume)."""
    import keras  # deferred: TensorFlow starts when training does, not at --help

    class EpochCheckpoint(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if checkpoint.epoch_end(self.model, epoch, logs or {},
                                    time.perf_counter() - self._start):
                self.model.stop_training = True

    return EpochCheckpoint()


def epoch_lines(epochs: int, log: Callable[[str], None] = print):
    """The progress every command shows (:class:`dfdetect.training.EpochProgress`): a
    bar over the epoch's steps on a terminal, a timed line every 30 s in a log file, and
    one line per epoch with its loss, accuracy and ROC AUC, training and validation."""
    from dfdetect.training import EpochProgress  # deferred: TensorFlow

    return EpochProgress(epochs, log=log)


def refuse_untrainable(name: str) -> str:
    """The lower-case name; refuses, without importing TensorFlow, the registered
    models this command cannot train.

    Raises:
        ModelError: ``default_detector`` (pointing to ``make detector``).
    """
    key = str(name).strip().lower()
    if key in NOT_TRAINABLE_HERE:
        raise ModelError(f"{key} {NOT_TRAINABLE_HERE[key]}")
    return key


def check_name(name: str) -> str:
    """The registry key for ``name``; refuses models this command cannot train.

    Raises:
        ModelError: ``default_detector`` (pointing to ``make detector``), or a name that
            is neither registered nor a fusion configuration (listing the available ones).
    """
    from dfdetect.models import registry  # deferred: TensorFlow (see the module docstring)

    key = refuse_untrainable(name)
    try:
        registry.get_builder(key)
    except ModelError:
        names = ", ".join(n for n in registry.available() if n not in NOT_TRAINABLE_HERE)
        raise ModelError(f"unknown model {name!r}: choose one of {IMAGE_MODELS}, or a "
                         "fusion configuration such as xception or meso4+xception (the "
                         f"registry holds: {names}; the video, sequence and pose models "
                         "among them are trained by their experiments)") from None
    return key


def build_image_model(name: str, image_size: int):
    """``registry.build_model(name, input_shape=(S, S, 3))``, checked to be an image
    classifier with a 1-unit sigmoid or 2-unit softmax head.

    Raises:
        ModelError: the builder needs more than an input shape (``custom_cnn``,
            ``backbone``, video and sequence models), or the model is not an image
            classifier.
    """
    from dfdetect.models import registry  # deferred: TensorFlow

    key = check_name(name)
    builder = registry.get_builder(key)
    shape = (int(image_size), int(image_size), 3)
    hint = (f"dfdetect train takes image classifiers built from their name alone: "
            f"{IMAGE_MODELS}, or a fusion configuration such as xception or meso4+xception")
    try:
        inspect.signature(builder).bind(input_shape=shape)
    except TypeError:
        raise ModelError(f"{key} cannot be built from its name and an image size; {hint}"
                         ) from None
    except ValueError:  # no signature to inspect: let the builder decide
        pass
    try:
        model = registry.build_model(key, input_shape=shape)
    except (TypeError, ValueError) as err:  # a sequence or pose model given an image
        detail = " ".join(str(err).split())[:160]
        raise ModelError(f"{key} does not build as an image model at {image_size} px "
                         f"({type(err).__name__}: {detail}); {hint}") from None
    if len(model.input_shape) != 4 or model.output_shape[-1] not in (1, 2) \
            or len(model.output_shape) != 2:
        raise ModelError(f"{key} is not an image classifier (input {model.input_shape}, "
                         f"output {model.output_shape}); {hint}")
    return model


def store_crop_size(root: str | os.PathLike, rows) -> int:
    """The side of the store's first crop (crops are square), else 256."""
    from PIL import Image  # deferred: Pillow reads one header here, nothing else does

    for row in rows[:1]:
        try:
            with Image.open(Path(root) / row["crop_path"]) as image:
                return int(image.size[0])
        except OSError:
            break  # the pipeline names the missing crop itself
    return DEFAULT_SIZE


def refuse_one_class(rows: Sequence[Mapping], data) -> None:
    """Refuses a training split of one class: the model would learn a constant.

    Raises:
        DataError: with the counts of both classes.
    """
    fakes = sum(int(r["label"]) for r in rows)
    reals = len(rows) - fakes
    if not reals or not fakes:
        missing = "fake" if not fakes else "real"
        raise DataError(f"the train split has {len(rows)} crops, {reals} real and {fakes} "
                        f"fake: a detector cannot learn from one class; add {missing} crops "
                        "to the train split", data)


def undecodable_crop(rows: Sequence[Mapping], root) -> tuple[str, str] | None:
    """The first crop of ``rows`` that TensorFlow cannot decode, and why; None if all do.

    Run only after a training failed to decode one (tf.data's error names no file).
    """
    import tensorflow as tf  # deferred: TensorFlow starts when training does

    for row in rows:
        path = os.path.join(os.fspath(root), row["crop_path"])
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except (tf.errors.OpError, ValueError) as err:
            # "{{function_node __wrapped__DecodeImage_device_...}} Invalid PNG data, size
            # 50 [Op:DecodeImage] name: ": the middle is the reason.
            text = re.sub(r"\{\{.*?\}\}|\[Op:[^\]]*\]|\s*name:\s*$", "",
                          str(getattr(err, "message", err)))
            return path, one_line(text, 120)
    return None


@contextlib.contextmanager
def naming_bad_crops(rows: Sequence[Mapping], root):
    """Turns tf.data's "InvalidArgumentError ... DecodeImage" into a line naming the crop.

    Raises:
        DataError: a crop of ``rows`` does not decode (its path, what TensorFlow said).
    """
    import tensorflow as tf  # deferred: TensorFlow starts when training does

    try:
        yield
    except tf.errors.InvalidArgumentError:
        bad = undecodable_crop(rows, root)
        if bad is None:
            raise
        raise DataError(f"this crop does not decode as an image ({bad[1]}): crop it again, "
                        "or delete its row from manifest.csv", bad[0]) from None


def train_model(name: str, data: str | os.PathLike, out: str | os.PathLike,
                epochs: int = 10, batch_size: int = 32, image_size: int | None = None,
                learning_rate: float = 1e-3, seed: int = 0, augment: bool = True,
                precision: str = "float32",
                log: Callable[[str], None] = print) -> TrainSummary:
    """Train the registered image model ``name`` on the store ``data``; export to ``out``.

    Trains on the store's ``train`` rows, validates (early stopping, best epoch, val
    AUC) on its ``val`` rows when it has any, as the store splits them: nothing is
    re-split. Training batches get P1's augmentation unless ``augment`` is False. Every
    finished epoch is checkpointed in ``<out>.checkpoint/``; run again with the same
    arguments, an interrupted training resumes at the next epoch (a larger ``epochs``
    trains on; the folder is removed once the model is exported).

    Args:
        name: a registry name or fusion configuration (``meso4``, ``xception``...).
        data: a store folder (or its ``manifest.csv``).
        out: the ``.keras`` file to write.
        image_size: input side (default: the store's crop size).
        precision: ``float32``, ``mixed_bfloat16`` or ``auto`` (probed on the model, the
            probe cached in ``precision.json`` beside ``out``); recorded in the
            exported model's metadata.

    Raises:
        DataError: no store, no ``train`` rows in it or one class only, a crop that does
            not decode, a checkpoint made with other settings. An interrupt or a failure
            during the training carries what the checkpoint keeps
            (:func:`dfdetect.errors.kept_note`).
        ModelError: an unknown or untrainable model name.
    """
    refuse_untrainable(name)
    if not Path(data).exists():
        raise DataError("store not found: give a folder with manifest.csv (made by "
                        "'dfdetect data build' or 'dfdetect data crop')", data)
    rows = store.read_manifest(data)
    root = Path(data).parent if Path(data).is_file() else Path(data)
    train_rows = store.manifest_split(rows, "train")
    val_rows = store.manifest_split(rows, "val")
    if not train_rows:
        present = sorted({r.get("split") or "(none)" for r in rows})
        raise DataError(f"the store has no train split (its rows are in: "
                        f"{', '.join(present)}); 'dfdetect data crop' assigns splits to "
                        "videos that have none (rerun it with the same source and --out to "
                        "fill an older store's), or give a manifest whose split column "
                        "holds train and val", data)
    refuse_one_class(train_rows, data)
    size = int(image_size or store_crop_size(root, train_rows))

    from dfdetect import evaluation, training  # TensorFlow starts here
    from dfdetect.data import pipeline

    key = check_name(name)
    checkpoint = TrainingCheckpoint(
        os.fspath(out) + CHECKPOINT_SUFFIX,
        {"model": key, "store": os.path.realpath(root), "train": len(train_rows),
         "val": len(val_rows), "image_size": size, "batch_size": int(batch_size),
         "learning_rate": float(learning_rate), "seed": int(seed), "augment": bool(augment),
         "precision": precision},
        monitor="val_loss" if val_rows else "loss", patience=PATIENCE)
    resumed = checkpoint.load()  # refuses another training's checkpoint before the work
    # Before the model is built: mixed_bfloat16 is Keras' global policy, auto probes the
    # model when training.compile_model prepares it.
    configure_precision(precision, cache_dir=Path(out).parent, log=log)
    training.set_seed(seed)
    model = build_image_model(key, size)
    training.compile_model(model, "adam", learning_rate, auc=True)
    labels = "float32" if training.output_kind(model) == "sigmoid" else "int32"
    train_ds = pipeline.image_dataset(
        train_rows, root, size, batch_size, training=True, seed=seed,
        augment=pipeline.build_augmentation(seed=seed) if augment else None,
        label_dtype=labels)
    val_ds = (pipeline.image_dataset(val_rows, root, size, batch_size, label_dtype=labels)
              if val_rows else None)
    log(f"train {key}: {len(train_rows)} train / {len(val_rows)} val crops from {root}, "
        f"{size} px, batch {batch_size}, <= {epochs} epochs, lr {learning_rate:g}, "
        f"{model.count_params():,} parameters")
    if val_ds is None:
        log("no val split in the store: every epoch is kept, no val AUC")
    start = checkpoint.epochs_done
    try:
        if resumed:
            checkpoint.restore(model)
            log(_resume_line(checkpoint, epochs))
        with naming_bad_crops(train_rows + val_rows, root):
            if not checkpoint.finished and start < epochs:
                training.fit(model, train_ds, val_ds, epochs=epochs,
                             learning_rate=learning_rate, patience=None,
                             decay_factor=DECAY_FACTOR, decay_every=DECAY_EVERY, verbose=0,
                             extra_callbacks=[epoch_lines(epochs, log),
                                              checkpoint_callback(checkpoint)],
                             initial_epoch=start)
            checkpoint.finish()
            checkpoint.restore(model, best=True)  # the best epoch of all runs, not of this
            val_auc = float("nan")
            if val_ds is not None:
                scores = training.predict_scores(model, val_ds)
                val_auc = evaluation.binary_metrics(pipeline.labels_of(val_rows), scores,
                                                    THRESHOLD)["ROC AUC"]
        path = export_trained(model, out, key, size, val_auc, root, checkpoint.epochs_done,
                              checkpoint.state["best_epoch"], seed)
    except BaseException as err:  # Ctrl-C and full disks included: say what is kept
        raise note_kept(err, checkpoint.kept())
    checkpoint.remove()
    return TrainSummary(path, key, size, checkpoint.epochs_done,
                        checkpoint.state["best_epoch"], checkpoint.state["seconds"], val_auc,
                        len(train_rows), len(val_rows), resumed_at=start + 1 if resumed else 0)


def _resume_line(checkpoint: TrainingCheckpoint, epochs: int) -> str:
    state = checkpoint.state
    count = checkpoint.epochs_done
    epochs_done = "epoch 1" if count == 1 else f"epochs 1-{count}"
    done = (f"resuming from {checkpoint.folder}: {epochs_done} done, best epoch "
            f"{state['best_epoch']} ({state['monitor']} {state['best']:.4f})")
    if checkpoint.finished or checkpoint.epochs_done >= epochs:
        return f"{done}; the training is over: exporting the best epoch"
    return f"{done}; training on from epoch {checkpoint.epochs_done + 1}"


def export_trained(model, out, key, size, val_auc, root, epochs_run, best_epoch,
                   seed) -> str:
    """Export with the metadata ``predict`` / ``evaluate`` read."""
    from dfdetect.models.export import export_model  # deferred: TensorFlow

    return export_model(model, out, experiment="train", config=key, image_size=size,
                        threshold=THRESHOLD,
                        val_auc=None if math.isnan(val_auc) else round(val_auc, 6),
                        trained_on=str(root), epochs=epochs_run,
                        best_epoch=best_epoch, seed=seed)
