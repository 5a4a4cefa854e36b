import zipfile

import keras
import numpy as np
import pytest

from dfdetect.errors import ModelError
from dfdetect.models import export


def _tiny(shape=(8, 8, 3), units=1):
    inp = keras.Input(shape)
    x = keras.layers.Flatten()(inp)
    out = keras.layers.Dense(units, activation="sigmoid" if units == 1 else "softmax")(x)
    return keras.Model(inp, out)


def test_export_round_trip_with_metadata(tmp_path):
    model = _tiny()
    path = export.export_model(model, tmp_path / "m.keras", experiment="p1", config="meso4")
    loaded, meta = export.load_exported(path)
    x = np.random.default_rng(0).random((3, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), rtol=1e-6)
    assert meta["kind"] == "image" and meta["head"] == "sigmoid"
    assert meta["input_shape"] == [8, 8, 3] and meta["config"] == "meso4"
    # still an ordinary Keras file
    assert keras.models.load_model(path).output_shape == (None, 1)


def test_video_metadata_records_frames(tmp_path):
    path = export.export_model(_tiny((4, 8, 8, 3), units=2), tmp_path / "v.keras")
    meta = export.read_metadata(path)
    assert meta["kind"] == "video" and meta["frames"] == 4 and meta["head"] == "softmax"


def test_plain_keras_model_is_not_a_dfdetect_model(tmp_path):
    path = tmp_path / "plain.keras"
    _tiny().save(path)
    with pytest.raises(ModelError, match="not one exported by dfdetect"):
        export.read_metadata(path)


def test_not_a_model_file(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_text("hello")
    with pytest.raises(ModelError, match="not a .keras model"):
        export.load_exported(bad)
    with pytest.raises(ModelError, match="not found"):
        export.load_exported(tmp_path / "missing.keras")


def test_unknown_custom_layer_is_one_line(tmp_path):
    @keras.saving.register_keras_serializable(package="elsewhere")
    class Mystery(keras.layers.Layer):
        def call(self, x):
            return x

    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(Mystery()(inp)))
    path = export.export_model(model, tmp_path / "m.keras")
    # forget the registration, as on a machine without that code
    keras.saving.get_custom_objects().pop("elsewhere>Mystery")
    with pytest.raises(ModelError) as info:
        export.load_exported(path)
    assert "\n" not in str(info.value) and "m.keras" in str(info.value)
    assert "'Mystery'" in str(info.value)


def test_registry_built_model_records_its_builder_and_rebuilds(tmp_path):
    from dfdetect.models import registry

    model = registry.build_model("custom_cnn", widths=(8, 16), input_shape=(32, 32, 3))
    path = export.export_model(model, tmp_path / "m.keras", experiment="test")
    meta = export.read_metadata(path)
    assert meta["builder"] == {"name": "custom_cnn",
                               "kwargs": {"widths": [8, 16], "input_shape": [32, 32, 3]}}
    again = registry.rebuild(meta)
    assert again.count_params() == model.count_params()
    assert [type(l).__name__ for l in again.layers] == [type(l).__name__ for l in model.layers]
    # A model built by hand names no builder: rebuilding it is a clear error.
    inp = keras.Input((4,))
    plain = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(inp))
    meta = export.read_metadata(export.export_model(plain, tmp_path / "p.keras"))
    assert "builder" not in meta
    with pytest.raises(ModelError, match="names no registered builder"):
        registry.rebuild(meta)
