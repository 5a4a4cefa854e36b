"""The default detector's network: outputs, sizes, the export view and the registry."""

from __future__ import annotations

import numpy as np
import pytest

from dfdetect.models import detector, registry


def test_two_outputs_while_training_one_when_exported():
    model = detector.build_default_detector((64, 64, 3))
    out = model(np.zeros((2, 64, 64, 3), np.float32))
    assert out["p_fake"].shape == (2, 1)
    assert out["boundary"].shape == (2, 16, 16, 1)
    exported = detector.detector_for_export(model)
    assert exported.output_shape == (None, 1)
    x = np.random.default_rng(0).uniform(0, 1, (3, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(exported.predict_on_batch(x),
                               model.predict_on_batch(x)["p_fake"], rtol=1e-5, atol=1e-6)


def test_size_fits_the_30_mb_limit_and_inputs_must_divide_by_32():
    model = detector.build_default_detector()
    assert model.input_shape == (None, 128, 128, 3)
    assert 1_000_000 < model.count_params() < 30e6 / 4 / 2  # float32, with room to spare
    with pytest.raises(ValueError, match="divisible by 32"):
        detector.build_default_detector((100, 100, 3))


def test_registry_builds_it_by_name():
    assert registry.get_builder("default_detector") is detector.build_default_detector


def test_a_lite_detector_exports_folded_and_computes_the_same(tmp_path):
    from dfdetect.errors import ModelError
    from dfdetect.models.export import export_model, load_exported

    # ImageNet's batch norms: real statistics, far from the identity (random ones make
    # ReLU6 saturate, and every input then gives the same output)
    model = detector.build_lite_detector("lite0", (64, 64, 3), weights="imagenet")
    rng = np.random.default_rng(1)
    kernel, bias = model.get_layer("p_fake").get_weights()
    model.get_layer("p_fake").set_weights([rng.normal(0, 0.1, kernel.shape), bias])
    exported = detector.detector_for_export(model)
    assert not any("bn" in layer.name or "drop" in layer.name for layer in exported.layers)
    assert len(exported.layers) < len(model.layers) / 2
    x = rng.uniform(0, 1, (3, 64, 64, 3)).astype(np.float32)
    expected = model.predict_on_batch(x)["p_fake"]
    assert np.ptp(expected) > 1e-3  # the inputs are told apart: the comparison means something
    np.testing.assert_allclose(exported.predict_on_batch(x), expected, rtol=1e-4, atol=1e-5)
    back, _ = load_exported(export_model(exported, tmp_path / "d.keras"))
    np.testing.assert_allclose(back.predict_on_batch(x), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ModelError, match="lite2"):
        detector.fold_lite_detector(model, "lite2")


def test_a_weight_soup_is_the_mean_of_its_members_and_refuses_other_networks():
    from dfdetect.errors import ModelError

    def tiny(seed, width=4):
        import keras
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(width, 3, name="conv")(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="p_fake")(x))

    a, b = tiny(0), tiny(1)
    soup = detector.average_detectors([a, b], name="soup")
    assert soup.name == "soup" and soup.output_shape == (None, 1)
    for got, wa, wb in zip(soup.get_weights(), a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(got, (wa + wb) / 2, rtol=1e-6)
    assert not np.allclose(a.get_weights()[0], b.get_weights()[0])  # the mean is not trivial
    # the members are left as they were
    assert not np.allclose(soup.get_weights()[0], a.get_weights()[0])
    with pytest.raises(ModelError, match="do not line up"):
        detector.average_detectors([a, tiny(2, width=8)])
    with pytest.raises(ModelError, match="two or more"):
        detector.average_detectors([a])
