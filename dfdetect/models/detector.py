"""The shipped default detector: a small residual CNN with a blending-boundary head.

Trained from scratch on Self-Blended Images (:func:`dfdetect.synthetic.forge.sbi`), it has two
outputs while training:

* ``p_fake`` -- P(fake) of the whole crop (global average and max pooling of the last
  feature map, then one sigmoid unit);
* ``boundary`` -- a per-pixel map at 1/4 of the input size of where a blend boundary
  runs (the Face X-ray target ``4 m (1 - m)`` of the blend mask ``m``; zero on reals).

The boundary head is the point: a from-scratch network given only one label per crop
learns the blend cue slowly (a first calibration stayed at validation AUC 0.69 after
88k images), while the boundary map tells it, pixel by pixel, where the evidence is
(Li et al., "Face X-ray for more general face forgery detection", CVPR 2020). The
exported detector keeps only ``p_fake`` (:func:`detector_for_export`), so ``predict``
and ``evaluate`` see an ordinary sigmoid image model.
"""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np
from keras import layers

from dfdetect.errors import ModelError
from dfdetect.models import efficientnet_lite

#: Channels of the four stages (strides 2, 2, 2, 2 after a stride-2 stem: 1/32 at the end).
DEFAULT_WIDTHS = (32, 64, 128, 256)
#: Input side the shipped detector is trained at.
DEFAULT_SIZE = 128


def _conv_bn(x, filters: int, stride: int, name: str, act: bool = True):
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if act else x


def _residual(x, filters: int, stride: int, name: str):
    shortcut = x
    y = _conv_bn(x, filters, stride, f"{name}_a")
    y = _conv_bn(y, filters, 1, f"{name}_b", act=False)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                                 name=f"{name}_proj")(shortcut)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def build_default_detector(input_shape: Sequence[int] = (DEFAULT_SIZE, DEFAULT_SIZE, 3),
                           widths: Sequence[int] = DEFAULT_WIDTHS,
                           blocks: Sequence[int] = (1, 2, 2, 1),
                           dropout: float = 0.3) -> keras.Model:
    """The training model: image in [0, 1] -> ``{"p_fake", "boundary"}``.

    Args:
        input_shape: ``(H, W, 3)``; H and W divisible by 32.
        widths: channels of the four stages.
        blocks: residual blocks per stage (the first of each stage strides 2).
        dropout: before the classification unit.

    Returns:
        A ``keras.Model`` named ``default_detector`` with outputs ``p_fake`` (``(B, 1)``)
        and ``boundary`` (``(B, H/4, W/4, 1)``).
    """
    h, w = int(input_shape[0]), int(input_shape[1])
    if h % 32 or w % 32:
        raise ValueError(f"input sides must be divisible by 32, got {h}x{w}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(2.0, offset=-1.0, name="to_pm1")(inputs)
    x = _conv_bn(x, widths[0], 2, "stem")  # 1/2
    taps = []
    for stage, (filters, count) in enumerate(zip(widths, blocks)):
        stride = 1 if stage == 0 else 2
        for block in range(count):
            x = _residual(x, filters, stride if block == 0 else 1, f"s{stage + 1}b{block + 1}")
        taps.append(x)
    # boundary head at 1/4: stage 2 (1/4) plus stage 3 (1/8) upsampled
    b = layers.Conv2D(64, 1, use_bias=False, name="bd_lat2")(taps[1])
    u = layers.Conv2D(64, 1, use_bias=False, name="bd_lat3")(taps[2])
    u = layers.UpSampling2D(2, interpolation="bilinear", name="bd_up3")(u)
    b = layers.Add(name="bd_merge")([b, u])
    b = layers.BatchNormalization(name="bd_bn")(b)
    b = layers.Activation("relu", name="bd_relu")(b)
    b = layers.Conv2D(32, 3, padding="same", activation="relu", name="bd_conv")(b)
    boundary = layers.Conv2D(1, 1, activation="sigmoid", name="boundary", dtype="float32")(b)
    # classification from the deepest map; the final unit stays float32
    avg = layers.GlobalAveragePooling2D(name="gap")(taps[-1])
    mx = layers.GlobalMaxPooling2D(name="gmp")(taps[-1])
    z = layers.Concatenate(name="pooled")([avg, mx])
    z = layers.Dropout(dropout, name="dropout")(z)
    p_fake = layers.Dense(1, activation="sigmoid", name="p_fake", dtype="float32")(z)
    return keras.Model(inputs, {"p_fake": p_fake, "boundary": boundary},
                       name="default_detector")


def _boundary_head(quarter, eighth):
    """Face X-ray's boundary map at 1/4 from the 1/4 map plus the 1/8 map upsampled."""
    b = layers.Conv2D(64, 1, use_bias=False, name="bd_lat2")(quarter)
    u = layers.Conv2D(64, 1, use_bias=False, name="bd_lat3")(eighth)
    u = layers.UpSampling2D(2, interpolation="bilinear", name="bd_up3")(u)
    b = layers.Add(name="bd_merge")([b, u])
    b = layers.BatchNormalization(name="bd_bn")(b)
    b = layers.Activation("relu", name="bd_relu")(b)
    b = layers.Conv2D(32, 3, padding="same", activation="relu", name="bd_conv")(b)
    return layers.Conv2D(1, 1, activation="sigmoid", name="boundary", dtype="float32")(b)


def _lite_graph(shape: tuple, variant: str, dropout: float | None, folded: bool = False):
    """``(inputs, taps, p_fake)`` of a Lite detector: ImageNet scaling, the backbone, the
    label unit on its pooled 1/32 map (``dropout`` None: none, the inference form)."""
    inputs = keras.Input(shape=shape, name="image")
    x = layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="imagenet_scaling")(inputs)
    taps = efficientnet_lite.lite_graph(x, variant, folded=folded)
    z = layers.GlobalAveragePooling2D(name="gap")(taps[efficientnet_lite.TAPS[32]])
    if dropout is not None:
        z = layers.Dropout(dropout, name="dropout")(z)
    p_fake = layers.Dense(1, activation="sigmoid", name="p_fake", dtype="float32")(z)
    return inputs, taps, p_fake


def build_lite_detector(variant: str = "lite0",
                        input_shape: Sequence[int] = (DEFAULT_SIZE, DEFAULT_SIZE, 3),
                        weights: str | os.PathLike | None = "imagenet",
                        dropout: float = 0.3) -> keras.Model:
    """The detector on a pretrained EfficientNet-Lite: image in [0, 1] -> two outputs.

    The backbone is :func:`dfdetect.models.efficientnet_lite.lite_graph` (its layers keep
    the checkpoint's names, so ImageNet weights load into this model directly); the
    boundary head reads its 1/4 and 1/8 taps, the label unit its 1/32 map.

    Args:
        variant: ``lite0``, ``lite1`` or ``lite2``.
        input_shape: ``(H, W, 3)``; H and W divisible by 32.
        weights: the backbone's: ``"imagenet"`` (the installed package), a file, or None.
        dropout: before the classification unit.

    Returns:
        A ``keras.Model`` named ``lite_detector`` with outputs ``p_fake`` (``(B, 1)``)
        and ``boundary`` (``(B, H/4, W/4, 1)``).
    """
    h, w = int(input_shape[0]), int(input_shape[1])
    if h % 32 or w % 32:
        raise ValueError(f"input sides must be divisible by 32, got {h}x{w}")
    inputs, taps, p_fake = _lite_graph(tuple(input_shape), variant, dropout)
    boundary = _boundary_head(taps[efficientnet_lite.TAPS[4]], taps[efficientnet_lite.TAPS[8]])
    model = keras.Model(inputs, {"p_fake": p_fake, "boundary": boundary}, name="lite_detector")
    if weights is not None:
        efficientnet_lite.load_lite_weights(model, variant, weights)
    return model


#: Layer-name prefixes of a pretrained backbone inside :func:`build_lite_detector`:
#: what :class:`dfdetect.models.layers.ScaledAdamW` trains at a lower rate.
BACKBONE_PREFIXES = efficientnet_lite.LAYER_PREFIXES


def detector_for_export(model: keras.Model) -> keras.Model:
    """The single-output model ``predict`` uses: image -> P(fake).

    The from-scratch network shares its weights with ``model``; a Lite detector is
    rebuilt in its folded inference form (:func:`fold_lite_detector`).
    """
    if any(layer.name == "imagenet_scaling" for layer in model.layers):
        return fold_lite_detector(model)
    return keras.Model(model.input, model.get_layer("p_fake").output, name="default_detector")


def fold_lite_detector(model: keras.Model, variant: str | None = None) -> keras.Model:
    """A Lite detector (training form, or an exported unfolded one) as image -> P(fake)
    with every batch norm folded into its convolution and no dropout.

    The same function of the input in inference mode with a third of the layers, so the
    shipped file loads and runs its first frames faster (``benchmarks/detector.py``).

    Args:
        model: has the Lite backbone's layers, ``imagenet_scaling`` and ``p_fake``.
        variant: ``lite0`` / ``lite1`` / ``lite2``; None: the one whose shapes fit.

    Raises:
        ModelError: no variant fits ``model``.
    """
    shape = tuple(model.input_shape[1:])
    error = None
    for name in [variant] if variant else list(efficientnet_lite.VARIANTS):
        inputs, _, p_fake = _lite_graph(shape, name, dropout=None, folded=True)
        folded = keras.Model(inputs, p_fake, name="default_detector")
        try:
            efficientnet_lite.fold_batch_norm(model, folded, name)
            return folded
        except ModelError as err:
            error = err
    raise error


def average_detectors(models: Sequence[keras.Model], name: str = "default_detector") -> keras.Model:
    """A "model soup": one detector whose every weight is the mean of ``models``' weights.

    Averaging only makes sense for networks fine-tuned from the same start (here every
    Lite run starts from the same ImageNet checkpoint); it costs nothing at inference,
    unlike averaging the models' outputs (Wortsman et al., "Model soups", ICML 2022).

    Args:
        models: two or more detectors of one architecture (same layers, same shapes).
        name: the averaged model's name.

    Raises:
        ModelError: fewer than two models, or models whose weights do not line up.
    """
    if len(models) < 2:
        raise ModelError(f"averaging weights needs two or more models, got {len(models)}")
    shapes = [[tuple(w.shape) for w in m.weights] for m in models]
    for m, s in zip(models[1:], shapes[1:]):
        if s != shapes[0]:
            raise ModelError(f"{m.name}: its weights do not line up with {models[0].name}'s "
                             "(another architecture or input side); only one network's "
                             "fine-tunings can be averaged")
    soup = keras.models.clone_model(models[0])
    soup.name = name
    weights = [m.get_weights() for m in models]
    soup.set_weights([np.mean([w[i] for w in weights], axis=0).astype(weights[0][i].dtype)
                      for i in range(len(weights[0]))])
    return soup
