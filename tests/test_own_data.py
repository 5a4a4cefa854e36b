"""A user's own videos to a trained detector in three commands (issue 32, item 2).

``dfdetect data crop mine/ --out stores/mine`` -> ``dfdetect train meso4 --data
stores/mine --out mine.keras`` -> ``dfdetect evaluate mine.keras stores/mine --split
test``: the crop gives videos without a split one (by video or identity, stratified,
seeded, recorded), so training no longer stops at "the store has no train split".
"""

import json

import pytest

from dfdetect import cli
from dfdetect.data import splits, store
from dfdetect.data.crop import crop_dataset
from test_predict import face_frames, write_video


def run(capsys, *argv):
    """(exit code, stdout lines, stderr lines) of ``dfdetect argv...`` in-process."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def mine(root, named: bool = False, n: int = 3):
    """``n`` real and ``n`` fake tiny videos (4 frames of a procedural face, 160 px):
    under ``real/`` and ``fake/``, or side by side named ``..._real_...``/``..._fake_...``."""
    for label in ("real", "fake"):
        for i in range(n):
            folder = root if named else root / label
            folder.mkdir(parents=True, exist_ok=True)
            name = f"clip{i}_{label}_{i}.mp4" if named else f"{label}{i}.mp4"
            seed = i + (10 if label == "fake" else 3)  # seeds whose faces HOG finds
            write_video(folder / name, face_frames(4, seed=seed))
    return root


def crop(capsys, source, out, *extra):
    return run(capsys, "data", "crop", source, "--out", out, "--frames", "2", "--size", "32",
               "--workers", "1", *extra)


def videos_by_split(root):
    """split -> sorted (label, video_id) of the store's videos."""
    seen = {}
    for row in store.read_manifest(root):
        seen.setdefault(row["split"], set()).add((row["label"], row["video_id"]))
    return {split: sorted(v) for split, v in seen.items()}


def test_own_videos_to_a_trained_detector_in_three_commands(capsys, tmp_path):
    data, stores = mine(tmp_path / "mine"), tmp_path / "stores" / "mine"
    model, ev = tmp_path / "mine.keras", tmp_path / "ev"

    # 1. crop: every video gets a split, one real and one fake in each
    code, out, err = crop(capsys, data, stores)
    assert code == 0 and err == [], err
    assert any(line.startswith("splits: videos per split: train 2 (1 real, 1 fake), val 2 "
                               "(1 real, 1 fake), test 2 (1 real, 1 fake) (videos without a "
                               "split assigned by video, seed 0, train/val/test 0.8/0.1/0.1)")
               for line in out), out
    assert not any(line.startswith("warning:") for line in out), out
    by_split = videos_by_split(stores)
    assert set(by_split) == {"train", "val", "test"}
    assert all(sorted(label for label, _ in v) == [0, 1] for v in by_split.values())
    recorded = json.loads((stores / "crop.json").read_text())
    assert recorded["splits"] == {"by": "video", "fractions": [0.8, 0.1, 0.1], "seed": 0}

    # 2. train: progress lines with the validation metrics of each epoch
    code, out, err = run(capsys, "train", "meso4", "--data", stores, "--epochs", "1",
                         "--batch-size", "4", "--out", model)
    assert code == 0 and err == [], err
    epoch = [line for line in out if line.startswith("epoch 1/1: loss ")]
    assert epoch and "val_loss" in epoch[0] and "val_auc" in epoch[0], out
    assert str(model) in out[-1] and "val AUC" in out[-1]

    # 3. evaluate on the held-out split: one real, one fake, each named once
    code, out, err = run(capsys, "evaluate", model, stores, "--split", "test", "--out", ev)
    assert code == 0 and err == [], err
    assert out[-1].startswith("mine: 2 videos (1 real, 1 fake): video AUC "), out
    rows = (ev / "scores.csv").read_text().splitlines()[1:]
    assert len(rows) == 2 and len({row.split(",")[0] for row in rows}) == 2


def test_names_give_labels_and_a_rerun_keeps_the_splits(capsys, tmp_path):
    data, out = mine(tmp_path / "flat", named=True), tmp_path / "S"
    code, lines, err = crop(capsys, data, out)
    assert code == 0 and err == [], err
    rows = store.read_manifest(out)
    assert {(r["video_id"].split("_")[1], r["label"]) for r in rows} == {("real", 0),
                                                                         ("fake", 1)}
    first = videos_by_split(out)
    # A rerun (nothing new to crop) keeps every split; other ratios are refused.
    assert crop(capsys, data, out)[0] == 0 and videos_by_split(out) == first
    code, lines, err = crop(capsys, data, out, "--split-ratios", "0.5,0.25,0.25")
    assert code == 2 and len(err) == 1
    assert "splits were assigned with --split-ratios 0.8,0.1,0.1 --split-seed 0; this run " \
           "asks --split-ratios 0.5,0.25,0.25 --split-seed 0" in err[0], err
    # another seed: another assignment, same counts
    other = tmp_path / "S2"
    assert crop(capsys, data, other, "--split-seed", "7")[0] == 0
    assert {k: len(v) for k, v in videos_by_split(other).items()} == \
           {k: len(v) for k, v in first.items()}


def test_a_store_cropped_without_splits_gets_them_on_a_rerun(capsys, tmp_path):
    data, out = mine(tmp_path / "mine", n=2), tmp_path / "S"
    crop_dataset(data, out=out, frames=1, size=32, workers=1, progress=False)
    assert {r["split"] for r in store.read_manifest(out)} == {""}
    code, lines, err = crop(capsys, data, out, "--frames", "1")
    assert code == 0 and err == [], err
    # two videos a class: one to train, one to val, none to test
    assert {k: len(v) for k, v in videos_by_split(out).items()} == {"train": 2, "val": 2}


def test_identities_keep_a_person_in_one_split():
    # FF++ 000_003 shows 000 and 003: the two reals and both fakes stay together
    members = {"000": ("ffpp/000",), "003": ("ffpp/003",), "000_003": ("ffpp/000", "ffpp/003"),
               "003_000": ("ffpp/003", "ffpp/000"), "111": ("ffpp/111",), "noid": ()}
    groups = splits.split_groups(members)
    assert {groups[v] for v in ("000", "003", "000_003", "003_000")} == {"ffpp/000"}
    assert groups["111"] == "ffpp/111" and groups["noid"] == "noid"
    labels = {f"g{i}": {i % 2} for i in range(40)}
    assigned = splits.assign_groups(labels, seed=3)
    assert assigned == splits.assign_groups(labels, seed=3)  # seeded
    counts = {s: sum(v == s for v in assigned.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 32, "val": 4, "test": 4}
    with pytest.raises(ValueError, match="summing to 1"):
        splits.assign_groups(labels, fractions=(0.5, 0.1, 0.1))


def test_ffpp_without_split_files_is_split_by_identity(capsys, tmp_path):
    from test_bad_inputs import _ffpp

    root = _ffpp(tmp_path / "ffpp", None)
    code, lines, err = crop(capsys, root, tmp_path / "S", "--layout", "ffpp", "--frames", "1")
    assert code == 0 and err == [], err
    assert f"note: no {root / 'splits'} folder with FaceForensics++'s train.json, val.json " \
           "and test.json: the official splits are not used" in lines
    # 000 and its fake 000_001 show the same person: one group, so both go to train
    assert videos_by_split(tmp_path / "S") == {"train": [(0, "000"), (1, "Deepfakes__000_001")]}
    assert any("assigned by identity" in line for line in lines)
    assert "warning: no val split: 'dfdetect train' keeps every epoch and reports no val " \
           "AUC; add videos or raise the val ratio" in lines
