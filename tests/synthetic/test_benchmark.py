"""Embedded benchmarks: determinism, identity-disjoint splits, masks on fakes only, the
held-out method split, videos, and bad face folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfdetect.data import store
from dfdetect.data.splits import assign_identities
from dfdetect.synthetic import benchmark
from dfdetect.errors import DataError
from dfdetect.scales import get_scale

SMOKE = get_scale("smoke")  # build_benchmark takes sizes, not a preset name


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file of a store except the landmark cache, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "landmarks.npz"}


@pytest.fixture(scope="module")
def images_store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "images"
    benchmark.build_benchmark("images", "procedural", SMOKE, out, seed=3, workers=1,
                              identities=12)
    return out


def test_same_seed_gives_byte_identical_store_whatever_the_workers(images_store, tmp_path):
    again = tmp_path / "again"
    benchmark.build_benchmark("images", "procedural", SMOKE, again, seed=3, workers=2,
                              identities=12)
    a, b = tree_bytes(images_store), tree_bytes(again)
    assert a.keys() == b.keys() and "manifest.csv" in a
    assert all(a[k] == b[k] for k in a)
    other = tmp_path / "other"
    benchmark.build_benchmark("images", "procedural", SMOKE, other, seed=4, workers=1,
                              identities=12)
    c = tree_bytes(other)
    assert sum(a[k] != c.get(k) for k in a if k.startswith("crops/")) > 10


def test_images_are_balanced_pairs_and_splits_never_share_an_identity(images_store):
    rows = store.read_manifest(images_store)
    assert len(rows) == 24
    assert sum(r["label"] for r in rows) == 12
    splits: dict[str, set] = {}
    for r in rows:
        splits.setdefault(r["split"], set()).add(r["identity"])
    assert set(splits) == {"train", "val", "test"}
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not splits[a] & splits[b]
    # every identity has one real and one fake crop, same split
    by_ident: dict[str, list] = {}
    for r in rows:
        by_ident.setdefault(r["identity"], []).append(r)
    assert all(sorted(x["label"] for x in v) == [0, 1] and len({x["split"] for x in v}) == 1
               for v in by_ident.values())
    # swap donors come from the same split
    split_of = {r["identity"]: r["split"] for r in rows}
    for r in rows:
        if r["method"] == "identity_swap":
            assert r["donor"] and r["donor"] != r["identity"]
            assert split_of.get(r["donor"], r["split"]) == r["split"]


def check_masks_and_differences(root: Path, min_peak: int, ratio: float) -> None:
    """Masks on fakes only, covering the face; a fake differs from its real mostly inside
    its mask (``ratio`` x the difference outside, where only the finish differs)."""
    rows = store.read_manifest(root)
    assert {r["method"] for r in rows if r["label"] == 1} == {"self_blend", "identity_swap"}
    crops = {}
    for r in rows:
        img = cv2.imread(str(root / r["crop_path"]))
        assert img.shape == (64, 64, 3)
        crops[(r["identity"], r["label"])] = img
        if r["label"] == 0:
            assert r["mask_path"] == "" and r["method"] == "real"
        else:
            mask = cv2.imread(str(root / r["mask_path"]), cv2.IMREAD_GRAYSCALE)
            assert mask.shape == (64, 64) and mask.max() > min_peak
            # the mask covers the face, not the whole crop
            assert 0.05 < (mask > mask.max() / 2).mean() < 0.8
    for r in rows:
        if r["label"] == 1:
            mask = cv2.imread(str(root / r["mask_path"]), cv2.IMREAD_GRAYSCALE)
            diff = np.abs(crops[(r["identity"], 1)].astype(int)
                          - crops[(r["identity"], 0)].astype(int)).sum(2)
            inside, outside = diff[mask > mask.max() / 2].mean(), diff[mask == 0].mean()
            assert inside > ratio * outside + 1, (r["video_id"], inside, outside)


def test_masks_only_on_fakes_and_fakes_differ_from_their_real_near_the_face(images_store):
    check_masks_and_differences(images_store, min_peak=100, ratio=2.0)


def test_generator_v3_store_sbi_pairs_recorded_and_not_mixed(tmp_path):
    out = tmp_path / "g3"
    summary = benchmark.build_benchmark("images", "procedural", SMOKE, out, seed=3, workers=1,
                                        identities=12, generator=3)
    assert benchmark.store_generator_version(out) == 3 and "generator v3" in summary.report()
    # SBI blends at ratios down to 0.25 (the mask holds the alpha, >= ~64 of 255) and JPEG
    # goes down to q40 on both sides: subtler, but the change still sits in the mask
    check_masks_and_differences(out, min_peak=50, ratio=1.5)
    with pytest.raises(DataError, match="generator version 3, this build asks for version 2"):
        benchmark.build_benchmark("images", "procedural", SMOKE, out, seed=3, workers=1,
                                  identities=12)
    with pytest.raises(DataError, match="unknown forgery generator version 9"):
        benchmark.build_benchmark("images", "procedural", SMOKE, tmp_path / "g9", seed=3,
                                  workers=1, identities=12, generator=9)


def test_a_completed_build_is_reused_not_redone(images_store):
    summary = benchmark.build_benchmark("images", "procedural", SMOKE, images_store,
                                        seed=3, workers=1, identities=12)
    assert summary.new_items == 0 and summary.already_done == 12
    assert (images_store / benchmark.COMPLETE_MARKER).is_file()
    assert "24 crops" in summary.report()


def test_a_store_of_another_generator_version_is_refused_or_rebuilt(tmp_path, capsys):
    import json

    from dfdetect import experiment
    from dfdetect.synthetic import forge
    from dfdetect.scales import get_scale

    root = tmp_path / "data"
    made = experiment.benchmark_store("images", "procedural", get_scale("smoke"), 5, root=root)
    assert benchmark.store_generator_version(made) == forge.DEFAULT_GENERATOR
    marker = json.loads((made / benchmark.COMPLETE_MARKER).read_text())
    assert marker["generator_version"] == forge.DEFAULT_GENERATOR
    # another version lives beside it, named for it
    g3 = experiment.benchmark_store("images", "procedural", get_scale("smoke"), 5, root=root,
                                    generator=3)
    assert g3.name == made.name + "-g3" and benchmark.store_generator_version(g3) == 3
    # a store from before versions were recorded: crops and a manifest, no version file
    (made / benchmark.GENERATOR_FILE).unlink()
    assert benchmark.store_generator_version(made) == 1
    stale = made / "crops" / "stale.png"
    stale.write_bytes(b"old")
    with pytest.raises(DataError, match=f"generator version 1, this build asks for version "
                                        f"{forge.DEFAULT_GENERATOR}"):
        benchmark.build_benchmark("images", "procedural", SMOKE, made, seed=5, workers=1)
    # dfdetect's own data folder: rebuilt from scratch, nothing old kept
    again = experiment.benchmark_store("images", "procedural", get_scale("smoke"), 5, root=root)
    assert again == made and not stale.exists()
    assert "made by forgery generator version 1" in capsys.readouterr().out
    assert benchmark.store_generator_version(made) == forge.DEFAULT_GENERATOR
    assert (made / benchmark.COMPLETE_MARKER).is_file()
    assert benchmark.store_generator_version(tmp_path / "nothing") is None


def test_holdout_method_lives_only_in_the_cross_split(tmp_path):
    out = tmp_path / "cross"
    summary = benchmark.build_benchmark("images", "procedural", SMOKE, out, seed=0,
                                        workers=1, identities=16, holdout_method="swap")
    assert summary.holdout_method == "identity_swap"
    rows = store.read_manifest(out)
    fakes = [r for r in rows if r["label"] == 1]
    assert {r["method"] for r in fakes if r["split"] == benchmark.CROSS_SPLIT} == {
        "identity_swap"}
    assert {r["method"] for r in fakes if r["split"] != benchmark.CROSS_SPLIT} == {"self_blend"}
    cross = {r["identity"] for r in rows if r["split"] == benchmark.CROSS_SPLIT}
    assert cross and not cross & {r["identity"] for r in rows
                                  if r["split"] != benchmark.CROSS_SPLIT}
    assert {r["label"] for r in rows if r["split"] == benchmark.CROSS_SPLIT} == {0, 1}


def test_procedural_videos_have_clips_of_f_frames_with_per_frame_masks(tmp_path):
    out = tmp_path / "videos"
    benchmark.build_benchmark("videos", "procedural", SMOKE, out, seed=1, workers=1,
                              identities=4, frames=3)
    rows = store.read_manifest(out)
    clips: dict[str, list] = {}
    for r in rows:
        clips.setdefault(r["video_id"], []).append(r)
    assert len(clips) == 8 and all(len(v) == 3 for v in clips.values())
    assert sum(v[0]["label"] for v in clips.values()) == 4
    for vid, frames in clips.items():
        frames.sort(key=lambda r: r["frame_index"])
        imgs = [cv2.imread(str(out / r["crop_path"])).astype(int) for r in frames]
        assert np.abs(imgs[1] - imgs[0]).mean() > 0.5  # the head / camera moves
        if frames[0]["label"] == 1:
            masks = [cv2.imread(str(out / r["mask_path"]), 0).astype(int) for r in frames]
            assert all(m.max() > 100 for m in masks)
            assert np.abs(masks[1] - masks[0]).max() > 10  # the forgery flickers
        else:
            assert all(r["mask_path"] == "" for r in frames)


def copy_faces(shared_data: Path, dest: Path, n: int) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    files = sorted((shared_data / "faces").glob("*.jpg"))[:n]
    return [Path(shutil.copy(f, dest / f.name)) for f in files]


def test_a_folder_with_a_bad_file_builds_and_counts_the_skip(shared_data, tmp_path):
    faces = tmp_path / "faces"
    copy_faces(shared_data, faces, 6)
    (faces / "broken.jpg").write_bytes(b"not an image at all")
    out = tmp_path / "out"
    summary = benchmark.build_benchmark("images", str(faces), SMOKE, out, seed=0, workers=1,
                                        identities=7)
    assert str(faces / "broken.jpg") in summary.skipped_files
    assert "cannot decode" in summary.skipped_files[str(faces / "broken.jpg")]
    rows = store.read_manifest(out)
    assert len(rows) >= 8 and {r["source"] for r in rows} == {"bench-faces"}
    # landmarks are cached for the next build
    assert (out / "landmarks.npz").is_file()


def test_a_folder_without_faces_is_a_clear_data_error(tmp_path):
    faces = tmp_path / "nofaces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(faces / "noise.png"), rng.integers(0, 255, (120, 120, 3), np.uint8))
    cv2.imwrite(str(faces / "flat.png"), np.full((120, 120, 3), 128, np.uint8))
    (faces / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="no usable face"):
        benchmark.build_benchmark("images", str(faces), SMOKE, tmp_path / "o", seed=0,
                                  workers=1)


def test_bad_arguments_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="unknown benchmark"):
        benchmark.build_benchmark("sounds", out=tmp_path)
    with pytest.raises(DataError, match="holdout-method"):
        benchmark.build_benchmark("images", scale=SMOKE, out=tmp_path, holdout_method="morph")
    with pytest.raises(DataError, match="no such face folder"):
        benchmark.build_benchmark("images", str(tmp_path / "missing"), SMOKE, out=tmp_path / "o")
    with pytest.raises(DataError, match="--out"):
        benchmark.build_benchmark("images")


def test_still_photos_become_clips_by_camera_motion(shared_data, tmp_path):
    faces = tmp_path / "faces"
    copy_faces(shared_data, faces, 4)
    out = tmp_path / "v"
    benchmark.build_benchmark("videos", str(faces), SMOKE, out, seed=0, workers=1,
                              identities=3, frames=2)
    rows = store.read_manifest(out)
    assert rows and {len([r for r in rows if r["video_id"] == v])
                     for v in {r["video_id"] for r in rows}} == {2}
    first = [r for r in rows if r["label"] == 0 and r["frame_index"] in (0, 1)][:2]
    a, b = (cv2.imread(str(out / r["crop_path"])).astype(int) for r in first)
    assert np.abs(a - b).mean() > 0.5


def test_split_assignment_is_a_pure_function_of_ids_and_seed():
    ids = [f"id{i}" for i in range(40)]
    a = assign_identities(ids, 0)
    assert a == assign_identities(list(reversed(ids)), 0)
    assert a != assign_identities(ids, 1)
    counts = {s: list(a.values()).count(s) for s in set(a.values())}
    assert counts == {"train": 28, "val": 6, "test": 6}
    three = assign_identities(["a", "b", "c", "d"], 0, holdout=True)
    assert sorted(three.values()) == sorted(["train", "val", "test", "cross"])
