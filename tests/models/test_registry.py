"""Every registered model name, at smoke size: built through the registry, called, the
output shape checked, exported and loaded back (same predictions), and rebuilt from the
exported file's metadata alone (same architecture).

The registry is the one way dfdetect builds a Keras model, so this one test covers every
architecture an experiment, ``dfdetect train`` or the detector can make. A name added to
the registry without a row in :data:`SMOKE` fails
:func:`test_every_registered_name_has_a_smoke_size`.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dfdetect.models import export, registry

IMAGE = (32, 32, 3)
SEQUENCE = (4, 16)

#: name -> (builder arguments at smoke size, the input it is called on (without the
#: batch), the output shape without the batch: one tuple, or name -> shape for a model
#: with several outputs).
SMOKE: dict[str, tuple[dict, tuple, tuple | dict]] = {
    "meso4": (dict(input_shape=IMAGE), IMAGE, (1,)),
    "mesoinception4": (dict(input_shape=IMAGE), IMAGE, (1,)),
    "backbone": (dict(name="meso4", input_shape=IMAGE), IMAGE, (16,)),
    "feature_extractor": (dict(backbone="meso4", size=32, normalize=True, seed=0), IMAGE,
                          (16,)),
    "finetune_classifier": (dict(backbone="meso4", size=32, normalize=True, seed=0), IMAGE,
                            (1,)),
    "fusion": (dict(backbones=["meso4"], input_shape=IMAGE, head_units=8), IMAGE, (1,)),
    "custom_cnn": (dict(widths=[8, 16], input_shape=IMAGE), IMAGE, (2,)),
    "inception_transfer": (dict(unfreeze="head", input_shape=IMAGE), IMAGE, (2,)),
    "inception_phase1": (dict(input_shape=IMAGE), IMAGE, (2,)),
    "inception_features": (dict(input_shape=IMAGE), IMAGE, (2048,)),
    "lite_transfer": (dict(unfreeze="head", input_shape=IMAGE, variant="lite0"), IMAGE, (2,)),
    "rnn_head": (dict(cell="gru", depth=1, width=8, input_shape=SEQUENCE), SEQUENCE, (2,)),
    "mlp_head": (dict(widths=[8], input_shape=SEQUENCE), SEQUENCE, (2,)),
    "sequence_head": (dict(name="lstm-1x8", input_shape=SEQUENCE), SEQUENCE, (2,)),
    "xception_frames": (dict(), IMAGE, (1,)),
    "convlstm_cbam": (dict(frames=2, size=32), (2, *IMAGE), (2,)),
    "xception_lstm": (dict(frames=2, size=32), (2, *IMAGE), (2,)),
    "xception_convlstm": (dict(frames=2, size=32), (2, *IMAGE), (2,)),
    "default_detector": (dict(input_shape=(64, 64, 3), widths=[8, 8, 16, 16]), (64, 64, 3),
                         {"p_fake": (1,), "boundary": None}),
    "lite_detector": (dict(input_shape=(64, 64, 3), weights=None), (64, 64, 3),
                      {"p_fake": (1,), "boundary": None}),
    "efficientnet_lite": (dict(variant="lite0", input_shape=IMAGE), IMAGE, (1280,)),
    "pose_lstm": (dict(hidden=8, layers=1, input_shape=(32, 24)), (32, 24), (1,)),
    "pose_cnn_lstm": (dict(filters=[4, 8], hidden=8, input_shape=(32, 24)), (32, 24), (1,)),
    "pose_vgg16": (dict(frames=32), (32, 24), (1,)),
    "pose_resnet50": (dict(frames=32), (32, 24), (1,)),
    "pose_resnet101": (dict(frames=32), (32, 24), (1,)),
    "pose_resnet152": (dict(frames=32), (32, 24), (1,)),
    "pose_resnet152_face": (dict(frames=32), (32, 24), (1,)),
}


def test_every_registered_name_has_a_smoke_size():
    assert sorted(SMOKE) == sorted(registry.available())


def _outputs(model, x) -> dict:
    out = model(x, training=False)
    if isinstance(out, dict):
        return {k: keras.ops.convert_to_numpy(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return {name: keras.ops.convert_to_numpy(v) for name, v in zip(model.output_names, out)}
    return {"": keras.ops.convert_to_numpy(out)}


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_registered_model_builds_calls_round_trips_and_rebuilds(name, tmp_path):
    kwargs, input_shape, want = SMOKE[name]
    keras.utils.set_random_seed(0)
    model = registry.build_model(name, **kwargs)
    x = np.random.default_rng(0).random((2, *input_shape), dtype=np.float32)
    got = _outputs(model, x)
    shapes = want if isinstance(want, dict) else {"": want}
    for key, shape in shapes.items():
        assert key in got, (name, key, list(got))
        assert got[key].shape[0] == 2
        if shape is not None:
            assert got[key].shape[1:] == shape, (name, key, got[key].shape)
        assert np.isfinite(got[key]).all()

    path = export.export_model(model, tmp_path / f"{name}.keras", experiment="test")
    loaded, meta = export.load_exported(path)
    again = _outputs(loaded, x)
    for key in got:
        np.testing.assert_allclose(again[key], got[key], rtol=1e-4, atol=1e-5)

    assert meta["builder"]["name"] == name
    rebuilt = registry.rebuild(meta)
    assert rebuilt.count_params() == model.count_params()
    assert [type(layer).__name__ for layer in rebuilt.layers] == \
        [type(layer).__name__ for layer in model.layers]
    assert [tuple(w.shape) for w in rebuilt.weights] == [tuple(w.shape) for w in model.weights]
