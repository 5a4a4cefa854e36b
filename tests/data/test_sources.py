"""Dataset adapters on tiny layouts written into tmp_path (empty placeholder files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dfdetect.data import sources
from dfdetect.data.sample import Sample
from dfdetect.errors import DataError


def touch(root: Path, *relpaths: str) -> None:
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def by_id(samples) -> dict[str, Sample]:
    return {s.video_id: s for s in samples}


# --------------------------------------------------------------------------- helpers

def test_extension_predicates_are_case_insensitive():
    assert sources.is_video("a/b.MP4") and sources.is_video(Path("x.webm"))
    assert not sources.is_video("x.jpg")
    assert sources.is_image("x.JPEG") and sources.is_image("x.webp")
    assert not sources.is_image("x.mp4") and not sources.is_image("x.txt")
    assert sources.VIDEO_EXTENSIONS.isdisjoint(sources.IMAGE_EXTENSIONS)


def test_adapters_registry_matches_cli_layouts():
    from dfdetect.cli import LAYOUTS

    assert set(sources.ADAPTERS) == set(LAYOUTS)


# --------------------------------------------------------------------------- FF++

def make_ffpp(root: Path, comp: str = "c23") -> None:
    touch(root,
          *(f"original_sequences/youtube/{comp}/videos/{n}.mp4"
            for n in ("071", "054", "100", "200", "300")),
          f"original_sequences/actors/{comp}/videos/01__walk.mp4",
          f"manipulated_sequences/Deepfakes/{comp}/videos/071_054.mp4",
          f"manipulated_sequences/Deepfakes/{comp}/videos/054_071.mp4",
          f"manipulated_sequences/Deepfakes/{comp}/videos/100_200.mp4",
          f"manipulated_sequences/Face2Face/{comp}/videos/200_100.mp4",
          f"manipulated_sequences/Face2Face/{comp}/videos/999_998.mp4",
          f"manipulated_sequences/DeepFakeDetection/{comp}/videos/01_02__walk__ABC.mp4",
          # Masks and other compressions must not leak in.
          f"manipulated_sequences/Deepfakes/masks/videos/071_054.mp4",
          "original_sequences/youtube/c40/videos/071.mp4")


def write_splits(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.json").write_text(json.dumps([["071", "054"]]))
    (folder / "val.json").write_text(json.dumps([["200", "100"]]))
    (folder / "test.json").write_text(json.dumps([["300", "400"]]))


def test_ffpp_labels_methods_and_ids(tmp_path):
    make_ffpp(tmp_path)
    samples = sources.discover(tmp_path, "ffpp")
    ids = by_id(samples)
    assert len(samples) == 12
    assert ids["071"].label == 0 and ids["071"].method == "real"
    assert ids["071"].path.endswith("original_sequences/youtube/c23/videos/071.mp4")
    assert ids["actors__01__walk"].label == 0
    assert ids["Deepfakes__071_054"].label == 1
    assert ids["Deepfakes__071_054"].method == "Deepfakes"
    assert ids["Face2Face__200_100"].method == "Face2Face"
    assert ids["DeepFakeDetection__01_02__walk__ABC"].label == 1
    assert {s.source for s in samples} == {"ffpp"}
    assert {s.split for s in samples} == {""}  # no split files
    assert all("/" not in s.video_id for s in samples)
    assert [s.path for s in samples] == sorted(s.path for s in samples)


def test_ffpp_official_splits_from_root_splits_folder(tmp_path):
    make_ffpp(tmp_path)
    write_splits(tmp_path / "splits")
    ids = by_id(sources.discover(tmp_path, "ffpp"))
    assert ids["071"].split == "train" and ids["054"].split == "train"
    assert ids["100"].split == "val" and ids["200"].split == "val"
    assert ids["300"].split == "test"
    assert ids["Deepfakes__071_054"].split == "train"
    assert ids["Deepfakes__054_071"].split == "train"  # reversed pair
    assert ids["Deepfakes__100_200"].split == "val"  # [200, 100] listed reversed
    assert ids["Face2Face__200_100"].split == "val"
    assert ids["Face2Face__999_998"].split == ""  # in no split file
    assert ids["actors__01__walk"].split == ""


def test_ffpp_splits_dir_argument_and_methods_filter(tmp_path):
    make_ffpp(tmp_path / "ff", comp="c40")
    write_splits(tmp_path / "my_splits")
    samples = sources.discover(tmp_path / "ff", "ffpp", compression="c40",
                               methods="deepfakes", splits_dir=tmp_path / "my_splits")
    assert {s.method for s in samples} == {"real", "Deepfakes"}
    assert "actors__01__walk" not in by_id(samples)  # DFD reals only with DFD fakes
    assert by_id(samples)["Deepfakes__100_200"].split == "val"


def test_ffpp_wrong_layouts(tmp_path):
    with pytest.raises(DataError, match="not a FaceForensics.*original_sequences/youtube/c23"):
        sources.discover(tmp_path, "ffpp")
    assert str(tmp_path) in _message(sources.discover, tmp_path, "ffpp")

    make_ffpp(tmp_path / "ff")
    with pytest.raises(DataError, match="found compressions: c23"):
        sources.discover(tmp_path / "ff", "ffpp", compression="raw")
    with pytest.raises(DataError, match="method NoSuchMethod not found"):
        sources.discover(tmp_path / "ff", "ffpp", methods=["NoSuchMethod"])
    with pytest.raises(DataError, match="does not exist"):
        sources.discover(tmp_path / "missing", "ffpp")


def test_ffpp_bad_split_files(tmp_path):
    make_ffpp(tmp_path)
    splits = tmp_path / "splits"
    write_splits(splits)
    (splits / "val.json").write_text("[[\"071\", ")
    msg = _message(sources.discover, tmp_path, "ffpp")
    assert str(splits / "val.json") in msg and "bad JSON" in msg

    (splits / "val.json").write_text(json.dumps([["071", "054", "x"]]))
    assert "expected a pair" in _message(sources.discover, tmp_path, "ffpp")

    (splits / "val.json").write_text(json.dumps([["054", "999"]]))  # 054 also in train
    assert "in both" in _message(sources.discover, tmp_path, "ffpp")

    empty = tmp_path / "empty_splits"
    empty.mkdir()
    msg = _message(sources.discover, tmp_path, "ffpp", splits_dir=empty)
    assert "split file missing" in msg and str(empty) in msg


# --------------------------------------------------------------------------- Celeb-DF

def make_celebdf(root: Path, test_lines: list[str]) -> None:
    touch(root, "Celeb-real/id0_0000.mp4", "Celeb-real/id0_0001.mp4",
          "YouTube-real/00000.mp4", "Celeb-synthesis/id0_id1_0000.mp4",
          "Celeb-synthesis/id0_id1_0001.mp4", "Celeb-synthesis/notes.txt")
    (root / "List_of_testing_videos.txt").write_text("\n".join(test_lines) + "\n")


def test_celebdf_flips_labels_and_assigns_test_split(tmp_path):
    make_celebdf(tmp_path, ["1 Celeb-real/id0_0000.mp4", "0 Celeb-synthesis/id0_id1_0000.mp4",
                            "1 YouTube-real/00000.mp4", ""])
    samples = sources.discover(tmp_path, "celebdf")
    ids = by_id(samples)
    assert len(samples) == 5
    assert ids["Celeb-real__id0_0000"].label == 0
    assert ids["Celeb-real__id0_0000"].split == "test"
    assert ids["Celeb-real__id0_0001"].split == "train"
    assert ids["YouTube-real__00000"].label == 0 and ids["YouTube-real__00000"].split == "test"
    fake = ids["Celeb-synthesis__id0_id1_0000"]
    assert (fake.label, fake.split, fake.method) == (1, "test", "celeb-synthesis")
    assert ids["Celeb-synthesis__id0_id1_0001"].split == "train"
    assert samples.skipped == {}


def test_celebdf_label_mismatch_names_the_line(tmp_path):
    # A list written in our convention (1 = fake) contradicts the folders.
    make_celebdf(tmp_path, ["0 Celeb-real/id0_0000.mp4", "1 Celeb-synthesis/id0_id1_0000.mp4"])
    msg = _message(sources.discover, tmp_path, "celebdf")
    assert f"{tmp_path / 'List_of_testing_videos.txt'}:1:" in msg
    assert "Celeb-real/id0_0000.mp4" in msg and "\n" not in msg


def test_celebdf_missing_listed_video_is_counted(tmp_path):
    make_celebdf(tmp_path, ["1 Celeb-real/id0_0000.mp4", "0 Celeb-synthesis/gone.mp4"])
    samples = sources.discover(tmp_path, "celebdf")
    assert len(samples) == 5
    assert samples.skipped == {"missing": 1}
    assert samples.skipped_paths[0].endswith("gone.mp4")


def test_celebdf_wrong_layouts(tmp_path):
    msg = _message(sources.discover, tmp_path, "celebdf")
    assert str(tmp_path) in msg and "Celeb-synthesis/" in msg
    make_celebdf(tmp_path, ["yes Celeb-real/id0_0000.mp4"])
    assert "expected '<0|1> <folder>/<file>.mp4'" in _message(sources.discover, tmp_path,
                                                             "celebdf")


# --------------------------------------------------------------------------- OpenForensics

def test_openforensics_splits_and_case_insensitive_folders(tmp_path):
    touch(tmp_path, "Train/Real/real_0.jpg", "Train/Fake/fake_0.jpg",
          "validation/real/real_0.png", "validation/fake/fake_0.jpg",
          "Test/Real/real_0.jpg", "Test/FAKE/fake_0.JPG", "Test/FAKE/readme.txt",
          "Test/Real/clip.mp4")
    samples = sources.discover(tmp_path, "openforensics")
    assert len(samples) == 6
    assert sorted({s.split for s in samples}) == ["test", "train", "val"]
    ids = by_id(samples)
    assert ids["train__real__real_0"].label == 0
    assert ids["validation__real__real_0"].split == "val"
    fake = ids["test__fake__fake_0"]
    assert (fake.label, fake.split, fake.method) == (1, "test", "openforensics")
    assert len(ids) == len(samples)  # reused stems across splits stay unique


def test_openforensics_wrong_layouts(tmp_path):
    msg = _message(sources.discover, tmp_path, "openforensics")
    assert str(tmp_path) in msg and "Validation/" in msg
    (tmp_path / "Train" / "Other").mkdir(parents=True)
    msg = _message(sources.discover, tmp_path, "openforensics")
    assert str(tmp_path / "Train") in msg and "Real/" in msg


# --------------------------------------------------------------------------- DFDC

def write_meta(part: Path, meta: dict) -> None:
    part.mkdir(parents=True, exist_ok=True)
    (part / "metadata.json").write_text(json.dumps(meta))


def test_dfdc_folder_of_parts_with_missing_file(tmp_path):
    write_meta(tmp_path / "dfdc_train_part_0", {
        "aaa.mp4": {"label": "REAL", "split": "train", "original": None},
        "bbb.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},
        "gone.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},
    })
    write_meta(tmp_path / "dfdc_train_part_1", {
        "aaa.mp4": {"label": "FAKE", "split": "validation", "original": "x.mp4"},
        "ccc.mp4": {"label": "REAL", "split": "something"},
    })
    touch(tmp_path, "dfdc_train_part_0/aaa.mp4", "dfdc_train_part_0/bbb.mp4",
          "dfdc_train_part_0/unlisted.mp4", "dfdc_train_part_1/aaa.mp4",
          "dfdc_train_part_1/ccc.mp4")
    samples = sources.discover(tmp_path, "dfdc")
    ids = by_id(samples)
    assert sorted(ids) == ["dfdc_train_part_0__aaa", "dfdc_train_part_0__bbb",
                           "dfdc_train_part_1__aaa", "dfdc_train_part_1__ccc"]
    assert ids["dfdc_train_part_0__aaa"].label == 0
    assert ids["dfdc_train_part_0__bbb"].label == 1
    assert ids["dfdc_train_part_0__bbb"].method == "dfdc"
    assert ids["dfdc_train_part_0__aaa"].split == "train"
    assert ids["dfdc_train_part_1__aaa"].split == "val"
    assert ids["dfdc_train_part_1__ccc"].split == ""
    assert samples.skipped == {"missing": 1} and samples.n_skipped == 1
    assert samples.skipped_paths == [str(tmp_path / "dfdc_train_part_0" / "gone.mp4")]


def test_dfdc_single_part_root(tmp_path):
    part = tmp_path / "dfdc_train_part_7"
    write_meta(part, {"x.mp4": {"label": "fake", "split": "train"}})
    touch(part, "x.mp4")
    samples = sources.discover(part, "dfdc")
    assert [(s.video_id, s.label) for s in samples] == [("dfdc_train_part_7__x", 1)]


def test_dfdc_wrong_layouts(tmp_path):
    msg = _message(sources.discover, tmp_path, "dfdc")
    assert str(tmp_path) in msg and "metadata.json" in msg

    part = tmp_path / "dfdc_train_part_0"
    part.mkdir()
    (part / "metadata.json").write_text("{not json")
    msg = _message(sources.discover, tmp_path, "dfdc")
    assert str(part / "metadata.json") in msg and "bad JSON" in msg

    write_meta(part, {"a.mp4": {"label": "MAYBE"}})
    assert "expected label REAL or FAKE" in _message(sources.discover, tmp_path, "dfdc")

    write_meta(part, {"a.mp4": {"label": "REAL"}})  # every listed file missing
    assert "no samples found" in _message(sources.discover, tmp_path, "dfdc")


# --------------------------------------------------------------------------- folder

def test_folder_real_fake(tmp_path):
    touch(tmp_path, "real/a.jpg", "real/b.mp4", "fake/c.PNG", "fake/d.webm",
          "fake/notes.txt", "fake/.hidden.jpg")
    samples = sources.discover(tmp_path, "folder")
    assert [(s.video_id, s.label, s.split) for s in samples] == [
        ("c", 1, ""), ("d", 1, ""), ("a", 0, ""), ("b", 0, "")]
    assert {s.method for s in samples if s.label} == {"fake"}
    assert {s.source for s in samples} == {"folder"}


def test_folder_with_splits(tmp_path):
    touch(tmp_path, "train/real/a.jpg", "train/fake/b.jpg", "Val/Real/c.jpg",
          "test/fake/d.mp4")
    ids = by_id(sources.discover(tmp_path, "folder"))
    assert {k: (s.split, s.label) for k, s in ids.items()} == {
        "a": ("train", 0), "b": ("train", 1), "c": ("val", 0), "d": ("test", 1)}


def test_folder_flat_with_label_and_single_file(tmp_path):
    touch(tmp_path, "flat/x.jpg", "flat/y.mov", "flat/z.txt")
    samples = sources.discover(tmp_path / "flat", "folder", label="fake")
    assert [(s.video_id, s.label, s.split) for s in samples] == [("x", 1, ""), ("y", 1, "")]

    one = sources.discover(tmp_path / "flat" / "y.mov", "folder", label="real",
                           source="mine")
    assert one == [Sample(str(tmp_path / "flat" / "y.mov"), 0, "y", "", "mine", "real")]


def test_folder_errors(tmp_path):
    touch(tmp_path, "flat/x.jpg", "flat/notes.txt")
    msg = _message(sources.discover, tmp_path / "flat", "folder")
    assert str(tmp_path / "flat") in msg and "--label" in msg and "real/" in msg

    msg = _message(sources.discover, tmp_path / "flat" / "notes.txt", "folder", label="real")
    assert "not an image or a video" in msg

    assert "label must be" in _message(sources.discover, tmp_path / "flat", "folder",
                                       label="maybe")

    touch(tmp_path, "dup/real/same.jpg", "dup/fake/same.mp4")
    msg = _message(sources.discover, tmp_path / "dup", "folder")
    assert str(tmp_path / "dup" / "fake" / "same.mp4") in msg
    assert str(tmp_path / "dup" / "real" / "same.jpg") in msg

    (tmp_path / "empty" / "real").mkdir(parents=True)
    assert "no samples found" in _message(sources.discover, tmp_path / "empty", "folder")

    touch(tmp_path, "labelled/real/a.jpg")
    assert "--label applies only" in _message(sources.discover, tmp_path / "labelled",
                                              "folder", label="fake")


def test_discover_rejects_unknown_layout_and_stray_label(tmp_path):
    assert "unknown layout" in _message(sources.discover, tmp_path, "nope")
    assert "--label applies only to the folder layout" in _message(
        sources.discover, tmp_path, "dfdc", label="real")


def _message(func, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        func(*args, **kwargs)
    return str(info.value)
