"""Meso-4 and MesoInception-4 (Afchar et al., WIFS 2018), layer for layer.

The layers follow the authors' Keras code (github.com/DariusAf/MesoNet,
``classifiers.py``). At 256x256x3 Meso-4 has 27,977 *trainable* parameters
(28,073 in all: the BatchNormalization moving means/variances add 96) and
MesoInception-4 has 28,615 trainable (28,725 in all) -- the counts the papers quote
are the trainable ones.

Inputs are images scaled to [0, 1], as in the original (which fed
``ImageDataGenerator(rescale=1/255)`` output), so no preprocessing layer is needed.

Label convention: the sigmoid output is P(fake), label 1 = fake. The original code
trained with ``flow_from_directory`` on folders ``df``/``real``, i.e. 0 = deepfake,
1 = real; its published weights therefore score "real", the opposite of ours.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import keras
from keras import layers

from dfdetect.errors import ModelError

#: Total spatial down-sampling of both networks (max-pools 2, 2, 2, 4).
MESO_STRIDE = 32


def _check_shape(input_shape: Sequence[int], what: str) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(s, numbers.Integral) and s > 0 for s in shape):
        raise ModelError(f"{what}: input_shape must be (height, width, channels) "
                         f"with positive integers, got {input_shape!r}")
    if shape[0] < MESO_STRIDE or shape[1] < MESO_STRIDE:
        raise ModelError(f"{what}: input must be at least {MESO_STRIDE}x{MESO_STRIDE} "
                         f"(four max-pools divide it by {MESO_STRIDE}), got {shape[0]}x{shape[1]}")
    return tuple(int(s) for s in shape)


def meso_feature_dim(input_shape: Sequence[int] = (256, 256, 3)) -> int:
    """Length of the flattened Meso feature vector (1024 at 256x256).

    Args:
        input_shape: (height, width, channels) of the input images.

    Returns:
        ``ceil(h/32) * ceil(w/32) * 16`` (all pools use ``padding="same"``).
    """
    h, w, _ = _check_shape(input_shape, "meso")
    return -(-h // MESO_STRIDE) * -(-w // MESO_STRIDE) * 16


def _conv_block(x, filters: int, kernel: int, pool: int, prefix: str):
    x = layers.Conv2D(filters, kernel, padding="same", activation="relu",
                      name=f"{prefix}_conv")(x)
    x = layers.BatchNormalization(name=f"{prefix}_bn")(x)
    return layers.MaxPooling2D(pool, padding="same", name=f"{prefix}_pool")(x)


def _inception_block(x, a: int, b: int, c: int, d: int, prefix: str):
    """InceptionLayer(a, b, c, d) of MesoInception-4, then BN and max-pool 2."""
    x1 = layers.Conv2D(a, 1, padding="same", activation="relu", name=f"{prefix}_1x1")(x)
    x2 = layers.Conv2D(b, 1, padding="same", activation="relu", name=f"{prefix}_3x3_reduce")(x)
    x2 = layers.Conv2D(b, 3, padding="same", activation="relu", name=f"{prefix}_3x3")(x2)
    x3 = layers.Conv2D(c, 1, padding="same", activation="relu", name=f"{prefix}_dil2_reduce")(x)
    x3 = layers.Conv2D(c, 3, dilation_rate=2, padding="same", activation="relu",
                       name=f"{prefix}_dil2")(x3)
    x4 = layers.Conv2D(d, 1, padding="same", activation="relu", name=f"{prefix}_dil3_reduce")(x)
    x4 = layers.Conv2D(d, 3, dilation_rate=3, padding="same", activation="relu",
                       name=f"{prefix}_dil3")(x4)
    x = layers.Concatenate(axis=-1, name=f"{prefix}_concat")([x1, x2, x3, x4])
    x = layers.BatchNormalization(name=f"{prefix}_bn")(x)
    return layers.MaxPooling2D(2, padding="same", name=f"{prefix}_pool")(x)


def _meso_trunk(inputs, inception: bool, prefix: str):
    if inception:
        x = _inception_block(inputs, 1, 4, 4, 2, f"{prefix}_block1")
        x = _inception_block(x, 2, 4, 4, 2, f"{prefix}_block2")
    else:
        x = _conv_block(inputs, 8, 3, 2, f"{prefix}_block1")
        x = _conv_block(x, 8, 5, 2, f"{prefix}_block2")
    x = _conv_block(x, 16, 5, 2, f"{prefix}_block3")
    x = _conv_block(x, 16, 5, 4, f"{prefix}_block4")
    return layers.Flatten(name=f"{prefix}_flatten")(x)


def _meso_head(features, prefix: str):
    y = layers.Dropout(0.5, name=f"{prefix}_dropout1")(features)
    y = layers.Dense(16, name=f"{prefix}_dense")(y)
    y = layers.LeakyReLU(negative_slope=0.1, name=f"{prefix}_leaky_relu")(y)
    y = layers.Dropout(0.5, name=f"{prefix}_dropout2")(y)
    return layers.Dense(1, activation="sigmoid", name=f"{prefix}_prediction")(y)


def _build(input_shape, inception: bool, with_head: bool, name: str) -> keras.Model:
    shape = _check_shape(input_shape, name)
    inputs = keras.Input(shape, name=f"{name}_input")
    features = _meso_trunk(inputs, inception, name)
    if not with_head:
        return keras.Model(inputs, features, name=f"{name}_features")
    return keras.Model(inputs, _meso_head(features, name), name=name)


def build_meso4(input_shape: Sequence[int] = (256, 256, 3)) -> keras.Model:
    """The original Meso-4 classifier.

    Args:
        input_shape: (height, width, channels); images in [0, 1].

    Returns:
        A model named ``meso4`` mapping images to P(fake), shape (batch, 1).
        27,977 trainable parameters at 256x256x3.
    """
    return _build(input_shape, inception=False, with_head=True, name="meso4")


def build_mesoinception4(input_shape: Sequence[int] = (256, 256, 3)) -> keras.Model:
    """The original MesoInception-4 classifier.

    Args:
        input_shape: (height, width, channels); images in [0, 1].

    Returns:
        A model named ``mesoinception4`` mapping images to P(fake), shape (batch, 1).
        28,615 trainable parameters at 256x256x3.
    """
    return _build(input_shape, inception=True, with_head=True, name="mesoinception4")


def build_meso4_features(input_shape: Sequence[int] = (256, 256, 3)) -> keras.Model:
    """Meso-4 up to its Flatten layer (1024 features at 256x256).

    Layer names equal those of :func:`build_meso4`, so weights saved from the full
    classifier load into it by name (see ``backbones.build_backbone``).

    Args:
        input_shape: (height, width, channels); images in [0, 1].

    Returns:
        A model named ``meso4_features`` with output (batch, meso_feature_dim).
    """
    return _build(input_shape, inception=False, with_head=False, name="meso4")


def build_mesoinception4_features(input_shape: Sequence[int] = (256, 256, 3)) -> keras.Model:
    """MesoInception-4 up to its Flatten layer (1024 features at 256x256).

    Args:
        input_shape: (height, width, channels); images in [0, 1].

    Returns:
        A model named ``mesoinception4_features`` with output (batch, meso_feature_dim).
    """
    return _build(input_shape, inception=True, with_head=False, name="mesoinception4")


def features_of(classifier: keras.Model) -> keras.Model:
    """The feature extractor inside a Meso classifier, sharing its weights.

    Args:
        classifier: a model from :func:`build_meso4` or :func:`build_mesoinception4`.

    Returns:
        A model from the classifier's input to its Flatten output.
    """
    try:
        flatten = classifier.get_layer(f"{classifier.name}_flatten")
    except ValueError as err:
        raise ModelError(f"{classifier.name}: not a Meso classifier (no Flatten layer)") from err
    return keras.Model(classifier.input, flatten.output, name=f"{classifier.name}_features")
