import cv2
import keras
import numpy as np
import pytest

from dfdetect.data import pipeline
from dfdetect.errors import DataError


def _store(tmp_path, videos=3, frames=3, size=16):
    rows = []
    for v in range(videos):
        for f in range(frames):
            rel = f"crops/s/v{v}/{f:03d}.png"
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            img = np.full((size, size, 3), 40 * v + f, np.uint8)
            cv2.imwrite(str(tmp_path / rel), img)
            rows.append({"crop_path": rel, "label": str(v % 2), "source": "s",
                         "video_id": f"v{v}", "frame_index": str(f)})
    return rows


def test_image_dataset_shapes_range_and_order(tmp_path):
    rows = _store(tmp_path)
    ds = pipeline.image_dataset(rows, tmp_path, image_size=8, batch_size=4)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    x = np.concatenate(xs)
    assert x.shape == (9, 8, 8, 3)
    assert 0.0 <= x.min() and x.max() <= 1.0
    # evaluation keeps the manifest order: the pixel value encodes (video, frame)
    assert np.allclose(x[:, 0, 0, 0] * 255, [40 * v + f for v in range(3) for f in range(3)],
                       atol=1)
    assert np.concatenate(ys).tolist() == [int(r["label"]) for r in rows]


def test_training_dataset_augments(tmp_path):
    rows = _store(tmp_path, size=16)
    # A gradient image so flips and rotations change pixels.
    for r in rows:
        grad = np.tile(np.linspace(0, 255, 16, dtype=np.uint8), (16, 1))
        cv2.imwrite(str(tmp_path / r["crop_path"]), np.dstack([grad] * 3))
    aug = pipeline.build_augmentation(seed=1)
    plain = next(iter(pipeline.image_dataset(rows, tmp_path, 16, batch_size=9)))[0].numpy()
    augmented = next(iter(pipeline.image_dataset(rows, tmp_path, 16, batch_size=9,
                                                 training=True, augment=aug)))[0].numpy()
    assert augmented.shape == plain.shape
    assert not np.allclose(np.sort(augmented.ravel()), np.sort(plain.ravel()))
    assert augmented.min() >= 0.0 and augmented.max() <= 1.0


def test_missing_crop_is_a_data_error(tmp_path):
    rows = _store(tmp_path)
    (tmp_path / rows[0]["crop_path"]).unlink()
    with pytest.raises(DataError, match="crop file missing"):
        pipeline.image_dataset(rows, tmp_path, 8)


def test_clip_dataset_one_clip_per_video_repeating_frames(tmp_path):
    rows = _store(tmp_path, videos=3, frames=3)
    ds = pipeline.clip_dataset(rows, tmp_path, frames=5, image_size=8, batch_size=2)
    clips = np.concatenate([x.numpy() for x, _ in ds])
    assert clips.shape == (3, 5, 8, 8, 3)
    # 3 frames stretched to 5: frame order is kept
    assert np.all(np.diff(clips[1, :, 0, 0, 0]) >= 0)
    assert pipeline.clip_keys(rows) == [("s", "v0"), ("s", "v1"), ("s", "v2")]


def test_channel_shift_layer_round_trip_and_range():
    layer = pipeline.RandomChannelShift(0.2, seed=3)
    x = np.full((2, 4, 4, 3), 0.5, np.float32)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    assert np.allclose(layer(x, training=False), x)
    # each image/channel moved by one constant offset within the factor
    offsets = y[:, 0, 0, :] - 0.5
    assert np.all(np.abs(offsets) <= 0.2 + 1e-6)
    assert np.allclose(y, 0.5 + offsets[:, None, None, :])
    clone = pipeline.RandomChannelShift.from_config(layer.get_config())
    assert clone.factor == pytest.approx(0.2)


def test_array_dataset_length_mismatch():
    with pytest.raises(ValueError):
        pipeline.array_dataset(np.zeros((3, 2)), [0, 1])


def test_rotation_zoom_transform_rotates_and_zooms_about_the_centre():
    image = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)

    def apply(angle, scale):
        t = pipeline.rotation_zoom_transform(np.array([angle], np.float32),
                                             np.array([scale], np.float32), 5.0, 5.0)
        out = keras.ops.image.affine_transform(image, t, fill_mode="reflect")
        return keras.ops.convert_to_numpy(out)[0, :, :, 0]

    np.testing.assert_allclose(apply(np.pi / 2, 1.0), np.rot90(image[0, :, :, 0]), atol=1e-4)
    mirrored = pipeline.rotation_zoom_transform(np.zeros(1, np.float32), np.ones(1, np.float32),
                                                5.0, 5.0, flip=np.array([-1.0], np.float32))
    out = keras.ops.image.affine_transform(image, mirrored, fill_mode="reflect")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out)[0, :, :, 0],
                               np.fliplr(image[0, :, :, 0]), atol=1e-4)
    zoomed_in = apply(0.0, 0.5)
    assert zoomed_in[2, 2] == pytest.approx(12.0)  # the centre stays put
    np.testing.assert_allclose(zoomed_in[2], [11, 11.5, 12, 12.5, 13], atol=1e-4)


def test_random_rotation_zoom_layer_trains_only_and_round_trips(tmp_path):
    x = np.random.default_rng(0).random((3, 16, 16, 3)).astype("float32")
    layer = pipeline.RandomRotationZoom(15, 0.2, seed=3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    assert y.shape == x.shape and not np.allclose(y, x)
    assert 0.0 <= y.min() and y.max() <= 1.0
    single = keras.ops.convert_to_numpy(layer(x[0], training=True))
    assert single.shape == x[0].shape
    model = keras.Sequential([keras.Input((16, 16, 3)), layer])
    model.save(tmp_path / "aug.keras")
    loaded = keras.models.load_model(tmp_path / "aug.keras")
    assert loaded.layers[0].get_config()["rotation_degrees"] == 15.0
    assert isinstance(loaded.layers[0], pipeline.RandomRotationZoom)


def test_channel_shift_brightness_moves_all_channels_of_an_image_together():
    x = np.full((6, 4, 4, 3), 0.5, np.float32)
    y = keras.ops.convert_to_numpy(
        pipeline.RandomChannelShift(0.0, seed=1, brightness=0.2)(x, training=True))
    per_image = y[:, 0, 0, :]
    np.testing.assert_allclose(per_image, per_image[:, :1].repeat(3, axis=1), atol=1e-6)
    assert np.all(np.abs(per_image - 0.5) <= 0.2 + 1e-6) and per_image.std() > 0.01
    assert (y == y[:, :1, :1, :]).all()  # one offset per image, not per pixel


def test_p1_augmentation_carries_the_papers_ranges():
    """SPEC.md P1 / the report: rotation up to 15 degrees, zoom 20 %, brightness +-20 %,
    a random RGB channel shift (range assumed: 0.1 of [0, 1]) and horizontal flip."""
    aug = pipeline.build_augmentation(seed=1)
    geometry = [layer for layer in aug.layers if isinstance(layer, pipeline.RandomRotationZoom)]
    colour = [layer for layer in aug.layers if isinstance(layer, pipeline.RandomChannelShift)]
    assert len(geometry) == 1 and len(colour) == 1 and len(aug.layers) == 2
    g, c = geometry[0].get_config(), colour[0].get_config()
    assert g["rotation_degrees"] == pytest.approx(15.0)
    assert g["zoom"] == pytest.approx(0.2)
    assert g["horizontal_flip"] is True
    # brightness: our reading of "+-20 %" is an offset of up to 0.2 of the [0, 1] range
    # shared by the channels (docs/differences.md).
    assert c["brightness"] == pytest.approx(0.2)
    assert c["factor"] == pytest.approx(0.1)
    # the ranges survive a save / load of a model that holds the augmentation
    clone = keras.Sequential.from_config(aug.get_config())
    assert clone.layers[0].get_config()["rotation_degrees"] == pytest.approx(15.0)
    assert clone.layers[1].get_config()["brightness"] == pytest.approx(0.2)


def _affine_of_each_image(out):
    """Per image, the rotation angle (degrees), zoom and mirror the layer applied.

    The probe's channels 0 and 1 hold each pixel's own x and y. Output pixel p samples
    the input at c + s R(angle) F (p - c), and bilinear sampling of a linear function is
    exact, so at the centre the finite differences of the two channels give s, angle, F.
    """
    mid = out.shape[1] // 2
    dx_dpx = (out[:, mid, mid + 1, 0] - out[:, mid, mid - 1, 0]) / 2
    dx_dpy = (out[:, mid + 1, mid, 0] - out[:, mid - 1, mid, 0]) / 2
    dy_dpy = (out[:, mid + 1, mid, 1] - out[:, mid - 1, mid, 1]) / 2
    # d x_in / d p_y = -s sin(angle), d y_in / d p_y = s cos(angle)
    angle = np.degrees(np.arctan2(-dx_dpy, dy_dpy))
    scale = np.hypot(dx_dpy, dy_dpy)
    mirrored = dx_dpx * dy_dpy < 0  # d x_in / d p_x = s cos(angle) F
    return angle, scale, mirrored


def test_p1_augmentation_draws_within_the_papers_ranges():
    """Measured on the images, not read from the config: the angles span +-15 degrees,
    the zoom 0.8-1.2, half the images are mirrored, brightness and channel offsets their
    ranges."""
    n, size = 400, 17
    ys, xs = np.mgrid[0:size, 0:size].astype("float32")
    probe = np.stack([xs, ys, np.zeros_like(xs)], axis=-1)
    aug = pipeline.build_augmentation(seed=7)
    geometry, colour = aug.layers
    out = keras.ops.convert_to_numpy(geometry(np.repeat(probe[None], n, 0), training=True))
    angle, scale, mirrored = _affine_of_each_image(out)
    assert np.abs(angle).max() <= 15.0 + 0.05
    assert np.abs(angle).max() >= 14.0  # the range is 15 degrees, not less
    assert scale.min() >= 0.8 - 1e-3 and scale.max() <= 1.2 + 1e-3
    assert scale.min() <= 0.82 and scale.max() >= 1.18
    assert 0.4 <= mirrored.mean() <= 0.6

    grey = np.full((n, 2, 2, 3), 0.5, np.float32)  # no clipping: offsets stay within 0.3
    offsets = keras.ops.convert_to_numpy(colour(grey, training=True))[:, 0, 0, :] - 0.5
    common = offsets.mean(axis=1)  # brightness + the mean of the three channel shifts
    spread = offsets - common[:, None]  # channel shifts only
    assert np.abs(offsets).max() <= 0.3 + 1e-5
    # a channel differs from another by at most 2 x 0.1, and the draws get close to it
    pairwise = np.abs(offsets[:, :, None] - offsets[:, None, :]).max()
    assert 0.17 <= pairwise <= 0.2 + 1e-5
    assert np.abs(spread).max() <= 0.2
    # the channel shifts' mean stays within 0.1: beyond that it is brightness
    assert np.abs(common).max() >= 0.2
