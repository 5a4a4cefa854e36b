"""The ``dfdetect`` command: predict and explain, run in-process through cli.main."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from dfdetect import cli
from test_predict import (blank_frames, export_image_model, face_frames, image_model,
                          unknown_layer_model, write_png, write_video)

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    """(exit code, stdout lines, stderr lines) of ``dfdetect argv...``."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    face = write_video(root / "face.mp4", face_frames(6))
    data = Path(face).read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (root / "corrupt.mp4").write_bytes(
        np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
    (root / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    plain = root / "plain.keras"
    image_model().save(plain)
    (root / "text.keras").write_text("not a model")
    return {
        "root": root,
        "model": export_image_model(root / "model.keras"),
        "face": face,
        "noface": write_video(root / "noface.mp4", blank_frames(4)),
        "truncated": root / "truncated.mp4",
        "corrupt": root / "corrupt.mp4",
        "heic": root / "photo.heic",
        "plain": plain,
        "text_model": root / "text.keras",
        "unknown_layer": unknown_layer_model(root / "unknown.keras"),
    }


# --------------------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("which, reason", [
    ("missing", "no such file"),
    ("corrupt", "cannot open as a video"),
    ("truncated", "truncated"),
    ("heic", "unsupported image format"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, files, which, reason):
    path = files["root"] / "missing.mp4" if which == "missing" else files[which]
    code, out, err = run(capsys, "predict", files["model"], path)
    assert code == 2 and out == []
    assert len(err) == 1 and err[0].startswith(f"dfdetect: error: {path}: ")
    assert reason in err[0]


@pytest.mark.parametrize("which, reason", [
    ("plain", "not one exported by dfdetect"),
    ("text_model", "not a .keras model file"),
    ("unknown_layer", "does not know: 'Vanished'"),
])
def test_bad_model_is_one_line_and_exit_2(capsys, files, which, reason):
    code, out, err = run(capsys, "predict", files[which], files["face"])
    assert code == 2 and out == []
    assert len(err) == 1 and err[0].startswith(f"dfdetect: error: {files[which]}: ")
    assert reason in err[0]


def test_video_without_faces_is_a_verdict_not_an_error(capsys, files):
    code, out, err = run(capsys, "predict", files["model"], files["noface"], "--frames", "2")
    assert code == 0 and err == []
    assert out == [f"{files['noface']}  NO FACE       -  0/2 frames with a face"]


def test_folder_run_scores_the_others_and_counts_failures(capsys, files, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("face", "noface", "corrupt", "truncated", "heic"):
        src = Path(files[name])
        (folder / src.name).write_bytes(src.read_bytes())
    (folder / "notes.txt").write_text("skip me")
    code, out, err = run(capsys, "predict", files["model"], folder, "--frames", "2",
                         "--json", tmp_path / "s.json")
    assert code == 2
    assert len(err) == 3 and all(line.startswith("dfdetect: error: ") for line in err)
    assert {Path(line.split(": ")[2]).name for line in err} == {
        "corrupt.mp4", "truncated.mp4", "photo.heic"}
    scored = [line for line in out if "frames with a face" in line]
    assert len(scored) == 2
    assert any("face.mp4  " in line and ("FAKE" in line or "REAL" in line) for line in scored)
    assert any("noface.mp4  NO FACE" in line for line in scored)
    assert out[-1].startswith("2 of 5 inputs scored: ")
    assert out[-1].endswith("1 NO FACE; 3 failed; 1 other files ignored (not images or videos)")
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["summary"]["failed"] == 3 and len(doc["results"]) == 5


def test_bad_arguments_are_refused(capsys, files):
    for argv in (["--frames", "0"], ["--threshold", "1.5"]):
        with pytest.raises(SystemExit) as info:
            cli.main(["predict", str(files["model"]), str(files["face"])] + argv)
        assert info.value.code == 2
    capsys.readouterr()


# --------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def p1_model(tmp_path_factory, smoke_image_store):
    """meso4 trained and exported by the P1 experiment at smoke scale."""
    sys.path.insert(0, str(REPO / "experiments"))
    import p1_fusion

    out = tmp_path_factory.mktemp("p1")
    argv = ["--scale", "smoke", "--data", str(smoke_image_store), "--configs", "meso4",
            "--out", str(out), "--quiet", "--in-process"]
    assert p1_fusion.main(argv) == 0
    return out / "models" / "meso4.keras"


def test_predict_with_a_p1_smoke_model_on_a_procedural_video(capsys, tmp_path, p1_model):
    # a video of one of the benchmark's procedural faces, 10 frames at 10 fps
    video = write_video(tmp_path / "procedural_face.mp4", face_frames(10, seed=3), fps=10)
    code, out, err = run(capsys, "predict", p1_model, video, "--frames", "4",
                         "--json", tmp_path / "scores.json", "--plot", tmp_path / "frames.png")
    assert code == 0 and err == []
    assert out[0].startswith(f"{video}  ") and "4/4 frames with a face" in out[0]
    doc = json.loads((tmp_path / "scores.json").read_text())
    assert doc["model"] == str(p1_model)
    meta = doc["model_metadata"]
    assert (meta["experiment"], meta["config"], meta["image_size"]) == ("p1_fusion", "meso4", 64)
    assert doc["summary"] == {"inputs": 1, "FAKE": doc["summary"]["FAKE"],
                              "REAL": doc["summary"]["REAL"], "NO FACE": 0, "failed": 0,
                              "ignored": 0}
    (result,) = doc["results"]
    assert result["path"] == video and result["media"] == "video"
    assert result["frame_count"] == 10 and result["fps"] == pytest.approx(10.0)
    assert [f["index"] for f in result["frames"]] == [0, 3, 6, 9]
    assert [f["time"] for f in result["frames"]] == pytest.approx([0.0, 0.3, 0.6, 0.9])
    scores = [f["score"] for f in result["frames"]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert result["score"] == pytest.approx(np.mean(scores))
    assert result["verdict"] == ("FAKE" if result["score"] >= 0.5 else "REAL")
    assert f"{result['score']:.4f}" in out[0] and result["verdict"] in out[0]
    for f in result["frames"]:
        top, right, bottom, left = f["face"]
        assert 0 <= top < bottom <= 160 and 0 <= left < right <= 160
    assert (tmp_path / "frames.png").stat().st_size > 1000


def test_explain_writes_overlays(capsys, files, tmp_path):
    image = write_png(tmp_path / "face.png", face_frames(1)[0])
    code, out, err = run(capsys, "explain", files["model"], files["face"], image,
                         files["noface"], "--out", tmp_path / "cams", "--frames", "3",
                         "--top", "2")
    assert code == 0 and err == []
    assert out[0].endswith(f"-> {tmp_path / 'cams' / 'face_mp4_gradcam.png'}")
    assert "nothing to explain" in out[2]
    assert out[-1].startswith("3 of 3 inputs scored")
    pngs = sorted(p.name for p in (tmp_path / "cams").iterdir())
    assert "face_png_gradcam.png" in pngs and "face_png_frame00000.png" in pngs
    assert sum(p.startswith("face_mp4_frame") for p in pngs) == 2


def test_explain_bad_model_exit_2(capsys, files, tmp_path):
    code, out, err = run(capsys, "explain", files["plain"], files["face"], "--out", tmp_path)
    assert code == 2 and len(err) == 1 and "not one exported by dfdetect" in err[0]


# --------------------------------------------------------------------------- default model

def test_predict_without_a_model_uses_the_shipped_default(capsys, files, monkeypatch):
    from dfdetect import predict

    monkeypatch.setattr(predict, "DEFAULT_MODEL", files["model"])
    code, out, err = run(capsys, "predict", files["face"], files["noface"], "--frames", "2")
    assert code == 0 and err == []
    assert out[0].startswith(f"{files['face']}  ") and "2/2 frames with a face" in out[0]
    assert out[1].startswith(f"{files['noface']}  NO FACE")
    # the verdicts stand in one column, after the longer path
    column = len(str(files["noface"])) + 2
    assert out[0][column:].split()[0] in ("FAKE", "REAL") and out[0][column - 1] == " "
    assert out[1][column:].startswith("NO FACE")
    # the same with the model named, positionally or with --model
    _, named, _ = run(capsys, "predict", files["model"], files["face"], files["noface"],
                      "--frames", "2")
    _, option, _ = run(capsys, "predict", "--model", files["model"], files["face"],
                       files["noface"], "--frames", "2")
    assert named[:2] == out[:2] == option[:2]


def test_explain_without_a_model_uses_the_shipped_default(capsys, files, monkeypatch, tmp_path):
    from dfdetect import predict

    monkeypatch.setattr(predict, "DEFAULT_MODEL", files["model"])
    code, out, err = run(capsys, "explain", files["face"], "--out", tmp_path, "--frames", "2",
                         "--top", "1")
    assert code == 0 and err == [] and out[0].endswith("face_mp4_gradcam.png")


def test_no_default_model_shipped_is_one_clear_line(capsys, files, monkeypatch, tmp_path):
    from dfdetect import predict

    missing = tmp_path / "weights" / "default.keras"
    monkeypatch.setattr(predict, "DEFAULT_MODEL", str(missing))
    for command in (["predict"], ["explain", "--out", str(tmp_path)], ["evaluate"]):
        code, out, err = run(capsys, *command, files["face"])
        assert code == 2 and out == []
        assert err == [f"dfdetect: error: no default detector shipped at {missing}: pass a "
                       "model .keras or run `make detector`"]
    # named explicitly (make realworld's default MODEL) gives the same line
    code, _, err = run(capsys, "evaluate", "--model", missing, files["face"])
    assert code == 2 and "no default detector shipped" in err[0]


def test_a_model_without_inputs_is_one_line(capsys, files):
    code, out, err = run(capsys, "predict", files["model"])
    assert code == 2 and len(err) == 1 and "no input given after the model" in err[0]


def test_predict_prints_no_tensorflow_start_up_lines(tmp_path):
    # TensorFlow's loader writes to fd 2 before its log level applies; the CLI silences
    # exactly that, so a user's stderr holds dfdetect's own line and nothing else.
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "dfdetect.cli", "predict",
                           str(tmp_path / "missing.keras"), str(tmp_path / "x.mp4")],
                          capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dfdetect: error:"), lines
    assert "absl" not in proc.stderr and "oneDNN" not in proc.stderr
