"""dfdetect.models.litert: a model's LiteRT twin scores as the model does, and is used only
while it is the twin of that very file."""

import json
import os

import keras
import numpy as np
import pytest

from dfdetect.errors import ModelError
from dfdetect.models import litert
from dfdetect.models.export import export_model, load_exported


def _export(path, seed: int = 0, outputs: int = 1) -> str:
    keras.utils.set_random_seed(seed)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    heads = [keras.layers.Dense(1, activation="sigmoid", name=f"head{i}")(x)
             for i in range(outputs)]
    model = keras.Model(inp, heads if outputs > 1 else heads[0], name="tiny")
    return export_model(model, str(path), image_size=16, threshold=0.4)


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    path = _export(tmp_path_factory.mktemp("litert") / "tiny.keras")
    return path, litert.export_litert(path)


def test_the_twin_scores_what_the_keras_model_scores_at_any_batch_size(twin):
    path, tflite = twin
    assert tflite == path[:-len(".keras")] + ".tflite" and os.path.isfile(tflite)
    model, meta = litert.load_litert(path)
    assert model.input_shape == (None, 16, 16, 3) and meta["threshold"] == 0.4
    keras_model, _ = load_exported(path)
    rng = np.random.default_rng(1)
    for n in (3, 7, 1, 7):  # the interpreter is resized when the batch changes
        x = rng.uniform(0, 1, (n, 16, 16, 3)).astype(np.float32)
        got, want = model.predict_on_batch(x), np.asarray(keras_model.predict_on_batch(x))
        assert got.shape == want.shape == (n, 1)
        np.testing.assert_allclose(got, want, atol=1e-5)
    side = json.loads(open(tflite + ".json").read())
    assert side["source"] == "tiny.keras" and side["probe_max_abs_difference"] <= 1e-4


def test_a_twin_is_used_only_while_it_is_the_twin_of_that_file(twin, tmp_path):
    path, tflite = twin
    assert litert.find_twin(path) == tflite and litert.find_twin(path, "litert") == tflite
    assert litert.find_twin(path, "keras") is None
    # the same name, another model (retrained): the twin is stale
    stale = tmp_path / "tiny.keras"
    for suffix in (".tflite", ".tflite.json"):
        (tmp_path / f"tiny{suffix}").write_bytes(open(path[:-6] + suffix, "rb").read())
    _export(stale, seed=5)
    assert litert.find_twin(stale) is None
    with pytest.raises(ModelError, match="converted from another version"):
        litert.find_twin(stale, "litert")


def test_without_a_twin_auto_is_keras_and_litert_says_how_to_write_one(tmp_path):
    path = _export(tmp_path / "plain.keras")
    assert litert.find_twin(path) is None
    with pytest.raises(ModelError, match=r"no LiteRT twin \(plain.tflite; write it with "
                                         r"`dfdetect litert plain.keras`\)") as err:
        litert.find_twin(path, "litert")
    assert "\n" not in str(err.value)
    with pytest.raises(ModelError, match="unknown runtime 'onnx'"):
        litert.find_twin(path, "onnx")
    assert litert.find_twin(tmp_path / "missing.keras", "litert") is None  # load's error


def test_a_damaged_twin_is_one_line(twin, tmp_path):
    path, tflite = twin
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(ModelError, match="not a LiteRT model") as err:
        litert.load_litert(path, str(bad))
    assert "\n" not in str(err.value) and "bad.tflite" in str(err.value)


def test_only_a_single_output_model_gets_a_twin(tmp_path):
    path = _export(tmp_path / "two.keras", outputs=2)
    with pytest.raises(ModelError, match="has 2 outputs"):
        litert.export_litert(path)
    assert not os.path.exists(tmp_path / "two.tflite")


def test_the_shipped_detector_ships_its_current_twin():
    from dfdetect.predict import DEFAULT_MODEL

    assert litert.twin_problem(DEFAULT_MODEL) is None
