"""Per-crop CNN features through the store's feature cache (P5, reused by P2)."""

import keras
import numpy as np
import pytest

from dfdetect import features
from dfdetect.data import store
from dfdetect.data.sample import Sample
from dfdetect.errors import DataError, ModelError

SIZE = 32


def _make_store(root, videos=3, frames=3):
    """``videos`` real and ``videos`` fake clips of ``frames`` random 32-px crops each."""
    rng = np.random.default_rng(0)
    with store.StoreWriter(root) as writer:
        for label in (0, 1):
            for v in range(videos):
                sample = Sample(f"v{label}{v}.mp4", label, f"{label}-{v}", "train", "toy",
                                "swap" if label else "real")
                for f in range(frames):
                    crop = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
                    writer.add(sample, f, crop, extra={"identity": f"id{v}"})
                writer.commit()
    return store.read_manifest(root)


class _Counting(keras.Model):
    """A fixed extractor that counts the images it was asked for."""

    def __init__(self):
        inputs = keras.Input((SIZE, SIZE, 3))
        pooled = keras.layers.GlobalAveragePooling2D()(inputs)
        super().__init__(inputs, pooled, name="counting")
        self.seen = 0

    def predict_on_batch(self, x):
        self.seen += int(np.shape(x)[0])
        return super().predict_on_batch(x)


def test_features_are_cached_and_only_new_rows_are_computed(tmp_path):
    rows = _make_store(tmp_path)
    model = _Counting()
    first, index = features.extract_features(tmp_path, rows[:10], "meso4", SIZE,
                                             model=model, cache_name="toy")
    assert first.shape == (10, 3) and model.seen == 10
    assert [r["crop_path"] for r in index] == [r["crop_path"] for r in rows[:10]]
    assert index[0]["label"] == rows[0]["label"] and index[0]["identity"] == "id0"
    assert store.has_features(tmp_path, "toy", SIZE)

    again, _ = features.extract_features(tmp_path, rows[:10], "meso4", SIZE,
                                         model=model, cache_name="toy")
    assert model.seen == 10  # nothing recomputed
    np.testing.assert_array_equal(first, again)

    # Asking for all rows (new order) computes only the 8 new ones.
    order = rows[::-1]
    full, index = features.extract_features(tmp_path, order, "meso4", SIZE,
                                            model=model, cache_name="toy")
    assert model.seen == 18 and full.shape == (18, 3)
    assert [r["crop_path"] for r in index] == [r["crop_path"] for r in order]
    # A crop's features equal its mean colour in [0, 1] (the extractor's definition).
    import cv2
    png = cv2.imread(str(tmp_path / order[0]["crop_path"]))[..., ::-1] / 255.0
    np.testing.assert_allclose(full[0], png.mean(axis=(0, 1)), atol=2e-3)


def test_backbone_by_name_random_init_is_seeded(tmp_path):
    rows = _make_store(tmp_path, videos=1, frames=2)
    a, _ = features.extract_features(tmp_path, rows, "meso4", SIZE, seed=3)
    assert a.shape == (4, 16)  # Meso-4 at 32 px: 1 x 1 x 16
    assert store.has_features(tmp_path, "meso4-random-s3", SIZE)
    store.feature_paths(tmp_path, "meso4-random-s3", SIZE)[0].unlink()
    b, _ = features.extract_features(tmp_path, rows, "meso4", SIZE, seed=3)
    np.testing.assert_array_equal(a, b)


def test_frames_mode_stacks_evenly_spaced_frames_per_video(tmp_path):
    rows = _make_store(tmp_path, videos=2, frames=3)
    model = _Counting()
    seq, videos = features.extract_features(tmp_path, rows, "meso4", SIZE, model=model,
                                            cache_name="toy", frames=2)
    assert seq.shape == (4, 2, 3) and len(videos) == 4
    assert model.seen == 8  # frames 0 and 2 of each of 4 videos
    assert {v["label"] for v in videos} == {0, 1} and videos[0]["frames_available"] == 3
    per_crop, index = features.extract_features(tmp_path, rows, "meso4", SIZE, model=model,
                                                cache_name="toy")
    first_video = [i for i, r in enumerate(index) if r["video_id"] == videos[0]["video_id"]]
    np.testing.assert_array_equal(seq[0], per_crop[[first_video[0], first_video[2]]])
    # More frames than the video has: frames repeat, nothing fails.
    long, _ = features.extract_features(tmp_path, rows, "meso4", SIZE, model=model,
                                        cache_name="toy", frames=5)
    assert long.shape == (4, 5, 3)


def test_unreadable_crops_are_skipped_and_counted(tmp_path):
    rows = _make_store(tmp_path, videos=1, frames=3)
    (tmp_path / rows[0]["crop_path"]).unlink()
    (tmp_path / rows[1]["crop_path"]).write_bytes(b"not a png")
    notes = []
    array, index = features.extract_features(tmp_path, rows, "meso4", SIZE, model=_Counting(),
                                             cache_name="toy", log=notes.append)
    assert array.shape[0] == 4
    assert rows[0]["crop_path"] not in {r["crop_path"] for r in index}
    assert rows[1]["crop_path"] not in {r["crop_path"] for r in index}
    assert notes and "skipped 2 crop(s)" in notes[0]


def test_errors():
    with pytest.raises(DataError, match="no rows"):
        features.extract_features("x", [], "meso4", SIZE)
    with pytest.raises(ModelError, match="cache_name"):
        features.extract_features("x", [{"crop_path": "a"}], "meso4", SIZE, model=_Counting())


def test_feature_name_identifies_the_weights(tmp_path):
    assert features.feature_name("resnet50") == "resnet50-random-s0"
    assert features.feature_name("resnet50", "imagenet") == "resnet50-imagenet"
    w = tmp_path / "my weights.h5"
    w.write_bytes(b"abc")
    name = features.feature_name("meso4", w)
    assert name.startswith("meso4-my-weights-") and len(name.split("-")[-1]) == 8
    w.write_bytes(b"abd")
    assert features.feature_name("meso4", w) != name
    with pytest.raises(ModelError, match="not found"):
        features.feature_name("meso4", tmp_path / "none.h5")


def test_color_normalization_fixes_brightness_contrast_and_balance():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (2, 16, 16, 3)).astype("float32") * 0.3
    image[..., 0] += 0.5  # a reddish, dim, low-contrast image
    out = keras.ops.convert_to_numpy(features.ColorNormalization(target_std=0.15)(image))
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0.5, atol=0.01)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 0.15, atol=0.01)
    flat = keras.ops.convert_to_numpy(features.ColorNormalization()(np.full((1, 4, 4, 3), 0.9,
                                                                            "float32")))
    np.testing.assert_allclose(flat, 0.5, atol=1e-4)


def test_extractor_with_normalization_round_trips(tmp_path):
    from dfdetect.models import registry

    model = registry.build_model("feature_extractor", backbone="meso4", size=SIZE,
                                 normalize=True, seed=0)
    x = np.random.default_rng(1).uniform(0, 1, (2, SIZE, SIZE, 3)).astype("float32")
    path = tmp_path / "ext.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(model.predict_on_batch(x), loaded.predict_on_batch(x), atol=1e-6)
    assert model.output_shape == (None, 16)
