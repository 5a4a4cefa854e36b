"""P2 sequence heads (grids as data, parameter checks) and P4 pose models / optimizers."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from dfdetect.errors import ModelError
from dfdetect.models.sequence import (
    POSE_TABLE_4,
    RNN_GRID,
    TABLE_2,
    build_mlp_head,
    build_pose_cnn_lstm,
    build_pose_lstm,
    build_rnn_head,
    build_sequence_head,
    get_sequence_config,
    pose_optimizer,
)

# The paper's Table 2 (seeds/003, section 1.3.5), column by column.
PAPER_TABLE_2 = [
    ("mlp-1-const128", 1, "const", (128,)),
    ("mlp-1-const256", 1, "const", (256,)),
    ("mlp-1-const512", 1, "const", (512,)),
    ("mlp-1-const1024", 1, "const", (1024,)),
    ("mlp-1-const2048", 1, "const", (2048,)),
    ("mlp-2-asc", 2, "asc", (512, 1024)),
    ("mlp-2-desc", 2, "desc", (1024, 512)),
    ("mlp-2-const256", 2, "const", (256, 256)),
    ("mlp-2-const512", 2, "const", (512, 512)),
    ("mlp-2-const1024", 2, "const", (1024, 1024)),
    ("mlp-3-asc", 3, "asc", (64, 160, 1024)),
    ("mlp-3-desc", 3, "desc", (1024, 160, 64)),
    ("mlp-3-const64", 3, "const", (64, 64, 64)),
    ("mlp-3-const128", 3, "const", (128, 128, 128)),
    ("mlp-3-const256", 3, "const", (256, 256, 256)),
]

TINY = (4, 16)  # (frames, feature dims) for fast builds


# ------------------------------------------------------------------------ P2 grids


def test_rnn_grid_is_lstm_and_gru_by_depth_1_to_4_by_width():
    assert len(RNN_GRID) == 32
    expected = [(cell, depth, width) for cell in ("lstm", "gru") for depth in (1, 2, 3, 4)
                for width in (128, 512, 1024, 2048)]
    assert [(c.cell, c.depth, c.width) for c in RNN_GRID] == expected
    assert [c.name for c in RNN_GRID][:5] == [
        "lstm-1x128", "lstm-1x512", "lstm-1x1024", "lstm-1x2048", "lstm-2x128"]
    assert len({c.name for c in RNN_GRID}) == 32


def test_table_2_equals_the_papers_table_including_constant_128_x_3():
    assert [(c.name, c.depth, c.family, c.widths) for c in TABLE_2] == PAPER_TABLE_2
    assert get_sequence_config("mlp-3-const128").widths == (128, 128, 128)


def test_every_grid_name_maps_back_to_its_configuration():
    for config in itertools.chain(RNN_GRID, TABLE_2):
        assert get_sequence_config(config.name) == config
    extra = get_sequence_config("gru-2x256")  # the paper's discussed width, off-grid
    assert (extra.cell, extra.depth, extra.width) == ("gru", 2, 256)
    with pytest.raises(ModelError, match="unknown sequence configuration 'rnn-1x8'"):
        get_sequence_config("rnn-1x8")


def test_parameter_checks_from_the_paper():
    gru = build_rnn_head("gru", 1, 128)  # paper: 970 thousand
    assert abs(gru.count_params() - 0.97e6) < 0.05e6
    assert abs(build_mlp_head((128, 128, 128)).count_params() - 10.5e6) < 0.05e6
    ascending = get_sequence_config("mlp-3-asc").widths
    assert abs(build_mlp_head(ascending).count_params() - 5.4e6) < 0.05e6


def test_256_wide_two_layer_heads_match_the_papers_lstm_and_gru_sizes():
    # The reading documented in the module: the paper's 3.1 M "best LSTM" and its 2.4 M
    # GRU are 256-unit 2-layer heads; a 128-unit 2-layer LSTM is far smaller.
    assert abs(build_rnn_head("lstm", 2, 256).count_params() - 3.1e6) < 0.06e6
    assert abs(build_rnn_head("gru", 2, 256).count_params() - 2.4e6) < 0.05e6
    assert build_rnn_head("lstm", 2, 128).count_params() < 1.5e6


def test_rnn_head_stacks_cells_then_dense_1024_and_softmax_2():
    model = build_sequence_head("gru-3x8", input_shape=TINY)
    cells = [layer for layer in model.layers if isinstance(layer, keras.layers.GRU)]
    assert [c.units for c in cells] == [8, 8, 8]
    assert [c.return_sequences for c in cells] == [True, True, False]
    assert model.get_layer("fc1024").units == 1024
    assert model.output_shape == (None, 2)
    lstm = build_rnn_head("lstm", 1, 8, input_shape=TINY)
    assert isinstance(lstm.get_layer("lstm_1"), keras.layers.LSTM)
    # LSTM(8) on 16 features, Dense(1024), Dense(2)
    assert lstm.count_params() == 4 * (16 * 8 + 8 * 8 + 8) + (8 * 1024 + 1024) + 2050


def test_mlp_head_flattens_the_sequence():
    model = build_sequence_head("mlp-2-desc", input_shape=TINY)
    assert model.get_layer("flatten").output.shape[-1] == 64
    assert [model.get_layer(f"dense_{i}").units for i in (1, 2)] == [1024, 512]
    x = np.random.default_rng(0).random((3, *TINY), dtype=np.float32)
    np.testing.assert_allclose(np.sum(model(x), axis=1), 1.0, rtol=1e-5)


def test_bad_head_specifications_raise_model_error():
    with pytest.raises(ModelError, match="unknown recurrent cell 'rnn'"):
        build_rnn_head("rnn", 1, 8, input_shape=TINY)
    with pytest.raises(ModelError, match="depth must be a positive integer"):
        build_rnn_head("gru", 0, 8, input_shape=TINY)
    with pytest.raises(ModelError, match="width must be a positive integer"):
        build_rnn_head("lstm", 1, -4, input_shape=TINY)
    with pytest.raises(ModelError, match="at least one hidden layer"):
        build_mlp_head((), input_shape=TINY)


# --------------------------------------------------------------------------- P4 pose


def test_pose_lstm_is_the_papers_final_architecture():
    model = build_pose_lstm()
    assert model.input_shape == (None, 150, 24)
    assert model.output_shape == (None, 1)
    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    assert [(layer.units, layer.return_sequences) for layer in lstms] == [
        (512, True), (512, False)]
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [d.rate for d in drops] == [0.5]
    assert model.layers.index(drops[0]) == model.layers.index(lstms[0]) + 1
    assert model.get_layer("pose_output").activation is keras.activations.sigmoid
    expected = (4 * (24 * 512 + 512 * 512 + 512) + 4 * (512 * 512 * 2 + 512) + 513)
    assert model.count_params() == expected


def test_pose_weight_decay_matches_pytorch_weight_decay():
    model = build_pose_lstm(hidden=8, layers=2, input_shape=(5, 24), l2=1e-4)
    penalty = float(tf.add_n(model.losses))
    squares = sum(float(np.sum(w.numpy() ** 2)) for w in model.trainable_weights)
    # PyTorch weight_decay=1e-4 adds 1e-4 * w to the gradient: loss term 1e-4 / 2 * w^2.
    np.testing.assert_allclose(penalty, 0.5e-4 * squares, rtol=1e-4)
    assert not build_pose_lstm(hidden=8, layers=1, input_shape=(5, 24), l2=0).losses


def test_pose_table_4_models():
    assert POSE_TABLE_4 == [(2, 512), (2, 256), (3, 128)]
    for layers, hidden in POSE_TABLE_4[1:]:  # (2, 512) is the test above
        model = build_pose_lstm(hidden=hidden, layers=layers)
        lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
        assert [layer.units for layer in lstms] == [hidden] * layers
        assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == (
            layers - 1)
    single = build_pose_lstm(hidden=8, layers=1, input_shape=(5, 24))
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in single.layers)


def test_pose_cnn_lstm_convolves_over_time_then_reads_with_an_lstm():
    model = build_pose_cnn_lstm()
    assert model.output_shape == (None, 1)
    assert model.get_layer("pose_lstm").input.shape[1:] == (37, 128)  # 150 -> 75 -> 37
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert [c.filters for c in convs] == [64, 64, 128, 128]


@pytest.mark.parametrize("name, cls, rate", [
    ("adam-1e-2", keras.optimizers.Adam, 1e-2),
    ("adam-3e-4", keras.optimizers.Adam, 3e-4),
    ("sgd-1e-3", keras.optimizers.SGD, 1e-3),
    ("sgd-1e-4", keras.optimizers.SGD, 1e-4),
    ("adam-1e-3", keras.optimizers.Adam, 1e-3),
])
def test_pose_optimizers_clip_the_global_gradient_norm(name, cls, rate):
    optimizer = pose_optimizer(name)
    assert isinstance(optimizer, cls)
    assert optimizer.global_clipnorm == 0.25
    np.testing.assert_allclose(float(optimizer.learning_rate), rate, rtol=1e-6)
    if cls is keras.optimizers.SGD:
        assert float(optimizer.momentum) == 0.0


def test_pose_step_decay_halves_every_30_epochs():
    optimizer = pose_optimizer("adam-1e-2", steps_per_epoch=10)
    rates = []
    for step in (0, 299, 300, 599, 600):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    np.testing.assert_allclose(rates, [1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3], rtol=1e-6)
    cpu = pose_optimizer("adam-3e-4", steps_per_epoch=10)
    cpu.iterations.assign(300)
    np.testing.assert_allclose(float(cpu.learning_rate), 1.5e-4, rtol=1e-6)
    with pytest.raises(ModelError, match="unknown pose optimizer 'adam'"):
        pose_optimizer("adam")


def test_clipping_bounds_a_training_step_on_a_huge_gradient_batch():
    model = build_pose_lstm(hidden=8, layers=2, dropout=0.0, input_shape=(10, 24))
    # A confident, wrong output layer makes the LSTM gradients thousands of times 0.25.
    output = model.get_layer("pose_output")
    output.set_weights([np.full((8, 1), 1e3, np.float32), np.zeros(1, np.float32)])
    # Movement is measured on the LSTM weights only: float32 cannot resolve a 1e-4
    # step on the 1e3 output weights.
    lstm_weights = [w for w in model.trainable_weights if w is not output.kernel]
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(4, 10, 24)) * 100).astype(np.float32)
    y = np.array([[1], [0], [1], [0]], np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.binary_crossentropy(y, model(x, training=True)))
        loss += tf.add_n(model.losses)
    raw_lstm_norm = float(tf.linalg.global_norm(tape.gradient(loss, lstm_weights)))
    assert raw_lstm_norm > 100 * 0.25

    model.compile(optimizer=pose_optimizer("sgd-1e-3"), loss="binary_crossentropy")
    before = [w.numpy().copy() for w in lstm_weights]
    model.train_on_batch(x, y)
    moved = np.sqrt(sum(float(np.sum((w.numpy() - b) ** 2))
                        for w, b in zip(lstm_weights, before)))
    # Unclipped SGD would move them by lr * raw_lstm_norm (> 100x more); clipped, the
    # whole step (all weights together) has norm lr * 0.25.
    assert 0 < moved <= 1e-3 * 0.25 * 1.001


# ----------------------------------------------------------------------- round trips


@pytest.mark.parametrize("builder, kwargs", [
    (build_rnn_head, dict(cell="gru", depth=2, width=8, input_shape=TINY)),
    (build_rnn_head, dict(cell="lstm", depth=2, width=8, input_shape=TINY)),
    (build_mlp_head, dict(widths=(8, 4), input_shape=TINY)),
    (build_pose_lstm, dict(hidden=8, layers=2, input_shape=(6, 24))),
    (build_pose_cnn_lstm, dict(filters=(4,), hidden=8, input_shape=(6, 24))),
], ids=["gru", "lstm", "mlp", "pose_lstm", "pose_cnn_lstm"])
def test_keras_round_trip_and_weights_file(builder, kwargs, round_trip, tmp_path):
    model = builder(**kwargs)
    pose = model.output_shape == (None, 1)
    if pose:
        model.compile(optimizer=pose_optimizer("adam-1e-2", steps_per_epoch=3),
                      loss="binary_crossentropy")
        model.optimizer.build(model.trainable_variables)  # so its slots are saved too
    x = np.random.default_rng(2).random((2, *model.input_shape[1:]), dtype=np.float32)
    loaded = round_trip(model, x)
    np.testing.assert_allclose(float(tf.add_n(loaded.losses)) if pose else 0.0,
                               float(tf.add_n(model.losses)) if pose else 0.0, rtol=1e-6)
    if pose:  # the clipping and the step decay survive saving
        assert loaded.optimizer.global_clipnorm == 0.25
        np.testing.assert_allclose(float(loaded.optimizer.learning_rate), 1e-2, rtol=1e-6)

    weights = tmp_path / "model.weights.h5"
    model.save_weights(weights)
    again = builder(**kwargs, weights=weights)
    np.testing.assert_allclose(again(x), model(x), rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_of_another_architecture_raise_model_error(tmp_path):
    weights = tmp_path / "gru.weights.h5"
    build_rnn_head("gru", 1, 8, input_shape=TINY).save_weights(weights)
    with pytest.raises(ModelError, match="cannot load weights") as info:
        build_rnn_head("gru", 1, 16, input_shape=TINY, weights=weights)
    assert str(info.value).startswith(str(weights))
