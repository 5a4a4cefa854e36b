"""Bad input and faults, as a hostile user would try them (issue 22): the table.

Each row runs ``dfdetect ...`` in-process and asserts the promise README makes: exit
code 2, exactly one stderr line ``dfdetect: error: <the file>: ...`` (no traceback),
and nothing the user had is changed or gone (the fixture's files are hashed before
and after every row). Rows marked ``was broken`` gave a traceback or did the wrong
thing silently before issue 22; the others already worked and must keep working.
After the table: the JSON fallback, ``--verbose``, unique explain names, and the fault
tests (a full disk during a crop and during a results-table append).
"""

import errno
import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from dfdetect import cli
from test_predict import export_image_model, face_frames, write_png
from dfdetect.scales import get_scale

SMOKE = get_scale("smoke")  # build_benchmark takes sizes, not a preset name

PROC = Path("/proc")  # not writable, not even by root: the read-only disk of the table


def run(capsys, *argv):
    """(exit code, stdout lines, stderr lines) of ``dfdetect argv...``."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (folders as ``<dir>``)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        found[rel] = ("<dir>" if path.is_dir()
                      else hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def _rewrite(src: str, dst: Path, members: dict) -> Path:
    """A copy of the ``.keras`` zip ``src`` with ``members`` replaced (None: dropped)."""
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for name in a.namelist():
            if name not in members:
                b.writestr(name, a.read(name))
            elif members[name] is not None:
                b.writestr(name, members[name])
    return dst


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Everything a hostile user points dfdetect at, built once (32-px model, tiny data)."""
    from dfdetect.data import benchmark

    root = tmp_path_factory.mktemp("bad")
    model = export_image_model(root / "model.keras")
    with zipfile.ZipFile(model) as archive:
        weights = archive.read("model.weights.h5")
        offset = archive.getinfo("model.weights.h5").header_offset
    # damaged models
    _rewrite(model, root / "bad_json.keras", {"dfdetect.json": "{not json"})
    _rewrite(model, root / "list_json.keras", {"dfdetect.json": "[1, 2, 3]"})
    with zipfile.ZipFile(root / "only_json.keras", "w") as archive:
        archive.writestr("dfdetect.json", "{}")
    _rewrite(model, root / "truncated_weights.keras",
             {"model.weights.h5": weights[: len(weights) // 2]})
    data = bytearray(Path(model).read_bytes())
    data[offset + 30 + len("model.weights.h5") + 40] ^= 0xFF  # inside the stored member
    (root / "flipped_byte.keras").write_bytes(bytes(data))
    (root / "text.keras").write_text("not a model")
    # inputs
    face = write_png(root / "face.png", face_frames(1)[0])
    (root / "empty_folder").mkdir()
    # a PNG whose header says 40000 x 40000 (a decompression bomb needs no more)
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (len(body).to_bytes(4, "big") + kind + body
                + zlib.crc32(kind + body).to_bytes(4, "big"))

    (root / "huge.png").write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", (40000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0]))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))
    # outputs that cannot be written
    (root / "a_file").write_text("the user's file")
    (root / "a_folder").mkdir()
    # a DFDC part whose metadata.json climbs out of the dataset
    part = root / "dfdc" / "dfdc_train_part_0"
    part.mkdir(parents=True)
    (root / "secret.mp4").write_bytes(b"outside the dataset")
    (part / "metadata.json").write_text(json.dumps(
        {"../../secret.mp4": {"label": "FAKE", "split": "train"}}))
    # a benchmark store built with seed 0; a folder of the user's that is not a store
    benchmark.build_benchmark("images", "procedural", SMOKE, root / "store_seed0", seed=0,
                              workers=1, identities=4)
    (root / "photos").mkdir()
    (root / "photos" / "holiday.txt").write_text("the user's notes")
    return root


def _model_case(name):
    return (lambda w: ["predict", w / name, w / "face.png"], lambda w: w / name)


# id, argv(world), the file the one line must name, a phrase it must hold, was broken
CASES = [
    ("model: bad JSON in dfdetect.json", *_model_case("bad_json.keras"),
     "not valid JSON", True),
    ("model: dfdetect.json holds a list", *_model_case("list_json.keras"),
     "holds a list", True),
    ("model: zip with only dfdetect.json", *_model_case("only_json.keras"),
     "no config.json", True),
    ("model: truncated model.weights.h5", *_model_case("truncated_weights.keras"),
     "damaged or incomplete", True),
    ("model: one flipped byte (CRC)", *_model_case("flipped_byte.keras"),
     "damaged", True),
    ("model: text file named .keras", *_model_case("text.keras"),
     "not a .keras model file", False),
    ("model: missing", *_model_case("absent.keras"), "not found", False),
    ("input: missing file",
     lambda w: ["predict", w / "model.keras", w / "absent.mp4"],
     lambda w: w / "absent.mp4", "no such file", False),
    ("input: empty folder",
     lambda w: ["predict", w / "model.keras", w / "empty_folder"],
     lambda w: w / "empty_folder", "no videos or images found", True),
    ("input: 40000x40000 PNG",
     lambda w: ["predict", w / "model.keras", w / "huge.png"],
     lambda w: w / "huge.png", "over the limit", True),
    ("predict --json is a folder",
     lambda w: ["predict", w / "model.keras", w / "face.png", "--json", w / "a_folder"],
     lambda w: w / "a_folder", "is a folder", True),
    ("predict --json under a file",
     lambda w: ["predict", w / "model.keras", w / "face.png", "--json",
                w / "a_file" / "r.json"],
     lambda w: w / "a_file" / "r.json", "is a file, not a folder", True),
    ("predict --json on a read-only disk",
     lambda w: ["predict", w / "model.keras", w / "face.png", "--json", PROC / "r.json"],
     lambda w: PROC / "r.json", "cannot write the JSON report", True),
    ("predict --plot under a file",
     lambda w: ["predict", w / "model.keras", w / "face.png", "--plot",
                w / "a_file" / "p.png"],
     lambda w: w / "a_file" / "p.png", "is a file, not a folder", True),
    ("explain --out under a file",
     lambda w: ["explain", w / "model.keras", w / "face.png", "--out", w / "a_file" / "x"],
     lambda w: w / "a_file" / "x", "is a file, not a folder", True),
    ("evaluate --out a file",
     lambda w: ["evaluate", w / "model.keras", w / "face.png", "--out", w / "a_file"],
     lambda w: w / "a_file", "is a file, not a folder", True),
    ("data crop --out under a file",
     lambda w: ["data", "crop", w / "face.png", "--label", "fake", "--out",
                w / "a_file" / "store"],
     lambda w: w / "a_file" / "store", "is a file, not a folder", True),
    ("data crop --out in /proc",
     lambda w: ["data", "crop", w / "face.png", "--label", "fake", "--out",
                PROC / "store"],
     lambda w: PROC / "store", "cannot write", True),
    ("data build --out a file",
     lambda w: ["data", "build", "--benchmark", "images", "--scale", "smoke", "--out",
                w / "a_file"],
     lambda w: w / "a_file", "is a file, not a folder", True),
    ("data build --out read-only",
     lambda w: ["data", "build", "--benchmark", "images", "--scale", "smoke", "--out",
                PROC / "store"],
     lambda w: PROC / "store", "cannot write", True),
    ("data build --seed 1 into a seed-0 store",
     lambda w: ["data", "build", "--benchmark", "images", "--scale", "smoke", "--seed", "1",
                "--out", w / "store_seed0"],
     lambda w: w / "store_seed0", "seed 0 (asked 1)", True),
    ("data build --out a folder that is not a store",
     lambda w: ["data", "build", "--benchmark", "images", "--scale", "smoke", "--out",
                w / "photos"],
     lambda w: w / "photos", "not a benchmark store", True),
    ("DFDC metadata.json escaping the dataset",
     lambda w: ["data", "crop", w / "dfdc", "--layout", "dfdc", "--workers", "1", "--out",
                w.parent / f"{w.name}-dfdc-store"],
     lambda w: w / "dfdc" / "dfdc_train_part_0" / "metadata.json",
     "points outside the dataset folder", True),
]


@pytest.mark.parametrize("argv, named, phrase", [c[1:4] for c in CASES],
                         ids=[("was broken: " if c[4] else "worked: ") + c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_lost(capsys, world, argv, named, phrase):
    before = tree_digest(world)
    code, out, err = run(capsys, *argv(world))
    assert code == 2, (out, err)
    assert len(err) == 1, err
    assert err[0].startswith(f"dfdetect: error: {named(world)}: "), err[0]
    assert phrase in err[0], err[0]
    assert "Traceback" not in "\n".join(out + err)
    assert tree_digest(world) == before  # nothing the user had changed, nothing left over


@pytest.mark.parametrize("argv, flag", [
    (["data", "crop", "x", "--out", "o", "--min-face", "-5"], "--min-face"),
    (["data", "crop", "x", "--out", "o", "--frames", "0"], "--frames"),
    (["data", "crop", "x", "--out", "o", "--size", "ten"], "--size"),
    (["predict", "m.keras", "x.mp4", "--threshold", "1.5"], "--threshold"),
])
def test_bad_numbers_are_refused_by_argparse(capsys, argv, flag):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    err = capsys.readouterr().err.splitlines()
    assert stop.value.code == 2
    assert len(err) == 1, err  # one line, not argparse's usage block first
    assert err[0].startswith("dfdetect ") and f"argument {flag}" in err[0]
    assert "Traceback" not in "\n".join(err)


def test_an_unwritable_json_report_is_printed_instead(capsys, world, monkeypatch, tmp_path):
    from dfdetect import predict

    def full_disk(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(predict, "atomic_write_text", full_disk)
    report = tmp_path / "r.json"
    code, out, err = run(capsys, "predict", world / "model.keras", world / "face.png",
                         "--json", report)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"dfdetect: error: {report}: cannot write the JSON report")
    assert "no space left" in err[0] and "printed to stdout" in err[0]
    start = out.index("{")
    doc = json.loads("\n".join(out[start:]))  # the scores are not lost
    assert doc["summary"]["inputs"] == 1 and doc["results"][0]["path"] == str(world / "face.png")
    assert not report.exists() and list(tmp_path.iterdir()) == []


def test_any_os_error_is_one_line_and_verbose_adds_the_traceback(capsys, world, monkeypatch):
    from dfdetect import predict

    def denied(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(predict, "load_detector", denied)
    model = world / "model.keras"
    code, out, err = run(capsys, "predict", model, world / "face.png")
    assert code == 2 and len(err) == 1
    assert err[0] == f"dfdetect: error: {model}: permission denied: choose a path you may " \
                     "read/write, or fix its permissions"
    code, out, err = run(capsys, "predict", model, world / "face.png", "--verbose")
    assert code == 2 and err[0].startswith("Traceback") and err[-1].startswith(
        f"dfdetect: error: {model}: permission denied")


def test_an_unexpected_error_is_still_one_line(capsys, world, monkeypatch):
    from dfdetect import predict

    monkeypatch.setattr(predict, "load_detector",
                        lambda path: (_ for _ in ()).throw(RuntimeError("boom\nsecond line")))
    code, out, err = run(capsys, "predict", world / "model.keras", world / "face.png")
    assert code == 2 and err == ["dfdetect: error: unexpected RuntimeError: boom second line; "
                                 "rerun with --verbose for the traceback and report it"]


def test_explain_inputs_with_the_same_name_do_not_overwrite(capsys, world, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_png(tmp_path / folder / "face.png", face_frames(1, seed=ord(folder))[0])
    out_dir = tmp_path / "cams"
    code, out, err = run(capsys, "explain", world / "model.keras", tmp_path / "a",
                         tmp_path / "b", "--out", out_dir, "--top", "1")
    assert code == 0 and err == []
    grids = sorted(p.name for p in out_dir.glob("*_gradcam.png"))
    assert grids == ["a_face_png_gradcam.png", "b_face_png_gradcam.png"]


def test_output_stems_are_unique_even_after_sanitising():
    from dfdetect.predict import output_stems

    assert output_stems(["x/clip.mp4", "y/other.mp4"]) == ["clip_mp4", "other_mp4"]
    assert output_stems(["d/a b.png", "d/a_b.png", "d/a b.png"]) == [
        "a_b_png", "a_b_png-2", "a_b_png-3"]


def test_benchmark_too_few_faces_refuses_with_the_number_needed(tmp_path):
    from dfdetect.data import benchmark
    from dfdetect.errors import DataError

    with pytest.raises(DataError, match=r"only 2 usable face identities: split val and test "
                                        r"would be empty; the benchmark needs at least 3"):
        benchmark.build_benchmark("images", "procedural", SMOKE, tmp_path / "s", seed=0,
                                  workers=1, identities=2)
    assert not (tmp_path / "s" / "manifest.csv").exists()
    # nothing is left that would refuse the corrected rerun's settings
    assert not (tmp_path / "s").exists()
    benchmark.build_benchmark("images", "procedural", SMOKE, tmp_path / "s", seed=1,
                              workers=1, identities=3)
    assert (tmp_path / "s" / "manifest.csv").exists()


def test_a_store_records_its_settings_and_accepts_the_same_again(world):
    from dfdetect.data import benchmark

    store = world / "store_seed0"
    assert benchmark.store_settings(store) == {
        "kind": "images", "source": "bench-procedural", "scale": "smoke", "seed": 0,
        "holdout_method": None}
    summary = benchmark.build_benchmark("images", "procedural", SMOKE, store, seed=0,
                                        workers=1, identities=4)
    assert summary.new_items == 0 and summary.already_done == 4


def test_dfdc_refuses_absolute_paths_too(tmp_path):
    from dfdetect.data import sources
    from dfdetect.errors import DataError

    (tmp_path / "metadata.json").write_text(json.dumps({"/etc/hostname": {"label": "REAL"}}))
    with pytest.raises(DataError, match="not a file name inside the dataset folder"):
        sources.discover_dfdc(tmp_path)


# --------------------------------------------------------------------------- fault tests

def _no_temp_files(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if ".tmp" in p.name]


def test_full_disk_during_crop_loses_no_row_and_leaves_no_temp(capsys, monkeypatch, tmp_path):
    """The disk fills while a crop's PNG is written: one line, exit 2; the rows of the
    first run are all still there, no ``.tmp`` file is left; a rerun finishes."""
    import builtins

    from dfdetect import io as dfio
    from dfdetect.data import store

    faces = tmp_path / "faces"
    faces.mkdir()
    frames = face_frames(4, seed=7)
    for i in range(2):
        write_png(faces / f"f{i}.png", frames[i])
    out = tmp_path / "store"
    args = ["data", "crop", faces, "--label", "fake", "--out", out, "--workers", "1",
            "--size", "32"]
    assert run(capsys, *args)[0] == 0
    first = store.read_manifest(out)
    assert len(first) == 2
    for i in range(2, 4):
        write_png(faces / f"f{i}.png", frames[i])

    real_open, writes = builtins.open, []

    def filling_open(path, mode="r", *a, **k):
        handle = real_open(path, mode, *a, **k)
        if "w" in mode and str(path).endswith(".png"):
            writes.append(path)
            if len(writes) >= 2:  # the second new crop meets a full disk
                def full(data):
                    raise OSError(errno.ENOSPC, "No space left on device")
                handle.write = full
        return handle

    monkeypatch.setattr(dfio, "open", filling_open, raising=False)
    code, out_lines, err = run(capsys, *args)
    assert len(writes) >= 2  # the fault did hit a crop's write
    assert code == 2 and len(err) == 1, err
    assert "no space left on the device" in err[0] and "Traceback" not in err[0]
    assert _no_temp_files(out) == []
    kept = {r["crop_path"] for r in store.read_manifest(out)}
    assert {r["crop_path"] for r in first} <= kept
    monkeypatch.undo()
    assert run(capsys, *args)[0] == 0
    assert len(store.read_manifest(out)) == 4 and _no_temp_files(out) == []


def test_full_disk_during_a_grid_append_keeps_every_finished_row(monkeypatch, tmp_path):
    from dfdetect import results

    table = results.ResultsTable(tmp_path / "runs.csv")
    table.append({"config": "a", "repeat": 0, "AUC": 0.9})
    before = (tmp_path / "runs.csv").read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        table.append({"config": "b", "repeat": 0, "AUC": 0.8})
    monkeypatch.undo()
    assert (tmp_path / "runs.csv").read_bytes() == before
    assert os.listdir(tmp_path) == ["runs.csv"]


def test_a_figure_that_fails_to_save_leaves_the_old_one_and_no_temp(monkeypatch, tmp_path):
    import matplotlib.figure

    from dfdetect import plots

    path = tmp_path / "roc.png"
    plots.roc_curves(path, {"a": (np.array([0, 1, 0, 1]), np.array([.1, .9, .2, .8]))})
    before = path.read_bytes()

    def full_disk(self, fname, **kwargs):
        Path(fname).write_bytes(b"half a png")
        raise OSError(errno.ENOSPC, "No space left on device", str(fname))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full_disk)
    with pytest.raises(OSError):
        plots.roc_curves(path, {"a": (np.array([0, 1]), np.array([.3, .7]))})
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["roc.png"]
