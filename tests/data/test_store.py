"""dfdetect.data.store: manifest contract, resume, bad files, feature cache, CLI.

The real-video test reads ../shared/data/videos (six closeup_* clips from the three
sources and noface_cartoon.mp4, 4 frames each, 2 worker processes): about 15-30 s on 2
busy cores. Every closeup at 10 frames was checked by hand (10/10 faces in each).
"""

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfdetect.data import store
from dfdetect.data.sample import Sample
from dfdetect.errors import DataError

REPO = Path(__file__).resolve().parents[2]
CHIPS = ("100_1_0_20170110183726390.jpg.chip.jpg", "10_0_0_20170110225537307.jpg.chip.jpg",
         "10_1_0_20170103200654246.jpg.chip.jpg")


def sample(video_id="v1", source="toy", label=1, split="train"):
    return Sample(f"/data/{video_id}.mp4", label, video_id, split, source,
                  "fake" if label else "real")


def crop(value=0, size=8):
    rng = np.random.default_rng(value)
    return rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)


@pytest.fixture
def chips(tmp_path, shared_data):
    """A flat folder of three real UTKFace chips (one face each)."""
    folder = tmp_path / "chips"
    folder.mkdir()
    for name in CHIPS:
        shutil.copy(shared_data / "faces" / name, folder / (name.split(".")[0] + ".jpg"))
    return folder


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


# --------------------------------------------------------------------------- crop_dataset

def test_crop_dataset_counts_bad_files_as_skips(tmp_path, shared_data):
    data = tmp_path / "mixed"
    data.mkdir()
    shutil.copy(shared_data / "faces" / CHIPS[0], data / "face.jpg")
    cv2.imwrite(str(data / "blank.png"), np.full((120, 160, 3), 127, np.uint8))
    (data / "zero.mp4").write_bytes(b"")
    (data / "text.mp4").write_text("not a video at all\n")
    writer = cv2.VideoWriter(str(data / "full.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10,
                             (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    full = (data / "full.mp4").read_bytes()
    (data / "cut.mp4").write_bytes(full[:len(full) // 2])
    (data / "full.mp4").unlink()

    summary = store.crop_dataset(data, layout="folder", out=tmp_path / "out", frames=2,
                                 size=32, label="real", workers=1)
    reasons = {Path(p).name: r for p, r in summary.skipped_files.items()}
    assert set(reasons) == {"blank.png", "zero.mp4", "text.mp4", "cut.mp4"}
    assert reasons["blank.png"] == "0 faces in the image, skipped"
    assert "0 bytes" in reasons["zero.mp4"]
    assert "text file" in reasons["text.mp4"]
    assert "cannot open" in reasons["cut.mp4"]
    assert (summary.images, summary.videos, summary.faces_found) == (2, 3, 1)
    assert summary.frames_without_face == 1
    report = summary.report()
    for path, reason in summary.skipped_files.items():
        assert f"  {path}: {reason}" in report.splitlines()
    rows = store.read_manifest(tmp_path / "out")
    assert [(r["video_id"], r["frame_index"], r["label"], r["method"]) for r in rows] == [
        ("face", 0, 0, "real")]
    image = cv2.imread(str(tmp_path / "out" / rows[0]["crop_path"]))
    assert image.shape == (32, 32, 3)


def test_crop_dataset_resumes(tmp_path, chips, monkeypatch):
    # a complete run, as reference
    full = store.crop_dataset(chips, out=tmp_path / "full", frames=1, size=24, label="fake",
                              workers=1)
    assert full.faces_found == 3 and full.new_crops == 3

    # rerunning adds nothing and leaves the manifest byte-identical
    before = (tmp_path / "full" / "manifest.csv").read_bytes()
    again = store.crop_dataset(chips, out=tmp_path / "full", frames=1, size=24,
                               label="fake", workers=1)
    assert (again.already_done, again.new_crops, again.faces_found) == (3, 0, 3)
    assert (tmp_path / "full" / "manifest.csv").read_bytes() == before

    # a run killed on its second file keeps the first, and a rerun completes it
    real_crop_sample = store._crop_sample
    calls = []

    def dying(task):
        calls.append(task)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_crop_sample(task)

    monkeypatch.setattr(store, "_crop_sample", dying)
    with pytest.raises(KeyboardInterrupt):
        store.crop_dataset(chips, out=tmp_path / "part", frames=1, size=24, label="fake",
                           workers=1)
    assert len(store.read_manifest(tmp_path / "part")) == 1
    monkeypatch.setattr(store, "_crop_sample", real_crop_sample)
    rest = store.crop_dataset(chips, out=tmp_path / "part", frames=1, size=24, label="fake",
                              workers=1)
    assert (rest.already_done, rest.new_crops) == (1, 2)
    key = lambda r: r["video_id"]  # noqa: E731
    assert (sorted(store.read_manifest(tmp_path / "part"), key=key)
            == sorted(store.read_manifest(tmp_path / "full"), key=key))
    for row in store.read_manifest(tmp_path / "full"):
        assert ((tmp_path / "part" / row["crop_path"]).read_bytes()
                == (tmp_path / "full" / row["crop_path"]).read_bytes())


def _face_video_folder(tmp_path, shared_data):
    """A folder holding face.mp4: six frames of a real face chip, 200 x 200."""
    chip = cv2.imread(str(shared_data / "faces" / CHIPS[0]))
    data = tmp_path / "vids"
    data.mkdir()
    writer = cv2.VideoWriter(str(data / "face.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10,
                             (200, 200))
    for _ in range(6):
        writer.write(chip)
    writer.release()
    return data


def test_crop_dataset_notes_frames_that_fail_to_decode(tmp_path, shared_data, monkeypatch):
    from dfdetect.data import video

    data = _face_video_folder(tmp_path, shared_data)

    real_iter_frames = video.iter_frames

    def losing_last(path, indices, max_side=None, expect_total=None):  # a frame that breaks
        return real_iter_frames(path, list(indices)[:-1], max_side=max_side,
                                expect_total=expect_total)

    monkeypatch.setattr(video, "iter_frames", losing_last)
    summary = store.crop_dataset(data, out=tmp_path / "out", frames=3, size=32, label="fake",
                                 workers=1)
    path = str(data / "face.mp4")
    assert summary.notes == {path: "1 of 3 sampled frames failed to decode"}
    assert (summary.frames_sampled, summary.frames_undecodable, summary.new_crops) == (3, 1, 2)
    assert summary.skipped_files == {}
    rows = store.read_manifest(tmp_path / "out")
    assert [(r["frame_index"], r["label"]) for r in rows] == [(0, 1), (3, 1)]  # of 0, 3, 5
    assert f"  {path}: 1 of 3 sampled frames failed to decode" in summary.report()


@pytest.mark.parametrize("claimed", [9, 4])
def test_crop_dataset_samples_over_the_true_count_when_the_container_lies(
        tmp_path, shared_data, monkeypatch, claimed):
    import dataclasses

    from dfdetect.data import video

    data = _face_video_folder(tmp_path, shared_data)
    real_probe = video.probe_video

    def lying_probe(path, verify_count=True):
        info = real_probe(path, verify_count=verify_count)
        return info if verify_count else dataclasses.replace(info, frame_count=claimed)

    monkeypatch.setattr(video, "probe_video", lying_probe)
    summary = store.crop_dataset(data, out=tmp_path / "out", frames=3, size=32, label="real",
                                 workers=1)
    assert (summary.frames_sampled, summary.new_crops, summary.notes) == (3, 3, {})
    rows = store.read_manifest(tmp_path / "out")
    assert [r["frame_index"] for r in rows] == video.sample_indices(6, 3).tolist() == [0, 3, 5]


def test_crop_dataset_rejects_bad_arguments(tmp_path, chips):
    with pytest.raises(DataError, match="--frames"):
        store.crop_dataset(chips, out=tmp_path / "o", frames=0, label="real")
    with pytest.raises(DataError, match="flat folder"):
        store.crop_dataset(chips, out=tmp_path / "o", frames=2)  # no label


def test_real_videos_closeups_have_faces_cartoon_is_skipped(tmp_path, shared_data):
    videos = shared_data / "videos"
    data = tmp_path / "videos"
    data.mkdir()
    closeups = ["closeup_d0.mp4", "closeup_d18.mp4", "closeup_d20.mp4",
                "closeup_pexels_woman.mp4", "closeup_single_face.mp4",
                "closeup_talking_head.mp4"]
    names = closeups + ["noface_cartoon.mp4"]
    for name in names:
        os.symlink(videos / name, data / name)
    frames = 4
    summary = store.crop_dataset(data, layout="folder", out=tmp_path / "out", frames=frames,
                                 size=32, label="real", workers=2)
    per_video = Counter(r["video_id"] for r in store.read_manifest(tmp_path / "out"))
    for name in names[:-1]:
        assert per_video[Path(name).stem] >= 0.9 * frames, (name, per_video)
    cartoon = str(data / "noface_cartoon.mp4")
    assert summary.skipped_files == {cartoon: f"0 faces in {frames} sampled frames, skipped"}
    assert f"{cartoon}: 0 faces in {frames} sampled frames, skipped" in summary.report()
    assert "noface_cartoon" not in per_video


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


# --------------------------------------------------------------------------- CLI

def test_cli_wrong_layout_exits_2_with_one_line(tmp_path):
    folder = tmp_path / "not_ffpp"
    folder.mkdir()
    (folder / "readme.txt").write_text("nothing here")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "dfdetect.cli", "data", "crop", str(folder), "--layout",
         "ffpp", "--out", str(tmp_path / "out")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"dfdetect: error: {folder}: ")
    assert "FaceForensics++" in lines[0]
