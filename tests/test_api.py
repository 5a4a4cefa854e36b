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
    # the LiteRT twin on request: the same scores
    from dfdetect.errors import ModelError
    from dfdetect.models.litert import LiteRTModel, export_litert

    with pytest.raises(ModelError, match="no LiteRT twin"):
        dfdetect.load_detector(model_path, runtime="litert")
    assert type(dfdetect.load_detector(model_path, runtime="auto").model) is not LiteRTModel
    export_litert(model_path)
    lite = dfdetect.load_detector(model_path, runtime="auto")
    assert type(lite.model) is LiteRTModel
    assert lite.score(video, frames=2).score == pytest.approx(result.score, abs=1e-5)


def test_score_takes_a_list_of_paths_frames_and_pil_images_batched(tmp_path, monkeypatch):
    """Issue 32, item 6: score() took one path only."""
    from PIL import Image

    model_path = export_image_model(tmp_path / "model.keras")
    frames = face_frames(3)
    video = write_video(tmp_path / "face.mp4", face_frames(4))
    image = write_png(tmp_path / "face.png", frames[0])
    detector = dfdetect.load_detector(model_path)
    batches = []
    real_score_crops = predict.score_crops
    monkeypatch.setattr(predict, "score_crops", lambda model, x, **kw: (
        batches.append(len(x)), real_score_crops(model, x, **kw))[1])

    one = detector.score(image)
    batches.clear()
    results = detector.score([image, frames[0], Image.fromarray(frames[1]),
                              frames[2].astype("float32") / 255.0, video,
                              tmp_path / "missing.png", object()],
                             frames=2)
    assert [r.media for r in results[:5]] == ["image", "image", "image", "image", "video"]
    assert results[0].score == pytest.approx(one.score) and results[0].path == image
    assert results[1].score == pytest.approx(one.score)  # the same face, from memory
    assert results[1].path == "<picture 1>" and results[1].frames[0].face is not None
    assert results[3].verdict in ("FAKE", "REAL")  # floats in [0, 1] are pictures too
    assert len(results[4].frames) == 2
    # one batch for the four pictures' faces, one for the video's frames
    assert sorted(batches) == [2, 4]
    assert results[5].verdict == "ERROR" and "no such file" in results[5].error
    assert results[6].verdict == "ERROR" and "not a picture" in results[6].error
    assert detector.score(frames[0]).path == "<picture 0>"
    with pytest.raises(predict.DataError, match="no such file"):
        detector.score(tmp_path / "missing.png")


def test_load_detector_prints_no_tensorflow_start_up_lines(tmp_path):
    model_path = export_image_model(tmp_path / "model.keras")
    code = ("import dfdetect, numpy as np; d = dfdetect.load_detector(%r); "
            "print(d.score(np.zeros((40, 40, 3), np.uint8)).verdict)" % str(model_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "NO FACE"
    assert done.stderr == "", done.stderr
