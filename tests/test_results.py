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
