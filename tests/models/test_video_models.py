"""P3 video models: shapes, layer names, one training step, paper size, weights, .keras."""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dfdetect.errors import ModelError, WeightsUnavailableError  # noqa: E402
from dfdetect.models.cbam import CBAM  # noqa: E402
from dfdetect.models.video import (VIDEO_MODELS, FoldedTimeDistributed,  # noqa: E402
                                   build_convlstm_cbam, build_video_model,
                                   build_xception_maps)

FRAMES, SIZE = 4, 64

LAYERS = {
    "convlstm_cbam": {"frame_features": (None, FRAMES, 2, 2, 2048),
                      "cbam": (None, FRAMES, 2, 2, 2048),
                      "bi_convlstm": (None, 2, 2, 128)},
    "xception_lstm": {"frame_features": (None, FRAMES, 2, 2, 2048),
                      "frame_pool": (None, FRAMES, 2048),
                      "lstm": (None, 256)},
    "xception_convlstm": {"frame_features": (None, FRAMES, 2, 2, 2048),
                          "convlstm": (None, 2, 2, 64)},
}


def test_registry_names():
    assert set(VIDEO_MODELS) == {"convlstm_cbam", "xception_lstm", "xception_convlstm"}
    with pytest.raises(ModelError, match="convlstm_cbam"):
        build_video_model("nope")


def _one_step(model, optimizer, seed=0):
    # Eager: tracing Xception's gradient graph costs ~30 s here, an eager step a few s.
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", run_eagerly=True)
    clips = np.random.default_rng(seed).random((2, FRAMES, SIZE, SIZE, 3), dtype=np.float32)
    head_before = model.get_layer("predictions").get_weights()[0].copy()
    loss = model.train_on_batch(clips, np.array([0, 1]))
    assert np.isfinite(loss)
    assert not np.allclose(model.get_layer("predictions").get_weights()[0], head_before)
    return clips


def _check_layers(model, name):
    assert model.input_shape == (None, FRAMES, SIZE, SIZE, 3)
    assert model.output_shape == (None, 2)
    for layer, shape in LAYERS[name].items():
        assert model.get_layer(layer).output.shape == shape, layer
    assert ("cbam" in [lay.name for lay in model.layers]) == (name == "convlstm_cbam")
    assert model.get_layer("predictions").activation.__name__ == "softmax"


def test_convlstm_cbam_trains_end_to_end_and_round_trips(round_trip):
    keras.utils.set_random_seed(0)
    model = build_convlstm_cbam(frames=FRAMES, size=SIZE)
    _check_layers(model, "convlstm_cbam")
    backbone = model.get_layer("frame_features").layer
    conv_before = backbone.get_layer("block1_conv1").get_weights()[0].copy()
    # Plain SGD: no optimizer slots, so the .keras file below stays ~120 MB, not ~370 MB.
    clips = _one_step(model, keras.optimizers.SGD(1e-3))
    # gradients reach the per-frame backbone through ConvLSTM and CBAM
    assert not np.allclose(backbone.get_layer("block1_conv1").get_weights()[0], conv_before)
    probs = np.asarray(model(clips, training=False))
    assert probs.shape == (2, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)

    loaded = round_trip(model, clips, "convlstm_cbam.keras", exact=True, training=False)
    assert isinstance(loaded.get_layer("frame_features"), FoldedTimeDistributed)
    assert isinstance(loaded.get_layer("cbam").layer, CBAM)


@pytest.mark.parametrize("name", ["xception_lstm", "xception_convlstm"])
def test_baselines_build_and_train_one_step(name):
    keras.utils.set_random_seed(0)
    # A frozen backbone keeps the eager step cheap; the end-to-end path is tested above.
    model = build_video_model(name, frames=FRAMES, size=SIZE, backbone_trainable=False)
    _check_layers(model, name)
    assert model.get_layer("frame_features").trainable_weights == []
    _one_step(model, keras.optimizers.Adam(1e-4, beta_1=0.9, beta_2=0.999))  # the paper's


def test_paper_size_builds_quickly():
    start = time.perf_counter()
    model = build_convlstm_cbam(frames=30, size=240)
    elapsed = time.perf_counter() - start
    assert model.input_shape == (None, 30, 240, 240, 3)
    assert model.output_shape == (None, 2)
    assert model.get_layer("cbam").output.shape == (None, 30, 8, 8, 2048)
    assert model.get_layer("bi_convlstm").output.shape == (None, 8, 8, 128)
    # per direction: 4 gates x (3x3 input kernel over 2048 + 3x3 recurrent over 64) + biases
    per_direction = 4 * (3 * 3 * 2048 * 64 + 3 * 3 * 64 * 64 + 64)
    assert model.get_layer("bi_convlstm").count_params() == 2 * per_direction
    assert model.get_layer("fc").input.shape == (None, 8 * 8 * 128)
    assert elapsed < 30, f"paper-size build took {elapsed:.1f} s"


def test_folded_time_distributed_matches_time_distributed():
    keras.utils.set_random_seed(1)
    frame_in = keras.Input((8, 8, 3))
    inner = keras.Model(frame_in, keras.layers.Conv2D(4, 3, strides=2)(frame_in))
    inputs = keras.Input((3, 8, 8, 3))
    folded = keras.Model(inputs, FoldedTimeDistributed(inner)(inputs))
    stock = keras.Model(inputs, keras.layers.TimeDistributed(inner)(inputs))
    clip = np.random.default_rng(0).random((2, 3, 8, 8, 3), dtype=np.float32)
    assert folded.output_shape == (None, 3, 3, 3, 4)
    np.testing.assert_allclose(folded.predict_on_batch(clip), stock.predict_on_batch(clip),
                               rtol=1e-5, atol=1e-6)


def test_local_weights_file_is_loaded(tmp_path):
    keras.utils.set_random_seed(3)
    reference = keras.applications.Xception(include_top=False, weights=None,
                                            input_shape=(None, None, 3))
    path = tmp_path / "xception_notop.weights.h5"
    reference.save_weights(path)
    maps = build_xception_maps(weights=path)
    for name in ("block1_conv1", "block7_sepconv2", "block14_sepconv2_bn"):
        for got, want in zip(maps.get_layer(name).get_weights(),
                             reference.get_layer(name).get_weights()):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_missing_and_bad_weights_files(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="not found"):
        build_xception_maps(weights=tmp_path / "missing.h5")
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(ModelError, match="bad.weights.h5"):
        build_xception_maps(weights=bad)


def test_imagenet_offline_says_how_to_pass_a_file(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid/x.h5: None -- offline")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        build_convlstm_cbam(frames=2, size=64, weights="imagenet")
    message = str(info.value)
    assert "\n" not in message and "weights=" in message and "notop.h5" in message


@pytest.mark.parametrize("frames,size", [(0, 64), (4, 16)])
def test_bad_clip_shape(frames, size):
    with pytest.raises(ModelError):
        build_convlstm_cbam(frames=frames, size=size)
