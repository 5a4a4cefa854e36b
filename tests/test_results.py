import math

import pytest

from dfdetect import results


def test_results_table_resumes_and_keeps_rows(tmp_path):
    path = tmp_path / "runs.csv"
    table = results.ResultsTable(path)
    table.append({"config": "a", "repeat": 0, "acc": 0.5})
    table.append({"config": "a", "repeat": 1, "acc": 0.7})
    reopened = results.ResultsTable(path)
    assert reopened.done(config="a", repeat=1)
    assert not reopened.done(config="b", repeat=0)
    assert [r["acc"] for r in reopened.rows] == ["0.5", "0.7"]


def test_append_replaces_same_key(tmp_path):
    table = results.ResultsTable(tmp_path / "runs.csv")
    table.append({"config": "a", "repeat": 0, "acc": 0.1})
    table.append({"config": "a", "repeat": 0, "acc": 0.9})
    assert len(results.read_table(tmp_path / "runs.csv")) == 1
    assert results.read_table(tmp_path / "runs.csv")[0]["acc"] == "0.9"


def test_atomic_write_leaves_no_temp_files(tmp_path):
    results.atomic_write_text(tmp_path / "x.csv", "a\n1\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_summarize_mean_std_skips_failed():
    rows = [{"config": "a", "acc": "0.5"}, {"config": "a", "acc": "0.7"},
            {"config": "a", "acc": ""}, {"config": "b", "acc": "1.0"}]
    summary = {r["config"]: r for r in results.summarize(rows, "config", ["acc"])}
    assert summary["a"]["acc_mean"] == pytest.approx(0.6)
    assert summary["a"]["acc_std"] == pytest.approx(math.sqrt(0.02))
    assert summary["a"]["n"] == 3
    assert summary["b"]["acc_std"] == 0.0


def test_rows_to_csv_formats_nan_as_empty():
    text = results.rows_to_csv([{"a": float("nan"), "b": 1}])
    assert text.splitlines() == ["a,b", ",1"]


def test_atomic_write_has_ordinary_permissions(tmp_path):
    import os
    results.atomic_write_text(tmp_path / "x.csv", "a\n")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "x.csv").stat().st_mode & 0o777 == 0o666 & ~umask


def test_paired_comparison_hand_computed():
    # Differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t = 0.2 / (0.1 / sqrt 3) = 3.464 with
    # 2 degrees of freedom -> two-sided p = 0.0742.
    a = {0: 0.9, 1: 0.8, 2: 0.7, 3: 0.5}
    b = {0: 0.8, 1: 0.6, 2: 0.4}
    c = results.paired_comparison(a, b)
    assert c["pairs"] == 3 and c["won"] == 3 and c["lost"] == 0
    assert c["difference"] == pytest.approx(0.2)
    assert c["a mean"] == pytest.approx(0.8) and c["a sd"] == pytest.approx(0.1)
    assert c["paired t p"] == pytest.approx(0.0742, abs=2e-4)
    one = results.paired_comparison({0: 0.9}, {0: 0.8})
    assert one["pairs"] == 1 and math.isnan(one["paired t p"]) and one["a sd"] == 0.0


def test_compare_runs_pairs_repeats_and_bootstraps_saved_scores(tmp_path):
    labels = [0, 0, 0, 1, 1, 1]
    scores = {"good": [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], "poor": [0.5, 0.9, 0.2, 0.6, 0.1, 0.4]}
    rows = []
    for config, auc in (("good", (1.0, 0.98)), ("poor", (0.55, 0.5))):
        for repeat in (0, 1):
            rows.append({"config": config, "repeat": repeat, "status": "ok",
                         "test ROC AUC": auc[repeat]})
            results.write_table(tmp_path / f"{config}-r{repeat}-test.csv", [
                {"video_id": f"v{i}", "label": l, "score": s}
                for i, (l, s) in enumerate(zip(labels, scores[config]))])
    rows.append({"config": "poor", "repeat": 2, "status": "failed"})
    out = results.compare_runs(rows, [("good", "poor", "why")], "ROC AUC",
                               scores_dir=tmp_path, n_boot=200)
    assert len(out) == 1  # no cross split in these rows
    row = out[0]
    assert (row["a"], row["b"], row["split"], row["pairs"]) == ("good", "poor", "test", 2)
    assert row["difference"] == pytest.approx(0.465)
    assert 0 < row["bootstrap p (test items)"] <= 1
    # Without the scores files only the repeat test is made.
    bare = results.compare_runs(rows, [("good", "poor", "why")], "ROC AUC", scores_dir=None)
    assert math.isnan(bare[0]["bootstrap p (test items)"])


def test_with_holm_adds_an_adjusted_column_beside_each_raw_one():
    table = [{"a": "x", "paired t p": "0.01", "bootstrap p (test items)": "0.5"},
             {"a": "y", "paired t p": "0.04", "bootstrap p (test items)": ""},
             {"a": "z", "paired t p": "0.02", "bootstrap p (test items)": "0.02"}]
    rows = results.with_holm(table)
    assert list(rows[0]) == ["a", "paired t p", "paired t p (Holm)",
                             "bootstrap p (test items)", "bootstrap p (Holm)"]
    assert [r["paired t p (Holm)"] for r in rows] == pytest.approx([0.03, 0.04, 0.04])
    assert rows[2]["bootstrap p (Holm)"] == pytest.approx(0.04)  # a family of 2: one is blank
    assert math.isnan(rows[1]["bootstrap p (Holm)"])
    again = results.with_holm(rows)  # idempotent: recomputed, not appended twice
    assert [list(r) for r in again] == [list(r) for r in rows]
    assert [r["paired t p (Holm)"] for r in again] == pytest.approx(
        [r["paired t p (Holm)"] for r in rows])


@pytest.mark.parametrize("folder", ["fusion", "p3", "generator3/fusion", "generator3/p3"])
def test_committed_comparisons_carry_the_holm_adjustment_of_their_own_p_values(folder):
    """The committed comparisons.csv were adjusted after the runs: recomputing the Holm
    columns from their raw p-values gives the columns written there."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "results" / folder / "comparisons.csv"
    rows = results.read_table(path)
    again = results.with_holm(rows)
    for raw, holm in results.HOLM_COLUMNS.items():
        assert [results.to_float(r[holm]) for r in rows] == pytest.approx(
            [r[holm] for r in again], abs=2e-6, nan_ok=True), (folder, holm)
