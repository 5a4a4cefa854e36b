"""dfdetect.data.crop (``dfdetect data crop``): counts, resume, bad files, the CLI.

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

from dfdetect.data import crop, store
from dfdetect.errors import DataError

REPO = Path(__file__).resolve().parents[2]
CHIPS = ("100_1_0_20170110183726390.jpg.chip.jpg", "10_0_0_20170110225537307.jpg.chip.jpg",
         "10_1_0_20170103200654246.jpg.chip.jpg")


@pytest.fixture
def chips(tmp_path, shared_data):
    """A flat folder of three real UTKFace chips (one face each)."""
    folder = tmp_path / "chips"
    folder.mkdir()
    for name in CHIPS:
        shutil.copy(shared_data / "faces" / name, folder / (name.split(".")[0] + ".jpg"))
    return folder


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

    summary = crop.crop_dataset(data, layout="folder", out=tmp_path / "out", frames=2,
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
    full = crop.crop_dataset(chips, out=tmp_path / "full", frames=1, size=24, label="fake",
                              workers=1)
    assert full.faces_found == 3 and full.new_crops == 3

    # rerunning adds nothing and leaves the manifest byte-identical
    before = (tmp_path / "full" / "manifest.csv").read_bytes()
    again = crop.crop_dataset(chips, out=tmp_path / "full", frames=1, size=24,
                               label="fake", workers=1)
    assert (again.already_done, again.new_crops, again.faces_found) == (3, 0, 3)
    assert (tmp_path / "full" / "manifest.csv").read_bytes() == before

    # a run killed on its second file keeps the first, and a rerun completes it
    real_crop_sample = crop._crop_sample
    calls = []

    def dying(task):
        calls.append(task)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_crop_sample(task)

    monkeypatch.setattr(crop, "_crop_sample", dying)
    with pytest.raises(KeyboardInterrupt):
        crop.crop_dataset(chips, out=tmp_path / "part", frames=1, size=24, label="fake",
                           workers=1)
    assert len(store.read_manifest(tmp_path / "part")) == 1
    monkeypatch.setattr(crop, "_crop_sample", real_crop_sample)
    rest = crop.crop_dataset(chips, out=tmp_path / "part", frames=1, size=24, label="fake",
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
    summary = crop.crop_dataset(data, out=tmp_path / "out", frames=3, size=32, label="fake",
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
    summary = crop.crop_dataset(data, out=tmp_path / "out", frames=3, size=32, label="real",
                                 workers=1)
    assert (summary.frames_sampled, summary.new_crops, summary.notes) == (3, 3, {})
    rows = store.read_manifest(tmp_path / "out")
    assert [r["frame_index"] for r in rows] == video.sample_indices(6, 3).tolist() == [0, 3, 5]


def test_crop_dataset_rejects_bad_arguments(tmp_path, chips):
    with pytest.raises(DataError, match="--frames"):
        crop.crop_dataset(chips, out=tmp_path / "o", frames=0, label="real")
    with pytest.raises(DataError, match="flat folder"):
        crop.crop_dataset(chips, out=tmp_path / "o", frames=2)  # no label


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
    summary = crop.crop_dataset(data, layout="folder", out=tmp_path / "out", frames=frames,
                                 size=32, label="real", workers=2)
    per_video = Counter(r["video_id"] for r in store.read_manifest(tmp_path / "out"))
    for name in names[:-1]:
        assert per_video[Path(name).stem] >= 0.9 * frames, (name, per_video)
    cartoon = str(data / "noface_cartoon.mp4")
    assert summary.skipped_files == {cartoon: f"0 faces in {frames} sampled frames, skipped"}
    assert f"{cartoon}: 0 faces in {frames} sampled frames, skipped" in summary.report()
    assert "noface_cartoon" not in per_video


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
