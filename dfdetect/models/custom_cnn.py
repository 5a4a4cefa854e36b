"""P2: the custom CNN grid — plain Conv/Pool stacks of given depth and widths.

The grid itself is data (``TABLE_1``), written exactly as the paper's Table 1: depth
2-5 x an ascending, a descending and several constant width patterns, 23 rows.

The paper gives only the filter counts. Assumed per layer (SPEC.md, P2): Conv2D 3x3,
``same`` padding, ReLU, then MaxPool 2x2; the "classification ANN" on top is
Flatten -> Dense(1024, relu) -> Dense(2, softmax). Inputs are face crops in [0, 1].

Parameter counts: the paper reports N_p for three of these models (constant-32 2-layer
55 M, ascending 2-layer 110 M, constant-128 3-layer 51.7 M). No single square or
rectangular input size (32-399 px, same or valid padding) reproduces all three under
this recipe: at equal depth and input the dense layer scales with the last conv width,
so ascending-2 (last width 128) should be 4x constant-32-2 (last width 32), not 2x.
So no N_p check is made against the paper for this grid; the experiment reports the
N_p of what it built. At 256 px the dense layer dominates (constant-32
2-layer: ~134 M parameters), so ``cpu`` scale uses small images.
"""

from __future__ import annotations

import dataclasses

import keras

from dfdetect.errors import ModelError

__all__ = ["CnnConfig", "TABLE_1", "build_custom_cnn", "get_table_1_config"]


@dataclasses.dataclass(frozen=True)
class CnnConfig:
    """One row of the paper's Table 1.

    Attributes:
        name: stable identifier, ``"<depth>-<family>"`` plus the width for constant
            models, e.g. ``"2-asc"``, ``"3-desc"``, ``"4-const64"``.
        depth: number of conv layers (2-5).
        family: ``"asc"``, ``"desc"`` or ``"const"`` (the paper's ascending /
            descending / constant).
        widths: filters of each conv layer, first layer first.
    """

    name: str
    depth: int
    family: str
    widths: tuple[int, ...]


def _table(depth: int, asc: tuple[int, ...], desc: tuple[int, ...],
           constants: tuple[int, ...]) -> list[CnnConfig]:
    rows = [CnnConfig(f"{depth}-asc", depth, "asc", asc),
            CnnConfig(f"{depth}-desc", depth, "desc", desc)]
    rows += [CnnConfig(f"{depth}-const{w}", depth, "const", (w,) * depth) for w in constants]
    return rows


#: The paper's Table 1, in the paper's row order (23 configurations).
TABLE_1: tuple[CnnConfig, ...] = tuple(
    _table(2, (64, 128), (256, 64), (32, 64, 128, 256))
    + _table(3, (64, 96, 128), (256, 64, 32), (32, 64, 128, 256))
    + _table(4, (32, 64, 96, 128), (256, 128, 64, 32), (32, 64, 128, 256))
    + _table(5, (32, 64, 96, 128, 160), (256, 192, 128, 64, 32), (32, 64, 128))
)


def get_table_1_config(name: str) -> CnnConfig:
    """Return the Table 1 row called ``name`` (e.g. ``"3-const128"``).

    Raises:
        ModelError: no such row.
    """
    for config in TABLE_1:
        if config.name == name:
            return config
    known = ", ".join(c.name for c in TABLE_1)
    raise ModelError(f"unknown custom CNN configuration {name!r}; known: {known}")


def build_custom_cnn(widths, input_shape=(256, 256, 3), weights=None) -> keras.Model:
    """Build one custom CNN of the P2 grid.

    Args:
        widths: filters per conv layer, first layer first (a ``CnnConfig.widths``).
        input_shape: (height, width, channels) of the [0, 1] input images.
        weights: ``None`` or the path of a ``.weights.h5`` file of this same
            architecture to load.

    Returns:
        An uncompiled ``keras.Model`` ending in Dense(2, softmax) (index 1 = fake).

    Raises:
        ModelError: empty or non-positive widths, an input size left open (None), or
            an input too small for the number of 2x2 poolings.
    """
    widths = tuple(int(w) for w in widths)
    if not widths or min(widths) <= 0:
        raise ModelError(f"custom CNN widths must be positive integers, got {widths}")
    height, width = input_shape[0], input_shape[1]
    if height is None or width is None:
        raise ModelError(f"custom CNN needs a fixed input size for its Flatten layer, "
                         f"got {tuple(input_shape)}")
    smallest = 2 ** len(widths)
    if height < smallest or width < smallest:
        raise ModelError(
            f"input {tuple(input_shape)} is too small for {len(widths)} 2x2 poolings "
            f"(needs at least {smallest} px)")

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for i, filters in enumerate(widths, start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                name=f"conv_{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(1024, activation="relu", name="fc1024")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="custom_cnn_" + "_".join(map(str, widths)))
    if weights is not None:
        _load_weights(model, weights)
    return model


def _load_weights(model: keras.Model, path) -> None:
    try:
        model.load_weights(path)
    except Exception as err:  # Keras raises several types; the user needs one line
        raise ModelError(f"cannot load weights into {model.name}: {err}", path=path) from err
