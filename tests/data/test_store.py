"""dfdetect.data.store: the manifest contract, the writer's resume, the feature cache
(``dfdetect data crop`` itself: tests/data/test_crop.py)."""

import cv2
import numpy as np
import pytest

from dfdetect.data import store
from dfdetect.data.sample import Sample
from dfdetect.errors import DataError


def sample(video_id="v1", source="toy", label=1, split="train"):
    return Sample(f"/data/{video_id}.mp4", label, video_id, split, source,
                  "fake" if label else "real")


def crop(value=0, size=8):
    rng = np.random.default_rng(value)
    return rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- writer

def test_writer_layout_and_manifest_round_trip(tmp_path):
    root = tmp_path / "store"
    with store.StoreWriter(root) as writer:
        row = writer.add(sample("v1"), 7, crop(1), extra={"identity": "42"})
        writer.add(sample("v1"), 12, crop(2))
        writer.commit()
        writer.add(sample("v2", label=0, split="test"), 0, crop(3))
        writer.add(sample("v3", split="cross"), 0, crop(4))
        assert writer.has("toy", "v1") and writer.has("toy", "v2")
        assert not writer.has("toy", "v4") and not writer.has("other", "v1")
    assert row["crop_path"] == "crops/toy/v1/007.png"
    header = (root / "manifest.csv").read_text().splitlines()[0].split(",")
    assert header == [*store.MANIFEST_COLUMNS, "identity"]
    rows = store.read_manifest(root)
    assert [(r["video_id"], r["frame_index"], r["label"]) for r in rows] == [
        ("v1", 7, 1), ("v1", 12, 1), ("v2", 0, 0), ("v3", 0, 1)]
    assert rows[0]["identity"] == "42" and rows[1]["identity"] == ""
    back = cv2.cvtColor(cv2.imread(str(root / rows[0]["crop_path"])), cv2.COLOR_BGR2RGB)
    assert np.array_equal(back, crop(1))  # lossless, RGB preserved
    assert [r["video_id"] for r in store.manifest_split(rows, "test")] == ["v2"]
    assert [r["video_id"] for r in store.manifest_split(rows, "cross")] == ["v3"]
    assert len(store.manifest_split(rows, None)) == 4
    with pytest.raises(ValueError):
        store.manifest_split(rows, "training")


def test_png_bytes_are_deterministic(tmp_path):
    for name in ("a", "b"):
        with store.StoreWriter(tmp_path / name) as writer:
            writer.add(sample(), 0, crop(5, size=32))
    first, second = (tmp_path / n / "crops/toy/v1/000.png" for n in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()


def test_writer_reopens_store_and_replaces_same_frame(tmp_path):
    with store.StoreWriter(tmp_path) as writer:
        writer.add(sample(), 0, crop(1), extra={"mask_path": "m.png"})
    with store.StoreWriter(tmp_path) as writer:
        assert writer.has("toy", "v1")
        writer.add(sample(), 0, crop(2), extra={"mask_path": "n.png"})
        writer.add(sample("v2"), 0, crop(3))
    rows = store.read_manifest(tmp_path)
    assert [(r["video_id"], r["mask_path"]) for r in rows] == [("v1", "n.png"), ("v2", "")]


def test_interrupted_unit_is_not_recorded(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with store.StoreWriter(tmp_path) as writer:
            writer.add(sample("done"), 0, crop(1))
            writer.commit()
            writer.add(sample("half"), 0, crop(2))
            raise KeyboardInterrupt
    assert [r["video_id"] for r in store.read_manifest(tmp_path)] == ["done"]
    with store.StoreWriter(tmp_path) as writer:
        assert writer.has("toy", "done") and not writer.has("toy", "half")


def test_unsafe_ids_and_bad_crops_are_refused(tmp_path):
    with store.StoreWriter(tmp_path) as writer:
        with pytest.raises(DataError):
            writer.add(sample("../escape"), 0, crop())
        with pytest.raises(DataError):
            writer.add(sample(), 0, np.zeros((4, 4), np.uint8))
        with pytest.raises(ValueError):
            writer.add(sample(), 0, crop(), extra={"label": 0})


# --------------------------------------------------------------------------- reading

def test_read_manifest_errors(tmp_path):
    with pytest.raises(DataError, match="no manifest.csv"):
        store.read_manifest(tmp_path)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label,video_id,split\n/a.mp4,1,a,train\n")
    with pytest.raises(DataError) as excinfo:
        store.read_manifest(tmp_path)
    text = str(excinfo.value)
    assert text.startswith(f"{manifest}: ") and "\n" not in text
    assert "source, method, frame_index, crop_path" in text
    good = ",".join(store.MANIFEST_COLUMNS)
    manifest.write_text(f"{good}\n/a.mp4,2,a,train,toy,x,0,crops/toy/a/000.png\n")
    with pytest.raises(DataError, match="line 2: label must be 0 or 1"):
        store.read_manifest(tmp_path)
    manifest.write_text(f"{good}\n/a.mp4,1,a,train,toy\n")
    with pytest.raises(DataError, match="line 2 has a different number of fields"):
        store.read_manifest(tmp_path)
    manifest.write_text("")
    with pytest.raises(DataError, match="empty file"):
        store.read_manifest(manifest)


# --------------------------------------------------------------------------- features

def test_feature_cache_round_trip(tmp_path):
    assert not store.has_features(tmp_path, "inceptionv3", 64)
    rng = np.random.default_rng(0)
    array = rng.normal(size=(3, 4, 5)).astype(np.float32)
    index = [{"video_id": f"v{i}", "label": i % 2, "split": "train"} for i in range(3)]
    npy, csv_path = store.save_features(tmp_path, "inceptionv3", 64, array, index)
    assert npy == tmp_path / "features" / "inceptionv3_64.npy"
    assert store.has_features(tmp_path, "inceptionv3", 64)
    loaded, rows = store.load_features(tmp_path, "inceptionv3", 64)
    assert loaded.dtype == np.float16 and loaded.shape == (3, 4, 5)
    assert np.array_equal(loaded, array.astype(np.float16))
    assert [r["video_id"] for r in rows] == ["v0", "v1", "v2"] and rows[1]["label"] == "1"
    assert np.load(npy, allow_pickle=False).dtype == np.float16
    # images x dims works too
    store.save_features(tmp_path, "meso4", 32, array[:, 0], index)
    assert store.load_features(tmp_path, "meso4", 32)[0].shape == (3, 5)


def test_feature_cache_errors(tmp_path):
    with pytest.raises(DataError, match="no feature cache"):
        store.load_features(tmp_path, "xception", 64)
    with pytest.raises(DataError, match="2 feature rows but 3 index rows"):
        store.save_features(tmp_path, "xception", 64, np.zeros((2, 4)), [{}] * 3)
    with pytest.raises(DataError, match="float16"):
        store.save_features(tmp_path, "xception", 64, np.full((1, 2), 1e6), [{"a": 1}])
    with pytest.raises(DataError):
        store.save_features(tmp_path, "../x", 64, np.zeros((1, 2)), [{"a": 1}])
    # a pickled object array planted in the cache is refused, not unpickled
    store.save_features(tmp_path, "xception", 64, np.zeros((1, 2)), [{"a": 1}])
    npy, _ = store.feature_paths(tmp_path, "xception", 64)
    np.save(npy, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="cannot read feature cache"):
        store.load_features(tmp_path, "xception", 64)
