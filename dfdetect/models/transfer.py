"""P2: InceptionV3 transfer learning with the paper's partial unfreezing.

The paper's model is Keras' InceptionV3 without its top, followed by
GlobalAveragePooling -> Dense(1024, relu) -> Dense(2, softmax), and it states that
"InceptionV3 has 314 layers in total". That count is exactly Keras' layer list of this
model: the 311 layers of ``InceptionV3(include_top=False).layers`` (its InputLayer
included, as Keras lists it: 94 Conv2D, 94 BatchNormalization, 94 Activation,
15 Concatenate, 13 pooling layers) plus the 3 head layers. The paper retrains

- ``"top50"``: the top 50 % of those 314 layers = the last 157 (154 InceptionV3 layers,
  from ``batch_normalization_43`` on in a fresh session, plus the head);
- ``"top25"``: the top 25 % = the last 78 (``floor(314 * 0.25)``; the paper does not say
  how it rounded 78.5);
- ``"head"``: the "last 2 layers, which is the fully connected ANN": the two Dense
  layers.

Weightless layers (activations, pooling, concatenations) count as layers, as they do in
the paper's 314. ``count_trainable_layers`` counts on this same list.

Batch normalisation: every BatchNormalization layer of the base is an
``InferenceBatchNormalization``, which always normalises with its moving statistics,
even while training, and never updates them. Its ``beta`` (InceptionV3's BN has no
``gamma``) stays trainable when the layer is inside the unfrozen share, so "top 50 %"
means the same 157 layers the paper unfroze, with one deliberate difference: in the
paper's TensorFlow 2.3 a trainable BN layer ran in training mode (batch statistics,
moving averages updated); here BN stays in inference mode, the usual fine-tuning
practice, which keeps small batches from wrecking pretrained statistics. (Keras 3 would
override a ``base(x, training=False)`` call with the outer ``fit``'s ``training=True``,
and ``trainable=False`` on BN layers would also freeze their ``beta``, changing the
count; hence the dedicated layer.)

Inputs are RGB images in [0, 1]; a ``Rescaling`` layer inside the model maps them to
[-1, 1], which is what ``keras.applications.inception_v3.preprocess_input`` does to
[0, 255] images. The base is built for ``(None, None, 3)``, so any size from 75 px up
works. Below 75 px InceptionV3's strided valid convolutions run out of pixels (a
64 px input reaches ``mixed8`` at 2 x 2 and cannot be reduced further), so for a fixed
input side below 75 (e.g. 64 px crops at ``cpu`` scale) a ``Resizing`` layer
(bilinear, not one of the paper's layers) upsamples to 75 px inside the model; a free
(None) size must be fed at >= 75 px. The parameter count does not depend on the input
size: InceptionV3 21,802,784 + head 2,100,226 = 23,903,010 (the paper's "23.9
million").
"""

from __future__ import annotations

import math
import os

import keras

from dfdetect.errors import ModelError, WeightsUnavailableError
from dfdetect.models.backbones import scratch_batchnorm

__all__ = [
    "BASE_NAME",
    "HEAD_LAYERS",
    "InferenceBatchNormalization",
    "PAPER_LAYER_COUNT",
    "UNFREEZE_OPTIONS",
    "apply_unfreeze",
    "build_inception_transfer",
    "count_trainable_layers",
    "paper_layers",
    "transfer_feature_extractor",
]

BASE_NAME = "inception_v3"
PREPROCESS_NAME = "inception_preprocess"
UPSAMPLE_NAME = "inception_upsample"
#: InceptionV3's smallest workable input side (its strided valid convs need it).
MIN_SIZE = 75
HEAD_LAYERS = ("gap", "fc1024", "predictions")
#: Layers in the paper's count (311 InceptionV3 layers + 3 head layers).
PAPER_LAYER_COUNT = 314
#: Share of the paper's layers made trainable, counted from the top.
UNFREEZE_OPTIONS = {"top50": 0.50, "top25": 0.25, "head": None}
_HEAD_TRAINABLE = 2  # "the last 2 layers": the two Dense layers
_NOTOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
_NOTOP_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/"
              "inception_v3/" + _NOTOP_FILE)
_NOTOP_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"  # as in keras.applications.inception_v3


@keras.saving.register_keras_serializable(package="dfdetect")
class InferenceBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization that always uses (and never updates) its moving statistics.

    Its ``beta``/``gamma`` remain trainable when ``trainable`` is True, so a fine-tuned
    block keeps its paper-counted trainable layers while its statistics stay those of
    the pretrained (or first-phase) weights.
    """

    def call(self, inputs, training=None, mask=None):
        return super().call(inputs, training=False, mask=mask)


def build_inception_transfer(unfreeze="top50", input_shape=(299, 299, 3),
                             weights=None) -> keras.Model:
    """Build InceptionV3 + the paper's head with a share of layers trainable.

    Args:
        unfreeze: ``"top50"``, ``"top25"`` or ``"head"`` (see the module docstring for
            the exact layers each one unfreezes).
        input_shape: (height, width, 3) of the [0, 1] input images. Sides below 75
            px are upsampled to 75 inside the model; ``None`` (free size) needs
            inputs of at least 75 px.
        weights: ``None`` (random init); ``"imagenet"`` (downloads Keras' notop file,
            or finds it in ``~/.keras/models``); the path of Keras' notop weights file
            (``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5``, loaded into
            the base); or the path of a ``*.weights.h5`` saved from a model built here
            (e.g. after a first training phase; loaded into the whole model).

    Returns:
        An uncompiled ``keras.Model`` ending in Dense(2, softmax) (index 1 = fake).
        Compile it after any later ``apply_unfreeze``.

    Raises:
        ModelError: unknown ``unfreeze``, an input that is not 3-channel, or a weights
            file that is missing or does not fit.
        WeightsUnavailableError: ``weights="imagenet"`` and the download fails.
    """
    _check_unfreeze(unfreeze)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ModelError(f"InceptionV3 needs (height, width, 3) inputs, got {input_shape}")

    base_weights, model_weights = _resolve_weights(weights)
    base = _inference_bn_copy(_plain_base(base_weights),
                              copy_weights=base_weights is not None)

    inputs = keras.Input(shape=input_shape, name="image")
    # [0, 1] -> [-1, 1], InceptionV3's own preprocessing, serializable.
    x = keras.layers.Rescaling(2.0, offset=-1.0, name=PREPROCESS_NAME)(inputs)
    height, width = input_shape[0], input_shape[1]
    if any(side is not None and side < MIN_SIZE for side in (height, width)):
        # InceptionV3's strided valid convolutions leave nothing below 75 px.
        x = keras.layers.Resizing(max(height or MIN_SIZE, MIN_SIZE),
                                  max(width or MIN_SIZE, MIN_SIZE),
                                  interpolation="bilinear", name=UPSAMPLE_NAME)(x)
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D(name=HEAD_LAYERS[0])(x)
    x = keras.layers.Dense(1024, activation="relu", name=HEAD_LAYERS[1])(x)
    outputs = keras.layers.Dense(2, activation="softmax", name=HEAD_LAYERS[2])(x)
    model = keras.Model(inputs, outputs, name="inception_transfer")

    if model_weights is not None:
        try:
            model.load_weights(model_weights)
        except Exception as err:  # several Keras error types; the user needs one line
            raise ModelError(f"not weights of an InceptionV3 transfer model: {err}",
                             path=model_weights) from err
    apply_unfreeze(model, unfreeze)
    return model


def paper_layers(model: keras.Model) -> list:
    """The 314 layers the paper counts: InceptionV3's layers, then the 3 head layers.

    Our input layer, the [0, 1] -> [-1, 1] rescaling and the upsampling of inputs below
    75 px are not in the paper's model and are not counted.

    Raises:
        ModelError: ``model`` was not built by ``build_inception_transfer``.
    """
    try:
        base = model.get_layer(BASE_NAME)
        head = [model.get_layer(name) for name in HEAD_LAYERS]
    except ValueError as err:
        raise ModelError(f"{model.name} is not an InceptionV3 transfer model "
                         f"(needs layers {BASE_NAME!r}, {', '.join(HEAD_LAYERS)})") from err
    return list(base.layers) + head


def apply_unfreeze(model: keras.Model, unfreeze: str) -> keras.Model:
    """Make exactly the top share of the paper's layers trainable, the rest frozen.

    Usable between training phases (e.g. ``"head"`` first, then ``"top50"``); compile
    the model again afterwards.

    Args:
        model: a model from ``build_inception_transfer``.
        unfreeze: ``"top50"``, ``"top25"`` or ``"head"``.

    Returns:
        ``model`` itself.
    """
    _check_unfreeze(unfreeze)
    layers = paper_layers(model)
    share = UNFREEZE_OPTIONS[unfreeze]
    n_top = _HEAD_TRAINABLE if share is None else math.floor(len(layers) * share)
    first = len(layers) - n_top
    for index, layer in enumerate(layers):
        layer.trainable = index >= first
    return model


def count_trainable_layers(model: keras.Model) -> int:
    """Number of the paper's 314 layers that are trainable (157 / 78 / 2).

    InceptionV3's InputLayer, the bottom-most and weightless layer of the 314, never
    lies in an unfrozen share and is never counted (Keras does not save its flag, so
    a reloaded model would otherwise report one more).
    """
    return sum(bool(layer.trainable) for layer in paper_layers(model)
               if not isinstance(layer, keras.layers.InputLayer))


def transfer_feature_extractor(model: keras.Model) -> keras.Model:
    """The model without its classification ANN: [0, 1] image -> 2048-d pooled vector.

    This is the paper's feature extractor for the LSTM / GRU / MLP grids.
    """
    paper_layers(model)  # validates the structure
    return keras.Model(model.inputs, model.get_layer(HEAD_LAYERS[0]).output,
                       name="inception_features")


def _check_unfreeze(unfreeze) -> None:
    if unfreeze not in UNFREEZE_OPTIONS:
        raise ModelError(f"unknown unfreeze option {unfreeze!r}; "
                         f"expected one of {', '.join(UNFREEZE_OPTIONS)}")


def _resolve_weights(weights):
    """Split ``weights`` into (argument for the base, file for the whole model)."""
    if weights is None:
        return None, None
    if isinstance(weights, str) and weights == "imagenet":
        # Fetched before anything is built, so an offline machine fails in a second.
        return _fetch_imagenet_notop(), None
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise ModelError("weights file not found (expected None, 'imagenet' or a local "
                         ".h5 / .weights.h5 file)", path=path)
    if path.endswith(".weights.h5"):
        return None, path
    if path.endswith(".h5"):
        return path, None
    raise ModelError(f"unsupported weights file; pass Keras' {_NOTOP_FILE} or a "
                     ".weights.h5 saved from an InceptionV3 transfer model", path=path)


def _fetch_imagenet_notop() -> str:
    """Keras' own download of the notop file (same URL, hash and cache as Keras uses)."""
    try:
        return keras.utils.get_file(_NOTOP_FILE, _NOTOP_URL, cache_subdir="models",
                                    file_hash=_NOTOP_MD5)
    except Exception as err:  # Keras reports fetch failures as a bare Exception
        reason = " ".join(str(err).split())[:160]
        raise WeightsUnavailableError(
            f"InceptionV3 ImageNet weights cannot be downloaded here ({reason}); "
            f"pass weights='/path/to/{_NOTOP_FILE}' (Keras' notop file) or "
            "weights=None") from err


def _plain_base(weights) -> keras.Model:
    try:
        base = keras.applications.InceptionV3(include_top=False, weights=weights,
                                              input_shape=(None, None, 3))
    except Exception as err:
        if weights is None:
            raise
        raise ModelError(f"not InceptionV3 notop weights: {err}", path=weights) from err
    if weights is None:
        scratch_batchnorm(base)
    return base


def _inference_bn_copy(base: keras.Model, copy_weights: bool) -> keras.Model:
    """Same graph (and weights if asked), with InferenceBatchNormalization for BN."""

    def clone_layer(layer):
        if isinstance(layer, keras.layers.BatchNormalization):
            return InferenceBatchNormalization.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    clone = keras.models.clone_model(base, clone_function=clone_layer)
    if copy_weights:  # a random base needs no copy: the clone has its own random init
        clone.set_weights(base.get_weights())
    if clone.name != BASE_NAME:  # clone_model keeps the name; guard the contract anyway
        raise ModelError(f"InceptionV3 clone is named {clone.name!r}, not {BASE_NAME!r}")
    return clone


def build_phase1_model(input_shape) -> keras.Model:
    """InceptionV3 + P2's head, every layer trainable, ordinary BatchNormalization.

    The first training phase that stands in for ImageNet pretraining offline: the
    transfer models keep BN statistics frozen (``InferenceBatchNormalization``), which
    only makes sense for statistics learnt somewhere, so this phase learns them with
    plain BN in training mode. Same preprocessing as ``build_inception_transfer``
    ([0, 1] -> [-1, 1], upsampling below 75 px); its base (layer ``inception_v3``) is
    saved in Keras' legacy ``.h5`` notop format and loaded like the ImageNet file.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name=PREPROCESS_NAME)(inputs)
    height, width = input_shape[0], input_shape[1]
    if any(side is not None and side < MIN_SIZE for side in (height, width)):
        x = keras.layers.Resizing(max(height or 75, 75), max(width or 75, 75),
                                  interpolation="bilinear", name=UPSAMPLE_NAME)(x)
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
