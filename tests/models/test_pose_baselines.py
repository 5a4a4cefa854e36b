"""P4 Table 5 / Table 6 baselines: shapes and parameter counts only (nothing is trained)."""

import keras
import numpy as np
import pytest

from dfdetect.data import pose
from dfdetect.errors import ModelError
from dfdetect.models import pose_baselines, registry

# Keras' published parameter counts of the applications without their top, for 3-channel
# images (keras.io/api/applications), and what a 2-channel (x, y) input removes from the
# first convolution: VGG16 3x3x1x64, ResNet 7x7x1x64.
NOTOP_3_CHANNELS = {"vgg16": 14_714_688, "resnet50": 23_587_712,
                    "resnet101": 42_658_176, "resnet152": 58_370_944}
ONE_CHANNEL_OF_FIRST_CONV = {"vgg16": 3 * 3 * 64, "resnet50": 7 * 7 * 64,
                             "resnet101": 7 * 7 * 64, "resnet152": 7 * 7 * 64}
POOLED = {"vgg16": 512, "resnet50": 2048, "resnet101": 2048, "resnet152": 2048}


@pytest.mark.parametrize("network", sorted(NOTOP_3_CHANNELS))
def test_table_5_networks_are_the_keras_applications_on_a_pose_image(network):
    model = registry.build_model(f"pose_{network}")
    assert model.input_shape == (None, pose.SEGMENT_FRAMES, pose.N_FEATURES)
    assert model.output_shape == (None, 1)
    head = POOLED[network] + 1
    expected = NOTOP_3_CHANNELS[network] - ONE_CHANNEL_OF_FIRST_CONV[network] + head
    assert model.count_params() == expected
    base = model.get_layer(network)
    # 150 frames x 12 keypoints, each keypoint column repeated 3 times to reach 32
    assert base.input_shape == (None, 150, 36, 2)
    assert {layer.momentum for layer in base.layers
            if isinstance(layer, keras.layers.BatchNormalization)} <= {0.9}


def test_table_6_resnet152_reads_only_the_facial_landmarks():
    model = registry.build_model("pose_resnet152_face")
    assert model.name == "pose_resnet152_face"
    assert model.output_shape == (None, 1)
    assert model.get_layer("resnet152").input_shape == (None, 150, 35, 2)  # 5 x 7 columns
    face = [pose.KEYPOINT_NAMES[k] for k in pose_baselines.FACE_KEYPOINTS]
    assert face == ["nose", "r_eye", "l_eye", "r_ear", "l_ear"]


def test_pose_image_layout_and_face_subset_keep_the_right_coordinates(round_trip):
    model = pose_baselines.build_pose_image_cnn("vgg16", frames=32,
                                                keypoints=pose_baselines.FACE_KEYPOINTS)
    x = np.random.default_rng(0).normal(size=(2, 32, 24)).astype("float32")
    image = keras.Model(model.input, model.get_layer("keypoint_subset").output)
    got = keras.ops.convert_to_numpy(image(x))
    assert got.shape == (2, 32, 5, 2)
    for j, k in enumerate(pose_baselines.FACE_KEYPOINTS):  # features are x, y per keypoint
        np.testing.assert_array_equal(got[:, :, j, 0], x[:, :, 2 * k])
        np.testing.assert_array_equal(got[:, :, j, 1], x[:, :, 2 * k + 1])
    # the body keypoints do not reach the network at all
    moved = x.copy()
    body = [c for k in range(12) if k not in pose_baselines.FACE_KEYPOINTS
            for c in (2 * k, 2 * k + 1)]
    moved[:, :, body] += 5.0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(moved)),
                               keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6)
    # a saved model loads back in safe mode (no Lambda layer)
    round_trip(model, x, "face.keras")


@pytest.mark.parametrize("kwargs", [dict(network="vgg19"), dict(frames=16),
                                    dict(keypoints=(0, 0)), dict(keypoints=(12,)),
                                    dict(keypoints=()), dict(dropout=1.0), dict(l2=-1.0)])
def test_bad_arguments_are_model_errors(kwargs):
    with pytest.raises(ModelError):
        pose_baselines.build_pose_image_cnn(**kwargs)
