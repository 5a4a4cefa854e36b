"""Meso-4 / MesoInception-4: the original layers, parameter counts, feature extractors."""

import numpy as np
import pytest

from dfdetect.errors import ModelError
from dfdetect.models import meso


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_meso4_parameter_count_matches_paper():
    model = meso.build_meso4((256, 256, 3))
    # The papers' 27,977 are the trainable parameters; BatchNorm statistics add 96.
    assert _trainable(model) == 27_977
    assert model.count_params() == 28_073
    assert model.output.shape == (None, 1)
    assert model.layers[-1].activation.__name__ == "sigmoid"


def test_mesoinception4_parameter_count_matches_paper():
    model = meso.build_mesoinception4((256, 256, 3))
    assert _trainable(model) == 28_615
    assert model.count_params() == 28_725
    assert model.output.shape == (None, 1)


def test_meso4_layer_sequence_is_the_original():
    model = meso.build_meso4((256, 256, 3))
    convs = [l for l in model.layers if l.__class__.__name__ == "Conv2D"]
    assert [(c.filters, c.kernel_size) for c in convs] == [(8, (3, 3)), (8, (5, 5)),
                                                           (16, (5, 5)), (16, (5, 5))]
    pools = [l.pool_size for l in model.layers if l.__class__.__name__ == "MaxPooling2D"]
    assert pools == [(2, 2), (2, 2), (2, 2), (4, 4)]
    assert model.get_layer("meso4_leaky_relu").negative_slope == pytest.approx(0.1)


def test_mesoinception_blocks_use_dilations_2_and_3():
    model = meso.build_mesoinception4((256, 256, 3))
    assert model.get_layer("mesoinception4_block1_dil2").dilation_rate == (2, 2)
    assert model.get_layer("mesoinception4_block2_dil3").dilation_rate == (3, 3)
    # InceptionLayer(1,4,4,2) -> 11 channels, InceptionLayer(2,4,4,2) -> 12.
    assert model.get_layer("mesoinception4_block1_concat").output.shape[-1] == 11
    assert model.get_layer("mesoinception4_block2_concat").output.shape[-1] == 12


@pytest.mark.parametrize("size,dim", [(256, 1024), (64, 64), (32, 16), (100, 256)])
def test_feature_extractors_flatten_ceil_size_over_32_squared_x16(size, dim):
    assert meso.meso_feature_dim((size, size, 3)) == dim
    for build in (meso.build_meso4_features, meso.build_mesoinception4_features):
        assert build((size, size, 3)).output.shape == (None, dim)


def test_features_of_shares_weights_with_classifier():
    clf = meso.build_meso4((64, 64, 3))
    feats = meso.features_of(clf)
    x = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    assert feats.output.shape == (None, 64)
    before = feats(x, training=False).numpy()
    # Changing the classifier's last conv must change the extractor's output.
    conv = clf.get_layer("meso4_block4_conv")
    kernel, bias = conv.get_weights()
    conv.set_weights([kernel * 3.0, bias + 1.0])
    after = feats(x, training=False).numpy()
    assert not np.allclose(before, after)


@pytest.mark.parametrize("shape", [(16, 16, 3), (64, 64), (64, -1, 3)])
def test_bad_input_shape_is_a_model_error(shape):
    with pytest.raises(ModelError):
        meso.build_meso4(shape)


def test_numpy_integer_shapes_are_accepted():
    shape = tuple(np.array([64, 64, 3]))
    assert meso.build_meso4_features(shape).output.shape == (None, 64)
