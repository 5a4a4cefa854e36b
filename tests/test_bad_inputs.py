"""Bad input and faults, as a hostile user would try them (issues 22 and 34): the table.

Each row runs ``dfdetect ...`` in-process and asserts the promise README makes: exit
code 2, exactly one stderr line ``dfdetect: error: <the file>: ...`` (no traceback, no
terminal colour codes), nothing on stdout (the failure comes before any work), and
nothing the user had is changed or gone (the fixture's files are hashed before and
after every row). Rows marked ``was broken`` gave a traceback or did the wrong thing
silently before issue 22 (or 34, which the id says); the others already worked and must
keep working. After the table: the JSON fallback, ``--verbose``, unique explain names,
the cases of issue 34 that are not one error line, and the fault tests (a full disk
during a crop, a results-table append and an evaluation; a FIFO, a symlink and a device
as outputs; Ctrl-C in the middle of a training epoch).
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
from test_predict import export_image_model, face_frames, write_png, write_video
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
    from dfdetect.synthetic import benchmark

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
    import keras

    from dfdetect.models.export import export_model

    inp = keras.Input((32, 32, 1))  # a grey-scale model: predict feeds RGB
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(inp))
    export_model(keras.Model(inp, out), root / "gray.keras", image_size=32, threshold=0.5)
    # inputs
    face = write_png(root / "face.png", face_frames(1)[0])
    write_video(root / "v.mp4", face_frames(3))
    os.link(face, root / "hard_link.png")  # another name of face.png's inode
    os.symlink("v.mp4", root / "link.mp4")
    (root / "folder_in").mkdir()
    write_png(root / "folder_in" / "f.png", face_frames(1, seed=3)[0])
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
    _tiny_store(root / "one_class", [(1, "train"), (1, "train"), (0, "val")])
    return root


def _tiny_store(root: Path, units, size: int = 32, seed: int = 0) -> Path:
    """A store of random ``size``-px crops, one per ``(label, split)`` of ``units``."""
    from dfdetect.data import store
    from dfdetect.data.sample import Sample

    rng = np.random.default_rng(seed)
    with store.StoreWriter(root) as writer:
        for i, (label, split) in enumerate(units):
            writer.add(Sample(f"/data/{i}.png", label, f"v{i}", split, "toy",
                              "fake" if label else "real"), 0,
                       rng.integers(0, 256, (size, size, 3), np.uint8))
            writer.commit()
    return root


def _model_case(name):
    return (lambda w: ["predict", w / name, w / "face.png"], lambda w: w / name)


def _predict(*extra):
    return lambda w: ["predict", w / "model.keras", w / "face.png",
                      *[w / e if isinstance(e, Path) else e for e in extra]]


def _issue34(case: str) -> str:
    return f"{case} (issue 34)"


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
    # issue 34, item 1: no output may name an input (resolved paths and inodes)
    (_issue34("predict --json names the video"),
     lambda w: ["predict", w / "model.keras", w / "v.mp4", "--json", w / "v.mp4"],
     lambda w: w / "v.mp4", "is the input", True),
    (_issue34("predict --json names the model"), _predict("--json", Path("model.keras")),
     lambda w: w / "model.keras", "is the input", True),
    (_issue34("predict --json a hard link to the input"),
     _predict("--json", Path("hard_link.png")),
     lambda w: w / "hard_link.png", "is the input", True),
    (_issue34("predict --json a symlink to the input"),
     lambda w: ["predict", w / "model.keras", w / "v.mp4", "--json", w / "link.mp4"],
     lambda w: w / "link.mp4", "is the input", True),
    (_issue34("predict --plot names the input"), _predict("--plot", Path("face.png")),
     lambda w: w / "face.png", "is the input", True),
    (_issue34("predict --json names a file in an input folder"),
     lambda w: ["predict", w / "model.keras", w / "folder_in", "--json",
                w / "folder_in" / "f.png"],
     lambda w: w / "folder_in" / "f.png", "is the input", True),
    (_issue34("predict --json and --plot the same file"),
     _predict("--json", Path("r.png"), "--plot", Path("r.png")),
     lambda w: w / "r.png", "same file", True),
    (_issue34("explain --out the input folder"),
     lambda w: ["explain", w / "model.keras", w / "folder_in", "--out", w / "folder_in"],
     lambda w: w / "folder_in", "is the input", True),
    (_issue34("evaluate --out a folder holding the model"),
     lambda w: ["evaluate", w / "model.keras", w / "folder_in", "--out", w],
     lambda w: w, "holds the input", True),
    (_issue34("data crop --out the source folder"),
     lambda w: ["data", "crop", w / "folder_in", "--label", "fake", "--out", w / "folder_in"],
     lambda w: w / "folder_in", "is the input", True),
    (_issue34("data build --out the --faces folder"),
     lambda w: ["data", "build", "--benchmark", "images", "--scale", "smoke", "--faces",
                w / "folder_in", "--out", w / "folder_in"],
     lambda w: w / "folder_in", "is the input", True),
    (_issue34("pose extract --out the input folder"),
     lambda w: ["pose", "extract", w / "folder_in", "--backend", "openpose", "--out",
                w / "folder_in"],
     lambda w: w / "folder_in", "is the input", True),
    # item 2: only regular files are replaced
    (_issue34("predict --json a character device"), _predict("--json", "/dev/null"),
     lambda w: "/dev/null", "a character device, not a regular file", True),
    # item 3: an evaluation never leaves a folder of the user's half replaced
    (_issue34("evaluate --out a folder of the user's"),
     lambda w: ["evaluate", w / "model.keras", w / "folder_in", "--out", w / "photos"],
     lambda w: w / "photos", "holds 'holiday.txt'", True),
    # item 10: empty paths, --split on media
    (_issue34("predict --json ''"), _predict("--json", ""), lambda w: None,
     "the JSON report path is empty", True),
    (_issue34("predict --plot ''"), _predict("--plot", ""), lambda w: None,
     "the plot path is empty", True),
    (_issue34("evaluate --out ''"),
     lambda w: ["evaluate", w / "model.keras", w / "folder_in", "--out", ""],
     lambda w: None, "the output folder path is empty", True),
    (_issue34("explain --out ''"),
     lambda w: ["explain", w / "model.keras", w / "face.png", "--out", ""],
     lambda w: None, "path is empty", True),
    (_issue34("data crop --out ''"),
     lambda w: ["data", "crop", w / "face.png", "--label", "fake", "--out", ""],
     lambda w: None, "the store folder path is empty", True),
    (_issue34("evaluate --split test on plain media"),
     lambda w: ["evaluate", w / "model.keras", w / "folder_in", "--split", "test",
                "--out", w.parent / "eval-split"],
     lambda w: w / "folder_in", "this input is not a store", True),
    # item 11: the one line blames the right file, and comes before the work
    (_issue34("a model with 1 colour channel"), *_model_case("gray.keras"),
     "1 colour channel", True),
    (_issue34("predict v.mp4 --plot v.mp4"),
     lambda w: ["predict", w / "model.keras", w / "v.mp4", "--plot", w / "v.mp4"],
     lambda w: w / "v.mp4", "must be a picture file", True),
    # items 4-8: stores that cannot mix, trainings that cannot learn
    (_issue34("data crop into a data build store"),
     lambda w: ["data", "crop", w / "face.png", "--label", "fake", "--out", w / "store_seed0"],
     lambda w: w / "store_seed0", "a benchmark store made by 'dfdetect data build'", True),
    (_issue34("train on a store whose train split has one class"),
     lambda w: ["train", "meso4", "--data", w / "one_class", "--epochs", "1", "--out",
                w / "m1.keras"],
     lambda w: w / "one_class", "has 2 crops, 0 real and 2 fake", True),
    (_issue34("pose extract --backend openpose on an empty folder"),
     lambda w: ["pose", "extract", w / "empty_folder", "--backend", "openpose", "--out",
                w / "pose_out"],
     lambda w: w / "empty_folder", "no *_keypoints.json files", True),
]


@pytest.mark.parametrize("argv, named, phrase", [c[1:4] for c in CASES],
                         ids=[("was broken: " if c[4] else "worked: ") + c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_lost(capsys, world, argv, named, phrase):
    before = tree_digest(world)
    code, out, err = run(capsys, *argv(world))
    assert code == 2, (out, err)
    assert len(err) == 1, err
    name = named(world)
    assert err[0].startswith("dfdetect: error: " + ("" if name is None else f"{name}: ")), \
        err[0]
    assert phrase in err[0], err[0]
    assert "Traceback" not in "\n".join(out + err) and "\x1b" not in err[0]
    assert out == []  # refused before any input was scored
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
    from dfdetect.overlays import output_stems

    assert output_stems(["x/clip.mp4", "y/other.mp4"]) == ["clip_mp4", "other_mp4"]
    assert output_stems(["d/a b.png", "d/a_b.png", "d/a b.png"]) == [
        "a_b_png", "a_b_png-2", "a_b_png-3"]


def test_benchmark_too_few_faces_refuses_with_the_number_needed(tmp_path):
    from dfdetect.synthetic import benchmark
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
    from dfdetect.synthetic import benchmark

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


# --------------------------------------------------------------------------- issue 34

@pytest.fixture()
def labelled(tmp_path):
    """A folder of labelled face crops (one real, one fake) and a 32-px model."""
    root = tmp_path / "labelled"
    for label, seed in (("real", 1), ("fake", 2)):
        (root / label).mkdir(parents=True)
        write_png(root / label / f"{label}.png", face_frames(1, seed=seed)[0])
    return root, export_image_model(tmp_path / "model.keras")


def _evaluate(capsys, model, inputs, out, *extra):
    return run(capsys, "evaluate", model, inputs, "--out", out, "--no-detect", *extra)


def test_evaluate_replaces_an_earlier_run_whole(capsys, labelled, tmp_path):
    """Item 3: the second run has one class (no ROC to draw): the first run's roc.png
    must not stay beside its tables."""
    root, model = labelled
    out = tmp_path / "E"
    assert _evaluate(capsys, model, root, out)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv", "roc.png", "scores.csv"]
    code, lines, err = _evaluate(capsys, model, root / "real", out)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv", "scores.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["E", "labelled", "model.keras"]


def test_full_disk_during_an_evaluation_leaves_the_earlier_run_whole(capsys, monkeypatch,
                                                                     labelled, tmp_path):
    """Item 3, fault: the disk fills after the first table: the folder of the earlier
    run is byte for byte as it was, no temporary folder is left, and the line says what
    was kept (the scores printed above) instead of "finished work is kept"."""
    from dfdetect import evaluate

    root, model = labelled
    out = tmp_path / "E"
    assert _evaluate(capsys, model, root, out)[0] == 0
    before = tree_digest(out)
    real_write, written = evaluate.write_table, []

    def filling(path, rows, columns=None):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(path)
        real_write(path, rows, columns)

    monkeypatch.setattr(evaluate, "write_table", filling)
    code, lines, err = _evaluate(capsys, model, root / "fake", out)
    assert code == 2 and len(err) == 1, err
    assert "no space left on the device" in err[0]
    assert err[0].endswith(f"1 of 1 videos were scored (their lines are above); {out} was "
                           "not changed"), err[0]
    assert tree_digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["E", "labelled", "model.keras"]


def test_output_fifo_is_refused_and_left_a_fifo(capsys, world, tmp_path):
    """Item 2, fault: renaming over a FIFO made it a regular file whose reader never got
    the report, while dfdetect said it was written."""
    import stat

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    code, out, err = run(capsys, "predict", world / "model.keras", world / "face.png",
                         "--json", pipe)
    assert code == 2 and out == [] and len(err) == 1
    assert err[0].startswith(f"dfdetect: error: {pipe}: the JSON report path is a FIFO")
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)


def test_output_socket_is_refused(capsys, world, tmp_path):
    import socket
    import stat

    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        code, out, err = run(capsys, "predict", world / "model.keras", world / "face.png",
                             "--plot", tmp_path / "sock.png", "--json", path)
    assert code == 2 and "is a socket, not a regular file" in err[0]
    assert stat.S_ISSOCK(os.lstat(path).st_mode) and not (tmp_path / "sock.png").exists()


def test_devices_are_refused_before_the_work():
    from dfdetect.errors import DataError
    from dfdetect.io import check_output_file

    for device in ("/dev/null", "/dev/full"):
        with pytest.raises(DataError, match="is a character device, not a regular file"):
            check_output_file(device, "JSON report")


def test_output_symlink_writes_its_target(capsys, world, tmp_path):
    """Item 2, fault: the rename replaced the link itself and left its target as it was."""
    target = tmp_path / "reports" / "r.json"
    target.parent.mkdir()
    target.write_text("old report")
    os.chmod(target, 0o640)
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    code, out, err = run(capsys, "predict", world / "model.keras", world / "face.png",
                         "--json", link)
    assert code == 0 and err == []
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["summary"]["inputs"] == 1
    assert os.stat(target).st_mode & 0o777 == 0o640  # the replaced file's mode kept
    assert sorted(p.name for p in target.parent.iterdir()) == ["r.json"]


def test_json_to_stdout(capsys, world):
    code, out, err = run(capsys, "predict", world / "model.keras", world / "face.png",
                         "--json", "-")
    assert code == 0 and err == []
    assert json.loads("\n".join(out))["summary"]["inputs"] == 1  # stdout is the JSON alone
    assert not (Path.cwd() / "-").exists()


@pytest.mark.parametrize("variable, value", [
    ("DFDETECT_PROGRESS_SECONDS", "abc"), ("DFDETECT_PROGRESS_SECONDS", "-1"),
    ("DFDETECT_MAX_PIXELS", "-1"), ("DFDETECT_MAX_PIXELS", "many"),
    ("DFDETECT_FACE_WORKERS", "0"), ("DFDETECT_FACE_WORKERS", "1.5"),
])
@pytest.mark.parametrize("command", ["predict video", "data crop video"])
def test_invalid_environment_values_are_refused_everywhere(capsys, monkeypatch, world,
                                                           tmp_path, variable, value, command):
    """Item 10: a video run ignored what an image run refused (or the other way)."""
    monkeypatch.setenv(variable, value)
    argv = {"predict video": ["predict", world / "model.keras", world / "v.mp4"],
            "data crop video": ["data", "crop", world / "v.mp4", "--label", "real",
                                "--workers", "1", "--out", tmp_path / "store"]}[command]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == [], out
    assert err == [f"dfdetect: error: environment variable {variable} must be a "
                   f"{'number >= 0' if 'PROGRESS' in variable else 'whole number >= 1'}, got "
                   f"{value!r}: fix or unset it"]
    assert not (tmp_path / "store").exists()


def test_no_detect_on_a_1x1_image_is_no_face(capsys, world, tmp_path):
    import cv2

    tiny = tmp_path / "dot.png"
    cv2.imwrite(str(tiny), np.zeros((1, 1, 3), np.uint8))
    code, out, err = run(capsys, "predict", world / "model.keras", tiny, "--no-detect")
    assert code == 0 and err == []
    assert out[0].split()[1:] == ["NO", "FACE", "-", "0/1", "frame", "with", "a", "face"]


def test_native_libraries_print_nothing_beside_the_one_line(capfd, world, tmp_path):
    """Item 11: OpenCV's WARN lines and libpng's errors went to file descriptor 2 around
    the one line (capfd sees the descriptor, capsys only sys.stderr)."""
    video = Path(world / "v.mp4").read_bytes()
    (tmp_path / "random.mp4").write_bytes(
        np.random.default_rng(0).integers(0, 256, 300, np.uint8).tobytes())
    (tmp_path / "cut.mp4").write_bytes(video[:len(video) // 3])

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (len(body).to_bytes(4, "big") + kind + body
                + zlib.crc32(kind + body).to_bytes(4, "big"))

    (tmp_path / "short.png").write_bytes(  # a 4000 x 4000 header, 1 kB of pixels
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", (4000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0]))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))
    for name in ("random.mp4", "cut.mp4", "short.png"):
        capfd.readouterr()
        assert cli.main(["predict", str(world / "model.keras"), str(tmp_path / name)]) == 2
        err = capfd.readouterr().err.splitlines()
        assert len(err) == 1, err
        assert err[0].startswith(f"dfdetect: error: {tmp_path / name}: "), err


def _crop(capsys, source, out, *extra):
    return run(capsys, "data", "crop", source, "--out", out, "--workers", "1", "--size", "32",
               *extra)


@pytest.fixture()
def two_named_alike(tmp_path):
    """``A/v.png`` and ``B/v.png``: two different faces under one file name."""
    for folder, seed in (("A", 1), ("B", 3)):  # HOG finds both faces
        (tmp_path / folder).mkdir()
        write_png(tmp_path / folder / "v.png", face_frames(1, seed=seed)[0])
    return tmp_path / "A", tmp_path / "B"


def test_crops_are_keyed_by_path_and_content_not_by_name(capsys, two_named_alike, tmp_path):
    """Item 4: the second run said "1 already in the store" and the store had no fake."""
    from dfdetect.data import store

    a, b = two_named_alike
    out = tmp_path / "S"
    assert _crop(capsys, a, out, "--label", "real")[0] == 0
    code, lines, err = _crop(capsys, b, out, "--label", "fake")
    assert code == 0 and err == []
    rows = store.read_manifest(out)
    assert sorted((r["path"], r["label"]) for r in rows) == [(str(a / "v.png"), 0),
                                                            (str(b / "v.png"), 1)]
    renamed = next(r["video_id"] for r in rows if r["label"] == 1)
    assert renamed.startswith("v-") and f"  {b / 'v.png'}: video id {renamed}" in lines
    # each is now in the store: a rerun of either crops nothing and changes nothing
    before = tree_digest(out)
    for folder, label in ((a, "real"), (b, "fake")):
        code, lines, err = _crop(capsys, folder, out, "--label", label)
        assert code == 0 and any("1 already in the store" in line for line in lines)
    assert tree_digest(out) == before


@pytest.mark.parametrize("change, phrase", [
    (["--size", "48"], "cropped with --size 32, --frames 40, box scale 1.3; this run asks "
                       "--size 48"),
    (["--frames", "3"], "this run asks --frames 3"),
    (["--label", "fake"], "labelled real; this run says fake"),
])
def test_crop_refuses_other_settings_than_the_store_has(capsys, two_named_alike, tmp_path,
                                                        change, phrase):
    """Item 5: another --size, --frames or --label was "already in the store"."""
    a, _ = two_named_alike
    out = tmp_path / "S"
    assert _crop(capsys, a, out, "--label", "real")[0] == 0
    before = tree_digest(out)
    argv = ["--label", "real", *change] if change[0] != "--label" else change
    code, lines, err = _crop(capsys, a, out, *argv)
    named = a / "v.png" if change[0] == "--label" else out
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"dfdetect: error: {named}: ") and phrase in err[0], err[0]
    assert tree_digest(out) == before


def test_a_file_changed_since_it_was_cropped_is_refused(capsys, two_named_alike, tmp_path):
    a, b = two_named_alike
    out = tmp_path / "S"
    assert _crop(capsys, a, out, "--label", "real")[0] == 0
    (a / "v.png").write_bytes((b / "v.png").read_bytes())
    code, lines, err = _crop(capsys, a, out, "--label", "real")
    assert code == 2 and "changed since it was cropped into this store as folder/v" in err[0]


def test_data_build_refuses_a_crop_store(capsys, two_named_alike, tmp_path):
    a, _ = two_named_alike
    out = tmp_path / "S"
    assert _crop(capsys, a, out, "--label", "real")[0] == 0
    code, lines, err = run(capsys, "data", "build", "--benchmark", "images", "--scale",
                           "smoke", "--out", out)
    assert code == 2 and err == [f"dfdetect: error: {out}: --out is a store made by "
                                 "'dfdetect data crop' (it holds crop.json): build into "
                                 "another --out"]


def test_a_torn_last_manifest_row_is_refused_with_its_line(capsys, two_named_alike, tmp_path):
    """Item 6: a manifest cut mid-row (by another writer) was accepted and extended."""
    a, b = two_named_alike
    out = tmp_path / "S"
    assert _crop(capsys, a, out, "--label", "real")[0] == 0
    manifest = out / "manifest.csv"
    manifest.write_bytes(manifest.read_bytes()[:-9])  # cuts into the file_digest column
    before = tree_digest(out)
    code, lines, err = _crop(capsys, b, out, "--label", "fake")
    assert code == 2 and err == [f"dfdetect: error: {manifest}: line 2 is cut short (the "
                                 "file does not end with a line break: a write to it was "
                                 "interrupted); delete that line and rerun to crop its video "
                                 "again"]
    assert tree_digest(out) == before


def _ffpp(root: Path, splits: tuple[str, ...] | None) -> Path:
    """A FaceForensics++ layout: one real and one fake video of a face, and ``splits``."""
    for folder, name in (("original_sequences/youtube/c23/videos", "000.mp4"),
                         ("manipulated_sequences/Deepfakes/c23/videos", "000_001.mp4")):
        (root / folder).mkdir(parents=True)
        write_video(root / folder / name, face_frames(2))
    if splits is not None:
        (root / "splits").mkdir()
        for split in splits:
            (root / "splits" / f"{split}.json").write_text('[["000", "001"]]'
                                                           if split == "train" else "[]")
    return root


def test_ffpp_with_a_split_file_missing_is_refused(capsys, tmp_path):
    """Item 7: splits/ without test.json cropped on with empty splits and exit 0."""
    root = _ffpp(tmp_path / "ffpp", ("train", "val"))
    code, lines, err = _crop(capsys, root, tmp_path / "S", "--layout", "ffpp")
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"dfdetect: error: {root / 'splits' / 'test.json'}: "
                             "FaceForensics++ split file missing (the folder holds "
                             "train.json, val.json)"), err[0]
    assert not (tmp_path / "S").exists()


def test_ffpp_without_splits_says_the_official_splits_are_not_used(capsys, tmp_path):
    root = _ffpp(tmp_path / "ffpp", None)
    code, lines, err = _crop(capsys, root, tmp_path / "S", "--layout", "ffpp",
                             "--frames", "1")
    assert err == []
    # data crop assigns splits itself now (tests/test_own_data.py)
    assert f"note: no {root / 'splits'} folder with FaceForensics++'s train.json, val.json " \
           "and test.json: the official splits are not used" in lines


def test_train_names_a_crop_that_does_not_decode(capsys, tmp_path):
    """Item 8: "unexpected InvalidArgumentError ... DecodeImage", no file named."""
    root = _tiny_store(tmp_path / "S", [(0, "train"), (1, "train"), (1, "train")])
    bad = root / "crops" / "toy" / "v2" / "000.png"
    bad.write_bytes(bad.read_bytes()[:50])
    code, out, err = run(capsys, "train", "meso4", "--data", root, "--epochs", "1",
                         "--batch-size", "2", "--out", tmp_path / "m.keras")
    assert code == 2 and len(err) == 1, err
    assert err[0] == (f"dfdetect: error: {bad}: this crop does not decode as an image "
                      "(Invalid PNG data, size 50): crop it again, or delete its row from "
                      "manifest.csv")
    assert not (tmp_path / "m.keras").exists()


def _train(capsys, root, out, epochs=3):
    return run(capsys, "train", "meso4", "--data", root, "--epochs", epochs, "--batch-size",
               "2", "--no-augment", "--out", out)


def test_ctrl_c_mid_epoch_then_the_rerun_resumes_at_the_next_epoch(capsys, monkeypatch,
                                                                    tmp_path):
    """Item 9, fault: a real SIGINT in the middle of epoch 2 of a tiny training. The
    interrupt says which epochs are kept, and the same command continues at epoch 2
    (it printed "finished work is kept" and started again at epoch 1)."""
    import signal

    import keras

    from dfdetect import train
    from dfdetect.models.export import read_metadata

    root = _tiny_store(tmp_path / "S", [(0, "train"), (1, "train")] * 3
                       + [(0, "val"), (1, "val")])
    out = tmp_path / "m.keras"
    real_epoch_lines = train.epoch_lines

    def interrupting(epochs, log):
        lines = real_epoch_lines(epochs, log)

        class SigintInEpoch2(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch
                lines.on_epoch_begin(epoch, logs)

            def on_train_batch_end(self, batch, logs=None):
                if self.epoch == 1 and batch == 1:  # the second of three batches
                    os.kill(os.getpid(), signal.SIGINT)

            def on_epoch_end(self, epoch, logs=None):
                lines.on_epoch_end(epoch, logs)

        return SigintInEpoch2()

    monkeypatch.setattr(train, "epoch_lines", interrupting)
    # Python's own SIGINT handler, re-installed at the C level too: a native library loaded
    # by an earlier test may have put its own there, and then no KeyboardInterrupt comes
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code, lines, err = _train(capsys, root, out)
    finally:
        signal.signal(signal.SIGINT, previous)
    checkpoint = tmp_path / "m.keras.checkpoint"
    assert code == 130, (lines, err)
    assert err == [f"dfdetect: interrupted; epoch 1 is checkpointed in {checkpoint} (best: "
                   "epoch 1); rerun the same command to resume at epoch 2"]
    assert [line.split(":")[0] for line in lines if line.startswith("epoch ")] == ["epoch 1/3"]
    assert not out.exists() and checkpoint.is_dir()

    monkeypatch.undo()
    code, lines, err = _train(capsys, root, out)
    assert code == 0 and err == [], err
    assert any(line.startswith(f"resuming from {checkpoint}: epoch 1 done")
               and line.endswith("training on from epoch 2") for line in lines), lines
    assert [line.split(":")[0] for line in lines if line.startswith("epoch ")] == [
        "epoch 2/3", "epoch 3/3"]
    assert "resumed at epoch 2" in lines[-1]
    assert read_metadata(out)["epochs"] == 3 and not checkpoint.exists()


def test_full_disk_at_export_keeps_the_trained_epochs(capsys, monkeypatch, tmp_path):
    """Item 9, fault: the disk fills when the model is written after the last epoch:
    the line says the training is checkpointed, and the rerun exports it untrained."""
    from dfdetect.models import export

    root = _tiny_store(tmp_path / "S", [(0, "train"), (1, "train"), (0, "val"), (1, "val")])
    out = tmp_path / "m.keras"

    def full_disk(model, path, **metadata):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(export, "export_model", full_disk)
    code, lines, err = _train(capsys, root, out, epochs=2)
    checkpoint = tmp_path / "m.keras.checkpoint"
    assert code == 2 and len(err) == 1
    assert err[0].endswith(f"no space left on the device: free some space (or choose "
                           f"another disk) and rerun; the training finished (2 epochs, best "
                           f"epoch {err[0].split('best epoch ')[1][0]}) and is checkpointed "
                           f"in {checkpoint}: rerun the same command to export it without "
                           "training again"), err[0]
    monkeypatch.undo()
    code, lines, err = _train(capsys, root, out, epochs=2)
    assert code == 0 and not any(line.startswith("epoch ") for line in lines), lines
    assert "the training is over: exporting the best epoch" in "\n".join(lines)
    assert out.is_file() and not checkpoint.exists()


def test_ctrl_c_in_predict_says_what_was_scored_and_not_written(capsys, monkeypatch, world,
                                                                tmp_path):
    """Item 9: predict said "finished work is kept" and kept nothing."""
    from dfdetect import predict

    real_score, calls = predict.score_input, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_score(*args, **kwargs)

    monkeypatch.setattr(predict, "score_input", interrupted)
    code, out, err = run(capsys, "predict", world / "model.keras", world / "face.png",
                         world / "folder_in", "--json", tmp_path / "r.json")
    assert code == 130 and len(out) == 1
    assert err == ["dfdetect: interrupted; 1 of 2 inputs were scored (their lines are "
                   "above); JSON report not written"]
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("atomic_exchange", [True, False])
def test_replaced_folder_swaps_whole_with_or_without_renameat2(monkeypatch, tmp_path,
                                                               atomic_exchange):
    """Item 3: where renameat2(RENAME_EXCHANGE) is missing, two renames do the swap."""
    from dfdetect import io as dfio

    if not atomic_exchange:
        monkeypatch.setattr(dfio, "_exchange", lambda a, b: False)
    out = tmp_path / "E"
    out.mkdir()
    (out / "roc.png").write_text("old run")
    with dfio.replaced_folder(out) as fresh:
        Path(fresh, "metrics.csv").write_text("new run")
    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv"]
    assert os.listdir(tmp_path) == ["E"]


def test_litert_writes_a_twin_and_refuses_what_is_not_a_model_in_one_line(capsys, world,
                                                                          tmp_path):
    import shutil

    model = shutil.copy(world / "model.keras", tmp_path / "m.keras")
    code, out, err = run(capsys, "litert", model)
    assert code == 0 and out == [f"LiteRT twin written: {tmp_path / 'm.tflite'}"], err
    for bad, why in ((tmp_path / "missing.keras", "model file not found"),
                     (world / "bad_json.keras", "not valid JSON")):
        code, out, err = run(capsys, "litert", bad)
        assert code == 2 and len(err) == 1 and why in err[0], err
        assert not bad.with_suffix(".tflite").exists()
    # predict --runtime litert on a model without a twin says how to write one
    code, out, err = run(capsys, "predict", world / "model.keras", world / "v.mp4",
                         "--runtime", "litert")
    assert code == 2 and len(err) == 1 and "dfdetect litert model.keras" in err[0], err


def test_a_command_that_needs_tensorflow_says_how_to_install_it(world, tmp_path):
    import subprocess
    import sys

    script = ("import sys\n"
              "class No:\n"
              "    def find_spec(self, name, path=None, target=None):\n"
              "        if name.split('.')[0] == 'tensorflow':\n"
              "            raise ModuleNotFoundError(name, name=name)\n"
              "sys.meta_path.insert(0, No())\n"
              "from dfdetect import cli\n"
              "sys.exit(cli.main(sys.argv[1:]))\n")
    done = subprocess.run([sys.executable, "-c", script, "predict", str(world / "model.keras"),
                           str(world / "v.mp4"), "--runtime", "keras"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "", done.stdout
    assert done.stderr.strip().splitlines() == [
        "dfdetect: error: TensorFlow is not installed, and this needs it: pip install "
        "'dfdetect[cpu]' (or [gpu]); predict with a model's LiteRT twin runs without it"]
