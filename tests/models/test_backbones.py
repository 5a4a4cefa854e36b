"""Backbones: feature sizes at 64 px, built-in preprocessing, weights handling."""

import socket
import time
import urllib.error

import keras
import numpy as np
import pytest

from dfdetect.errors import ModelError, WeightsUnavailableError
from dfdetect.models.backbones import BACKBONES, ApplicationPreprocess, build_backbone, feature_dim

SHAPE = (64, 64, 3)
EXPECTED_DIMS = {"xception": 2048, "densenet121": 1024, "resnet50": 2048,
                 "inceptionv3": 2048, "meso4": 1024, "mesoinception4": 1024,
                 "lite0": 1280, "lite1": 1280, "lite2": 1280}
PREPROCESS = {"xception": "tf", "inceptionv3": "tf", "densenet121": "torch", "resnet50": "caffe"}


@pytest.fixture(scope="module")
def frozen():
    """Each backbone built once at 64 px with trainable=False (built lazily)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = build_backbone(name, SHAPE, trainable=False)
        return cache[name]

    return get


def test_backbone_names():
    assert set(BACKBONES) == set(EXPECTED_DIMS)


@pytest.mark.parametrize("name", sorted(EXPECTED_DIMS))
def test_feature_dim_at_256(name):
    assert feature_dim(name, (256, 256, 3)) == EXPECTED_DIMS[name]


# xception and densenet121 are built (unfrozen) by tests/models/test_fusion.py through the
# paper's configurations, with the same checks; building them twice would cost ~10 s.
@pytest.mark.parametrize("name", ["inceptionv3", "resnet50", "meso4", "mesoinception4"])
def test_backbone_builds_at_64px_frozen(name, frozen):
    model = frozen(name)
    assert model.name == f"{name}_features"
    assert model.input.shape == (None, *SHAPE)
    assert model.output.shape == (None, feature_dim(name, SHAPE))
    assert model.trainable_weights == []
    assert model.count_params() > 0
    if name in PREPROCESS:
        pre = model.get_layer(f"{name}_preprocess")
        assert isinstance(pre, ApplicationPreprocess) and pre.mode == PREPROCESS[name]
    else:
        assert feature_dim(name, SHAPE) == 2 * 2 * 16  # 64 px / 32 = 2x2x16 maps


def test_inceptionv3_upsamples_inputs_below_75px(frozen):
    small = frozen("inceptionv3")
    assert small.get_layer("inceptionv3_resize").output.shape == (None, 75, 75, 3)
    assert "resnet50_resize" not in [layer.name for layer in frozen("resnet50").layers]


@pytest.mark.parametrize("mode,module", [("tf", "xception"), ("tf", "inception_v3"),
                                         ("torch", "densenet"), ("caffe", "resnet50")])
def test_preprocess_equals_keras_preprocess_input_on_0_255(mode, module):
    x = np.random.default_rng(1).random((2, 8, 8, 3)).astype("float32")
    expected = getattr(keras.applications, module).preprocess_input(x.copy() * 255.0)
    got = keras.ops.convert_to_numpy(ApplicationPreprocess(mode)(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_preprocess_layer_config_round_trip():
    layer = ApplicationPreprocess("caffe", name="p")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, ApplicationPreprocess) and clone.mode == "caffe"
    with pytest.raises(ModelError):
        ApplicationPreprocess("bgr")


@pytest.mark.parametrize("name", ["foo", "resnet", "Meso-4"])
def test_unknown_backbone_lists_valid_names(name):
    with pytest.raises(ModelError) as info:
        build_backbone(name, SHAPE)
    assert "xception" in str(info.value) and "mesoinception4" in str(info.value)
    with pytest.raises(ModelError):
        feature_dim(name)


def test_meso_has_no_imagenet_weights():
    with pytest.raises(ModelError) as info:
        build_backbone("meso4", SHAPE, weights="imagenet")
    assert not isinstance(info.value, WeightsUnavailableError)
    assert "imagenet" in str(info.value).lower()


def test_non_rgb_input_is_refused_for_applications():
    with pytest.raises(ModelError):
        build_backbone("resnet50", (64, 64, 1))


def test_missing_weights_file_names_it(tmp_path):
    missing = tmp_path / "nope.weights.h5"
    for name in ("resnet50", "meso4"):
        with pytest.raises(WeightsUnavailableError) as info:
            build_backbone(name, SHAPE, weights=missing)
        assert str(missing) in str(info.value)


def _url_fetch_failure(*args, **kwargs):
    # The exact exception keras.utils.get_file raises when the host is unreachable.
    raise Exception("URL fetch failure on https://storage.googleapis.com/tensorflow/"
                    "keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_"
                    "notop.h5: None -- [Errno -2] Name or service not known")


def test_imagenet_offline_error_is_one_fast_line(monkeypatch):
    monkeypatch.setattr(keras.applications, "ResNet50", _url_fetch_failure)
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as info:
        build_backbone("resnet50", SHAPE, weights="imagenet")
    assert time.perf_counter() - start < 1.0
    message = str(info.value)
    assert "\n" not in message
    assert "weights=None" in message and ".h5" in message and "ResNet50" in message
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message


def test_imagenet_offline_through_real_keras_download(monkeypatch, tmp_path):
    """The real keras download path, with the network call replaced by a DNS failure."""
    from keras.src.utils import file_utils

    def no_dns(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    real_get_file = file_utils.get_file
    monkeypatch.setattr(file_utils, "urlretrieve", no_dns)
    # A private cache dir, so weights cached on a developer's machine cannot mask the error.
    monkeypatch.setattr(file_utils, "get_file",
                        lambda *a, **k: real_get_file(*a, **{**k, "cache_dir": str(tmp_path)}))
    with pytest.raises(WeightsUnavailableError) as info:
        build_backbone("resnet50", SHAPE, weights="imagenet")
    assert "\n" not in str(info.value)
    assert "Name or service not known" in str(info.value)


def test_other_errors_are_not_disguised_as_download_failures(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something else")

    monkeypatch.setattr(keras.applications, "ResNet50", broken)
    with pytest.raises(RuntimeError):
        build_backbone("resnet50", SHAPE, weights="imagenet")


def test_application_loads_a_local_weights_file(tmp_path, frozen):
    base = frozen("resnet50").get_layer("resnet50_base")
    path = tmp_path / "resnet50_notop.weights.h5"
    base.save_weights(path)
    loaded = build_backbone("resnet50", SHAPE, weights=path).get_layer("resnet50_base")
    for want, got in zip(base.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_unloadable_application_weights_file_is_a_model_error(tmp_path, monkeypatch):
    path = tmp_path / "other.weights.h5"
    path.write_bytes(b"not weights")

    def refuse(*args, weights=None, **kwargs):
        assert weights == str(path)
        raise ValueError("A total of 3 objects could not be loaded.\nDetails...")

    monkeypatch.setattr(keras.applications, "ResNet50", refuse)
    with pytest.raises(ModelError) as info:
        build_backbone("resnet50", SHAPE, weights=path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert not isinstance(info.value, WeightsUnavailableError)


def test_unloadable_meso_weights_file_is_a_model_error(tmp_path):
    inputs = keras.Input((4,))
    path = tmp_path / "tiny.weights.h5"
    keras.Model(inputs, keras.layers.Dense(3)(inputs)).save_weights(path)
    with pytest.raises(ModelError) as info:
        build_backbone("meso4", SHAPE, weights=path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("source", ["classifier", "features"])
def test_meso_loads_classifier_or_feature_weights(tmp_path, source):
    from dfdetect.models import meso

    clf = meso.build_meso4(SHAPE)
    ref = meso.features_of(clf) if source == "classifier" else meso.build_meso4_features(SHAPE)
    path = tmp_path / f"{source}.weights.h5"
    (clf if source == "classifier" else ref).save_weights(path)
    model = build_backbone("meso4", SHAPE, weights=path)
    x = np.random.default_rng(2).random((2, *SHAPE)).astype("float32")
    np.testing.assert_allclose(model(x, training=False), ref(x, training=False), atol=1e-6)


def _bn_momenta(model):
    return {layer.momentum for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)}


@pytest.mark.parametrize("name", ["resnet50", "meso4"])
def test_from_scratch_batchnorm_momentum_is_set_and_saved(name, frozen, tmp_path):
    from dfdetect.models.backbones import SCRATCH_BN_MOMENTUM

    model = frozen(name)
    assert _bn_momenta(model) == {SCRATCH_BN_MOMENTUM}
    path = tmp_path / f"{name}.keras"
    model.save(path)
    assert _bn_momenta(keras.models.load_model(path)) == {SCRATCH_BN_MOMENTUM}


def test_pretrained_backbone_keeps_keras_batchnorm_momentum(tmp_path, frozen):
    path = tmp_path / "meso.weights.h5"
    frozen("meso4").save_weights(path)
    assert _bn_momenta(build_backbone("meso4", SHAPE, weights=path)) == {0.99}


def test_scratch_batchnorm_counts_nested_layers():
    from dfdetect.models.backbones import scratch_batchnorm

    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, keras.layers.BatchNormalization()(inner_in))
    outer_in = keras.Input((4,))
    outer = keras.Model(outer_in, keras.layers.BatchNormalization()(inner(outer_in)))
    assert scratch_batchnorm(outer, 0.8) == 2
    assert _bn_momenta(outer) == {0.8}


def test_lite0_backbone_with_imagenet_weights_gives_1280_features():
    from dfdetect import features
    from dfdetect.models import efficientnet_lite
    from dfdetect.models.backbones import SCRATCH_BN_MOMENTUM

    model = build_backbone("lite0", SHAPE, weights="imagenet", trainable=False)
    assert model.name == "lite0_features"
    assert model.output_shape == (None, feature_dim("lite0", SHAPE)) == (None, 1280)
    assert model.trainable_weights == []
    # a frozen backbone is a fixed function: no stochastic depth inside fit
    assert not any(isinstance(layer, keras.layers.Dropout)
                   for layer in model._flatten_layers(include_self=False))
    ref = efficientnet_lite.build_efficientnet_lite("lite0", SHAPE, weights="imagenet")
    x = np.random.default_rng(5).random((2, *SHAPE), dtype=np.float32)
    np.testing.assert_allclose(model.predict_on_batch(x), ref.predict_on_batch(x),
                               rtol=1e-4, atol=1e-4)
    # ImageNet features and random ones never share a feature cache
    assert features.feature_name("lite0", "imagenet") == "lite0-imagenet"
    assert features.feature_name("lite0", None, seed=0) == "lite0-random-s0"
    # pretrained BN keeps Keras' momentum; trainable keeps stochastic depth for fine-tuning
    random = build_backbone("lite0", SHAPE)
    assert _bn_momenta(random) == {SCRATCH_BN_MOMENTUM}
    assert _bn_momenta(model) == {0.99}
    assert any(isinstance(layer, keras.layers.Dropout)
               for layer in random._flatten_layers(include_self=False))
