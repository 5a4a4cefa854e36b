"""P1 end to end at smoke scale on the embedded benchmark (one cheap configuration)."""

import sys
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import p1_fusion  # noqa: E402

from dfdetect import results  # noqa: E402
from dfdetect.evaluation import PAPER_COLUMNS  # noqa: E402
from dfdetect.models.export import load_exported  # noqa: E402
from dfdetect.papers import fusion  # noqa: E402


def test_p1_smoke_writes_tables_plots_models_and_resumes(tmp_path, smoke_image_store):
    out = tmp_path / "fusion"
    argv = ["--scale", "smoke", "--data", str(smoke_image_store), "--configs", "meso4",
            "--out", str(out), "--quiet", "--in-process"]
    assert p1_fusion.main(argv) == 0
    for name in ("table_3_1.csv", "table_3_2.csv", "table_3_3.csv", "table_3_4.csv"):
        table = results.read_table(out / name)
        assert [r["model"] for r in table] == ["meso4"]
        header = list(table[0])
        assert header[0] == "model"
        expected = fusion.TABLE_A if name in ("table_3_1.csv", "table_3_3.csv") else fusion.TABLE_B
        assert tuple(header[1:1 + len(expected)]) == expected
        assert set(expected) <= set(PAPER_COLUMNS)
        assert 0.0 <= float(table[0][expected[0]]) <= 1.0
    # cross-dataset rows come from the held-out forgery method
    assert results.read_table(out / "table_3_3.csv")[0]["Acc"] != ""
    for png in ("roc.png", "accuracy_auc.png"):
        assert (out / png).stat().st_size > 1000
    model, meta = load_exported(out / "models" / "meso4.keras")
    assert meta["config"] == "meso4" and meta["image_size"] == 64
    x = np.random.default_rng(0).random((2, 64, 64, 3)).astype("float32")
    plain = keras.models.load_model(out / "models" / "meso4.keras")
    np.testing.assert_allclose(model.predict(x, verbose=0), plain.predict(x, verbose=0), rtol=1e-5)
    # resume: a second run trains nothing and keeps the row
    before = (out / "runs.csv").read_text()
    assert p1_fusion.main(argv) == 0
    assert (out / "runs.csv").read_text() == before


def test_fusions_are_preceded_by_their_single_models():
    assert fusion.with_singles(["xception+densenet121", "meso4"]) == [
        "meso4", "xception", "densenet121", "xception+densenet121"]
    assert fusion.with_singles(["xception", "resnet50"]) == ["xception", "resnet50"]


def test_missing_single_model_is_a_clear_error(tmp_path):
    import pytest

    from dfdetect.errors import ModelError
    from dfdetect.models.fusion import build_fusion_model

    model = build_fusion_model("meso4+mesoinception4", input_shape=(64, 64, 3), freeze=True)
    with pytest.raises(ModelError, match="run --configs meso4 first"):
        fusion.load_single_bases(model, ["meso4"], tmp_path)


def test_p1_smoke_fusion_freezes_the_trained_single_bases(tmp_path, smoke_image_store):
    # Worker processes (cpu and paper scale's default; asked for here at smoke scale):
    # each configuration in its own process, so the fusion's worker reads the single
    # models the earlier workers exported.
    out = tmp_path / "fusion"
    argv = ["--scale", "smoke", "--data", str(smoke_image_store), "--configs",
            "meso4+mesoinception4", "--out", str(out), "--quiet", "--grid-workers"]
    assert p1_fusion.main(argv + ["--repeats", "2"]) == 0
    rows = results.read_table(out / "runs.csv")
    assert [(r["config"], int(r["repeat"])) for r in rows] == [
        (c, r) for c in ("meso4", "mesoinception4", "meso4+mesoinception4") for r in (0, 1)]
    assert [r["bases"] for r in rows] == ["from scratch"] * 4 + ["frozen single models"] * 2
    fused, _ = load_exported(out / "models" / "meso4+mesoinception4.keras")
    head = sum(int(np.prod(w.shape)) for w in fused.trainable_weights)
    assert int(rows[4]["Trainable parameters"]) == head
    # Repeat 1's fusion sits on repeat 1's single models (a paired comparison), which
    # differ from repeat 0's (another seed).
    fused_r1, _ = load_exported(out / "models" / "meso4+mesoinception4-r1.keras")
    single_r1, _ = load_exported(fusion.model_file(out / "models", "meso4", 1))
    np.testing.assert_array_equal(single_r1.get_layer("meso4_features").get_weights()[0],
                                  fused_r1.get_layer("meso4_features").get_weights()[0])
    assert not np.array_equal(single_r1.get_layer("meso4_features").get_weights()[0],
                              fused.get_layer("meso4_features").get_weights()[0])
    # Tables: mean and sd over the 2 repeats; the comparison README draws, paired.
    table = results.read_table(out / "table_3_1.csv")
    assert [int(r["repeats"]) for r in table] == [2, 2, 2]
    aucs = [float(r["test ROC AUC"]) for r in rows[:2]]
    assert abs(float(table[0]["ROC AUC sd"]) - np.std(aucs, ddof=1)) < 1e-5
    comparisons = results.read_table(out / "comparisons.csv")
    assert {(r["a"], r["split"]) for r in comparisons} == {("meso4+mesoinception4", "test"),
                                                          ("meso4+mesoinception4", "cross")}
    assert all(int(r["pairs"]) == 2 for r in comparisons)
    assert 0 < float(comparisons[0]["bootstrap p (test items)"]) <= 1
    from dfdetect.models.fusion import fused_feature_dim
    width = fused_feature_dim("meso4+mesoinception4", (64, 64, 3))
    assert width == 2 * 2 * 16 * 2  # each Meso flattens 2x2x16 at 64 px
    assert head == width * 256 + 256 + 257  # only Dense(256) and the output train
    for part in ("meso4", "mesoinception4"):
        single, _ = load_exported(out / "models" / f"{part}.keras")
        for a, b in zip(single.get_layer(f"{part}_features").get_weights(),
                        fused.get_layer(f"{part}_features").get_weights()):
            np.testing.assert_array_equal(a, b)
    assert table[2]["bases"] == "frozen single models"
    # Other settings do not resume these rows: they are set aside and the grid restarts.
    assert p1_fusion.main(argv[:-1] + ["--bases", "scratch", "--configs", "meso4",
                                       "--quiet"]) == 0
    assert [r["bases"] for r in results.read_table(out / "runs.csv")] == ["from scratch"]
    assert len(list((out / "previous").glob("*/runs.csv"))) == 1


def test_comparison_pairs_take_each_fusions_best_part():
    rows = [{"config": c, "repeat": 0, "status": "ok", "test ROC AUC": auc}
            for c, auc in (("xception", 0.9), ("meso4", 0.8), ("densenet121", 0.95),
                           ("meso4+xception", 0.91), ("xception+densenet121", 0.5))]
    configs = [r["config"] for r in rows]
    assert fusion.comparison_pairs(rows, configs) == [
        ("xception", "meso4", "the paper's single-model ranking"),
        ("meso4+xception", "xception", "fusion vs its best part"),
        ("xception+densenet121", "densenet121", "fusion vs its best part")]
    assert fusion.model_file(Path("m"), "meso4") == Path("m/meso4.keras")
    assert fusion.model_file(Path("m"), "meso4", 2) == Path("m/meso4-r2.keras")


def test_p1_smoke_runs_in_one_process_eagerly_and_hands_bases_over_in_memory(
        tmp_path, smoke_image_store, capsys, monkeypatch):
    """Issue 32, item 1: a smoke run started a worker per configuration (60-120 s each
    for 2 steps), traced every graph, loaded each single model's .keras again for its
    fusions and printed "resuming: 2 finished runs kept" on a fresh run."""
    from dfdetect import training
    from dfdetect.models import export

    compiled = []
    real_compile = training.compile_model
    monkeypatch.setattr(training, "compile_model", lambda *a, **kw: (
        compiled.append(kw.get("run_eagerly")), real_compile(*a, **kw))[1])

    def no_loading(path):
        raise AssertionError(f"loaded {path}: the bases were exported by this process")

    monkeypatch.setattr(export, "load_exported", no_loading)
    out = tmp_path / "fusion"
    assert p1_fusion.main(["--scale", "smoke", "--data", str(smoke_image_store), "--configs",
                           "meso4+mesoinception4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert compiled == [True, True, True]
    assert "resuming" not in text and "fusion bases come from the single models" in text
    for config in ("meso4", "mesoinception4", "meso4+mesoinception4"):
        assert f"\n{config} r0 epoch 1/1: loss " in text, text
    assert not (out / "runs" / "meso4-r0" / "best.keras").exists()  # models/ holds it
    rows = results.read_table(out / "runs.csv")
    assert [r["status"] for r in rows] == ["ok"] * 3
