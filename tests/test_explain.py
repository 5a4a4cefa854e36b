"""Grad-CAM on crafted models (known answers), on a P3 video model, and the picture helpers."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dfdetect.errors import DataError, ModelError  # noqa: E402
from dfdetect.explain import (default_layer_path, grad_cam, mask_mass,  # noqa: E402
                              overlay, save_gradcam_grid)

SIZE = 32


def _colour_detector(name="backbone"):
    """Nested backbone whose 2 channels are the local red and green brightness."""
    inputs = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")
    x = conv(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[:, :, 0, 0] = 1.0 / 9.0  # channel 0 <- red
    kernel[:, :, 1, 1] = 1.0 / 9.0  # channel 1 <- green
    conv.set_weights([kernel, np.zeros(2, np.float32)])
    return keras.Model(inputs, x, name=name)


def _image_model(head):
    """Image model: nested backbone -> fake evidence = red minus green."""
    inputs = keras.Input((SIZE, SIZE, 3))
    features = _colour_detector()(inputs)
    if head == "sigmoid":
        dense = keras.layers.Dense(1, activation="sigmoid", name="predictions")
        out = dense(features)
        dense.set_weights([np.array([[1.0], [-1.0]], np.float32), np.zeros(1, np.float32)])
    else:
        dense = keras.layers.Dense(2, activation="softmax", name="predictions")
        out = dense(features)
        dense.set_weights([np.array([[-1.0, 1.0], [1.0, -1.0]], np.float32),
                           np.zeros(2, np.float32)])
    return keras.Model(inputs, out, name=f"image_{head}")


def _square(top, left, side=8):
    mask = np.zeros((SIZE, SIZE), bool)
    mask[top:top + side, left:left + side] = True
    return mask


def _picture(red_at, green_at):
    image = np.zeros((SIZE, SIZE, 3), np.float32)
    image[_square(*red_at), 0] = 1.0
    image[_square(*green_at), 1] = 1.0
    return image


@pytest.mark.parametrize("head", ["sigmoid", "softmax"])
def test_image_model_with_nested_backbone_points_at_the_evidence(head):
    model = _image_model(head)
    assert [lay.name for lay in default_layer_path(model)] == ["backbone", "conv"]
    places = [((2, 2), (20, 20)), ((20, 4), (4, 18))]
    images = np.stack([_picture(r, g) for r, g in places])
    fake = grad_cam(model, images)                  # default class: fake (red)
    real = grad_cam(model, images, class_index=0)   # real: green
    for heats in (fake, real):
        assert heats.shape == (2, SIZE, SIZE) and heats.dtype == np.float32
        assert heats.min() >= 0.0 and heats.max() <= 1.0
        assert all(h.std() > 0.1 for h in heats)
    for i, (red, green) in enumerate(places):
        assert mask_mass(fake[i], _square(*red)) > 0.7
        assert mask_mass(fake[i], _square(*green)) == 0.0
        assert mask_mass(real[i], _square(*green)) > 0.7
        assert np.isclose(fake[i][_square(*red)].max(), 1.0)
    # naming the layer explicitly (inside the nested model) gives the same maps
    np.testing.assert_allclose(grad_cam(model, images, layer_name="conv"), fake, atol=1e-6)


def _video_model():
    """Clip model: TimeDistributed(nested backbone maps) -> pooling -> softmax."""
    frame = keras.Input((SIZE, SIZE, 3))
    conv = _colour_detector().get_layer("conv")
    maps = keras.Model(frame, conv(frame), name="frame_cnn")
    inputs = keras.Input((3, SIZE, SIZE, 3), name="frames")
    x = keras.layers.TimeDistributed(maps, name="frame_features")(inputs)
    x = keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D(), name="frame_pool")(x)
    x = keras.layers.GlobalAveragePooling1D(name="time_pool")(x)
    dense = keras.layers.Dense(2, activation="softmax", name="predictions")
    out = dense(x)
    dense.set_weights([np.array([[-1.0, 1.0], [1.0, -1.0]], np.float32), np.zeros(2, np.float32)])
    return keras.Model(inputs, out, name="clip_model")


def test_video_model_heat_maps_follow_each_frame():
    model = _video_model()
    assert [lay.name for lay in default_layer_path(model)] == ["frame_features"]
    reds = [(0, 0), (12, 12), (24, 20)]
    clip = np.stack([_picture(r, (24, 0)) for r in reds])[None]
    heats = grad_cam(model, clip)
    assert heats.shape == (1, 3, SIZE, SIZE)
    assert heats.min() >= 0.0 and heats.max() <= 1.0
    for f, red in enumerate(reds):
        assert mask_mass(heats[0, f], _square(*red)) > 0.7, f
    masks = np.stack([_square(*r) for r in reds])
    assert mask_mass(heats[0], masks) > 0.7
    # a layer inside the TimeDistributed backbone, reached by name: same maps
    np.testing.assert_allclose(grad_cam(model, clip, layer_name="conv"), heats, atol=1e-6)


def test_p3_video_model_grad_cam():
    from dfdetect.models.video import build_convlstm_cbam

    keras.utils.set_random_seed(0)
    model = build_convlstm_cbam(frames=2, size=64, convlstm_filters=8, fc_units=16)
    assert [lay.name for lay in default_layer_path(model)] == ["cbam"]
    clips = np.random.default_rng(0).random((1, 2, 64, 64, 3), dtype=np.float32)
    heats = grad_cam(model, clips)
    assert heats.shape == (1, 2, 64, 64)
    assert heats.min() >= 0.0 and heats.max() <= 1.0 and np.isfinite(heats).all()
    assert heats.std() > 0
    # deep inside the FoldedTimeDistributed Xception: no "graph disconnected"
    inner = grad_cam(model, clips, layer_name="block13_sepconv2_act")
    assert inner.shape == (1, 2, 64, 64) and inner.min() >= 0.0 and inner.max() <= 1.0
    # the ConvLSTM output has no frame axis: not a per-frame map
    with pytest.raises(ModelError, match="bi_convlstm"):
        grad_cam(model, clips, layer_name="bi_convlstm")


def test_grad_cam_errors():
    model = _image_model("sigmoid")
    images = np.zeros((1, SIZE, SIZE, 3), np.float32)
    with pytest.raises(ModelError, match="no layer named"):
        grad_cam(model, images, layer_name="nope")
    with pytest.raises(ModelError, match="do not fit"):
        grad_cam(model, np.zeros((1, 16, 16, 3), np.float32))
    with pytest.raises(ModelError, match="class_index"):
        grad_cam(model, images, class_index=2)
    assert grad_cam(model, images).max() == 0.0  # no evidence anywhere: all-zero maps


def test_overlay_colours_hot_red_and_cold_blue():
    image = np.full((4, 4, 3), 0.5, np.float32)
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 1.0
    out = overlay(image, heat)
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] > out[0, 0, 2]     # jet(1) is red
    assert out[3, 3, 2] > out[3, 3, 0]     # jet(0) is blue
    same = overlay((image * 255).astype(np.uint8), heat)
    assert np.abs(same.astype(int) - out.astype(int)).max() <= 1
    small = overlay(np.zeros((8, 8, 3), np.uint8), heat)  # heat resized to the image
    assert small.shape == (8, 8, 3)


def test_save_gradcam_grid(tmp_path):
    import matplotlib.image as mpimg

    rng = np.random.default_rng(0)
    frames = rng.random((3, 16, 16, 3), dtype=np.float32)
    heats = rng.random((3, 16, 16), dtype=np.float32)
    three = save_gradcam_grid(tmp_path / "grid" / "three.png", frames, heats, title="fake")
    one = save_gradcam_grid(tmp_path / "one.png", frames[0], heats[0])
    with open(three, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    tall, short = mpimg.imread(three), mpimg.imread(one)
    assert tall.shape[1] == short.shape[1] and tall.shape[0] > 2 * short.shape[0]
    with pytest.raises(DataError):
        save_gradcam_grid(tmp_path / "bad.png", frames, heats[:2])


def test_save_gradcam_grid_outlines_the_mask_and_names_frames_and_score(tmp_path):
    import matplotlib.image as mpimg

    frames = np.full((2, 32, 32, 3), 0.5, np.float32)
    heats = np.zeros((2, 32, 32), np.float32)
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    kw = dict(title="clip", score=0.75, frame_labels=[12, 40])
    plain = mpimg.imread(save_gradcam_grid(tmp_path / "plain.png", frames, heats, **kw))
    marked = mpimg.imread(save_gradcam_grid(tmp_path / "marked.png", frames, heats,
                                            masks=mask, **kw))
    assert plain.shape == marked.shape
    # the white outline is drawn over the grey input and the overlay, nothing else changes
    changed = np.abs(marked[..., :3] - plain[..., :3]).max(axis=-1) > 0.2
    assert changed.sum() > 100 and (marked[..., :3][changed].min(axis=-1) > 0.8).mean() > 0.5
    with pytest.raises(DataError):
        save_gradcam_grid(tmp_path / "bad.png", frames, heats, frame_labels=[1])
    with pytest.raises(DataError):
        save_gradcam_grid(tmp_path / "bad.png", frames, heats, masks=np.zeros((3, 32, 32)))


def test_mask_mass_known_values():
    heat = np.zeros((4, 4))
    heat[0, 0], heat[3, 3] = 1.0, 3.0
    mask = np.zeros((4, 4), np.uint8)
    mask[:2, :2] = 255
    assert mask_mass(heat, mask) == pytest.approx(0.25)
    assert mask_mass(heat, 1 - (mask > 0)) == pytest.approx(0.75)
    clip = np.stack([heat, heat])  # one mask for every frame
    assert mask_mass(clip, mask) == pytest.approx(0.25)
    assert np.isnan(mask_mass(np.zeros((4, 4)), mask))
    with pytest.raises(DataError):
        mask_mass(heat, np.ones((3, 3)))
    with pytest.raises(DataError):
        mask_mass(-heat, mask)
