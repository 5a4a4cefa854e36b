"""The Python API (``from dfdetect import load_detector, score_video``) and ``--version``."""

import subprocess
import sys

import pytest

import dfdetect
from dfdetect import cli, predict
from test_predict import export_image_model, face_frames, write_png, write_video


def test_import_dfdetect_is_cheap():
    # The API's names are lazy: importing the package must not start TensorFlow.
    code = ("import sys, dfdetect; dfdetect.load_detector; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"dfdetect {dfdetect.__version__}"


def test_api_scores_like_the_command(tmp_path, monkeypatch):
    model_path = export_image_model(tmp_path / "model.keras")
    video = write_video(tmp_path / "face.mp4", face_frames(4))
    frames = face_frames(1)
    image = write_png(tmp_path / "face.png", frames[0])

    detector = dfdetect.load_detector(model_path)
    result = detector.score(video, frames=2)
    model, meta = predict.load_detector(model_path)
    same = predict.score_video(model, meta, video, frames=2)
    assert (result.verdict, result.score) == (same.verdict, same.score)
    assert result.verdict in ("FAKE", "REAL") and len(result.frames) == 2
    assert dfdetect.score_video(video, detector, frames=2).score == result.score
    assert dfdetect.score_image(image, model_path).media == "image"
    # no path: the shipped default detector
    monkeypatch.setattr(predict, "DEFAULT_MODEL", model_path)
    assert dfdetect.load_detector().path == str(model_path)
    with pytest.raises(AttributeError):
        dfdetect.no_such_name  # noqa: B018
