"""P1 fusion: the paper's configurations, head wiring, names, save/load round trip."""

import keras
import numpy as np
import pytest

from dfdetect.errors import ModelError, WeightsUnavailableError
from dfdetect.models import backbones, fusion, meso, registry
from dfdetect.models.backbones import ApplicationPreprocess, feature_dim
from dfdetect.models.fusion import PAPER_CONFIGS, build_fusion_model, display_name

SHAPE = (64, 64, 3)
PREPROCESS = {"xception": "tf", "densenet121": "torch", "resnet50": "caffe"}
_BACKBONE_CACHE = {}


@pytest.fixture
def shared_backbones(monkeypatch):
    """Build each distinct backbone once for the whole module.

    A Keras model can be called inside several functional models, so reusing one
    backbone instance exercises exactly the wiring build_fusion_model does, while the
    11 configurations cost 4 backbone builds instead of 17.
    """
    real = backbones.build_backbone

    def cached(name, input_shape, weights=None, trainable=True):
        key = (name, tuple(input_shape), weights, trainable)
        if key not in _BACKBONE_CACHE:
            _BACKBONE_CACHE[key] = real(name, input_shape, weights=weights, trainable=trainable)
        return _BACKBONE_CACHE[key]

    monkeypatch.setattr(fusion, "build_backbone", cached)


def test_paper_configs_in_table_order_with_paper_labels():
    assert PAPER_CONFIGS == (
        "xception", "densenet121", "resnet50", "meso4",
        "meso4+resnet50", "meso4+densenet121", "meso4+xception",
        "xception+resnet50", "xception+densenet121", "resnet50+densenet121",
        "meso4+densenet121+xception",
    )
    # Row labels of Tables 3.1-3.4, then the triple of section 2.3.
    assert [display_name(c) for c in PAPER_CONFIGS] == [
        "Xception", "DenseNet-121", "ResNet", "Mesonet",
        "Mesonet + ResNet", "Mesonet + DenseNet", "Mesonet + Xception",
        "Xception + ResNet", "Xception + DenseNet", "ResNet + DenseNet",
        "Mesonet + DenseNet + Xception",
    ]


def _head_params(width, units=256):
    return width * units + units + units + 1


@pytest.mark.parametrize("config", PAPER_CONFIGS)
def test_every_paper_config_builds_at_64px(config, shared_backbones):
    model = build_fusion_model(config, SHAPE)
    names = config.split("+")
    width = sum(feature_dim(n, SHAPE) for n in names)
    assert model.input.shape == (None, *SHAPE)
    assert model.output.shape == (None, 1)
    for n in names:
        sub = model.get_layer(f"{n}_features")
        assert sub.output.shape == (None, feature_dim(n, SHAPE))
        if n in PREPROCESS:
            pre = sub.get_layer(f"{n}_preprocess")
            assert isinstance(pre, ApplicationPreprocess) and pre.mode == PREPROCESS[n]
    layer_types = [layer.__class__.__name__ for layer in model.layers]
    if len(names) > 1:
        concat = model.get_layer("fusion_concat")
        assert isinstance(concat, keras.layers.Concatenate)
        assert concat.output.shape == (None, width)
        assert fusion.fused_feature_dim(config, SHAPE) == width
    else:
        assert "Concatenate" not in layer_types
    dense = model.get_layer("fusion_dense")
    assert dense.units == 256 and dense.activation.__name__ == "relu"
    assert dense.kernel.shape == (width, 256)
    assert model.get_layer("fusion_dropout").rate == 0.5
    out = model.get_layer("prediction")
    assert out.units == 1 and out.activation.__name__ == "sigmoid"
    head = dense.count_params() + out.count_params()
    assert head == _head_params(width)
    # Trained from scratch by default: every backbone trains too.
    n_trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert n_trainable > head


def test_feature_widths_at_paper_size():
    assert fusion.fused_feature_dim("xception+densenet121", (256, 256, 3)) == 3072
    assert fusion.fused_feature_dim("meso4+densenet121+xception", (256, 256, 3)) == 4096


def test_fusion_round_trips_through_keras_file(round_trip, shared_backbones):
    keras.utils.set_random_seed(0)  # an unlucky random init can saturate the sigmoid
    model = build_fusion_model("meso4+resnet50", SHAPE)
    x = np.random.default_rng(0).random((3, *SHAPE)).astype("float32")
    # Same weights; oneDNN may split the work differently between two model instances
    # on a loaded machine, so the harness compares to float precision, not bit for bit.
    loaded = round_trip(model, x, "meso4+resnet50.keras", training=False)
    pre = loaded.get_layer("resnet50_features").get_layer("resnet50_preprocess")
    assert isinstance(pre, ApplicationPreprocess) and pre.mode == "caffe"
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    want = keras.ops.convert_to_numpy(model(x, training=False))
    assert want.shape == (3, 1) and np.all((want >= 0) & (want <= 1))


def test_freeze_leaves_only_the_head_trainable():
    model = build_fusion_model(["meso4", "mesoinception4"], SHAPE, freeze=True)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == _head_params(2 * meso.meso_feature_dim(SHAPE))


def test_string_list_and_head_options():
    model = build_fusion_model(" Meso4 + MesoInception4 ", SHAPE, head_units=32,
                               dropout=0.25, name="custom")
    assert model.name == "custom"
    assert model.get_layer("fusion_dense").units == 32
    assert model.get_layer("fusion_dropout").rate == 0.25
    assert fusion.config_name(" Meso4 + MesoInception4 ") == "meso4+mesoinception4"
    assert build_fusion_model(["meso4"], SHAPE).name == "fusion_meso4"


@pytest.mark.parametrize("config", ["xception+foo", ["resnet"], "", "meso4+", "xception+xception"])
def test_bad_configurations_are_model_errors(config):
    with pytest.raises(ModelError) as info:
        build_fusion_model(config, SHAPE)
    assert "\n" not in str(info.value)
    if "foo" in str(config) or config == ["resnet"]:
        assert "valid backbones: xception, densenet121, resnet50" in str(info.value)


def test_weights_arguments(tmp_path, monkeypatch):
    # One file cannot hold two backbones' weights.
    with pytest.raises(ModelError):
        build_fusion_model("meso4+mesoinception4", SHAPE, weights=tmp_path / "w.weights.h5")
    with pytest.raises(ModelError):
        build_fusion_model("meso4", SHAPE, weights={"xception": None})
    # "imagenet" means the Keras applications; Meso parts stay randomly initialised.
    assert build_fusion_model("meso4", SHAPE, weights="imagenet").output.shape == (None, 1)

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid/x.h5: None -- "
                        "[Errno -2] Name or service not known")

    monkeypatch.setattr(keras.applications, "Xception", offline)
    with pytest.raises(WeightsUnavailableError):
        build_fusion_model("meso4+xception", SHAPE, weights="imagenet")


def test_registry_resolves_names_and_configurations():
    assert registry.get_builder("meso4") is meso.build_meso4
    assert registry.get_builder("fusion") is build_fusion_model
    assert set(registry.available()) >= {"meso4", "mesoinception4", "backbone", "fusion"}
    model = registry.build_model("meso4+mesoinception4", input_shape=SHAPE)
    assert model.get_layer("fusion_concat").output.shape == (None, 128)
    with pytest.raises(ModelError):
        registry.get_builder("nonsense")
