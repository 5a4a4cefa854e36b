"""The default detector's training: pool preparation, pairs and their boundary maps,
identity-disjoint splits, a smoke training that resumes, and the exported model."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from dfdetect import detector
from dfdetect.errors import DataError

SMOKE = dataclasses.replace(detector.SCALES["smoke"], max_photos=None)


@pytest.fixture(scope="module")
def pool(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for path in sorted((shared_data / "faces").glob("*.jpg"))[:14]:
        shutil.copy(path, folder / path.name)
    cache = tmp_path_factory.mktemp("pool")
    return detector.prepare_pool(str(folder), None, SMOKE, cache, workers=1,
                                 say=lambda line: None)


def test_pool_holds_canvases_with_landmarks_and_the_predict_crop(pool):
    n = len(pool)
    assert 8 <= n <= 14
    assert pool.images.shape == (n, SMOKE.canvas, SMOKE.canvas, 3)
    assert pool.images.dtype == np.uint8
    assert pool.landmarks.shape == (n, 68, 2)
    cx, cy, side = pool.crop[0]
    # the canvas holds 1.5x the predict crop, centred
    assert side == pytest.approx(SMOKE.canvas / detector.CONTEXT, rel=0.02)
    assert cx == pytest.approx(SMOKE.canvas / 2)
    assert (pool.kind == "photo").all()


def test_swapped_pairs_are_another_faces_blend_and_leave_the_sbi_pairs_as_they_were(pool):
    from dfdetect.detector.pairs import training_dataset

    idx = np.arange(len(pool))
    one = dataclasses.replace(SMOKE, steps=1)

    def batch(sc):
        x, y = next(iter(training_dataset(pool, idx, sc, seed=3, epoch=0)))
        return x.numpy(), y["boundary"].numpy()

    plain, plain_b = batch(one)
    again, _ = batch(dataclasses.replace(one, swap_share=0.0))
    np.testing.assert_array_equal(plain, again)  # the SBI recipe's stream is untouched
    swapped, swapped_b = batch(dataclasses.replace(one, swap_share=1.0))
    k = one.batch_pairs
    assert swapped.shape == plain.shape and swapped_b.shape == plain_b.shape
    # every fake is now a swap: other pixels, and still a blending boundary to learn
    assert not np.allclose(swapped[k:], plain[k:])
    assert (swapped_b[k:].reshape(k, -1).max(axis=1) > 0.5).all()
    assert (swapped_b[:k] == 0).all()


def test_pool_is_cached(pool, shared_data, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in sorted((shared_data / "faces").glob("*.jpg"))[:3]:
        shutil.copy(path, folder / path.name)
    lines = []
    first = detector.prepare_pool(str(folder), None, SMOKE, tmp_path / "c", workers=1,
                                  say=lines.append)
    again = detector.prepare_pool(str(folder), None, SMOKE, tmp_path / "c", workers=1,
                                  say=lines.append)
    np.testing.assert_array_equal(first.images, again.images)
    assert "from" in lines[-1]


def test_a_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        detector.prepare_pool(str(tmp_path / "nope"), None, SMOKE, tmp_path, workers=1)


def test_evaluation_clips_are_never_training_material_nor_test_clips_selection(tmp_path,
                                                                              pool):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("mine.mp4", "celebdf_real_id0_0000.mp4", "ffpp_fake_Deepfakes_000_003.mp4"):
        (videos / name).write_bytes(b"")  # refused by name, before anything is decoded
    with pytest.raises(DataError, match=r"celebdf_real_id0_0000.mp4 \(and 1 more\): a clip "
                                        "of the real-deepfake evaluation set"):
        detector.prepare_pool(None, str(videos), SMOKE, tmp_path / "c", workers=1)
    test_clips = detector.SelectionSet(
        names=["dfdc_fake_x.mp4"], labels=np.array([1]), methods=["DFDC"],
        compression=["c23"], crops=np.zeros((1, SMOKE.size, SMOKE.size, 3), np.uint8),
        video=np.array([0]))
    with pytest.raises(DataError, match="cross-dataset test clip"):
        detector.train_detector(pool, SMOKE, tmp_path / "run", export_path=None,
                                selection=test_clips, say=lambda s: None)
    assert not (tmp_path / "run").exists()


def test_pairs_are_deterministic_and_the_boundary_marks_the_blend_edge(pool):
    real, fake, bmap = detector.make_pair(pool, 0, np.random.default_rng(5), 64)
    real2, fake2, bmap2 = detector.make_pair(pool, 0, np.random.default_rng(5), 64)
    np.testing.assert_array_equal(fake, fake2)
    np.testing.assert_array_equal(bmap, bmap2)
    assert real.shape == fake.shape == (64, 64, 3) and bmap.shape == (16, 16)
    assert 0 <= bmap.min() and bmap.max() <= 1 and bmap.max() > 0.3
    assert not np.array_equal(real, fake)
    # the boundary is a ring: the crop's corners and its centre are (mostly) not on it
    assert bmap[0, 0] < 0.05 and bmap[8, 8] < bmap.max()


def test_boundary_target_is_zero_inside_and_outside():
    alpha = np.zeros((40, 40), np.float32)
    alpha[10:30, 10:30] = 0.5
    b = detector.boundary_target(alpha, 0.5, 40)
    assert b[20, 20] == 0 and b[0, 0] == 0


def test_split_keeps_videos_whole():
    groups = np.array(["a.jpg", "b.jpg", "c.jpg"] + ["v1.mp4"] * 3 + ["v2.mp4"] * 3
                      + ["v3.mp4"] * 3 + ["v4.mp4"] * 3)
    kinds = np.array(["photo"] * 3 + ["frame"] * 12)
    fake_pool = detector.FacePool(np.zeros((15, 4, 4, 3), np.uint8), np.zeros((15, 68, 2)),
                                  np.zeros((15, 3)), groups, kinds)
    train, val = detector.split_pool(fake_pool, val_videos=1)
    assert set(groups[train]).isdisjoint(set(groups[val]))
    assert len({g for g in groups[val] if g.endswith(".mp4")}) == 1


@pytest.fixture(scope="module")
def run64(pool, tmp_path_factory):
    """A smoke run's first stage: epoch 1 of a 2-epoch schedule (``stop_after``), exported.
    Tests that change it work on a copy."""
    root = tmp_path_factory.mktemp("run64")
    out, export = root / "run", root / "default.keras"
    state = detector.train_detector(pool, dataclasses.replace(SMOKE, epochs=2), out,
                                    export_path=export, say=lambda s: None, stop_after=1)
    return out, export, state


def test_smoke_training_exports_a_predict_model_and_resumes(pool, run64, tmp_path):
    from dfdetect import predict

    first, export, state = run64
    # the stage ended after epoch 1, its schedule still spanning 2 epochs
    assert state["epoch"] == 1 and state["best_epoch"] == 1
    assert state["recipe"]["size"] == 64 and state["history"][-1]["epoch"] == 1
    model, meta = predict.load_detector(export)
    spec = predict.model_spec(model, meta)
    assert (spec.kind, spec.height, spec.frames) == ("image", 64, None)
    assert meta["frames"] == detector.PREDICT_FRAMES and 0 <= meta["threshold"] <= 1
    assert model.output_shape == (None, 1)
    # the export comes with its LiteRT twin, which predict takes without TensorFlow
    from dfdetect.models import litert

    assert litert.find_twin(export, "litert") == str(export)[:-len(".keras")] + ".tflite"
    x = np.random.default_rng(0).uniform(0, 1, (3, 64, 64, 3)).astype(np.float32)
    twin, _ = litert.load_litert(export)
    np.testing.assert_allclose(twin.predict_on_batch(x), model.predict_on_batch(x), atol=1e-5)
    # a rerun continues from the saved state instead of starting over
    out = tmp_path / "run"
    shutil.copytree(first, out)
    more = dataclasses.replace(SMOKE, epochs=2)
    state = detector.train_detector(pool, more, out, export_path=None, say=lambda s: None)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    saved = json.loads((out / "state.json").read_text())
    assert saved["epoch"] == 2
    with pytest.raises(DataError, match="another --out"):
        detector.train_detector(pool, SMOKE, out, seed=7, say=lambda s: None)


def test_bf16_training_keeps_float32_outputs_and_exports_float32(pool, tmp_path):
    import keras

    from dfdetect import precision, predict

    out, export = tmp_path / "bf16", tmp_path / "bf16.keras"
    sc = dataclasses.replace(SMOKE, epochs=1)
    try:
        detector.train_detector(pool, sc, out, export_path=export, say=lambda s: None,
                                precision_choice="mixed_bfloat16")
        model = keras.models.load_model(out / "last.keras")
        # compute in bfloat16, but both sigmoid heads (and so the losses) in float32
        assert precision.model_precision(model) == "mixed_bfloat16"
        assert {model.get_layer(n).dtype_policy.compute_dtype
                for n in model.output_names} == {"float32"}
    finally:
        precision.configure("float32")
    shipped, meta = predict.load_detector(export)
    assert meta["precision"] == "mixed_bfloat16"  # what it trained in, saved as float32
    assert {w.dtype for w in shipped.weights} == {"float32"}


def test_training_record_copies_history_and_the_best_epoch(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    history = [{"epoch": 1, "val_auc_sbi": 0.6, "val_auc_swap": 0.7},
               {"epoch": 2, "val_auc_sbi": 0.8, "val_auc_swap": 0.75}]
    (run / "state.json").write_text(json.dumps(
        {"scale": "cpu", "seed": 0, "epoch": 2, "best_epoch": 2, "best_threshold": 0.4,
         "seconds": 12.5, "history": history}))
    (run / "history.csv").write_text("epoch,val_auc_sbi,val_auc_swap\n1,0.6,0.7\n2,0.8,0.75\n")
    res = detector.write_training_record(run, tmp_path / "res")
    record = json.loads((tmp_path / "res" / "training.json").read_text())
    assert record["best_epoch"] == 2 and record["best_val_auc_sbi"] == 0.8
    assert record["epochs_done"] == 2 and record["threshold"] == 0.4
    assert (tmp_path / "res" / "history.csv").read_text().count("\n") == 3
    assert res == str(tmp_path / "res")


def test_the_shipped_detector_loads_as_predict_uses_it():
    import os

    from dfdetect import predict

    path = predict.DEFAULT_MODEL
    assert os.path.getsize(path) < 30e6  # the package's limit for the one shipped model
    model, meta = predict.load_detector(path)
    spec = predict.model_spec(model, meta)
    assert (spec.kind, spec.height, spec.width) == ("image", 128, 128)
    assert 0 < spec.threshold < 1 and meta["frames"] == detector.PREDICT_FRAMES
    assert meta["experiment"] == "default_detector" and "realworld" not in meta["command"]
    x = np.random.default_rng(0).uniform(0, 1, (2, 128, 128, 3)).astype(np.float32)
    scores = predict.score_crops(model, x)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))


def test_the_shipped_detector_tells_its_forgeries_from_reals_at_its_recorded_threshold(
        shared_data, tmp_path):
    """A fixed sample of SBI pairs (13 photos x 2, fixed seeds) must be separated and the
    threshold inside the file must be the one its training recorded: a broken export, a
    swapped file or a threshold typed by hand fails here, which scores in [0, 1] cannot
    show. On the detector shipped with 40 epochs this sample's AUC is about 0.85; the bar
    is far enough above chance (sd of a coin's AUC here: ~0.08) to be a guard."""
    from sklearn.metrics import roc_auc_score

    from dfdetect import predict

    model, meta = predict.load_detector(predict.DEFAULT_MODEL)
    spec = predict.model_spec(model, meta)
    root = Path(__file__).resolve().parents[1]
    record = json.loads((root / "results" / "detector" / "training.json").read_text())
    assert spec.threshold == pytest.approx(record["threshold"], abs=1e-4)

    photos = tmp_path / "photos"
    photos.mkdir()
    for path in sorted((shared_data / "faces").glob("*.jpg"))[:14]:
        shutil.copy(path, photos / path.name)
    sc = dataclasses.replace(detector.SCALES["cpu"], max_photos=None)
    pool = detector.prepare_pool(str(photos), None, sc, tmp_path / "pool", workers=1,
                                 say=lambda line: None)
    reals, fakes = [], []
    for i in range(len(pool)):
        for k in range(2):
            real, fake, _ = detector.make_pair(pool, i, np.random.default_rng(100 * i + k),
                                               spec.height)
            reals.append(real)
            fakes.append(fake)
    crops = np.stack(reals + fakes)
    assert crops.dtype == np.uint8  # pairs are pictures; the model takes [0, 1]
    scores = predict.score_crops(model, crops.astype(np.float32) / 255.0)
    labels = [0] * len(reals) + [1] * len(fakes)
    assert roc_auc_score(labels, scores) > 0.7
    # at the recorded threshold it calls more fakes FAKE than reals
    calls = scores >= spec.threshold
    assert calls[len(reals):].mean() > calls[:len(reals)].mean()


# --------------------------------------------------------------------------- selection

def _selection_folder(shared_data, tmp_path):
    """Two real videos named as realworld/ names FF++ clips, plus clips never selected on."""
    folder = tmp_path / "realworld"
    folder.mkdir()
    videos = sorted((shared_data / "videos").glob("closeup_*.mp4"))[:2]
    shutil.copy(videos[0], folder / "ffpp_real_001.mp4")
    shutil.copy(videos[1], folder / "ffpp_fake_Deepfakes_c40_001_002.mp4")
    shutil.copy(videos[1], folder / "celebdf_fake_id0_id1_0001.mp4")
    shutil.copy(videos[0], folder / "dfdc_fake_abcdefghij.mp4")
    return folder


def test_selection_takes_only_ffpp_clips_and_crops_them_as_predict_does(shared_data, tmp_path):
    from dfdetect import predict
    from dfdetect.detector import selection

    folder = _selection_folder(shared_data, tmp_path)
    sel = selection.load_selection(folder, 128, tmp_path / "cache", frames=3, say=lambda s: None)
    assert sel.names == ["ffpp_fake_Deepfakes_c40_001_002.mp4", "ffpp_real_001.mp4"]
    assert sel.labels.tolist() == [1, 0] and sel.compression == ["c40", "c23"]
    assert sel.methods == ["Deepfakes", "real"]
    model, meta = predict.load_detector(predict.default_model())
    for i, name in enumerate(sel.names):
        result = predict.score_video(model, meta, folder / name, frames=3, keep_crops=True)
        np.testing.assert_allclose(sel.crops[sel.video == i].astype(np.float32) / 255.0,
                                   result.crops, atol=1e-6)
        assert selection.score_selection(lambda x: predict.score_crops(model, x), sel)[i] \
            == pytest.approx(result.score, abs=1e-5)
    # a second side reuses the cached face boxes: no detection, same frames
    again = selection.load_selection(folder, 64, tmp_path / "cache", frames=3,
                                     say=lambda s: None)
    assert again.crops.shape[1:] == (64, 64, 3) and len(again.crops) == len(sel.crops)


def test_selection_metrics_and_the_balanced_threshold():
    from dfdetect.detector import selection

    sel = selection.SelectionSet(
        names=list("abcdef"), labels=np.array([0, 0, 1, 1, 1, 1]),
        methods=["real", "real", "Deepfakes", "Deepfakes", "Face2Face", "Face2Face"],
        compression=["c23", "c40", "c23", "c40", "c23", "c40"],
        crops=np.zeros((6, 2, 2, 3), np.uint8), video=np.arange(6))
    scores = np.array([0.1, 0.5, 0.9, 0.6, 0.3, 0.7])
    m = selection.selection_metrics(scores, sel)
    assert m["ffpp_auc"] == pytest.approx(7 / 8)
    assert m["ffpp_auc_Deepfakes"] == 1.0 and m["ffpp_auc_Face2Face"] == pytest.approx(0.75)
    assert m["ffpp_auc_c23"] == 1.0 and m["ffpp_auc_c40"] == 1.0
    cut = selection.balanced_threshold(sel.labels, scores)
    assert cut == pytest.approx(0.55)  # midway: both reals below, three of four fakes above
    # a clip without a face is NaN and left out
    assert np.isnan(selection.video_scores(np.array([0.2, 0.4]),
                                           dataclasses.replace(sel, video=np.array([0, 0])))[1])


def test_selection_refuses_a_folder_without_ffpp_clips(tmp_path):
    from dfdetect.detector import selection

    (tmp_path / "celebdf_real_1.mp4").write_bytes(b"x")
    with pytest.raises(DataError, match="no ffpp_"):
        selection.selection_clips(tmp_path)


def test_a_run_continues_another_at_a_new_side_and_joins_the_ablation_table(pool, run64,
                                                                            tmp_path):
    from dfdetect.detector import ablation
    from dfdetect.io import read_table

    small = dataclasses.replace(SMOKE, epochs=1)
    first, second = run64[0], tmp_path / "r96"
    lines = []
    bigger = dataclasses.replace(small, size=96, canvas=128)
    state = detector.train_detector(pool, bigger, second, export_path=None, say=lines.append,
                                    init_weights=first / "last.keras")
    assert any("starting from the weights" in line for line in lines)
    assert state["recipe"]["size"] == 96 and state["recipe"]["init"] == "last.keras"
    with pytest.raises(DataError, match="another recipe"):  # a resume must not change it
        detector.train_detector(pool, small, second, export_path=None, say=lambda s: None)
    row = ablation.ablation_row(second, "r96", None, note="continued at 96 px")
    assert (row["size"], row["best_epoch"], row["note"]) == (96, 1, "continued at 96 px")
    assert row["frame_share"] == SMOKE.frame_share
    # a run recorded before frame_share was a setting resumes as the old default
    saved = json.loads((second / "state.json").read_text())
    del saved["recipe"]["frame_share"], saved["recipe"]["swap_share"]
    (second / "state.json").write_text(json.dumps(saved))
    assert detector.train_detector(pool, bigger, second, export_path=None, say=lambda s: None,
                                   init_weights=first / "last.keras")["epoch"] == 1
    old = ablation.ablation_row(second, "r96", None)
    assert (old["frame_share"], old["swap_share"]) == (0.35, 0.0)
    ablation.record(tmp_path / "res", row, second)
    ablation.record(tmp_path / "res", {**row, "note": "again"}, second)  # replaced, not added
    table = read_table(tmp_path / "res" / "ablation.csv")
    assert [r["note"] for r in table] == ["again"]
    assert len(read_table(tmp_path / "res" / "histories" / "r96.csv")) == 1


def _script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments" / "default_detector.py"
    spec = importlib.util.spec_from_file_location("default_detector_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cpu_recipe_runs_its_stages_in_order_and_flags_make_one_run(monkeypatch):
    script = _script()
    runs = script._runs(script.parse_args(["--scale", "cpu"]), detector)
    stages = detector.settings.STAGES["cpu"]
    assert [os.path.basename(out) for _, out, _, _ in runs] == [s.name for s in stages]
    # the shipped recipe: 128 px, 8 epochs
    assert runs[0][0].size == 128 and runs[0][0].epochs == 8 and runs[0][3] is None
    assert runs[0][2] is None
    two = (detector.settings.Stage("a", {"size": 96}, stop_after=1),
           detector.settings.Stage("b", {"size": 160}))
    monkeypatch.setitem(script.STAGES, "cpu", two)
    runs = script._runs(script.parse_args(["--scale", "cpu"]), detector)
    assert [sc.size for sc, *_ in runs] == [96, 160]
    assert runs[1][2] == os.path.join(runs[0][1], "last.keras") and runs[0][3] == 1
    one = script._runs(script.parse_args(["--scale", "cpu", "--size", "160"]), detector)
    assert len(one) == 1 and one[0][0].size == 160 and one[0][3] is None
    frames = script._runs(script.parse_args(["--scale", "cpu", "--frame-share", "0.7"]),
                          detector)
    assert len(frames) == 1 and frames[0][0].frame_share == 0.7 and frames[0][0].size == 128
    swaps = script._runs(script.parse_args(["--scale", "cpu", "--swap-share", "0.3"]), detector)
    assert swaps[0][0].swap_share == 0.3 and swaps[0][0].frame_share == 0.35
    scratch = script._runs(script.parse_args(["--scale", "cpu", "--backbone", "scratch"]),
                           detector)
    assert scratch[0][0].backbone == "scratch" and scratch[0][0].epochs == 40
