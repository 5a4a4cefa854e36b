"""P5 end to end at smoke size on a tiny store written here (no benchmark build)."""

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from dfdetect.data import splits, store
from dfdetect.data.sample import Sample
from dfdetect.papers import deepforense

REPO = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("p5_deepforense",
                                                  REPO / "experiments" / "p5_deepforense.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _toy_store(root, identities, frames, seed):
    """Per identity one real and one fake clip; fakes carry a pale patch (a learnable cue)."""
    rng = np.random.default_rng(seed)
    with store.StoreWriter(root) as writer:
        for i in range(identities):
            base = rng.integers(40, 200, (32, 32, 3), dtype=np.uint8)
            for label in (0, 1):
                method = ("blend" if i % 2 else "swap") if label else "real"
                sample = Sample(f"id{i}.png", label, f"id{i}-{label}", "test", "toy", method)
                for f in range(frames):
                    noise = rng.integers(-20, 20, base.shape)
                    crop = np.clip(base + noise, 0, 255).astype(np.uint8)
                    if label:
                        crop[10:22, 10:22] = np.clip(crop[10:22, 10:22] + 60, 0, 255)
                    writer.add(sample, f, crop, extra={"identity": f"id{i}"})
                writer.commit()


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_p5_smoke_end_to_end(tmp_path):
    images, videos, out = tmp_path / "images", tmp_path / "videos", tmp_path / "out"
    _toy_store(images, identities=24, frames=1, seed=0)
    _toy_store(videos, identities=2, frames=4, seed=1)
    script = _load_script()
    models = "svm,random_forest,mlp,bagging,adaboost,stacking"
    code = script.main(["--scale", "smoke", "--data", str(images), "--videos", str(videos),
                        "--models", models, "--out", str(out), "--quiet"])
    assert code == 0

    cv = _read(out / "cv.csv")
    assert list(cv[0])[0] == "model"
    assert [r["model"] for r in cv] == models.split(",")
    for row in cv:
        assert row["status"] == "ok", row
        assert row["folds"] == "2"
        for metric in ("Accuracy", "Precision", "Recall", "F1", "AUC"):
            assert 0.0 <= float(row[f"{metric}_mean"]) <= 1.0
            assert float(row[f"{metric}_std"]) >= 0.0
    stacking = next(r for r in cv if r["model"] == "stacking")
    assert stacking["stacking vs best member"].startswith("helps: ")
    comparison = _read(out / "stacking.csv")
    assert [r["metric"] for r in comparison] == ["Accuracy", "Precision", "Recall", "F1", "AUC"]
    assert comparison[0]["best_member"] in ("svm", "random_forest", "mlp")
    assert all(int(r["folds"]) == 2 for r in comparison)

    selection = _read(out / "selection.csv")
    assert {r["selection"] for r in selection} >= {"importance", "forward", "backward", "rfe"}
    assert all(r["status"] == "ok" for r in selection)
    assert {r["features_kept"] for r in selection if r["selection"] in
            ("importance", "forward", "backward", "rfe")} == {"8"}

    for name in ("pca.png", "tsne.png", "frame_scores.png", "cv.png"):
        assert (out / name).stat().st_size > 5000, name
    frames = _read(out / "frame_scores.csv")
    assert {r["label"] for r in frames} == {"0", "1"}
    assert all(0.0 <= float(r["p_fake"]) <= 1.0 for r in frames)

    setup = {r["key"]: r["value"] for r in _read(out / "setup.csv")}
    assert setup["backbone"] == "meso4" and "fitted as a classifier" in setup["fine-tuning"]
    # The fine-tuning identities are not in the cross-validation pool.
    assert int(setup["cv identities"]) < 24

    from dfdetect.models import classical
    final = classical.load_pipeline(out / "models" / "stacking.skops")
    x, _ = store.load_features(images, setup["features"], 64)
    scores = classical.fake_probability(final, x.astype(np.float32))
    assert scores.shape == (len(x),)


def test_partition_is_disjoint_by_identity():
    rows = [{"identity": f"id{i // 2}", "video_id": f"v{i}", "label": i % 2} for i in range(400)]
    train, val, pool = splits.finetune_partition(rows, 0.4, deepforense.FINETUNE_VAL, seed=0)
    ids = [{r["identity"] for r in part} for part in (train, val, pool)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert len(train) + len(val) + len(pool) == 400
    assert 0.3 < (len(train) + len(val)) / 400 < 0.5 and len(val) > 0


def test_unknown_model_is_a_clean_error(tmp_path, capsys):
    script = _load_script()
    assert script.main(["--scale", "smoke", "--models", "svm,knn", "--out", str(tmp_path)]) == 2
    assert "unknown classifier 'knn'" in capsys.readouterr().err


def test_p5_on_imagenet_lite0_sits_beside_the_scratch_run_and_pairs_its_folds(tmp_path):
    images, videos, reference = tmp_path / "images", tmp_path / "videos", tmp_path / "p5"
    _toy_store(images, identities=24, frames=1, seed=0)
    _toy_store(videos, identities=2, frames=2, seed=1)
    script = _load_script()
    common = ["--scale", "smoke", "--data", str(images), "--videos", str(videos),
              "--models", "svm,random_forest", "--no-selection", "--quiet"]
    assert script.main([*common, "--out", str(reference)]) == 0
    out = reference / "lite0-imagenet"
    assert script.main([*common, "--backbone", "lite0", "--weights", "imagenet",
                        "--out", str(out)]) == 0

    setup = {r["key"]: r["value"] for r in _read(out / "setup.csv")}
    assert setup["backbone"] == "lite0" and setup["weights"] == "imagenet"
    assert setup["feature dims"] == "1280"
    assert setup["features"].startswith("lite0-imagenet-ft")  # its own feature cache
    ref_setup = {r["key"]: r["value"] for r in _read(reference / "setup.csv")}
    assert setup["cv folds sha256"] == ref_setup["cv folds sha256"] != ""
    assert [r["model"] for r in _read(out / "cv.csv")] == ["svm", "random_forest"]
    assert (out / "cv.png").stat().st_size > 5000

    comparison = _read(out / "comparison.csv")
    assert [(r["model"], r["metric"]) for r in comparison] == [
        ("svm", "AUC"), ("svm", "Accuracy"), ("random_forest", "AUC"),
        ("random_forest", "Accuracy")]
    for row in comparison:
        assert row["pairs"] == "2" and row["reference"].startswith("meso4-")
        assert row["folds"].startswith("same crops in the same folds")
    mine = [float(r["AUC"]) for r in _read(out / "folds.csv") if r["model"] == "svm"]
    assert float(comparison[0]["a mean"]) == pytest.approx(np.mean(mine))
    # the reference run itself is untouched and compares with nothing
    assert not (reference / "comparison.csv").exists()


def test_p5_results_folder_names_the_extractor():
    import argparse

    def folder(**flags):
        return deepforense.results_folder(argparse.Namespace(
            **{"scale": "cpu", "backbone": None, "weights": None, **flags}))

    assert folder() == "p5"
    assert folder(backbone=deepforense.settings_for("cpu").backbone) == "p5"
    assert folder(backbone="lite0", weights="imagenet") == "p5/lite0-imagenet"
    assert folder(backbone="lite0") == "p5/lite0-scratch"
    assert folder(weights="/w/my weights.h5") == "p5/meso4-my-weights"


@pytest.mark.parametrize("name", ["svm", "random_forest", "stacking"])
def test_the_cross_validated_classifiers_find_a_cue_and_no_more(name):
    """On features where fakes carry a cue the folds' AUC is far above chance; on the
    same features with the labels shuffled it is not (no leak between folds: identities
    never share a fold)."""
    from dfdetect.models import classical

    rng = np.random.default_rng(0)
    identities = np.repeat(np.arange(30), 4)  # 4 crops an identity, 2 real + 2 fake
    labels = np.tile([0, 0, 1, 1], 30)
    features = rng.normal(size=(len(labels), 16)) + rng.normal(size=(30, 16))[identities]
    features[:, :3] += 2.5 * labels[:, None]  # the cue: three features shift for fakes
    folds = classical.group_folds(labels, identities, 4)

    def auc(y):
        result = classical.cross_validate(
            lambda train: classical.build_pipeline(name, seed=0, inner_cv=3),
            features, y, folds, name=name)
        return result.summary()["AUC_mean"]

    assert auc(labels) > 0.9
    shuffled = rng.permutation(labels)
    assert abs(auc(shuffled) - 0.5) < 0.2
