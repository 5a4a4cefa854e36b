"""``dfdetect train``: one registered image model, trained on a store, exported as .keras.

The model is built by name through :func:`dfdetect.models.registry.build_model` (the
same path the experiments and ``predict`` use), fed by the tf.data builders of
:mod:`dfdetect.data.pipeline`, fitted by :func:`dfdetect.training.fit` (early stopping on
validation loss with the best weights restored, step learning-rate decay: P1's recipe)
and written with :func:`dfdetect.models.export.export_model`, so ``predict``,
``explain`` and ``evaluate`` read its input size and threshold from the file.

Importing this module is cheap (no TensorFlow): TensorFlow starts inside
:func:`train_model`, so the CLI refuses a bad name, store or output path before paying
for it; the imports of the registry, training, pipeline and export stay in the functions
for that reason.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import time
from pathlib import Path
from typing import Callable

from dfdetect.data import store
from dfdetect.errors import DataError, ModelError
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

    def report(self) -> str:
        auc = "n/a" if math.isnan(self.val_auc) else f"{self.val_auc:.3f}"
        return (f"{self.name}: {self.epochs_run} epochs in {self.seconds:.0f} s (kept epoch "
                f"{self.best_epoch}), val AUC {auc} on {self.val} crops -> {self.path}")


def epoch_lines(epochs: int, log: Callable[[str], None] = print):
    """A Keras callback logging one line per epoch (loss, accuracy, validation, time):
    readable in a log file, where Keras' own progress output is a bar redrawn with
    carriage returns."""
    import keras

    class EpochLines(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            parts = [f"{k} {float(logs[k]):.4f}" for k in
                     ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs]
            log(f"epoch {epoch + 1}/{epochs}: {'  '.join(parts)}  "
                f"({time.perf_counter() - self._start:.1f} s)")

    return EpochLines()


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
    from PIL import Image

    for row in rows[:1]:
        try:
            with Image.open(Path(root) / row["crop_path"]) as image:
                return int(image.size[0])
        except OSError:
            break  # the pipeline names the missing crop itself
    return DEFAULT_SIZE


def train_model(name: str, data: str | os.PathLike, out: str | os.PathLike,
                epochs: int = 10, batch_size: int = 32, image_size: int | None = None,
                learning_rate: float = 1e-3, seed: int = 0, augment: bool = True,
                precision: str = "float32",
                log: Callable[[str], None] = print) -> TrainSummary:
    """Train the registered image model ``name`` on the store ``data``; export to ``out``.

    Trains on the store's ``train`` rows, validates (early stopping, best epoch, val
    AUC) on its ``val`` rows when it has any, as the store splits them: nothing is
    re-split. Training batches get P1's augmentation unless ``augment`` is False.

    Args:
        name: a registry name or fusion configuration (``meso4``, ``xception``...).
        data: a store folder (or its ``manifest.csv``).
        out: the ``.keras`` file to write.
        image_size: input side (default: the store's crop size).
        precision: ``float32``, ``mixed_bfloat16`` or ``auto`` (probed on the model, the
            probe cached in ``precision.json`` beside ``out``); recorded in the
            exported model's metadata.

    Raises:
        DataError: no store, or no ``train`` rows in it.
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
                        f"{', '.join(present)}); build a store with splits, e.g. "
                        "'dfdetect data build', or give a manifest whose split column "
                        "holds train and val", data)
    size = int(image_size or store_crop_size(root, train_rows))

    from dfdetect import evaluation, training  # TensorFlow starts here
    from dfdetect.data import pipeline

    key = check_name(name)
    # Before the model is built: mixed_bfloat16 is Keras' global policy, auto probes the
    # model when training.compile_model prepares it.
    configure_precision(precision, cache_dir=Path(out).parent, log=log)
    training.set_seed(seed)
    model = build_image_model(key, size)
    training.compile_model(model, "adam", learning_rate)
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
    fit = training.fit(model, train_ds, val_ds, epochs=epochs, learning_rate=learning_rate,
                       patience=PATIENCE, decay_factor=DECAY_FACTOR, decay_every=DECAY_EVERY,
                       verbose=0, extra_callbacks=[epoch_lines(epochs, log)])
    val_auc = float("nan")
    if val_ds is not None:
        scores = training.predict_scores(model, val_ds)
        val_auc = evaluation.binary_metrics(pipeline.labels_of(val_rows), scores,
                                            THRESHOLD)["ROC AUC"]
    path = export_trained(model, out, key, size, val_auc, root, fit, seed)
    return TrainSummary(path, key, size, fit.epochs_run, fit.best_epoch, fit.seconds,
                        val_auc, len(train_rows), len(val_rows))


def export_trained(model, out, key, size, val_auc, root, fit, seed) -> str:
    """Export with the metadata ``predict`` / ``evaluate`` read."""
    from dfdetect.models.export import export_model  # deferred: TensorFlow

    return export_model(model, out, experiment="train", config=key, image_size=size,
                        threshold=THRESHOLD,
                        val_auc=None if math.isnan(val_auc) else round(val_auc, 6),
                        trained_on=str(root), epochs=fit.epochs_run,
                        best_epoch=fit.best_epoch, seed=seed)
