"""dfdetect.predict: a detector on videos and images (tiny models, tiny procedural videos).

The media helpers here are also used by tests/test_cli.py.
"""

import json
import os
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from dfdetect import overlays, predict
from dfdetect.errors import DataError, ModelError
from dfdetect.models.export import export_model
from dfdetect.synthetic import procedural

SIZE = 32  # model input side: tiny, the tests check plumbing, not accuracy


# --------------------------------------------------------------------------- helpers

def image_model(size: int = SIZE) -> keras.Model:
    """A tiny image model with a sigmoid head (random weights)."""
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(1, activation="sigmoid", name="head")(x)
    return keras.Model(inp, out, name="tiny_image")


def video_model(frames: int = 3, size: int = SIZE) -> keras.Model:
    """A tiny clip model (F, H, W, 3) -> 2-way softmax, index 1 = fake."""
    inp = keras.Input((frames, size, size, 3))
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3, activation="relu"),
                                     name="frame_conv")(inp)
    x = keras.layers.GlobalAveragePooling3D()(x)
    out = keras.layers.Dense(2, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="tiny_video")


def export_image_model(path, size: int = SIZE) -> str:
    """A tiny model exported with the metadata experiments/p1_fusion.py writes."""
    keras.utils.set_random_seed(0)
    return export_model(image_model(size), str(path), experiment="p1_fusion", config="tiny",
                        scale="smoke", image_size=size, threshold=0.5, trained_on="none")


def face_frames(n: int, seed: int = 1, size: int = 160) -> list[np.ndarray]:
    """``n`` RGB frames of one procedural face moving (HOG finds it in every frame)."""
    rng = np.random.default_rng(seed)
    ident = procedural.random_identity(rng)
    return [procedural.render_face(ident, view, size)[0]
            for view in procedural.face_motion(rng, n)]


def blank_frames(n: int, size: int = 160) -> list[np.ndarray]:
    """``n`` frames with no face: smooth colour ramps."""
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    frames = []
    for i in range(n):
        img = np.zeros((size, size, 3), np.uint8)
        img[..., 0] = ramp[None, :]
        img[..., 1] = ramp[:, None]
        img[..., 2] = (40 * i) % 256
        frames.append(img)
    return frames


def write_video(path, frames: list[np.ndarray], fps: float = 10.0) -> str:
    """Writes RGB frames as an .mp4 (OpenCV's mp4v)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)


def write_png(path, rgb: np.ndarray) -> str:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return str(path)


def unknown_layer_model(path) -> str:
    """An exported dfdetect model whose config names a layer no installation has."""
    import zipfile

    src = export_image_model(Path(path).with_name("source.keras"))
    with zipfile.ZipFile(src) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Conv2D":  # as saved by a machine with a custom layer
            layer.update(class_name="Vanished", module="somewhere.layers",
                         registered_name="somewhere>Vanished")
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Face video (8 frames), no-face video, half-and-half video, face and blank PNGs."""
    root = tmp_path_factory.mktemp("media")
    faces = face_frames(8)
    return {
        "face_video": write_video(root / "face.mp4", faces),
        "noface_video": write_video(root / "noface.mp4", blank_frames(6)),
        "mixed_video": write_video(root / "mixed.mp4", faces[:4] + blank_frames(4)),
        "face_png": write_png(root / "face.png", faces[0]),
        "blank_png": write_png(root / "blank.png", blank_frames(1)[0]),
        "root": root,
    }


@pytest.fixture(scope="module")
def image_detector(tmp_path_factory):
    from dfdetect.models.export import load_exported

    return load_exported(export_image_model(tmp_path_factory.mktemp("m") / "img.keras"))


@pytest.fixture(scope="module")
def video_detector(tmp_path_factory):
    from dfdetect.models.export import load_exported

    keras.utils.set_random_seed(0)
    path = export_model(video_model(frames=4), str(tmp_path_factory.mktemp("m") / "vid.keras"),
                        experiment="p3", image_size=SIZE)
    return load_exported(path)


# --------------------------------------------------------------------------- model spec

def test_model_spec_reads_size_frames_and_threshold(image_detector, video_detector):
    spec = predict.model_spec(*image_detector)
    assert (spec.kind, spec.height, spec.width, spec.frames) == ("image", SIZE, SIZE, None)
    assert spec.value_range == (0.0, 1.0) and spec.threshold == 0.5
    vspec = predict.model_spec(*video_detector)
    assert (vspec.kind, vspec.height, vspec.frames) == ("video", SIZE, 4)


def test_model_spec_takes_size_from_metadata_when_the_input_is_not_fixed():
    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(
        keras.layers.GlobalAveragePooling2D()(inp)))
    spec = predict.model_spec(model, {"kind": "image", "image_size": 48})
    assert (spec.height, spec.width) == (48, 48)
    with pytest.raises(ModelError, match="image_size"):
        predict.model_spec(model, {"kind": "image"})


def test_feature_sequence_models_are_refused():
    inp = keras.Input((10, 24))
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(
        keras.layers.LSTM(4)(inp)))
    with pytest.raises(ModelError, match="image models"):
        predict.model_spec(model, {"kind": "sequence"})


# --------------------------------------------------------------------------- videos

def test_image_model_scores_each_frame_and_averages(media, image_detector):
    model, meta = image_detector
    result = predict.score_video(model, meta, media["face_video"], frames=4)
    assert result.media == "video" and result.frames_sampled == 4
    assert result.frames_decoded == 4 and result.frames_used == 4
    assert [f.index for f in result.frames] == [0, 2, 5, 7]
    assert [f.time for f in result.frames] == pytest.approx([0.0, 0.2, 0.5, 0.7])
    scores = [f.score for f in result.frames]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert result.score == pytest.approx(np.mean(scores))
    assert result.verdict == ("FAKE" if result.score >= 0.5 else "REAL")
    for f in result.frames:
        top, right, bottom, left = f.crop
        assert right - left == bottom - top > 0  # square crop
        ftop, fright, fbottom, fleft = f.face
        assert top <= ftop and left <= fleft and bottom >= fbottom and right >= fright
    # the frame scores are exactly the model on the crops
    crops = predict.score_video(model, meta, media["face_video"], frames=4,
                                keep_crops=True).crops
    assert crops.shape == (4, SIZE, SIZE, 3) and 0.0 <= crops.min() and crops.max() <= 1.0
    direct = np.asarray(model(crops, training=False))[:, 0]
    np.testing.assert_allclose(scores, direct, rtol=1e-5)


def test_threshold_sets_the_verdict(media, image_detector):
    model, meta = image_detector
    low = predict.score_video(model, meta, media["face_video"], frames=2, threshold=0.0)
    high = predict.score_video(model, meta, media["face_video"], frames=2, threshold=1.0)
    assert (low.verdict, high.verdict) == ("FAKE", "REAL")
    assert low.score == pytest.approx(high.score)


def test_video_without_faces_is_no_face_not_an_error(media, image_detector):
    result = predict.score_video(*image_detector, media["noface_video"], frames=3)
    assert result.verdict == "NO FACE" and result.score is None
    assert result.frames_decoded == 3 and result.frames_used == 0
    assert all(f.face is None and f.score is None for f in result.frames)
    assert "NO FACE" in result.line() and "0/3" in result.line()


def test_only_face_frames_count(media, image_detector):
    model, meta = image_detector
    result = predict.score_video(model, meta, media["mixed_video"], frames=4)
    with_face = [f for f in result.frames if f.score is not None]
    assert [f.index for f in with_face] == [0, 2]  # frames 5 and 7 are blank
    assert result.frames_used == 2
    assert result.score == pytest.approx(np.mean([f.score for f in with_face]))


def test_video_model_scores_the_clip_once_from_face_frames(media, video_detector):
    model, meta = video_detector
    full = predict.score_video(model, meta, media["face_video"], keep_crops=True)
    assert full.frames_sampled == 4 and full.clip == [0, 2, 5, 7]
    assert full.crops.shape == (1, 4, SIZE, SIZE, 3)
    assert full.score == pytest.approx(float(np.asarray(model(full.crops))[0, 1]), rel=1e-5)
    assert all(f.score is None for f in full.frames)  # one score for the clip
    mixed = predict.score_video(model, meta, media["mixed_video"], frames=9)  # frames ignored
    assert mixed.frames_sampled == 4 and mixed.frames_used == 2
    assert mixed.clip == [0, 0, 2, 2]  # filled from the face frames, in time order
    none = predict.score_video(model, meta, media["noface_video"])
    assert none.verdict == "NO FACE" and none.clip is None


def test_bad_videos_raise_one_line_errors(tmp_path, media, image_detector):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    data = Path(media["face_video"]).read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    for path in (corrupt, truncated, tmp_path / "missing.mp4"):
        with pytest.raises(DataError) as info:
            predict.score_input(*image_detector, path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- images

def test_image_input_and_no_detect(media, image_detector, tmp_path):
    model, meta = image_detector
    face = predict.score_input(model, meta, media["face_png"])
    assert face.media == "image" and face.frames_used == 1 and face.verdict in ("FAKE", "REAL")
    blank = predict.score_input(model, meta, media["blank_png"])
    assert blank.verdict == "NO FACE"
    # --no-detect: the picture is the crop; exact model input = pixels / 255
    rgb = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), np.uint8)
    crop = predict.score_input(model, meta, write_png(tmp_path / "crop.png", rgb), detect=False)
    expected = float(np.asarray(model(rgb[None].astype("float32") / 255.0))[0, 0])
    assert crop.score == pytest.approx(expected, rel=1e-5)


def test_unsupported_and_undecodable_images(tmp_path, image_detector):
    heic = tmp_path / "photo.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 100)
    with pytest.raises(DataError, match="unsupported image format '.heic'"):
        predict.score_input(*image_detector, heic)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(DataError, match="cannot decode"):
        predict.score_input(*image_detector, broken)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        predict.score_input(*image_detector, notes)


# --------------------------------------------------------------------------- many inputs

def test_folder_run_scores_the_rest_and_counts_failures(tmp_path, media, image_detector):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    Path(folder / "a.mp4").write_bytes(Path(media["face_video"]).read_bytes())
    Path(folder / "sub" / "b.mp4").write_bytes(Path(media["noface_video"]).read_bytes())
    (folder / "c.mp4").write_bytes(b"not a video at all, just text")
    (folder / "d.heic").write_bytes(b"\x00" * 64)
    (folder / "readme.txt").write_text("ignored")
    seen = []
    summary = predict.predict_inputs(*image_detector, [folder, tmp_path / "gone.png"],
                                     frames=2, on_result=seen.append)
    names = [os.path.basename(r.path) for r in summary.results]
    assert names == ["a.mp4", "c.mp4", "d.heic", "b.mp4", "gone.png"]
    assert seen == summary.results
    verdicts = {os.path.basename(r.path): r.verdict for r in summary.results}
    assert verdicts["a.mp4"] in ("FAKE", "REAL") and verdicts["b.mp4"] == "NO FACE"
    assert [verdicts[n] for n in ("c.mp4", "d.heic", "gone.png")] == ["ERROR"] * 3
    assert summary.failures == 3 and summary.ignored == 1
    errors = {os.path.basename(r.path): r.error for r in summary.results if r.failed}
    assert "text file" in errors["c.mp4"] and "no such file" in errors["gone.png"]
    assert "3 failed" in summary.report() and "1 other files ignored" in summary.report()


def test_json_and_plot(tmp_path, media, image_detector):
    model, meta = image_detector
    summary = predict.predict_inputs(model, meta, [media["face_video"], media["noface_video"]],
                                     frames=3)
    path = predict.write_json(tmp_path / "out" / "scores.json", summary, "img.keras", meta)
    doc = json.loads(Path(path).read_text())
    assert doc["summary"]["inputs"] == 2 and doc["summary"]["NO FACE"] == 1
    assert doc["model_metadata"]["experiment"] == "p1_fusion"
    first = doc["results"][0]
    assert len(first["frames"]) == 3 and "crops" not in first
    assert set(first["frames"][0]) == {"index", "time", "face", "crop", "faces_found", "score"}
    png = predict.write_plot(tmp_path / "out" / "frames.png", summary.results)
    assert Path(png).stat().st_size > 1000
    assert predict.write_plot(tmp_path / "none.png", summary.results[1:]) is None


# --------------------------------------------------------------------------- explain

def test_explain_image_model_shows_the_most_suspicious_frames(tmp_path, media, image_detector):
    model, meta = image_detector
    scored = predict.score_video(model, meta, media["face_video"], frames=4)
    ranked = sorted(scored.frames, key=lambda f: -f.score)
    item = overlays.explain_input(model, meta, media["face_video"], tmp_path / "ex",
                                 frames=4, top=2)
    assert item.frames == [f.index for f in ranked[:2]]
    assert Path(item.grid).stat().st_size > 1000
    assert [Path(p).name for p in item.overlays] == [
        f"face_mp4_frame{i:05d}.png" for i in item.frames]
    overlay = cv2.imread(item.overlays[0])
    assert overlay.shape[0] >= 256  # enlarged from the 32-px crop
    none = overlays.explain_input(model, meta, media["noface_video"], tmp_path / "ex", top=2)
    assert none.grid is None and none.result.verdict == "NO FACE"


def test_explain_video_model(tmp_path, media, video_detector):
    item = overlays.explain_input(*video_detector, media["mixed_video"], tmp_path / "ex", top=3)
    assert item.frames == [0, 2]  # only two distinct face frames in the clip
    assert Path(item.grid).exists() and len(item.overlays) == 2


def test_truncated_video_that_still_plays_is_scored_from_what_decodes(tmp_path, image_detector):
    # MJPG .avi keeps its frames in order before the index: cut in half, half still plays
    full = tmp_path / "full.avi"
    frames = face_frames(10)
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 160))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.55)])
    result = predict.score_video(*image_detector, cut, frames=3)
    assert result.frame_count < 10 and result.frames_used == 3
    assert max(f.index for f in result.frames) == result.frame_count - 1
    assert "claims 10 frames" in result.notes[0]


def test_non_finite_model_output_is_a_model_error(image_detector):
    model = image_model()
    model.get_layer("head").set_weights([np.full((4, 1), np.nan, "float32"),
                                         np.zeros(1, "float32")])
    with pytest.raises(ModelError, match="non-finite"):
        predict.score_crops(model, np.zeros((2, SIZE, SIZE, 3), "float32"))


def test_json_names_the_box_order_and_the_plot_runs_in_seconds(tmp_path, media, image_detector,
                                                               monkeypatch):
    """Issue 32, item 7: the box order was in a docstring only; the plot's x axis was the
    frame index and its legend covered the P(fake) = 1 line."""
    from dfdetect import plots

    model, meta = image_detector
    summary = predict.predict_inputs(model, meta, [media["face_video"]], frames=3)
    doc = json.loads(predict.json_report(summary, "img.keras", meta))
    assert doc["box_order"] == ["top", "right", "bottom", "left"]
    face = doc["results"][0]["frames"][0]["face"]
    assert face[0] < face[2] and face[3] < face[1]  # top above bottom, left of right
    seen = {}
    monkeypatch.setattr(plots, "frame_scores", lambda path, series, **kw: seen.update(
        series=series, **kw) or path)
    predict.write_plot(tmp_path / "p.png", summary.results)
    result = summary.results[0]
    assert seen["xlabel"] == "time (s)"
    xs = next(iter(seen["series"].values()))[0]
    assert xs == [round(f.index / result.fps, 3) for f in result.frames]


def test_cli_frames_default_names_the_models_own(capsys):
    from dfdetect import cli

    assert cli.DEFAULT_FRAMES == predict.DEFAULT_FRAMES
    with pytest.raises(SystemExit):
        cli.main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: the number saved with the model" in text
    shipped = cli._shipped_frames()
    if shipped:
        assert f"{shipped} for the shipped detector, else 10" in text


def test_explain_overlays_say_what_they_show(tmp_path, media, image_detector, monkeypatch):
    """Issue 32, item 7: the per-frame overlay PNGs had no labels."""
    model, meta = image_detector
    lines = []
    caption = overlays._caption
    monkeypatch.setattr(overlays, "_caption", lambda picture, text: (
        lines.extend(text), caption(picture, text))[1])
    item = overlays.explain_input(model, meta, media["face_video"], tmp_path / "ex", frames=4,
                                 top=1)
    overlay = cv2.imread(item.overlays[0])
    band = overlay[:20]
    assert (band > 200).mean() > 0.7 and (band < 100).any()  # dark text on a white band
    index = item.frames[0]
    assert lines[0] == "face.mp4" and lines[1].startswith(f"frame {index} (")
    assert "P(fake)" in lines[1] and lines[2].startswith("video verdict: ")


# --------------------------------------------------------------------------- cold start

COLD_SCRIPT = """
import json, multiprocessing, sys
from dfdetect import predict
from dfdetect.errors import ModelError
used = []
plain = predict._FirstVideo.score
predict._FirstVideo.score = lambda self, *a: (used.append(self.path), plain(self, *a))[1]
model_path, inputs = sys.argv[1], json.loads(sys.argv[2])
try:
    _, _, summary = predict.load_and_predict(model_path, inputs, frames=4)
    rows = [[r.verdict, r.score, r.error, r.frames_used] for r in summary.results]
except ModelError as err:
    rows = str(err)
print(json.dumps({"rows": rows, "forked": used, "children": len(multiprocessing.active_children())}))
"""


def _cold_start(model_path, inputs) -> dict:
    """load_and_predict in a fresh interpreter (TensorFlow not yet imported: the fork)."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", COLD_SCRIPT, str(model_path),
                           json.dumps([str(i) for i in inputs])], cwd=repo, timeout=300,
                          capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_cold_start_finds_the_first_videos_faces_while_tensorflow_loads(tmp_path, media):
    path = export_image_model(tmp_path / "img.keras")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video at all, just text")
    inputs = [media["face_video"], corrupt, media["face_png"]]
    model, meta = predict.load_detector(path)
    expected = predict.predict_inputs(model, meta, inputs, frames=4).results
    got = _cold_start(path, inputs)
    # the first video went through the forked worker, and nothing of it is left running
    assert got["forked"] == [media["face_video"]] and got["children"] == 0
    for (verdict, score, error, used), want in zip(got["rows"], expected):
        assert (verdict, error, used) == (want.verdict, want.error, want.frames_used)
        assert score == pytest.approx(want.score, abs=1e-5)
    # a first video that fails in the worker is that input's one-line ERROR, as in-process
    got = _cold_start(path, [corrupt, media["face_video"]])
    assert got["forked"] == [str(corrupt)]
    assert got["rows"][0][:3] == [expected[1].verdict, None, expected[1].error]
    assert got["rows"][1][1] == pytest.approx(expected[0].score, abs=1e-5)


def test_a_cold_start_with_a_broken_model_is_one_model_error_and_stops_its_worker(tmp_path,
                                                                                    media):
    got = _cold_start(unknown_layer_model(tmp_path / "broken.keras"), [media["face_video"]])
    assert "Vanished" in got["rows"] and got["children"] == 0


LITERT_SCRIPT = """
import json, os, sys


class NoTensorFlow:  # as if neither were installed: the LiteRT path must not need them
    def find_spec(self, name, path=None, target=None):
        if sys.argv[3] != "keras" and name.split(".")[0] in ("tensorflow", "keras"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, NoTensorFlow())
from dfdetect import predict
splits = []
plain = predict._split_job
predict._split_job = lambda images, job: (splits.append(len(images)), plain(images, job))[1]
model_path, inputs = sys.argv[1], json.loads(sys.argv[2])
_, meta, summary = predict.load_and_predict(model_path, inputs, frames=4, runtime=sys.argv[3])
print(json.dumps({"rows": [[r.verdict, r.score, r.error, r.frames_used,
                            [f.score for f in r.frames], [f.crop for f in r.frames]]
                           for r in summary.results],
                  "tensorflow": "tensorflow" in sys.modules, "splits": splits,
                  "model": type(_).__name__}))
"""


def _fresh_predict(model_path, inputs, runtime="auto", workers="2") -> dict:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", LITERT_SCRIPT, str(model_path),
                           json.dumps([str(i) for i in inputs]), runtime], cwd=repo,
                          timeout=300, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                               "DFDETECT_FACE_WORKERS": workers})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "XNNPACK" not in done.stderr  # the interpreter's start-up line is not shown
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_model_with_a_litert_twin_is_scored_without_tensorflow(tmp_path, media):
    from dfdetect.models.litert import export_litert

    path = export_image_model(tmp_path / "img.keras")
    export_litert(path)
    inputs = [media["face_video"], media["mixed_video"], media["face_png"]]
    model, meta = predict.load_detector(path)
    expected = predict.predict_inputs(model, meta, inputs, frames=4).results
    got = _fresh_predict(path, inputs)
    assert got["model"] == "LiteRTModel" and not got["tensorflow"]
    # each video's faces were found by two processes, and nothing moved
    assert got["splits"] == [4, 4]
    alone = _fresh_predict(path, inputs, workers="1")
    assert alone["splits"] == [] and [r[5] for r in alone["rows"]] == [r[5] for r in got["rows"]]
    for (verdict, score, error, used, frames, _), want in zip(got["rows"], expected):
        assert (verdict, error, used) == (want.verdict, want.error, want.frames_used)
        assert score == pytest.approx(want.score, abs=1e-5)
        assert frames == pytest.approx([f.score for f in want.frames], abs=1e-5)
    # forced Keras: TensorFlow starts, the same scores
    forced = _fresh_predict(path, inputs, runtime="keras")
    assert forced["tensorflow"] and forced["model"] == "Functional"
    assert [r[1] for r in forced["rows"]] == pytest.approx([r[1] for r in got["rows"]],
                                                           abs=1e-5)


SPLIT_SCRIPT = """
import json, os, sys
import numpy as np
from dfdetect import predict
from dfdetect.errors import DataError
parent = os.getpid()
images = [np.full((2, 2, 3), i, np.uint8) for i in range(7)]
out = {"workers": predict.face_workers()}
out["plain"] = predict._split_job(images, lambda x: (int(x[0, 0, 0]), os.getpid() == parent))
def fails(x):
    if int(x[0, 0, 0]) == 3:
        raise DataError("frame 3 is bad", "v.mp4")
    return int(x[0, 0, 0])
try:
    predict._split_job(images, fails)
except DataError as err:
    out["error"] = str(err)
def dies(x):
    if os.getpid() != parent:
        os._exit(3)
    return int(x[0, 0, 0])
out["died"] = predict._split_job(images, dies)
print(json.dumps(out))
"""


def test_two_processes_find_the_faces_in_order_and_lose_nothing_when_one_fails():
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", SPLIT_SCRIPT], cwd=repo, timeout=120,
                          capture_output=True, text=True,
                          env={**os.environ, "DFDETECT_FACE_WORKERS": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    if (os.cpu_count() or 1) >= 2:
        assert got["workers"] == 2
        # results in the images' order; the odd ones came from the child
        assert got["plain"] == [[i, i % 2 == 0] for i in range(7)]
    assert got["error"] == "v.mp4: frame 3 is bad"  # the child's error, as the parent's
    assert got["died"] == list(range(7))  # a dead child's images are done by the parent


def test_load_and_predict_without_the_fork_is_predict_inputs(tmp_path, media, image_detector):
    path = export_image_model(tmp_path / "img.keras")
    _, meta, summary = predict.load_and_predict(path, [media["face_video"]], frames=4)
    assert meta["image_size"] == SIZE  # TensorFlow runs here: no fork, the plain path
    want = predict.predict_inputs(*image_detector, [media["face_video"]], frames=4)
    assert summary.results[0].score == pytest.approx(want.results[0].score, abs=1e-6)
