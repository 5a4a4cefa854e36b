"""CBAM: numerics against a NumPy reference, shapes, TimeDistributed, serialization."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dfdetect.errors import ModelError  # noqa: E402
from dfdetect.models.cbam import CBAM  # noqa: E402


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _reference(x, w0, b0, w1, b1, kernel, bias):
    """CBAM written out loop by loop (cross-correlation with zero 'same' padding)."""
    n, h, w, c = x.shape
    k = kernel.shape[0]
    pad = k // 2
    out = np.empty_like(x)
    for b in range(n):
        f = x[b]
        avg = f.reshape(-1, c).mean(axis=0)
        mx = f.reshape(-1, c).max(axis=0)
        mlp = lambda v: np.maximum(v @ w0 + b0, 0.0) @ w1 + b1  # noqa: E731
        mc = _sigmoid(mlp(avg) + mlp(mx))
        f1 = f * mc
        pooled = np.stack([f1.mean(axis=-1), f1.max(axis=-1)], axis=-1)
        padded = np.pad(pooled, ((pad, pad), (pad, pad), (0, 0)))
        logits = np.empty((h, w))
        for i in range(h):
            for j in range(w):
                logits[i, j] = np.sum(padded[i:i + k, j:j + k, :] * kernel[:, :, :, 0]) + bias[0]
        ms = _sigmoid(logits)[..., None]
        out[b] = f + ms * f1
    return out


def _known_layer(channels=8, reduction=4, kernel=7, seed=0):
    rng = np.random.default_rng(seed)
    layer = CBAM(reduction=reduction, spatial_kernel=kernel)
    layer.build((None, 5, 6, channels))
    hidden = max(1, channels // reduction)
    weights = [rng.normal(size=(channels, hidden)), rng.normal(size=(hidden,)),
               rng.normal(size=(hidden, channels)), rng.normal(size=(channels,)),
               rng.normal(scale=0.3, size=(kernel, kernel, 2, 1)), rng.normal(size=(1,))]
    weights = [w.astype("float32") for w in weights]
    layer.set_weights(weights)
    return layer, weights


def test_matches_numpy_reference():
    layer, weights = _known_layer()
    x = np.random.default_rng(1).normal(size=(2, 5, 6, 8)).astype("float32")
    got = np.asarray(layer(x))
    want = _reference(x.astype("float64"), *[w.astype("float64") for w in weights])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # The residual matters: the output is not the attended map alone.
    assert not np.allclose(got, got - x)


def test_attention_maps_are_in_unit_interval_and_shaped():
    layer, _ = _known_layer()
    x = np.random.default_rng(2).normal(size=(3, 5, 6, 8)).astype("float32")
    mc = np.asarray(layer.channel_attention(x))
    ms = np.asarray(layer.spatial_attention(x))
    assert mc.shape == (3, 1, 1, 8) and ms.shape == (3, 5, 6, 1)
    assert 0 < mc.min() and mc.max() < 1 and 0 < ms.min() and ms.max() < 1


def test_weight_shapes_and_count():
    layer = CBAM(reduction=16, spatial_kernel=7)
    layer.build((None, 4, 4, 64))
    shapes = [tuple(w.shape) for w in layer.weights]
    assert shapes == [(64, 4), (4,), (4, 64), (64,), (7, 7, 2, 1), (1,)]
    assert layer.count_params() == 64 * 4 + 4 + 4 * 64 + 64 + 98 + 1
    tiny = CBAM(reduction=16)  # C < r: the hidden layer keeps one unit
    tiny.build((None, 3, 3, 8))
    assert tuple(tiny.weights[0].shape) == (8, 1)


def test_inside_time_distributed_equals_per_frame_and_graph_mode():
    layer, _ = _known_layer()
    inputs = keras.Input((3, 5, 6, 8))
    model = keras.Model(inputs, keras.layers.TimeDistributed(layer)(inputs))
    clip = np.random.default_rng(3).normal(size=(2, 3, 5, 6, 8)).astype("float32")
    got = model.predict_on_batch(clip)  # traced (graph mode)
    assert got.shape == clip.shape
    for f in range(3):
        np.testing.assert_allclose(got[:, f], np.asarray(layer(clip[:, f])), rtol=1e-5, atol=1e-5)


def test_config_round_trip():
    layer = CBAM(reduction=8, spatial_kernel=3, name="att")
    clone = CBAM.from_config(layer.get_config())
    assert (clone.reduction, clone.spatial_kernel, clone.name) == (8, 3, "att")


def test_keras_file_round_trip_identical_predictions(round_trip):
    inputs = keras.Input((2, 6, 6, 4))
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(16, 3, padding="same"))(inputs)
    x = keras.layers.TimeDistributed(CBAM(reduction=4, name="cbam_attention"), name="cbam")(x)
    x = keras.layers.GlobalAveragePooling3D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    clip = np.random.default_rng(4).random((3, 2, 6, 6, 4)).astype("float32")
    loaded = round_trip(model, clip, "cbam.keras")
    assert isinstance(loaded.get_layer("cbam").layer, CBAM)


@pytest.mark.parametrize("kwargs", [{"reduction": 0}, {"spatial_kernel": 0}])
def test_bad_arguments(kwargs):
    with pytest.raises(ModelError):
        CBAM(**kwargs)


def test_rejects_non_image_input():
    with pytest.raises(ModelError, match="TimeDistributed"):
        CBAM().build((None, 10, 8))
