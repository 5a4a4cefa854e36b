"""``dfdetect train``: a registered model trained on a store, exported, then evaluated."""

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dfdetect import cli

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    """(exit code, stdout lines, stderr lines) of ``dfdetect argv...`` in-process."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_train_help_is_fast_and_starts_no_tensorflow():
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "dfdetect.cli", "train", "--help"],
                          capture_output=True, text=True, cwd=REPO)
    seconds = time.monotonic() - started
    assert done.returncode == 0 and "MODEL_NAME" in done.stdout and "--data" in done.stdout
    assert "tensorflow" not in done.stderr.lower() and "absl" not in done.stderr
    assert seconds < 2, seconds


def test_train_then_evaluate(capsys, smoke_image_store, tmp_path):
    from dfdetect.models.export import read_metadata

    model = tmp_path / "tmp" / "m.keras"
    log = tmp_path / "train.log"
    # As a user runs it in the background: stdout and stderr to a log file.
    with open(log, "w") as handle:
        done = subprocess.run(
            [sys.executable, "-m", "dfdetect.cli", "train", "meso4", "--data",
             str(smoke_image_store), "--epochs", "1", "--image-size", "32",
             "--batch-size", "16", "--out", str(model)],
            stdout=handle, stderr=subprocess.STDOUT, cwd=REPO, timeout=600)
    text = log.read_text()
    assert done.returncode == 0, text
    lines = text.splitlines()
    assert any(line.startswith("epoch 1/1: loss ") and "val_loss" in line for line in lines), text
    assert "val AUC" in lines[-1] and str(model) in lines[-1], text
    assert "\r" not in text  # no progress bar redrawn in a log file

    meta = read_metadata(model)
    assert meta["experiment"] == "train" and meta["config"] == "meso4"
    assert meta["image_size"] == 32 and meta["threshold"] == 0.5
    assert meta["input_shape"] == [32, 32, 3] and meta["kind"] == "image"
    assert "val_auc" in meta

    ev = tmp_path / "tmp" / "ev"
    code, out, err = run(capsys, "evaluate", model, smoke_image_store / "manifest.csv",
                         "--split", "test", "--out", ev)
    assert code == 0, err
    assert (ev / "metrics.csv").is_file() and (ev / "scores.csv").is_file()
    assert out[-1].startswith("m: ")


@pytest.fixture()
def store_without_train(smoke_image_store, tmp_path):
    """A copy of the smoke store's manifest holding only its test rows."""
    with open(smoke_image_store / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    root = tmp_path / "test-only"
    root.mkdir()
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["split"] == "test")
    return root


@pytest.mark.parametrize("case, expect", [
    ("missing store", "store not found"),
    ("no train split", "no train split"),
    ("unknown model", "unknown model 'mesonet9': choose one of meso4, mesoinception4"),
    ("default_detector", "make detector"),
    ("video model", "convlstm_cbam cannot be built from its name"),
    ("sequence model", "pose_lstm does not build as an image model"),
    ("unwritable out", "m.keras"),
    ("not .keras", "must end in .keras"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, smoke_image_store, store_without_train,
                                          tmp_path, case, expect):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    args = {"name": "meso4", "data": smoke_image_store, "out": tmp_path / "m.keras"}
    args.update({
        "missing store": {"data": tmp_path / "no-such-store"},
        "no train split": {"data": store_without_train},
        "unknown model": {"name": "mesonet9"},
        "default_detector": {"name": "default_detector"},
        "video model": {"name": "convlstm_cbam"},
        "sequence model": {"name": "pose_lstm"},
        "unwritable out": {"out": blocker / "m.keras"},  # its folder is a file
        "not .keras": {"out": tmp_path / "m.h5"},
    }[case])
    code, out, err = run(capsys, "train", args["name"], "--data", args["data"],
                         "--epochs", "1", "--image-size", "32", "--out", args["out"])
    assert code == 2
    assert len(err) == 1 and err[0].startswith("dfdetect: error: "), err
    assert expect in err[0], err
    assert not any(p.suffix == ".keras" for p in tmp_path.iterdir())
