"""The benchmark difficulty check end to end at smoke scale (pixel floor, Meso-4, sheets)."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import benchmark_difficulty  # noqa: E402

from dfdetect import results  # noqa: E402
from dfdetect.data import store  # noqa: E402


def _test_methods(root) -> set:
    return {r["method"] for r in store.read_manifest(root) if r["split"] == "test"} - {"real"}


def test_difficulty_writes_both_models_and_keeps_other_sources(tmp_path, smoke_image_store):
    out = tmp_path / "benchmarks"
    other = {"faces": "elsewhere", "model": "meso4", "roc_auc": "0.9"}
    # the same face source under generator 3: its own rows, kept by a version-2 run
    g3 = {"faces": str(smoke_image_store), "generator": "3", "model": "meso4", "roc_auc": "0.7"}
    results.write_table(out / "difficulty.csv", [other, g3], benchmark_difficulty.COLUMNS)
    argv = ["--scale", "smoke", "--data", str(smoke_image_store), "--out", str(out),
            "--budget", "5", "--quiet"]
    for _ in range(2):  # a second run replaces its own rows, never duplicates them
        assert benchmark_difficulty.main(argv) == 0
    table = results.read_table(out / "difficulty.csv")
    assert list(table[0])[:4] == ["faces", "generator", "model", "roc_auc"]
    assert table[0]["faces"] == "elsewhere"
    assert [r["roc_auc"] for r in table if r["generator"] == "3"] == ["0.7"]
    mine = [r for r in table if r["faces"] == str(smoke_image_store) and r["generator"] == "2"]
    assert sorted(r["model"] for r in mine) == ["logreg_pixels", "meso4"]
    for row in mine:
        assert 0.0 <= float(row["roc_auc"]) <= 1.0
        for method in _test_methods(smoke_image_store):
            assert 0.0 <= float(row[f"roc_auc_{method}"]) <= 1.0
        assert int(row["n_test"]) > 0
    assert int(next(r for r in mine if r["model"] == "meso4")["epochs"]) >= 1

    test_methods = _test_methods(smoke_image_store)
    tag = smoke_image_store.name
    sheets = sorted(out.glob(f"contact_{tag}_*.png"))
    assert [p.name for p in sheets] == sorted(f"contact_{tag}_{m}.png" for m in test_methods)
    pixels = np.asarray(Image.open(sheets[0]))
    assert pixels.shape[0] > 200 and pixels.std() > 10  # drawn faces, not a blank page


def test_auc_per_method_scores_each_method_against_the_reals():
    rows = [{"method": m} for m in ("real", "real", "a", "a", "b", "b")]
    scores = [0.1, 0.2, 0.9, 0.8, 0.15, 0.3]
    # a: both fakes above both reals; b: 3 of the 4 (fake, real) pairs ordered right
    assert benchmark_difficulty.auc_per_method(rows, scores) == {"a": 1.0, "b": 0.75}


def test_contact_sheet_refuses_nothing_to_draw(tmp_path):
    from dfdetect import plots

    with pytest.raises(ValueError, match="at least one image"):
        plots.contact_sheet(tmp_path / "x.png", {"real": []})
