"""Sequence models: P2's LSTM / GRU / MLP heads over feature sequences, P4's pose LSTM.

P2 (``seeds/003``): every video is a (40, 2048) sequence of InceptionV3 features.

- LSTM and GRU grids: depth 1-4 x width 128 / 512 / 1024 / 2048, constant width per
  model, then the paper's "2-layer ANN with 1024 and 2 node units" (ReLU assumed on
  the 1024 layer, softmax on the 2). ``RNN_GRID`` holds the 32 configurations.
- MLP grid (Table 2) over the flattened sequence (40 x 2048 = 81,920 inputs), ReLU
  layers, then Dense(2, softmax). ``TABLE_2`` holds its 15 configurations. Table 2
  already contains "constant 128 units 3-layer" (its 3-layer constant rows are 64, 128
  and 256), the model the paper's summary names; nothing needs adding.

Parameter checks (Keras counts; GRU with Keras' default ``reset_after=True``):
GRU 128 x 1 head = 970,498 (paper "970 thousand"); MLP constant 128 x 3 = 10,519,170
(paper 10.5 M); MLP ascending 3-layer = 5,420,258 (paper 5.4 M).

What the paper's results say about its RNN widths: its discussion names "256 units
2-layer" LSTM and GRU models and gives N_p figures that only width 256 reproduces
(Keras LSTM 2 x 256 head = 3,150,850 = the "3.1 million" of its best LSTM, which it
calls "128 units 2-layer" although a 128 x 2 head has 1,380,354; GRU 2 x 256 =
2,430,978 = its "2.4 million"); Table 3's LSTM A_v (0.7052) is the one it reports for
the 256-unit model. It never mentions 2048. So the grid that was run was probably
128 / 256 / 512 / 1024; ``rnn_grid((128, 256, 512, 1024))`` builds that reading, with
the same names.

P4 (``seeds/001``): ``build_pose_lstm`` is the paper's PyTorch many-to-one LSTM over
150 x 24 pose segments, ``pose_optimizer`` its optimizers, ``build_pose_cnn_lstm`` the
CNN+LSTM baseline of its Table 5 (see that function for the assumptions).
"""

from __future__ import annotations

import dataclasses

import keras

from dfdetect.errors import ModelError

__all__ = [
    "MlpConfig",
    "POSE_CLIPNORM",
    "POSE_FIG8_MODEL",
    "POSE_LR_DECAY",
    "POSE_OPTIMIZERS",
    "POSE_TABLE_4",
    "RNN_CELLS",
    "RNN_DEPTHS",
    "RNN_GRID",
    "RNN_WIDTHS",
    "RnnConfig",
    "TABLE_2",
    "build_mlp_head",
    "build_pose_cnn_lstm",
    "build_pose_lstm",
    "build_rnn_head",
    "build_sequence_head",
    "get_sequence_config",
    "pose_optimizer",
    "rnn_grid",
]

# --------------------------------------------------------------------------- P2 grids


@dataclasses.dataclass(frozen=True)
class RnnConfig:
    """One LSTM / GRU configuration: ``name`` is ``"<cell>-<depth>x<width>"``."""

    name: str
    cell: str
    depth: int
    width: int


@dataclasses.dataclass(frozen=True)
class MlpConfig:
    """One row of the paper's Table 2.

    Attributes:
        name: ``"mlp-<depth>-<family>"`` plus the width for constant models, e.g.
            ``"mlp-1-const128"``, ``"mlp-3-asc"``.
        depth: hidden layers (1-3), the 2-unit output layer not counted (as in Table 2).
        family: ``"asc"``, ``"desc"`` or ``"const"``.
        widths: units of each hidden layer, first layer first.
    """

    name: str
    depth: int
    family: str
    widths: tuple[int, ...]


RNN_CELLS = ("lstm", "gru")
RNN_DEPTHS = (1, 2, 3, 4)
RNN_WIDTHS = (128, 512, 1024, 2048)


def rnn_grid(widths=RNN_WIDTHS, depths=RNN_DEPTHS, cells=RNN_CELLS) -> tuple[RnnConfig, ...]:
    """The LSTM / GRU grid: every cell x depth x width, LSTM first, then by depth."""
    return tuple(RnnConfig(f"{cell}-{depth}x{width}", cell, depth, width)
                 for cell in cells for depth in depths for width in widths)


#: The paper's method section: LSTM and GRU, depth 1-4 x width 128/512/1024/2048.
RNN_GRID: tuple[RnnConfig, ...] = rnn_grid()


def _mlp(depth: int, family: str, widths: tuple[int, ...]) -> MlpConfig:
    suffix = f"const{widths[0]}" if family == "const" else family
    return MlpConfig(f"mlp-{depth}-{suffix}", depth, family, widths)


#: The paper's Table 2, column by column (15 configurations).
TABLE_2: tuple[MlpConfig, ...] = (
    *(_mlp(1, "const", (w,)) for w in (128, 256, 512, 1024, 2048)),
    _mlp(2, "asc", (512, 1024)),
    _mlp(2, "desc", (1024, 512)),
    *(_mlp(2, "const", (w, w)) for w in (256, 512, 1024)),
    _mlp(3, "asc", (64, 160, 1024)),
    _mlp(3, "desc", (1024, 160, 64)),
    *(_mlp(3, "const", (w, w, w)) for w in (64, 128, 256)),
)


def get_sequence_config(name: str) -> RnnConfig | MlpConfig:
    """Look up a P2 sequence configuration by name (``"gru-1x128"``, ``"mlp-3-asc"``).

    RNN names outside ``RNN_GRID`` (e.g. ``"lstm-2x256"``) are accepted when they
    follow the ``<cell>-<depth>x<width>`` pattern.

    Raises:
        ModelError: unknown name.
    """
    for config in (*RNN_GRID, *TABLE_2):
        if config.name == name:
            return config
    cell, _, shape = str(name).partition("-")
    depth, _, width = shape.partition("x")
    if cell in RNN_CELLS and depth.isdigit() and width.isdigit():
        return RnnConfig(name, cell, int(depth), int(width))
    raise ModelError(f"unknown sequence configuration {name!r}; expected "
                     "'<lstm|gru>-<depth>x<width>' or a Table 2 name such as 'mlp-3-asc'")


def build_sequence_head(name: str, input_shape=(40, 2048)) -> keras.Model:
    """Build the P2 head called ``name`` (an ``RNN_GRID`` or ``TABLE_2`` name)."""
    config = get_sequence_config(name)
    if isinstance(config, RnnConfig):
        return build_rnn_head(config.cell, config.depth, config.width, input_shape)
    return build_mlp_head(config.widths, input_shape)


def build_rnn_head(cell="lstm", depth=1, width=128, input_shape=(40, 2048),
                   weights=None) -> keras.Model:
    """Stacked LSTM / GRU over a feature sequence, then Dense(1024) -> Dense(2).

    Args:
        cell: ``"lstm"`` or ``"gru"``.
        depth: recurrent layers (grid: 1-4); all but the last return sequences.
        width: units of every recurrent layer (grid: 128, 512, 1024, 2048).
        input_shape: (frames, feature dims) of the cached sequences.
        weights: ``None`` or a ``.weights.h5`` file of this architecture.

    Returns:
        An uncompiled ``keras.Model`` ending in Dense(2, softmax) (index 1 = fake).

    Raises:
        ModelError: unknown cell, or depth / width not positive.
    """
    if cell not in RNN_CELLS:
        raise ModelError(f"unknown recurrent cell {cell!r}; expected 'lstm' or 'gru'")
    depth, width = _positive(depth, "depth"), _positive(width, "width")
    layer_cls = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    x = inputs
    for i in range(1, depth + 1):
        x = layer_cls(width, return_sequences=i < depth, name=f"{cell}_{i}")(x)
    x = keras.layers.Dense(1024, activation="relu", name="fc1024")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=f"{cell}_{depth}x{width}")
    return maybe_load_weights(model, weights)


def build_mlp_head(widths, input_shape=(40, 2048), weights=None) -> keras.Model:
    """Flatten -> Dense(w, relu) per width -> Dense(2, softmax), as in Table 2.

    Args:
        widths: units of each hidden layer (an ``MlpConfig.widths``).
        input_shape: (frames, feature dims) of the cached sequences.
        weights: ``None`` or a ``.weights.h5`` file of this architecture.

    Raises:
        ModelError: empty or non-positive widths.
    """
    widths = tuple(_positive(w, "width") for w in widths)
    if not widths:
        raise ModelError("an MLP head needs at least one hidden layer width")
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    x = keras.layers.Flatten(name="flatten")(inputs)
    for i, units in enumerate(widths, start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="mlp_" + "_".join(map(str, widths)))
    return maybe_load_weights(model, weights)


# ------------------------------------------------------------------------ P4 pose LSTM

#: Table 4 of P4: (hidden layers, hidden units) of models A, B, C.
POSE_TABLE_4: list[tuple[int, int]] = [(2, 512), (2, 256), (3, 128)]
#: The model of the Fig. 8 optimizer study: the paper's starting point, "a single
#: hidden layer", hidden size 128, dropout 0 (layers, hidden).
POSE_FIG8_MODEL: tuple[int, int] = (1, 128)
#: Gradient clipping: maximum global norm of all gradients together.
POSE_CLIPNORM = 0.25
#: Step decay of the main run: (every N epochs, multiply the learning rate by).
POSE_LR_DECAY = (30, 0.5)
#: Optimizer name -> (algorithm, learning rate). "adam-1e-2" is the final setting
#: (Table 3); the others are the Fig. 8 study, run without learning-rate decay.
POSE_OPTIMIZERS = {
    "adam-1e-2": ("adam", 1e-2),
    "adam-3e-4": ("adam", 3e-4),  # the cpu-scale main optimizer (see papers/pose_lstm.py)
    "sgd-1e-3": ("sgd", 1e-3),
    "sgd-1e-4": ("sgd", 1e-4),
    "adam-1e-3": ("adam", 1e-3),
}


def build_pose_lstm(hidden=512, layers=2, dropout=0.5, input_shape=(150, 24), l2=1e-4,
                    weights=None) -> keras.Model:
    """P4's many-to-one LSTM: stacked LSTM over a pose segment, Dense(1, sigmoid).

    Mirrors PyTorch's ``nn.LSTM(24, hidden, layers, dropout=dropout)`` + ``Linear(hidden,
    1)`` on the last step + sigmoid: dropout sits between LSTM layers only (none after
    the last, none with one layer). PyTorch's LSTM has two bias vectors per layer
    (``b_ih``, ``b_hh``), Keras' one, so a Keras model has ``4 * hidden`` fewer
    parameters per layer; the function computed is the same family.

    Weight decay: the paper's PyTorch ``weight_decay=1e-4`` adds ``1e-4 * w`` to every
    parameter's gradient (biases included). Keras' ``L2(c)`` adds ``c * sum(w**2)`` to the
    loss, gradient ``2 c w``, so every kernel, recurrent kernel and bias gets
    ``L2(l2 / 2)``. (The penalty is then part of the clipped gradient, whereas PyTorch
    adds the decay after clipping; at 1e-4 the difference is negligible.)

    Args:
        hidden: units per LSTM layer (paper 512; Table 4 also 256 and 128).
        layers: stacked LSTM layers (paper 2; Table 4 also 3).
        dropout: dropout probability between LSTM layers (paper 0.5).
        input_shape: (time steps, features): 150 frames x 24 keypoint coordinates.
        l2: PyTorch-style weight decay coefficient (0 disables it).
        weights: ``None`` or a ``.weights.h5`` file of this architecture.

    Returns:
        An uncompiled ``keras.Model`` with one sigmoid output, P(fake).
    """
    hidden, layers = _positive(hidden, "hidden"), _positive(layers, "layers")
    if not 0.0 <= dropout < 1.0:
        raise ModelError(f"dropout must be in [0, 1), got {dropout}")
    reg = _weight_decay(l2)
    inputs = keras.Input(shape=tuple(input_shape), name="pose")
    x = inputs
    for i in range(1, layers + 1):
        x = keras.layers.LSTM(hidden, return_sequences=i < layers, name=f"pose_lstm_{i}",
                              kernel_regularizer=reg(), recurrent_regularizer=reg(),
                              bias_regularizer=reg())(x)
        if i < layers and dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"pose_dropout_{i}")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="pose_output",
                                 kernel_regularizer=reg(), bias_regularizer=reg())(x)
    model = keras.Model(inputs, outputs, name=f"pose_lstm_{layers}x{hidden}")
    return maybe_load_weights(model, weights)


def build_pose_cnn_lstm(filters=(64, 128), hidden=512, dropout=0.5, input_shape=(150, 24),
                        l2=1e-4, weights=None) -> keras.Model:
    """P4 Table 5's "CNN (VGG16) + LSTM" baseline, adapted to pose sequences.

    The paper only names this baseline (98.11 / 94.00 / 93.78 % train / val / test) and
    says it was trained on the same pose dataset; it does not say how 150 x 24 keypoint
    sequences entered a VGG16. Assumed here: VGG's pattern in one dimension over time,
    one block per entry of ``filters`` = two Conv1D(f, 3, same, relu) + MaxPool1D(2),
    then Dropout, one LSTM(hidden) reading the pooled sequence (150 -> 37 steps with two
    blocks), and Dense(1, sigmoid) on its last step. Same weight decay as
    ``build_pose_lstm``; train it with the same optimizer.

    Args:
        filters: Conv1D filters of each VGG-style block.
        hidden: LSTM units.
        dropout: dropout probability between the convolutional part and the LSTM.
        input_shape: (time steps, features).
        l2: PyTorch-style weight decay coefficient (0 disables it).
        weights: ``None`` or a ``.weights.h5`` file of this architecture.
    """
    filters = tuple(_positive(f, "filters") for f in filters)
    hidden = _positive(hidden, "hidden")
    if not 0.0 <= dropout < 1.0:
        raise ModelError(f"dropout must be in [0, 1), got {dropout}")
    reg = _weight_decay(l2)
    inputs = keras.Input(shape=tuple(input_shape), name="pose")
    x = inputs
    for b, f in enumerate(filters, start=1):
        for c in (1, 2):
            x = keras.layers.Conv1D(f, 3, padding="same", activation="relu",
                                    name=f"block{b}_conv{c}", kernel_regularizer=reg(),
                                    bias_regularizer=reg())(x)
        x = keras.layers.MaxPooling1D(2, name=f"block{b}_pool")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="cnn_dropout")(x)
    x = keras.layers.LSTM(hidden, name="pose_lstm", kernel_regularizer=reg(),
                          recurrent_regularizer=reg(), bias_regularizer=reg())(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="pose_output",
                                 kernel_regularizer=reg(), bias_regularizer=reg())(x)
    model = keras.Model(inputs, outputs, name="pose_cnn_lstm")
    return maybe_load_weights(model, weights)


def pose_optimizer(name="adam-1e-2", steps_per_epoch=None) -> keras.optimizers.Optimizer:
    """One of P4's optimizers, with gradient clipping at global norm 0.25.

    The paper (PyTorch) "set the maximum norm of the gradients to 0.25", PyTorch's
    ``clip_grad_norm_(model.parameters(), 0.25)``, which rescales all gradients together
    so that their joint norm is at most 0.25: that is Keras' ``global_clipnorm``
    (``clipnorm`` would clip each variable's gradient separately).

    Args:
        name: ``"adam-1e-2"`` (the final setting; ``"adam-3e-4"`` at CPU batch
            sizes, see ``dfdetect.papers.pose_lstm.SETTINGS``), or the Fig. 8 study's
            ``"sgd-1e-3"``, ``"sgd-1e-4"``, ``"adam-1e-3"``.
        steps_per_epoch: when given, the Adam main settings carry the paper's step decay
            (x0.5 every 30 epochs) as a staircase schedule. Leave it ``None`` when the
            training loop applies the decay itself (a callback cannot change the rate
            of an optimizer that has a schedule). The Fig. 8 runs had no decay.

    Raises:
        ModelError: unknown name or non-positive ``steps_per_epoch``.
    """
    if name not in POSE_OPTIMIZERS:
        raise ModelError(f"unknown pose optimizer {name!r}; "
                         f"expected one of {', '.join(POSE_OPTIMIZERS)}")
    algorithm, rate = POSE_OPTIMIZERS[name]
    if steps_per_epoch is not None and name in ("adam-1e-2", "adam-3e-4"):
        every, factor = POSE_LR_DECAY
        rate = keras.optimizers.schedules.ExponentialDecay(
            rate, decay_steps=every * _positive(steps_per_epoch, "steps_per_epoch"),
            decay_rate=factor, staircase=True)
    if algorithm == "adam":
        return keras.optimizers.Adam(learning_rate=rate, global_clipnorm=POSE_CLIPNORM)
    # PyTorch's SGD defaults: no momentum.
    return keras.optimizers.SGD(learning_rate=rate, global_clipnorm=POSE_CLIPNORM)


# ----------------------------------------------------------------------------- helpers


def _positive(value, what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0 or number != value:
        raise ModelError(f"{what} must be a positive integer, got {value!r}")
    return number


def _weight_decay(l2: float):
    """Factory of fresh regularizers matching PyTorch's ``weight_decay=l2``."""
    if l2 < 0:
        raise ModelError(f"l2 weight decay must be >= 0, got {l2}")
    return lambda: keras.regularizers.L2(l2 / 2.0) if l2 > 0 else None


def maybe_load_weights(model: keras.Model, weights) -> keras.Model:
    """``model`` with ``weights`` (a weights file) loaded when given; one-line ModelError."""
    if weights is not None:
        try:
            model.load_weights(weights)
        except Exception as err:  # Keras raises several types; the user needs one line
            raise ModelError(f"cannot load weights into {model.name}: {err}",
                             path=weights) from err
    return model


def build_end_to_end(extractor, head, frames: int, size: int):
    """The uncached alternative: the frozen CNN runs on every frame in every epoch.

    ``(frames, size, size, 3)`` clips -> ``TimeDistributed(extractor)`` -> ``head``:
    what training a sequence head costs without the feature cache.
    """
    extractor.trainable = False
    inputs = keras.Input((int(frames), int(size), int(size), 3), name="clip")
    x = keras.layers.TimeDistributed(extractor, name="cnn_per_frame")(inputs)
    return keras.Model(inputs, head(x), name=f"{head.name}_end_to_end")
