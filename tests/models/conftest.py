"""The shared model harness: one save / load round trip for every model test.

Each builder's test used to hand-write the same steps; :func:`round_trip` does them
once: save to ``.keras``, load back (safe mode by default: no Lambda, every custom
layer registered), and check the loaded model predicts what the built one does.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest


def predictions(model, x, training=None):
    """A model's outputs on ``x`` as a NumPy array."""
    out = model(x) if training is None else model(x, training=training)
    return keras.ops.convert_to_numpy(out)


@pytest.fixture
def round_trip(tmp_path):
    """``round_trip(model, x, name="model.keras", safe_mode=True, rtol, atol, exact,
    training) -> loaded``: save, load, and assert equal predictions on ``x``."""

    def check(model, x, name: str = "model.keras", safe_mode: bool = True,
              rtol: float = 1e-5, atol: float = 1e-6, exact: bool = False, training=None):
        path = tmp_path / name
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=safe_mode)
        want, got = predictions(model, x, training), predictions(loaded, x, training)
        if exact:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
        return loaded

    return check
