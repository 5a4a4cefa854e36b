"""P3 video models: Xception + CBAM + Bidirectional ConvLSTM2D, and the paper's baselines.

All three take clips ``(frames, size, size, 3)`` with values in [0, 1] and end in
``Dense(2, softmax)`` (index 1 = fake). They share the per-frame Xception feature-map
extractor (layer ``frame_features``) so the comparison is on the same frames and the same
backbone; Grad-CAM (dfdetect.explain) targets layers by the names used here.

Sizes the paper (seeds/004) does not give, assumed here and kept as arguments:
    * ConvLSTM2D: 64 filters per direction, 3 x 3 kernel, ``padding="same"``, only the
      last time step returned (the bidirectional output concatenates both directions).
    * "Fully connected" head: Flatten -> Dense(256, relu) -> Dropout(0.5) -> Dense(2,
      softmax); the paper feeds every ConvLSTM output unit into the FC layer, hence
      Flatten rather than pooling.
    * Xception+LSTM baseline: per-frame global-average-pooled Xception features (2048)
      -> LSTM(256) -> the same head.
    * Frames are folded into the batch for the per-frame backbone (FoldedTimeDistributed):
      the same function as TimeDistributed, but the backbone is traced once instead of
      once per frame (Keras 3's TimeDistributed unrolls a static time axis), and batch
      normalisation sees all frames of the batch, as Keras 2's TimeDistributed did.
      (Measured at 4 frames x 64 px: first training step 64 s with TimeDistributed,
      36 s folded, mostly graph tracing; at 30 frames the unrolled graph is 30 Xceptions.)
      CBAM, which is cheap and has no batch statistics, uses the stock TimeDistributed.

Xception's own input size floor (71 px) is avoided by building the per-frame extractor
on ``(None, None, 3)``, so 64-px smoke clips work.
"""

from __future__ import annotations

import os
import urllib.error
from typing import Callable

import keras
from keras import ops

from dfdetect.errors import ModelError, WeightsUnavailableError
from dfdetect.models.backbones import scratch_batchnorm
from dfdetect.models.cbam import CBAM

NUM_CLASSES = 2
XCEPTION_NOTOP_FILE = "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"


@keras.saving.register_keras_serializable(package="dfdetect")
class FoldedTimeDistributed(keras.layers.TimeDistributed):
    """TimeDistributed that folds time into the batch: (N, F, ...) -> (N*F, ...) -> layer.

    Numerically the same as ``TimeDistributed`` for per-sample layers in inference; in
    training, batch normalisation inside ``layer`` normalises over all N*F frames. Masks
    are not supported (clips have a fixed number of frames).
    """

    def call(self, inputs, training=None, mask=None):
        if mask is not None:
            raise ModelError(f"{self.name}: FoldedTimeDistributed does not support masks")
        shape = ops.shape(inputs)
        folded = ops.reshape(inputs, (-1,) + tuple(inputs.shape[2:]))
        kwargs = {"training": training} if self.layer._call_has_training_arg else {}
        outputs = self.layer.call(folded, **kwargs)
        return ops.reshape(outputs, (shape[0], shape[1]) + tuple(outputs.shape[1:]))


def _is_download_failure(err: BaseException) -> bool:
    # keras.utils.get_file turns urllib errors into a bare Exception("URL fetch failure ...").
    if isinstance(err, (urllib.error.URLError, ConnectionError, TimeoutError)):
        return True
    return "URL fetch failure" in str(err)


def _check_weights(weights) -> None:
    if weights is None or weights == "imagenet":
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ModelError(f"weights must be None, 'imagenet' or a file path, got {weights!r}")
    if not os.path.isfile(weights):
        raise WeightsUnavailableError(
            "Xception weights file not found; pass None, 'imagenet' or an existing file",
            path=weights,
        )
    # Checked before building Xception, which takes seconds, only to fail on a bad file.
    with open(weights, "rb") as handle:
        head = handle.read(8)
    if head != _HDF5_SIGNATURE and not head.startswith(_ZIP_SIGNATURE):
        raise ModelError("not a Keras weights file (neither HDF5 .h5 nor a .keras archive)",
                         path=weights)


def build_xception_maps(weights=None, trainable: bool = True,
                        name: str = "xception_maps") -> keras.Model:
    """Per-frame Xception feature-map extractor (no top, no pooling).

    Input: ``(None, None, 3)`` images in [0, 1] (rescaled inside to Xception's [-1, 1]
    by a ``Rescaling`` layer named ``xception_preprocess``). Output: the last Xception
    map ``block14_sepconv2_act``, ``ceil(size / 32)`` pixels a side, 2048 channels.

    Args:
        weights: None (random init), ``"imagenet"`` (needs network access), or a path to
            a local Xception weights file without the top (Keras's
            ``xception_weights_tf_dim_ordering_tf_kernels_notop.h5`` or a
            ``.weights.h5`` saved from ``keras.applications.Xception(include_top=False)``).
        trainable: whether the backbone's weights train.
        name: model name.

    Raises:
        WeightsUnavailableError: ImageNet weights cannot be downloaded, or the file is missing.
        ModelError: the weights file does not fit Xception.
    """
    _check_weights(weights)
    inputs = keras.Input((None, None, 3), name="frame")
    scaled = keras.layers.Rescaling(2.0, offset=-1.0, name="xception_preprocess")(inputs)
    try:
        xception = keras.applications.Xception(
            include_top=False, weights=weights, input_tensor=scaled)
    except Exception as err:  # noqa: BLE001 - the download and the h5 reader fail with many types
        if weights == "imagenet" and _is_download_failure(err):
            raise WeightsUnavailableError(
                f"cannot download ImageNet Xception weights (offline?); download "
                f"{XCEPTION_NOTOP_FILE} elsewhere and pass its path as weights=, "
                f"or use weights=None"
            ) from None
        if weights is not None:
            raise ModelError(
                f"not loadable as Xception (no top) weights: {' '.join(str(err).split())[:200]}",
                path=weights,
            ) from err
        raise
    model = keras.Model(inputs, xception.output, name=name)
    if weights is None:
        scratch_batchnorm(model)
    model.trainable = trainable
    return model


def _frames_input(frames: int, size: int) -> keras.KerasTensor:
    if int(frames) < 1 or int(size) < 32:
        raise ModelError(f"video model needs frames >= 1 and size >= 32, got {frames} x {size}")
    return keras.Input((int(frames), int(size), int(size), 3), name="frames")


def _head(x, fc_units: int, dropout: float) -> keras.KerasTensor:
    if len(x.shape) > 2:
        x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(fc_units, activation="relu", name="fc")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="fc_dropout")(x)
    return keras.layers.Dense(NUM_CLASSES, activation="softmax", name="predictions")(x)


def _frame_features(inputs, weights, backbone_trainable):
    backbone = build_xception_maps(weights=weights, trainable=backbone_trainable)
    return FoldedTimeDistributed(backbone, name="frame_features")(inputs)


def build_convlstm_cbam(frames: int = 30, size: int = 240, weights=None,
                        convlstm_filters: int = 64, convlstm_kernel: int = 3,
                        cbam_reduction: int = 16, cbam_kernel: int = 7,
                        fc_units: int = 256, dropout: float = 0.5,
                        backbone_trainable: bool = True,
                        name: str = "convlstm_cbam") -> keras.Model:
    """P3's model: Xception maps -> CBAM per frame -> Bidirectional ConvLSTM2D -> FC -> softmax.

    Layers: ``frames`` (input) -> ``frame_features`` (per-frame Xception maps, 2048
    channels) -> ``cbam`` (per-frame CBAM, residual) -> ``bi_convlstm`` (forward and
    backward ConvLSTM2D, last step, concatenated) -> ``flatten`` -> ``fc`` ->
    ``fc_dropout`` -> ``predictions`` (2-way softmax, index 1 = fake).

    Args:
        frames: frames per clip (paper 30).
        size: square frame side in pixels (paper 240; 64 works).
        weights: Xception weights, see ``build_xception_maps``.
        convlstm_filters: filters per direction (assumed, paper silent).
        convlstm_kernel: ConvLSTM2D kernel side (assumed).
        cbam_reduction: CBAM's r (paper 16).
        cbam_kernel: CBAM spatial kernel (paper 7).
        fc_units: hidden width of the fully connected layer (assumed).
        dropout: dropout before the output layer (assumed; 0 disables).
        backbone_trainable: train Xception too (the paper trains end to end).
        name: model name.

    Returns:
        An uncompiled ``keras.Model``: (batch, frames, size, size, 3) -> (batch, 2).
    """
    inputs = _frames_input(frames, size)
    x = _frame_features(inputs, weights, backbone_trainable)
    x = keras.layers.TimeDistributed(
        CBAM(reduction=cbam_reduction, spatial_kernel=cbam_kernel, name="cbam_attention"),
        name="cbam")(x)
    x = keras.layers.Bidirectional(
        keras.layers.ConvLSTM2D(convlstm_filters, convlstm_kernel, padding="same",
                                return_sequences=False, name="convlstm"),
        merge_mode="concat", name="bi_convlstm")(x)
    return keras.Model(inputs, _head(x, fc_units, dropout), name=name)


def build_xception_convlstm(frames: int = 30, size: int = 240, weights=None,
                            convlstm_filters: int = 64, convlstm_kernel: int = 3,
                            fc_units: int = 256, dropout: float = 0.5,
                            backbone_trainable: bool = True,
                            name: str = "xception_convlstm") -> keras.Model:
    """Baseline Xception+ConvLSTM: unidirectional ConvLSTM2D, no CBAM.

    Layers: ``frames`` -> ``frame_features`` -> ``convlstm`` -> ``flatten`` -> ``fc`` ->
    ``fc_dropout`` -> ``predictions``. Arguments as in ``build_convlstm_cbam``.
    """
    inputs = _frames_input(frames, size)
    x = _frame_features(inputs, weights, backbone_trainable)
    x = keras.layers.ConvLSTM2D(convlstm_filters, convlstm_kernel, padding="same",
                                return_sequences=False, name="convlstm")(x)
    return keras.Model(inputs, _head(x, fc_units, dropout), name=name)


def build_xception_lstm(frames: int = 30, size: int = 240, weights=None,
                        lstm_units: int = 256, fc_units: int = 256, dropout: float = 0.5,
                        backbone_trainable: bool = True,
                        name: str = "xception_lstm") -> keras.Model:
    """Baseline Xception+LSTM: per-frame pooled Xception features -> LSTM.

    Layers: ``frames`` -> ``frame_features`` -> ``frame_pool`` (per-frame global average,
    2048) -> ``lstm`` (last state) -> ``fc`` -> ``fc_dropout`` -> ``predictions``.

    Args:
        lstm_units: LSTM width (assumed, paper silent). Other arguments as in
            ``build_convlstm_cbam``.
    """
    inputs = _frames_input(frames, size)
    x = _frame_features(inputs, weights, backbone_trainable)
    x = keras.layers.TimeDistributed(
        keras.layers.GlobalAveragePooling2D(name="gap"), name="frame_pool")(x)
    x = keras.layers.LSTM(lstm_units, name="lstm")(x)
    return keras.Model(inputs, _head(x, fc_units, dropout), name=name)


def build_xception_frames(weights=None, trainable: bool = True) -> keras.Model:
    """P3's warm-up classifier: the video models' per-frame Xception
    (:func:`build_xception_maps`, its layer ``xception_maps``) + global average pooling +
    ``Dense(1, sigmoid)`` named ``predictions``; a frame of any size in [0, 1] ->
    P(fake). Its backbone weights then start the video models."""
    backbone = build_xception_maps(weights=weights, trainable=trainable)
    inputs = keras.Input((None, None, 3), name="frame")
    x = backbone(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(1, activation="sigmoid", name="predictions")(x)
    return keras.Model(inputs, out, name="xception_frames")


VIDEO_MODELS: dict[str, Callable[..., keras.Model]] = {
    "convlstm_cbam": build_convlstm_cbam,
    "xception_lstm": build_xception_lstm,
    "xception_convlstm": build_xception_convlstm,
}


def build_video_model(name: str, **kwargs) -> keras.Model:
    """Build a registered video model by its command-line name.

    Raises:
        ModelError: unknown name (the message lists the valid ones).
    """
    try:
        builder = VIDEO_MODELS[name]
    except KeyError:
        raise ModelError(
            f"unknown video model {name!r}; choose one of {', '.join(VIDEO_MODELS)}") from None
    return builder(**kwargs)
