"""P4's image-network baselines over pose sequences: Table 5 (VGG16, ResNet50/101/152)
and Table 6 (ResNet152 on the facial landmarks only).

The paper (``seeds/001``, section 5) says it "trained the proposed dataset with the
VGG16, ResNet, and multimodel CNN+LSTM architectures" (Table 5: 74.03 % test accuracy for
VGG16, 84.49 / 88.00 / 92.01 % for ResNet50 / 101 / 152) and, for Table 6, "we only
trained facial landmarks using the CNN architecture ... We trained the ResNet152 network
using the facial landmarks" (93.20 %). Its dataset is the pose data: 150-frame
movements of 12 upper-body keypoints (x, y). It does not say how a 150 x 24 sequence
entered a 2-D image network.

**Our reading.** A movement is a *pose image*, as skeleton sequences are commonly fed
to image CNNs in action recognition: rows are the 150 frames, columns the keypoints,
channels the keypoint's (x, y) — ``(150, 12, 2)`` for the upper body, ``(150, 5, 2)``
for the face (nose, eyes, ears: the facial landmarks among the 12). These networks
need at least 32 pixels a side, so each keypoint column is repeated (nearest-neighbour
``UpSampling2D`` along the keypoint axis: x3 for 12 keypoints = 36 columns, x7 for 5 =
35), which adds no information and mixes no keypoints. Then the Keras application
without its top, ``weights=None`` (no ImageNet weights for a 2-channel pose image, and
none could be downloaded here), global average pooling, Dropout(0.5) and Dense(1,
sigmoid) — P(fake) like the pose LSTM's output. Inputs are the same z-scored segments
as the LSTM's; train them as the LSTM (``sequence.pose_optimizer``, the same decay,
batch and epochs). The paper's other readings (e.g. keypoints drawn as skeleton images)
would need a renderer and are not offered.

BatchNormalization momentum is 0.9 (``backbones.SCRATCH_BN_MOMENTUM``), as for every
backbone trained from scratch here. Weight decay (``l2``, PyTorch-style as in
``sequence.build_pose_lstm``) applies to the head only: Keras applications take no
regularizers.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import keras

from dfdetect.errors import ModelError
from dfdetect.models.backbones import SCRATCH_BN_MOMENTUM, scratch_batchnorm
from dfdetect.models.sequence import maybe_load_weights

__all__ = [
    "FACE_KEYPOINTS",
    "KeypointSubset",
    "POSE_IMAGE_NETWORKS",
    "PAPER_TABLE_5_BASELINES",
    "PAPER_TABLE_6",
    "build_pose_image_cnn",
    "build_pose_vgg16",
    "build_pose_resnet50",
    "build_pose_resnet101",
    "build_pose_resnet152",
    "build_pose_resnet152_face",
]

#: The networks of Table 5 / Table 6 -> their Keras application.
POSE_IMAGE_NETWORKS = {
    "vgg16": keras.applications.VGG16,
    "resnet50": keras.applications.ResNet50,
    "resnet101": keras.applications.ResNet101,
    "resnet152": keras.applications.ResNet152,
}
#: Indices (into the 12 upper-body keypoints of ``dfdetect.data.pose``) of the facial
#: landmarks: nose, right eye, left eye, right ear, left ear.
FACE_KEYPOINTS = (0, 8, 9, 10, 11)
#: The paper's Table 5 rows for these networks: (train, validation, test) accuracy.
PAPER_TABLE_5_BASELINES = {
    "vgg16": (0.8210, 0.7634, 0.7403),
    "resnet50": (0.9129, 0.8764, 0.8449),
    "resnet101": (0.9300, 0.8990, 0.8800),
    "resnet152": (0.9600, 0.9290, 0.9201),
}
#: The paper's Table 6: test accuracy of Li et al.'s ResNet152 on the facial landmarks.
PAPER_TABLE_6 = {"resnet152_face": 0.9320}
_MIN_SIDE = 32  # the smallest side VGG16 / ResNet accept


@keras.saving.register_keras_serializable(package="dfdetect")
class KeypointSubset(keras.layers.Layer):
    """Keeps some keypoint columns of a ``(batch, frames, keypoints, 2)`` pose image.

    A named layer rather than a ``Lambda``, so a saved model loads in safe mode.
    """

    def __init__(self, keypoints: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        self.keypoints = [int(k) for k in keypoints]

    def call(self, inputs):
        return keras.ops.take(inputs, self.keypoints, axis=2)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:2], len(self.keypoints), *input_shape[3:])

    def get_config(self):
        return {**super().get_config(), "keypoints": self.keypoints}


def build_pose_image_cnn(network: str = "resnet50", keypoints: Sequence[int] | None = None,
                         frames: int = 150, n_keypoints: int = 12, dropout: float = 0.5,
                         l2: float = 1e-4, weights=None) -> keras.Model:
    """A Keras image network over a pose movement read as a (frames, keypoints, 2) image.

    Args:
        network: ``vgg16``, ``resnet50``, ``resnet101`` or ``resnet152``.
        keypoints: indices of the keypoints to keep (``None``: all ``n_keypoints``;
            :data:`FACE_KEYPOINTS` for Table 6).
        frames: time steps of a movement (the paper's 150).
        n_keypoints: keypoints in the input, whose features are ``x, y`` per keypoint
            (``dfdetect.data.pose.FEATURE_NAMES`` order): input ``(frames, 2 * n)``.
        dropout: dropout before the output layer.
        l2: PyTorch-style weight decay of the head (0 disables it).
        weights: ``None`` or a ``.weights.h5`` file of this architecture.

    Returns:
        An uncompiled ``keras.Model`` from ``(frames, 2 * n_keypoints)`` to one sigmoid
        output, P(fake).

    Raises:
        ModelError: unknown network, bad keypoints or sizes.
    """
    key = str(network).strip().lower()
    if key not in POSE_IMAGE_NETWORKS:
        raise ModelError(f"unknown pose image network {network!r}; "
                         f"expected one of {', '.join(POSE_IMAGE_NETWORKS)}")
    if int(frames) != frames or frames < _MIN_SIDE:
        raise ModelError(f"frames must be an integer >= {_MIN_SIDE}, got {frames!r}")
    if int(n_keypoints) != n_keypoints or n_keypoints <= 0:
        raise ModelError(f"n_keypoints must be a positive integer, got {n_keypoints!r}")
    keep = tuple(range(n_keypoints)) if keypoints is None else tuple(keypoints)
    if not keep or len(set(keep)) != len(keep) or any(
            int(k) != k or not 0 <= k < n_keypoints for k in keep):
        raise ModelError(f"keypoints must be distinct indices in [0, {n_keypoints}), "
                         f"got {keypoints!r}")
    if not 0.0 <= dropout < 1.0:
        raise ModelError(f"dropout must be in [0, 1), got {dropout}")
    if l2 < 0:
        raise ModelError(f"l2 weight decay must be >= 0, got {l2}")

    repeat = -(-_MIN_SIDE // len(keep))  # ceil: columns per keypoint to reach 32
    inputs = keras.Input((int(frames), 2 * int(n_keypoints)), name="pose")
    x = keras.layers.Reshape((int(frames), int(n_keypoints), 2), name="pose_image")(inputs)
    if keep != tuple(range(n_keypoints)):
        x = KeypointSubset(keep, name="keypoint_subset")(x)
    if repeat > 1:
        x = keras.layers.UpSampling2D((1, repeat), interpolation="nearest",
                                      name="keypoint_repeat")(x)
    with warnings.catch_warnings():  # "usually expects 1 or 3 input channels": 2 is meant
        warnings.filterwarnings("ignore", message=".*input channels.*")
        base = POSE_IMAGE_NETWORKS[key](include_top=False, weights=None, pooling="avg",
                                        input_shape=(int(frames), len(keep) * repeat, 2))
    scratch_batchnorm(base, SCRATCH_BN_MOMENTUM)
    x = base(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    reg = (lambda: keras.regularizers.L2(l2 / 2.0)) if l2 > 0 else (lambda: None)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="pose_output",
                                 kernel_regularizer=reg(), bias_regularizer=reg())(x)
    suffix = ("" if keep == tuple(range(n_keypoints)) else
              "_face" if n_keypoints == 12 and keep == FACE_KEYPOINTS else f"_{len(keep)}kp")
    return maybe_load_weights(keras.Model(inputs, outputs, name=f"pose_{key}{suffix}"), weights)


def build_pose_vgg16(**kwargs) -> keras.Model:
    """Table 5's VGG16 over the upper-body pose image (see the module docstring)."""
    return build_pose_image_cnn("vgg16", **kwargs)


def build_pose_resnet50(**kwargs) -> keras.Model:
    """Table 5's ResNet50 over the upper-body pose image."""
    return build_pose_image_cnn("resnet50", **kwargs)


def build_pose_resnet101(**kwargs) -> keras.Model:
    """Table 5's ResNet101 over the upper-body pose image."""
    return build_pose_image_cnn("resnet101", **kwargs)


def build_pose_resnet152(**kwargs) -> keras.Model:
    """Table 5's ResNet152 over the upper-body pose image."""
    return build_pose_image_cnn("resnet152", **kwargs)


def build_pose_resnet152_face(**kwargs) -> keras.Model:
    """Table 6's ResNet152 over the facial landmarks only (nose, eyes, ears)."""
    kwargs.setdefault("keypoints", FACE_KEYPOINTS)
    return build_pose_image_cnn("resnet152", **kwargs)
