"""dfdetect.evaluate and ``dfdetect evaluate``: labels from names, folders and manifests,
metrics on known scores, the command end to end on tiny media, the MesoNet adapter.

Reads ../shared/data/realworld/PROVENANCE.csv (names only, no video is decoded) and the
MesoNet authors' released weights in ../shared/weights/mesonet/.
"""

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from dfdetect import cli, evaluate, evaluation, results
from dfdetect.data.store import MANIFEST_COLUMNS
from dfdetect.errors import DataError, ModelError
from dfdetect.evaluate import LabelledInput, VideoScore
from test_predict import blank_frames, export_image_model, face_frames, write_png, write_video

MESONET = Path(__file__).resolve().parents[1] / ".." / "shared" / "weights" / "mesonet"


# --------------------------------------------------------------------------- labels

@pytest.mark.parametrize("name, expected", [
    ("ffpp_fake_Face2Face_000_003.mp4", (1, "ffpp", "Face2Face")),
    ("ffpp_fake_DeepFakeDetection_01_11__talking_against_wall__9229VVZ3.mp4",
     (1, "ffpp", "DeepFakeDetection")),
    ("FFPP_FAKE_faceswap_1.mp4", (1, "ffpp", "FaceSwap")),  # any case, canonical method
    ("celebdf_real_id21_0009_seg1_facecrop.mp4", (0, "celebdf", "real")),
    ("celebdf_fake_id0_id1_0005_seg1_facecrop.mp4", (1, "celebdf", "Celeb-synthesis")),
    ("dfdc_fake_acxnxvbsxk.mp4", (1, "dfdc", "DFDC")),  # a video id, not a method
    ("mine_fake_StyleGAN_7.png", (1, "mine", "StyleGAN")),
    ("mine_fake_0042.png", (1, "mine", None)),
    ("fake_0042.png", (1, None, None)),
    ("holiday_realistic.mp4", (None, None, None)),
    ("clip.mp4", (None, None, None)),
])
def test_parse_name(name, expected):
    assert evaluate.parse_name(f"/any/where/{name}") == expected


def test_every_realworld_name_parses_as_its_provenance_says(shared_data):
    with open(shared_data / "realworld" / "PROVENANCE.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # 33 real / 96 fake: the first 32 clips, plus FaceForensics++ c23 clips of more
    # methods and the same sequences at c40
    assert len(rows) == 129
    assert sum(r["label"] == "real" for r in rows) == 33
    for row in rows:
        item = evaluate.label_from_path(shared_data / "realworld" / row["file"])
        assert item.label == {"real": 0, "fake": 1}[row["label"]], row["file"]
        assert item.source == row["file"].split("_")[0]
        if row["label"] == "real":
            assert item.method == "real"
        elif item.source == "dfdc":
            assert item.method == "DFDC"  # PROVENANCE: "DFDC-faceswap(unspecified)"
        else:  # FF++ method names, Celeb-synthesis
            assert item.method == row["method"], row["file"]


def test_labels_from_folders(tmp_path):
    def at(relative):
        return evaluate.label_from_path(tmp_path / relative)

    assert at("celebdf/fake/Face2Face/a.mp4") == LabelledInput(
        str(tmp_path / "celebdf/fake/Face2Face/a.mp4"), 1, "celebdf", "Face2Face")
    assert (at("mydata/real/b.png").label, at("mydata/real/b.png").source,
            at("mydata/real/b.png").method) == (0, "mydata", "real")
    assert at("mydata/FAKE/c.png").method == "unknown"
    # the name is more specific than the folder for source and method
    named = at("mydata/fake/dfdc_fake_abcdefghij.mp4")
    assert (named.label, named.source, named.method) == (1, "dfdc", "DFDC")
    # folder and name disagree: not clear which is right, so no label
    assert at("mydata/real/ffpp_fake_Deepfakes_1.mp4") is None
    assert at("mydata/other/c.png") is None


def _write_store(root: Path) -> Path:
    """A tiny store: two videos of 2-3 crops (one real, one fake), one in another split."""
    rows = []
    for video_id, label, method, split, n in (("v1", 0, "real", "test", 3),
                                              ("v2", 1, "self_blend", "test", 2),
                                              ("v3", 1, "self_blend", "train", 2)):
        for frame, rgb in enumerate(face_frames(n, seed=len(rows) + 3, size=48)):
            rel = f"crops/bench/{video_id}/{frame:03d}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            write_png(root / rel, rgb)
            rows.append({"path": f"/data/{video_id}.mp4", "label": label, "video_id": video_id,
                         "split": split, "source": "bench", "method": method,
                         "frame_index": 2 - frame if video_id == "v1" else frame,
                         "crop_path": rel})
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return root / "manifest.csv"


def test_labels_from_a_manifest_grouped_by_video(tmp_path):
    manifest = _write_store(tmp_path)
    for given in (manifest, tmp_path):  # the manifest or the store folder
        items, unlabelled, ignored = evaluate.collect_labelled([given])
        assert [(i.path, i.label, i.source, i.method) for i in items] == [
            ("/data/v1.mp4", 0, "bench", "real"), ("/data/v2.mp4", 1, "bench", "self_blend"),
            ("/data/v3.mp4", 1, "bench", "self_blend")]
        assert [index for index, _ in items[0].crops] == [0, 1, 2]  # time order
        assert (unlabelled, ignored) == ([], 0)
    items, _, _ = evaluate.collect_labelled([manifest], split="test")
    assert len(items) == 2


def test_a_manifest_with_mixed_labels_in_one_video_is_one_line(tmp_path):
    manifest = _write_store(tmp_path)
    text = manifest.read_text().replace("/data/v2.mp4,1,v2", "/data/v2.mp4,0,v2", 1)
    manifest.write_text(text)
    with pytest.raises(DataError, match="v2 has crops labelled both real and fake") as info:
        evaluate.collect_labelled([manifest])
    assert str(manifest) in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- metrics

def _video(label, score, source="s", method=None, frames=(), verdict=None, sampled=4):
    item = LabelledInput(f"{source}_{label}_{score}.mp4", label, source,
                         method or ("real" if label == 0 else "m"))
    if verdict is None:
        verdict = "NO FACE" if score is None else ("FAKE" if score >= 0.5 else "REAL")
    frames = list(frames) if frames else ([] if score is None else [score] * 2)
    return VideoScore(item=item, score=score, verdict=verdict, threshold=0.5,
                      frames_sampled=sampled, frames_used=len(frames), frame_scores=frames)


def test_perfectly_separated_scores_give_auc_1_and_eer_0():
    videos = [_video(0, 0.1), _video(0, 0.2), _video(1, 0.8), _video(1, 0.9)]
    row = evaluate.metrics_table(videos, 0.5)[0]
    assert (row["group"], row["name"], row["n_videos"], row["n_real"], row["n_fake"]) == (
        "all", "all", 4, 2, 2)
    assert row["video_auc"] == 1.0 and row["video_eer"] == 0.0 and row["video_ap"] == 1.0
    assert row["video_acc"] == 1.0 and row["frame_auc"] == 1.0
    assert (row["frames_with_face"], row["frames_sampled"], row["face_rate"]) == (8, 16, 0.5)


def test_inverted_scores_give_auc_0_and_threshold_sets_accuracy():
    videos = [_video(0, 0.9), _video(0, 0.8), _video(1, 0.3), _video(1, 0.2)]
    assert evaluate.metrics_table(videos, 0.5)[0]["video_auc"] == 0.0
    assert evaluate.metrics_table(videos, 0.5)[0]["video_acc"] == 0.0
    assert evaluate.metrics_table(videos, 0.1)[0]["video_acc"] == 0.5  # all called fake


def test_groups_per_source_and_method():
    videos = [_video(0, 0.1, "a"), _video(0, 0.4, "b"), _video(1, 0.9, "a", "X"),
              _video(1, 0.3, "b", "Y"), _video(1, 0.6, "c", "Y"),
              _video(1, None, "a", "X"),  # no face: counted, not scored
              _video(0, None, "b", verdict="ERROR", sampled=0)]
    rows = {(r["group"], r["name"]): r for r in evaluate.metrics_table(videos, 0.5)}
    assert list(rows) == [("all", "all"), ("source", "a"), ("source", "b"), ("source", "c"),
                          ("method", "X"), ("method", "Y")]
    total = rows[("all", "all")]
    assert (total["n_videos"], total["n_scored"], total["n_no_face"], total["n_failed"]) == (
        7, 5, 1, 1)
    assert math.isnan(rows[("source", "c")]["video_auc"])  # one class only: blank
    assert math.isnan(rows[("source", "c")]["video_eer"])
    assert rows[("source", "c")]["video_acc"] == 1.0
    # a method's fakes against every real of the evaluation
    x, y = rows[("method", "X")], rows[("method", "Y")]
    assert (x["n_real"], x["n_fake"], x["n_scored"]) == (3, 2, 3)
    assert x["video_auc"] == 1.0
    assert (y["n_fake"], y["video_auc"]) == (2, 0.75)


def test_outputs_are_csv_and_png(tmp_path):
    videos = [_video(0, 0.1, "a"), _video(1, 0.7, "a", "X"), _video(1, 0.6, "b", "X")]
    summary = evaluate.EvaluationSummary(videos=videos, threshold=0.5)
    paths = evaluate.write_outputs(tmp_path / "out", summary)
    with open(paths["scores"], newline="") as handle:
        scores = list(csv.DictReader(handle))
    assert list(scores[0]) == list(evaluate.SCORE_COLUMNS)
    assert [s["label"] for s in scores] == ["0", "1", "1"]
    with open(paths["metrics"], newline="") as handle:
        metrics = {(r["group"], r["name"]): r for r in csv.DictReader(handle)}
    assert metrics[("source", "b")]["video_auc"] == ""  # one class: blank, not NaN
    assert metrics[("all", "all")]["video_auc"] == "1"
    assert Path(paths["roc"]).read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "metrics.csv", "roc.png", "scores.csv"]


# --------------------------------------------------------------------------- the command

def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    folder = root / "set"
    (folder / "real").mkdir(parents=True)
    (folder / "fake" / "Face2Face").mkdir(parents=True)
    # seeds and sizes whose procedural faces HOG finds in every frame, after mp4 coding
    write_video(folder / "real" / "r1.mp4", face_frames(3, seed=6, size=80))
    write_video(folder / "fake" / "Face2Face" / "f1.mp4", face_frames(3, seed=11, size=80))
    write_png(folder / "tiny_fake_FaceSwap_1.png", face_frames(2, seed=6, size=64)[1])
    write_png(folder / "tiny_real_2.png", blank_frames(1, size=64)[0])  # no face
    write_png(folder / "mystery.png", face_frames(1, seed=5, size=64)[0])  # no label
    (folder / "notes.txt").write_text("ignored")
    return {"root": root, "folder": folder, "model": export_image_model(root / "tiny.keras")}


def test_evaluate_end_to_end(capsys, media, tmp_path):
    out = tmp_path / "out"
    code, lines, err = run(capsys, "evaluate", media["model"], media["folder"], "--frames", "2",
                           "--out", out)
    assert code == 0 and err == []
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == 4 and progress[0].startswith("[1/4] ")
    assert any("NO FACE" in line and "(real, tiny/real)" in line for line in progress)
    assert any("(fake, set/Face2Face)" in line for line in progress)
    assert "1 input without a label skipped" in "\n".join(lines)
    assert lines[-1].startswith("tiny: 4 videos (2 real, 2 fake): video AUC ")
    assert "accuracy " in lines[-1] and "1 NO FACE, 0 failed" in lines[-1]
    with open(out / "scores.csv", newline="") as handle:
        scores = {Path(r["path"]).name: r for r in csv.DictReader(handle)}
    assert set(scores) == {"r1.mp4", "f1.mp4", "tiny_fake_FaceSwap_1.png", "tiny_real_2.png"}
    assert (scores["f1.mp4"]["label"], scores["f1.mp4"]["source"],
            scores["f1.mp4"]["method"]) == ("1", "set", "Face2Face")
    assert (scores["r1.mp4"]["frames_sampled"], scores["r1.mp4"]["frames_used"]) == ("2", "2")
    assert scores["tiny_real_2.png"]["verdict"] == "NO FACE"
    assert scores["tiny_real_2.png"]["score"] == ""
    with open(out / "metrics.csv", newline="") as handle:
        metrics = {(r["group"], r["name"]): r for r in csv.DictReader(handle)}
    total = metrics[("all", "all")]
    assert (total["n_videos"], total["n_scored"], total["frames_with_face"],
            total["frames_sampled"]) == ("4", "3", "5", "6")
    assert 0.0 <= float(total["video_auc"]) <= 1.0
    assert ("method", "FaceSwap") in metrics and ("source", "tiny") in metrics
    assert (out / "roc.png").is_file()


def test_evaluate_a_store(capsys, media, tmp_path):
    manifest = _write_store(tmp_path / "store")
    code, lines, err = run(capsys, "evaluate", media["model"], manifest, "--split", "test",
                           "--out", tmp_path / "out")
    assert code == 0 and err == []
    assert [line.split()[0] for line in lines[:2]] == ["[1/2]", "[2/2]"]
    assert "3/3 frames with a face" in lines[0]
    assert lines[-1].startswith("tiny: 2 videos (1 real, 1 fake)")


def test_a_video_model_scores_a_store_video_as_one_clip(tmp_path):
    import keras

    from dfdetect.models.export import export_model, load_exported
    from test_predict import SIZE, video_model

    keras.utils.set_random_seed(0)
    model, meta = load_exported(export_model(video_model(frames=4), str(tmp_path / "v.keras"),
                                             image_size=SIZE))
    summary = evaluate.evaluate_inputs(model, meta, [_write_store(tmp_path / "store")])
    assert [(v.frames_sampled, v.frames_used) for v in summary.videos] == [(3, 3), (2, 2),
                                                                          (2, 2)]
    assert all(v.score is not None and v.frame_scores == [] for v in summary.videos)
    assert math.isnan(evaluate.metrics_table(summary.videos, 0.5)[0]["frame_auc"])


def test_evaluate_without_labels_or_with_a_bad_input_is_one_line(capsys, media, tmp_path):
    code, lines, err = run(capsys, "evaluate", media["model"], media["folder"] / "mystery.png",
                           "--out", tmp_path / "o1")
    assert code == 2 and len(err) == 1 and "no labelled input to evaluate" in err[0]
    broken = tmp_path / "x_fake_Deepfakes_1.mp4"
    broken.write_bytes(b"\x00" * 100)
    code, lines, err = run(capsys, "evaluate", media["model"], broken,
                           media["folder"] / "real" / "r1.mp4", "--frames", "2",
                           "--out", tmp_path / "o2")
    assert code == 2  # outputs are still written, the failure counted
    assert len(err) == 1 and err[0].startswith(f"dfdetect: error: {broken}: ")
    assert "0 NO FACE, 1 failed" in lines[-1]
    assert (tmp_path / "o2" / "scores.csv").read_text().count("ERROR") == 1


def test_evaluate_help_names_the_label_sources(capsys):
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--help"])
    text = capsys.readouterr().out
    assert "real/ or fake/" in text and "_fake_" in text and "manifest.csv" in text


# --------------------------------------------------------------------------- MesoNet

def test_mesonet_released_weights_score_one_minus_their_output(tmp_path):
    import keras

    from dfdetect import predict
    from dfdetect.models.meso import build_meso4
    from dfdetect.models.released import export_mesonet, load_mesonet

    weights = MESONET / "Meso4_DF.h5"
    model, meta = load_mesonet(weights)
    spec = predict.model_spec(model, meta)
    assert (spec.kind, spec.height, spec.value_range, meta["frames"]) == (
        "image", 256, (0.0, 1.0), 16)
    base = build_meso4((256, 256, 3))
    base.load_weights(weights)
    x = np.random.default_rng(0).random((2, 256, 256, 3), dtype=np.float32)
    p_real = np.asarray(base.predict_on_batch(x))
    np.testing.assert_allclose(model.predict_on_batch(x), 1.0 - p_real, atol=1e-6)
    # exported, it loads back in safe mode (a registered layer, no Lambda)
    path = export_mesonet(weights, tmp_path / "meso4_df.keras")
    again, again_meta = predict.load_detector(path)
    assert again_meta["config"] == "Meso4_DF"
    np.testing.assert_allclose(again.predict_on_batch(x), 1.0 - p_real, atol=1e-6)
    keras.backend.clear_session()


def test_mesonet_bad_weights_are_one_line(tmp_path):
    from dfdetect.models.released import load_mesonet

    with pytest.raises(ModelError, match="not found"):
        load_mesonet(tmp_path / "missing.h5")
    bad = tmp_path / "Meso4_bad.h5"
    bad.write_text("not hdf5")
    with pytest.raises(ModelError, match="cannot load as Meso-4 weights") as info:
        load_mesonet(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_evaluate_mesonet_and_a_model_together_is_refused(capsys, media):
    code, _, err = run(capsys, "evaluate", "--mesonet", MESONET / "Meso4_DF.h5", media["model"],
                       media["folder"])
    assert code == 2 and "either a model" in err[0]


def test_summary_puts_every_evaluated_model_on_one_row_and_one_chart(tmp_path):
    from dfdetect import evaluate as ev

    header = "group,name,n_videos,video_auc,video_acc,threshold,face_rate\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "metrics.csv").write_text(
        header + "all,all,32,0.8,0.75,0.5,1\nsource,ffpp,24,0.9,0.8,0.5,1\n"
        "source,dfdc,2,,0.5,0.5,1\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "metrics.csv").write_text(header + "all,all,32,0.4,0.5,0.5,0.9\n")
    (tmp_path / "not_a_model").mkdir()
    path = ev.summarize_folder(tmp_path)
    rows = (tmp_path / "summary.csv").read_text().splitlines()
    assert path == str(tmp_path / "summary.csv")
    assert rows[0].startswith("model,n_videos,video_auc")
    assert rows[1].startswith("a,32,0.8,,0.75") and ",0.9," in rows[1]
    assert rows[2].startswith("b,32,0.4,,0.5")
    assert len(rows) == 3 and (tmp_path / "summary.png").stat().st_size > 1000
    assert ev.summarize_folder(tmp_path / "missing") is None


def test_chance_p_of_an_auc_is_the_mann_whitney_normal_tail():
    from dfdetect.evaluation import auc_chance_p

    assert auc_chance_p(0.5, 20, 12) == pytest.approx(0.5)
    # 12 reals, 20 fakes: sd 0.107, so 0.71 is ~1.96 sd above chance
    sd = math.sqrt(33 / (12 * 240))
    assert auc_chance_p(0.5 + 1.959964 * sd, 20, 12) == pytest.approx(0.025, abs=1e-4)
    assert auc_chance_p(0.3, 20, 12) > 0.95
    # the normal tail against an exact permutation count on a small set
    rng = np.random.default_rng(0)
    labels = np.array([1] * 20 + [0] * 12)
    scores = np.linspace(0, 1, 32)
    from sklearn.metrics import roc_auc_score

    null = np.array([roc_auc_score(rng.permutation(labels), scores) for _ in range(4000)])
    assert auc_chance_p(0.65, 20, 12) == pytest.approx(np.mean(null >= 0.65), abs=0.02)
    assert math.isnan(auc_chance_p(0.7, 0, 12)) and math.isnan(auc_chance_p(float("nan"), 3, 3))


def test_summary_chart_colours_models_by_family_and_ranks_them(tmp_path, monkeypatch):
    from dfdetect import evaluate as ev
    from dfdetect import plots

    assert ev.model_family("p1_v3_faces_meso4+xception") == "p1_v3_faces"
    assert ev.model_family("p3_v2_procedural_convlstm_cbam") == "p3_v2_procedural"
    assert ev.model_family("mesonet_Meso4_DF") == "mesonet"
    assert ev.model_family("default") == "default"
    seen = {}
    monkeypatch.setattr(plots, "ranked_bars", lambda path, names, values, **kw: seen.update(
        names=names, values=values, **kw))
    header = "group,name,n_videos,n_real,n_fake,video_auc,video_acc,threshold,face_rate\n"
    for name, auc in (("default", "0.6"), ("p1_v3_faces_meso4", "0.5"),
                      ("p1_v3_faces_xception", "")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.csv").write_text(
            header + f"all,all,32,12,20,{auc},0.5,0.5,1\n")
    ev.summarize_folder(tmp_path)
    summary = results.read_table(tmp_path / "summary.csv")
    assert float(summary[0]["video_auc_p"]) == pytest.approx(
        evaluation.auc_chance_p(0.6, 20, 12), abs=1e-5) and summary[2]["video_auc_p"] == ""
    assert seen["names"] == ["default", "p1_v3_faces_meso4", "p1_v3_faces_xception"]
    assert seen["groups"] == ["default", "p1_v3_faces", "p1_v3_faces"]
    assert seen["values"][:2] == [0.6, 0.5] and np.isnan(seen["values"][2])
    assert seen["lines"] == {"chance": 0.5} and "(32 videos)" in seen["title"]


def test_ranked_bars_draws_best_first_with_empty_bars_last(tmp_path, monkeypatch):
    import matplotlib.axes

    from dfdetect import plots

    labels = []
    original = matplotlib.axes.Axes.set_yticks
    monkeypatch.setattr(matplotlib.axes.Axes, "set_yticks",
                        lambda ax, ticks, names=None, **kw: (labels.append(list(names)),
                                                             original(ax, ticks, names, **kw)))
    path = plots.ranked_bars(tmp_path / "r.png", ["a", "b", "c", "d"],
                             [0.4, float("nan"), 0.9, 0.6], groups=["x", "y", "x", "y"],
                             markers={"acc": [0.5, 0.5, 0.5, 0.5]}, lines={"chance": 0.5})
    assert labels == [["c", "d", "a", "b"]]
    assert Path(path).stat().st_size > 1000


def test_a_store_video_is_named_once_even_when_a_real_and_its_fake_share_a_source(tmp_path):
    """Issue 32, item 7: the benchmark's real and fake of one photo printed one id."""
    manifest = _write_store(tmp_path)
    text = manifest.read_text().replace("/data/v2.mp4", "/data/v1.mp4")
    manifest.write_text(text)
    items, _, _ = evaluate.collect_labelled([manifest])
    assert [i.path for i in items] == ["bench/v1", "bench/v2", "/data/v3.mp4"]
    # the same names in one split as in all: v1 and v2 share a file in the store
    items, _, _ = evaluate.collect_labelled([manifest], split="test")
    assert [i.path for i in items] == ["bench/v1", "bench/v2"]


def test_metrics_carry_the_chance_p_and_roc_flags_small_groups(tmp_path, monkeypatch):
    """Issue 32, item 7: metrics.csv lacked the chance p that summary.csv had; roc.png
    drew groups of 2 videos without a caveat and hid a curve on the axes."""
    from dfdetect import plots
    from dfdetect.evaluation import auc_chance_p

    videos = ([_video(0, 0.05 * i, "big") for i in range(6)]
              + [_video(1, 0.5 + 0.05 * i, "big") for i in range(6)]
              + [_video(0, 0.9, "small"), _video(1, 0.2, "small")])
    summary = evaluate.EvaluationSummary(videos=videos, threshold=0.5)
    drawn = {}
    import matplotlib.axes

    original = matplotlib.axes.Axes.plot

    def spy(ax, *args, **kwargs):
        if "label" in kwargs:
            drawn[kwargs["label"]] = kwargs
        return original(ax, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    paths = evaluate.write_outputs(tmp_path / "out", summary)
    with open(paths["metrics"], newline="") as handle:
        metrics = {(r["group"], r["name"]): r for r in csv.DictReader(handle)}
    assert list(metrics[("all", "all")])[:10] == list(evaluate.METRIC_COLUMNS)[:10]
    big = metrics[("source", "big")]
    assert float(big["video_auc"]) == 1.0
    assert float(big["video_auc_p"]) == pytest.approx(auc_chance_p(1.0, 6, 6), abs=1e-5)
    small = [label for label in drawn if label.startswith("small")]
    assert small == ["small: AUC 0.000, 1 real / 1 fake (too few to judge)"]
    assert drawn[small[0]]["ls"] == "--" and drawn[small[0]]["clip_on"] is False
    assert "big: AUC 1.000, 6 real / 6 fake" in drawn
    assert plots.FEW_PER_CLASS == 5


def test_evaluate_without_out_says_where_it_writes(capsys, media, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, lines, err = run(capsys, "evaluate", media["model"], media["folder"] / "real",
                           "--frames", "1")
    assert code == 0, err
    where = tmp_path / "results" / "evaluate" / "tiny"
    assert lines[0] == (f"tiny: results go to {where} (results/evaluate/tiny in the current "
                        "folder; --out DIR to choose)")
    assert (where / "metrics.csv").is_file()
