"""P2 custom CNN grid: Table 1 as data, the builder's layers and parameters, round trip."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dfdetect.errors import ModelError
from dfdetect.models.custom_cnn import TABLE_1, build_custom_cnn, get_table_1_config

# The paper's Table 1 (seeds/003, section 1.3.1), row by row.
PAPER_TABLE_1 = [
    ("2-asc", 2, "asc", (64, 128)),
    ("2-desc", 2, "desc", (256, 64)),
    ("2-const32", 2, "const", (32, 32)),
    ("2-const64", 2, "const", (64, 64)),
    ("2-const128", 2, "const", (128, 128)),
    ("2-const256", 2, "const", (256, 256)),
    ("3-asc", 3, "asc", (64, 96, 128)),
    ("3-desc", 3, "desc", (256, 64, 32)),
    ("3-const32", 3, "const", (32, 32, 32)),
    ("3-const64", 3, "const", (64, 64, 64)),
    ("3-const128", 3, "const", (128, 128, 128)),
    ("3-const256", 3, "const", (256, 256, 256)),
    ("4-asc", 4, "asc", (32, 64, 96, 128)),
    ("4-desc", 4, "desc", (256, 128, 64, 32)),
    ("4-const32", 4, "const", (32, 32, 32, 32)),
    ("4-const64", 4, "const", (64, 64, 64, 64)),
    ("4-const128", 4, "const", (128, 128, 128, 128)),
    ("4-const256", 4, "const", (256, 256, 256, 256)),
    ("5-asc", 5, "asc", (32, 64, 96, 128, 160)),
    ("5-desc", 5, "desc", (256, 192, 128, 64, 32)),
    ("5-const32", 5, "const", (32, 32, 32, 32, 32)),
    ("5-const64", 5, "const", (64, 64, 64, 64, 64)),
    ("5-const128", 5, "const", (128, 128, 128, 128, 128)),
]


def test_table_1_equals_the_papers_table():
    assert len(TABLE_1) == 23
    assert [(c.name, c.depth, c.family, c.widths) for c in TABLE_1] == PAPER_TABLE_1


def test_table_1_rows_are_consistent():
    for config in TABLE_1:
        assert len(config.widths) == config.depth
        if config.family == "asc":
            assert list(config.widths) == sorted(set(config.widths))
        elif config.family == "desc":
            assert list(config.widths) == sorted(set(config.widths), reverse=True)
        else:
            assert len(set(config.widths)) == 1


def test_lookup_by_name():
    assert get_table_1_config("3-const128").widths == (128, 128, 128)
    with pytest.raises(ModelError, match="unknown custom CNN configuration '6-asc'"):
        get_table_1_config("6-asc")


def test_builder_layers_and_parameter_count():
    model = build_custom_cnn((4, 8), input_shape=(32, 32, 3))
    assert model.output_shape == (None, 2)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [4, 8]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    assert model.get_layer("flatten").output.shape[-1] == 8 * 8 * 8  # two 2x2 poolings
    expected = (3 * 9 * 4 + 4) + (4 * 9 * 8 + 8) + (512 * 1024 + 1024) + (1024 * 2 + 2)
    assert model.count_params() == expected
    probs = model(np.random.default_rng(0).random((3, 32, 32, 3), dtype=np.float32))
    np.testing.assert_allclose(np.sum(probs, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("config", TABLE_1, ids=lambda c: c.name)
def test_every_table_1_row_builds_with_its_widths(config):
    model = build_custom_cnn(config.widths, input_shape=(32, 32, 3))
    filters = [layer.filters for layer in model.layers
               if isinstance(layer, keras.layers.Conv2D)]
    assert filters == list(config.widths)
    assert model.output_shape == (None, 2)


def test_bad_specifications_raise_model_error():
    with pytest.raises(ModelError, match="positive"):
        build_custom_cnn((), input_shape=(32, 32, 3))
    with pytest.raises(ModelError, match="positive"):
        build_custom_cnn((8, 0), input_shape=(32, 32, 3))
    with pytest.raises(ModelError, match="too small for 5 2x2 poolings"):
        build_custom_cnn((8,) * 5, input_shape=(16, 16, 3))
    with pytest.raises(ModelError, match="fixed input size"):
        build_custom_cnn((8,), input_shape=(None, None, 3))


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_keras_round_trip_and_weights_file(tmp_path, round_trip):
    model = build_custom_cnn((4, 8), input_shape=(16, 16, 3))
    x = np.random.default_rng(1).random((2, 16, 16, 3), dtype=np.float32)
    round_trip(model, x, "cnn.keras", rtol=1e-6, atol=0.0)

    weights = tmp_path / "cnn.weights.h5"
    model.save_weights(weights)
    again = build_custom_cnn((4, 8), input_shape=(16, 16, 3), weights=weights)
    np.testing.assert_allclose(again(x), model(x), rtol=1e-6)
    with pytest.raises(ModelError, match="cannot load weights"):
        build_custom_cnn((4, 16), input_shape=(16, 16, 3), weights=weights)
