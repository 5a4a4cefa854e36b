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


def test_p1_smoke_writes_tables_plots_models_and_resumes(tmp_path, smoke_image_store):
    out = tmp_path / "fusion"
    argv = ["--scale", "smoke", "--data", str(smoke_image_store), "--configs", "meso4",
            "--out", str(out), "--quiet"]
    assert p1_fusion.main(argv) == 0
    for name in ("table_3_1.csv", "table_3_2.csv", "table_3_3.csv", "table_3_4.csv"):
        table = results.read_table(out / name)
        assert [r["model"] for r in table] == ["meso4"]
        header = list(table[0])
        assert header[0] == "model"
        expected = p1_fusion.TABLE_A if name in ("table_3_1.csv", "table_3_3.csv") else p1_fusion.TABLE_B
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
