"""dfdetect's custom serializable Keras layers that are not a model's own block.

They register under the ``dfdetect`` package on import, so any exported model that
contains them loads wherever :mod:`dfdetect.models.export` runs, without importing the
data pipeline or the feature cache that apply them:

- :class:`RandomChannelShift`, :class:`RandomRotationZoom` and
  :func:`build_augmentation`: P1's on-the-fly augmentation (also P5's, and the image
  models of ``dfdetect train``);
- :class:`ColorNormalization`: P5's brightness / contrast / colour-balance normalisation.

CBAM, a model block, stays in :mod:`dfdetect.models.cbam`.
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["ColorNormalization", "RandomChannelShift", "RandomRotationZoom",
           "build_augmentation", "rotation_zoom_transform"]


@keras.saving.register_keras_serializable(package="dfdetect")
class RandomChannelShift(keras.layers.Layer):
    """Adds an independent random offset to each colour channel (training only).

    Keras core has no channel shift; keras-cv's version pulls ~170 MB of dependencies and
    floods the log, so dfdetect keeps this small one. Inputs are in [0, 1]. With
    ``brightness``, it also does ``RandomBrightness``'s job (one offset per image for all
    channels) in the same pass over the pixels.

    Args:
        factor: offsets are drawn uniformly from [-factor, factor] per image and channel.
        seed: optional seed for reproducible augmentation.
        brightness: a further offset from [-brightness, brightness] per image, shared by
            its channels (0: none).
    """

    def __init__(self, factor: float = 0.1, seed: int | None = None, brightness: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.factor = float(factor)
        self.seed = seed
        self.brightness = float(brightness)
        self._generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=True):
        if not training or (self.factor == 0 and self.brightness == 0):
            return inputs
        shape = keras.ops.shape(inputs)
        batched = len(inputs.shape) == 4
        # One offset per image and channel, broadcast over height and width.
        offset_shape = (shape[0], 1, 1, shape[-1]) if batched else (1, 1, shape[-1])
        offsets = keras.random.uniform(offset_shape, -self.factor, self.factor,
                                       seed=self._generator, dtype=inputs.dtype)
        if self.brightness:
            offsets = offsets + keras.random.uniform(
                (shape[0], 1, 1, 1) if batched else (1, 1, 1), -self.brightness,
                self.brightness, seed=self._generator, dtype=inputs.dtype)
        return keras.ops.clip(inputs + offsets, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "seed": self.seed,
                "brightness": self.brightness}


def rotation_zoom_transform(angle, scale, height, width, flip=None):
    """``(n, 8)`` projective transforms for ``keras.ops.image.affine_transform``.

    Output pixel ``p`` samples the input at ``c + scale * R(angle) F (p - c)``, ``c`` the
    image centre: a rotation by ``angle`` radians, a zoom out by ``scale`` and, where
    ``flip`` is -1, a horizontal mirror (``F = diag(flip, 1)``; ``None``: no mirror).
    """
    ops = keras.ops
    cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
    f = ops.ones_like(cos) if flip is None else ops.cast(flip, cos.dtype)
    a0, a1, b0, b1 = cos * f, -sin, sin * f, cos
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    zero = ops.zeros_like(cos)
    return ops.stack([a0, a1, cx - (a0 * cx + a1 * cy),
                      b0, b1, cy - (b0 * cx + b1 * cy), zero, zero], axis=1)


@keras.saving.register_keras_serializable(package="dfdetect")
class RandomRotationZoom(keras.layers.Layer):
    """Random rotation, zoom and horizontal flip in one resampling (training only).

    The same geometry as ``RandomRotation``, ``RandomZoom`` (aspect kept) and
    ``RandomFlip("horizontal")`` in a row, but one bilinear interpolation instead of three
    passes over the pixels: these three layers were most of P1's augmentation time on a
    CPU (results/bench/input_pipeline.csv), and the pixels are blurred once, not twice.

    Args:
        rotation_degrees: angles are drawn uniformly from [-rotation_degrees, +rotation_degrees].
        zoom: zoom factors from [1 - zoom, 1 + zoom]; above 1 zooms out (as RandomZoom's
            positive factors), revealing reflected borders.
        horizontal_flip: mirror half of the images left-right.
        fill_mode: how points outside the image are filled (``reflect``, ``nearest``,
            ``constant``, ``wrap``, ``mirror``).
        seed: optional seed for reproducible augmentation.
    """

    def __init__(self, rotation_degrees: float = 15.0, zoom: float = 0.2,
                 horizontal_flip: bool = False, fill_mode: str = "reflect",
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rotation_degrees = float(rotation_degrees)
        self.zoom = float(zoom)
        self.horizontal_flip = bool(horizontal_flip)
        self.fill_mode = fill_mode
        self.seed = seed
        self._generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=True):
        if not training or (self.rotation_degrees == 0 and self.zoom == 0
                            and not self.horizontal_flip):
            return inputs
        ops = keras.ops
        batched = len(inputs.shape) == 4
        images = inputs if batched else ops.expand_dims(inputs, 0)
        shape = ops.shape(images)
        n = shape[0]
        height, width = ops.cast(shape[1], "float32"), ops.cast(shape[2], "float32")
        limit = self.rotation_degrees * np.pi / 180.0
        angle = keras.random.uniform((n,), -limit, limit, seed=self._generator)
        scale = keras.random.uniform((n,), 1.0 - self.zoom, 1.0 + self.zoom,
                                     seed=self._generator)
        flip = None
        if self.horizontal_flip:
            coin = keras.random.uniform((n,), 0.0, 1.0, seed=self._generator)
            flip = ops.where(coin < 0.5, -1.0, 1.0)
        transform = rotation_zoom_transform(angle, scale, height, width, flip)
        out = ops.image.affine_transform(images, ops.cast(transform, images.dtype),
                                         interpolation="bilinear", fill_mode=self.fill_mode,
                                         data_format="channels_last")
        return out if batched else out[0]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotation_degrees": self.rotation_degrees,
                "zoom": self.zoom, "horizontal_flip": self.horizontal_flip,
                "fill_mode": self.fill_mode, "seed": self.seed}


def build_augmentation(seed: int | None = None, rotation_degrees: float = 15.0,
                       zoom: float = 0.2, brightness: float = 0.2,
                       channel_shift: float = 0.1) -> keras.Sequential:
    """P1's on-the-fly augmentation as Keras preprocessing layers.

    Rotation up to 15 degrees, zoom 20 % and horizontal flip (one resampling:
    :class:`RandomRotationZoom`), brightness +-20 % and a random RGB channel shift (one
    add: :class:`RandomChannelShift`) — SPEC.md P1. The channel-shift range is assumed
    (the report names the operation, not its range): 0.1 of the [0, 1] range ~ Keras'
    25/255.
    """
    # Two passes over the pixels instead of five Keras layers: geometry in one resampling,
    # colour in one add (the measurement that decided it: results/bench/input_pipeline.csv).
    return keras.Sequential([
        RandomRotationZoom(rotation_degrees, zoom, horizontal_flip=True, fill_mode="reflect",
                           seed=seed),
        RandomChannelShift(channel_shift, seed=seed, brightness=brightness),
    ], name="augmentation")


@keras.saving.register_keras_serializable(package="dfdetect")
class ColorNormalization(keras.layers.Layer):
    """Per-image brightness, contrast and colour-balance normalisation, in [0, 1].

    Each channel is shifted to mean ``0.5`` (brightness and grey-world colour balance)
    and the image is scaled to standard deviation ``target_std`` over all its pixels and
    channels (contrast), then clipped to [0, 1]. Local colour differences, such as a
    blended face's seam, survive; global lighting and white balance do not.

    Args:
        target_std: standard deviation after normalisation.
        epsilon: floor of the standard deviation (flat images stay flat).
    """

    def __init__(self, target_std: float = 0.2, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.target_std = float(target_std)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        mean = keras.ops.mean(x, axis=(-3, -2), keepdims=True)
        centred = x - mean
        std = keras.ops.sqrt(keras.ops.mean(keras.ops.square(centred), axis=(-3, -2, -1),
                                            keepdims=True))
        out = centred / keras.ops.maximum(std, self.epsilon) * self.target_std + 0.5
        return keras.ops.clip(out, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "target_std": self.target_std, "epsilon": self.epsilon}
