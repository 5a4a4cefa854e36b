"""P2 InceptionV3 transfer: the paper's 314-layer count, unfreezing, BN, weights, round trip.

Two transfer models are built for the whole module (an InceptionV3 build takes seconds):
``big`` at the paper's 299 px from a plain Keras InceptionV3 saved as a legacy ``.h5``
(the format of Keras' notop ImageNet file), and ``small`` at 64 px from ``big``'s
``.weights.h5``. Tests that change trainable flags restore them.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dfdetect.errors import ModelError, WeightsUnavailableError
from dfdetect.models import transfer
from dfdetect.models.transfer import (
    InferenceBatchNormalization,
    apply_unfreeze,
    build_inception_transfer,
    count_trainable_layers,
    paper_layers,
    transfer_feature_extractor,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tmp_path_factory.mktemp("inception")


@pytest.fixture(scope="module")
def plain_base(files):
    """A plain Keras InceptionV3 notop and its weights in Keras' legacy .h5 format."""
    base = keras.applications.InceptionV3(include_top=False, weights=None,
                                          input_shape=(None, None, 3))
    path = files / "inception_v3_notop.h5"
    keras.saving.save_model(base, path)  # legacy HDF5, like Keras' notop download
    return base.get_weights(), path


@pytest.fixture(scope="module")
def big(plain_base):
    return build_inception_transfer("top50", weights=plain_base[1])


@pytest.fixture(scope="module")
def small(big, files):
    path = files / "big.weights.h5"
    big.save_weights(path)
    return build_inception_transfer("top25", input_shape=(64, 64, 3), weights=path)


def _assert_same_weights(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_array_equal(g, w)


def test_paper_count_314_layers_and_23_9_m_parameters(big):
    assert big.input_shape == (None, 299, 299, 3)
    assert big.output_shape == (None, 2)
    layers = paper_layers(big)
    assert len(layers) == transfer.PAPER_LAYER_COUNT == 314
    assert [layer.name for layer in layers[-3:]] == ["gap", "fc1024", "predictions"]
    assert abs(big.count_params() - 23.9e6) < 0.1e6
    assert big.get_layer("inception_v3").count_params() == 21_802_784


@pytest.mark.parametrize("unfreeze, n_top", [("top50", 157), ("top25", 78), ("head", 2)])
def test_unfreeze_makes_exactly_the_top_share_trainable(big, unfreeze, n_top):
    try:
        apply_unfreeze(big, unfreeze)
        assert count_trainable_layers(big) == n_top
        flags = [layer.trainable for layer in paper_layers(big)]
        assert flags == [False] * (314 - n_top) + [True] * n_top
        trainable = {id(v) for v in big.trainable_weights}
        for layer in paper_layers(big):
            assert all((id(v) in trainable) == layer.trainable
                       for v in layer.trainable_weights + layer.non_trainable_weights
                       if "moving" not in v.path)
        if unfreeze == "head":
            assert sum(int(np.prod(v.shape)) for v in big.trainable_weights) == (
                2048 * 1024 + 1024 + 1024 * 2 + 2)
    finally:
        apply_unfreeze(big, "top50")


def test_top50_unfreezes_batchnorm_beta_but_never_moving_statistics(big):
    top = paper_layers(big)[-157:]
    bns = [layer for layer in top if isinstance(layer, InferenceBatchNormalization)]
    assert len(bns) > 40
    trainable_paths = {v.path for v in big.trainable_weights}
    for bn in bns:
        assert bn.beta.path in trainable_paths
        assert bn.moving_mean.path not in trainable_paths


def test_batchnorm_runs_in_inference_mode_while_training(small):
    # In training mode a BN layer would normalise with this batch's statistics (which
    # differ from fresh moving statistics) and update its moving averages.
    x = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    bns = [layer for layer in paper_layers(small)[-78:]
           if isinstance(layer, InferenceBatchNormalization)]
    assert bns and all(bn.trainable for bn in bns)
    before = [bn.moving_mean.numpy().copy() for bn in bns]
    train_out = small(x, training=True)
    np.testing.assert_allclose(train_out, small(x, training=False), rtol=1e-5, atol=1e-6)
    for bn, mean in zip(bns, before):
        np.testing.assert_array_equal(bn.moving_mean.numpy(), mean)


def test_local_notop_h5_loads_into_the_base(big, plain_base):
    _assert_same_weights(big.get_layer("inception_v3").get_weights(), plain_base[0])


def test_weights_h5_of_a_whole_model_loads_at_another_size(small, big):
    # 64 px is below InceptionV3's 75 px minimum: upsampled inside, base is (None, None, 3).
    assert small.input_shape == (None, 64, 64, 3)
    assert small.get_layer(transfer.UPSAMPLE_NAME).output.shape[1:3] == (75, 75)
    assert transfer.UPSAMPLE_NAME not in [layer.name for layer in big.layers]
    assert count_trainable_layers(small) == 78
    _assert_same_weights(small.get_weights(), big.get_weights())


def test_keras_round_trip_keeps_predictions_flags_and_inference_bn(small, round_trip):
    x = np.random.default_rng(1).random((1, 64, 64, 3), dtype=np.float32)
    loaded = round_trip(small, x, "small.keras")
    assert count_trainable_layers(loaded) == 78
    assert ([layer.trainable for layer in paper_layers(loaded)[1:]]
            == [layer.trainable for layer in paper_layers(small)[1:]])
    assert any(isinstance(layer, InferenceBatchNormalization)
               for layer in paper_layers(loaded))
    assert not any(type(layer) is keras.layers.BatchNormalization
                   for layer in paper_layers(loaded))


def test_preprocessing_maps_unit_range_to_inception_range(small):
    rescale = small.get_layer(transfer.PREPROCESS_NAME)
    out = rescale(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    np.testing.assert_allclose(out, [[-1.0, 0.0, 1.0]])


def test_feature_extractor_gives_2048_vectors(small):
    extractor = transfer_feature_extractor(small)
    assert extractor.output_shape == (None, 2048)
    assert extractor.layers[0] is small.layers[0]


def test_imagenet_offline_raises_one_line_weights_unavailable(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/x: None "
                        "-- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        build_inception_transfer("top50", weights="imagenet")
    message = str(info.value)
    assert "\n" not in message
    assert "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "weights=None" in message


def test_bad_arguments_raise_model_error_before_building(tmp_path):
    with pytest.raises(ModelError, match="unknown unfreeze option 'top10'"):
        build_inception_transfer("top10")
    with pytest.raises(ModelError, match=r"\(height, width, 3\)"):
        build_inception_transfer("head", input_shape=(64, 64, 1))
    missing = tmp_path / "nope.h5"
    with pytest.raises(ModelError, match="weights file not found") as info:
        build_inception_transfer("head", weights=missing)
    assert str(info.value).startswith(str(missing))
    other = tmp_path / "weights.npz"
    other.write_bytes(b"")
    with pytest.raises(ModelError, match="unsupported weights file"):
        build_inception_transfer("head", weights=other)
    with pytest.raises(ModelError, match="not a transfer model of InceptionV3 or EfficientNet"):
        count_trainable_layers(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))


# ---------------------------------------------------------------- ImageNet EfficientNet-Lite0

@pytest.fixture(scope="module")
def lite():
    """Lite0 + the paper's head at 32 px with ImageNet weights (top50 unfrozen)."""
    return transfer.build_lite_transfer("top50", (32, 32, 3), weights="imagenet")


def test_lite0_counts_144_layers_as_inception_counts_314(lite):
    layers = paper_layers(lite)
    assert len(layers) == transfer.LITE0_LAYER_COUNT == 144
    assert isinstance(layers[0], keras.layers.InputLayer)
    assert [layer.name for layer in layers[-3:]] == list(transfer.HEAD_LAYERS)
    kinds = {}
    for layer in layers[:-3]:
        kinds[type(layer).__name__] = kinds.get(type(layer).__name__, 0) + 1
    assert kinds == {"InputLayer": 1, "Conv2D": 33, "DepthwiseConv2D": 16,
                     "InferenceBatchNormalization": 49, "ReLU": 33, "Add": 9}
    # left out: the input scaling and the Identity layers that only name the taps
    base = lite.get_layer("efficientnet_lite0")
    assert len(base.layers) - len(layers[:-3]) == 4
    assert lite.count_params() == 4_726_818


@pytest.mark.parametrize("unfreeze, n_top, first, params", [
    ("top50", 72, "blocks_8_dwconv", 4_391_458),
    ("top25", 36, "blocks_12_dwconv_relu6", 3_505_282),
    ("head", 2, "fc1024", 1280 * 1024 + 1024 + 1024 * 2 + 2)])
def test_lite0_unfreeze_makes_exactly_the_top_share_trainable(lite, unfreeze, n_top, first,
                                                             params):
    try:
        apply_unfreeze(lite, unfreeze)
        assert count_trainable_layers(lite) == n_top
        layers = paper_layers(lite)
        assert [layer.trainable for layer in layers] == [False] * (144 - n_top) + [True] * n_top
        assert layers[144 - n_top].name == first
        assert sum(int(np.prod(v.shape)) for v in lite.trainable_weights) == params
    finally:
        apply_unfreeze(lite, "top50")


def test_lite0_imagenet_weights_batchnorm_frozen_and_1280_features(lite):
    from dfdetect.models import efficientnet_lite

    ref = efficientnet_lite.build_efficientnet_lite("lite0", (32, 32, 3), weights="imagenet",
                                                    drop_connect=0.0)
    x = np.random.default_rng(3).random((2, 32, 32, 3), dtype=np.float32)
    extractor = transfer_feature_extractor(lite)
    assert extractor.output_shape == (None, 1280)
    # the ImageNet network, unchanged by the BN swap: same pooled features
    np.testing.assert_allclose(extractor(x, training=False), ref(x, training=False),
                               rtol=1e-4, atol=1e-4)
    bns = [layer for layer in paper_layers(lite) if isinstance(layer, InferenceBatchNormalization)]
    assert bns and not any(type(layer) is keras.layers.BatchNormalization
                           for layer in paper_layers(lite))
    before = bns[-1].moving_mean.numpy().copy()
    np.testing.assert_allclose(lite(x, training=True), lite(x, training=False),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bns[-1].moving_mean.numpy(), before)


def test_lite0_transfer_weights_file_and_round_trip(lite, tmp_path, round_trip):
    path = tmp_path / "lite.weights.h5"
    lite.save_weights(path)
    again = transfer.build_lite_transfer("head", (32, 32, 3), weights=path)
    _assert_same_weights(again.get_weights(), lite.get_weights())
    assert count_trainable_layers(again) == 2
    x = np.random.default_rng(4).random((1, 32, 32, 3), dtype=np.float32)
    loaded = round_trip(again, x, "lite.keras")
    assert count_trainable_layers(loaded) == 2
    with pytest.raises(ModelError, match="unsupported weights file"):
        other = tmp_path / "w.npz"
        other.write_bytes(b"")
        transfer.build_lite_transfer("head", (32, 32, 3), weights=other)
    with pytest.raises(ModelError, match="weights file not found"):
        transfer.build_lite_transfer("head", (32, 32, 3), weights=tmp_path / "nope.pth")
