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
    # Default mode: each configuration in its own worker process, so the fusion's worker
    # reads the single models the earlier workers exported.
    out = tmp_path / "fusion"
    argv = ["--scale", "smoke", "--data", str(smoke_image_store), "--configs",
            "meso4+mesoinception4", "--out", str(out), "--quiet"]
    assert p1_fusion.main(argv) == 0
    rows = results.read_table(out / "runs.csv")
    assert [r["config"] for r in rows] == ["meso4", "mesoinception4", "meso4+mesoinception4"]
    assert [r["bases"] for r in rows] == ["from scratch"] * 2 + ["frozen single models"]
    fused, _ = load_exported(out / "models" / "meso4+mesoinception4.keras")
    head = sum(int(np.prod(w.shape)) for w in fused.trainable_weights)
    assert int(rows[2]["Trainable parameters"]) == head
    from dfdetect.models.fusion import fused_feature_dim
    width = fused_feature_dim("meso4+mesoinception4", (64, 64, 3))
    assert width == 2 * 2 * 16 * 2  # each Meso flattens 2x2x16 at 64 px
    assert head == width * 256 + 256 + 257  # only Dense(256) and the output train
    for part in ("meso4", "mesoinception4"):
        single, _ = load_exported(out / "models" / f"{part}.keras")
        for a, b in zip(single.get_layer(f"{part}_features").get_weights(),
                        fused.get_layer(f"{part}_features").get_weights()):
            np.testing.assert_array_equal(a, b)
    table = results.read_table(out / "table_3_1.csv")
    assert table[2]["bases"] == "frozen single models"
    # Other settings do not resume these rows: they are set aside and the grid restarts.
    assert p1_fusion.main(argv[:-1] + ["--bases", "scratch", "--configs", "meso4",
                                       "--quiet"]) == 0
    assert [r["bases"] for r in results.read_table(out / "runs.csv")] == ["from scratch"]
    assert len(list((out / "previous").glob("*/runs.csv"))) == 1
