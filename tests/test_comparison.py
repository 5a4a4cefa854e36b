"""Detectors compared on one labelled set: subsets by the data's rule, intervals, paired
differences, and refusal of evaluations on different clips."""

from __future__ import annotations

import numpy as np
import pytest

from dfdetect import comparison
from dfdetect.errors import DataError
from dfdetect.results import read_table, write_table

NAMES = (["ffpp_real_1.mp4", "ffpp_real_2.mp4", "ffpp_real_c40_1.mp4", "ffpp_real_c40_2.mp4",
          "celebdf_real_a.mp4", "celebdf_real_b.mp4"]
         + [f"ffpp_fake_Deepfakes_{i}.mp4" for i in range(3)]
         + [f"ffpp_fake_Face2Face_c40_{i}.mp4" for i in range(3)]
         + ["celebdf_fake_id0_id1.mp4", "dfdc_fake_abcdefghij.mp4"])


def _evaluation(folder, scores, threshold=0.5):
    from dfdetect.evaluate import parse_name

    rows = []
    for name, score in zip(NAMES, scores):
        label, source, method = parse_name(name)
        rows.append({"path": f"x/{name}", "label": label, "source": source, "method": method,
                     "score": score, "verdict": "FAKE" if score >= threshold else "REAL"})
    folder.mkdir()
    write_table(folder / "scores.csv", rows)
    return folder


def test_subsets_follow_the_selection_and_test_rule():
    clips = [comparison._clip({"path": n, "label": "", "score": 0.5}) for n in NAMES]
    groups = comparison.subsets(clips)
    assert len(groups["ffpp"]) == 10 and len(groups["ffpp_c40"]) == 5
    assert set(groups["test"]) == {"celebdf_real_a.mp4", "celebdf_real_b.mp4",
                                   "celebdf_fake_id0_id1.mp4", "dfdc_fake_abcdefghij.mp4"}
    # a method's fakes come with the reals of their own dataset only
    assert len(groups["method:Deepfakes"]) == 3 + 4
    assert len(groups["method:Celeb-synthesis"]) == 1 + 2


def test_compare_writes_intervals_the_always_fake_rate_and_paired_rows(tmp_path):
    labels = np.array([0] * 6 + [1] * 8)
    perfect = _evaluation(tmp_path / "perfect", np.where(labels == 1, 0.9, 0.1))
    coin = _evaluation(tmp_path / "coin", np.linspace(0.05, 0.95, 14)[::-1])
    rows, paired = comparison.compare({"perfect": perfect, "coin": coin}, references=["coin"],
                                      out=tmp_path / "out", n_boot=300)
    by = {(r["model"], r["subset"]): r for r in rows}
    assert by["perfect", "all"]["video_auc"] == 1.0 and by["perfect", "all"]["accuracy"] == 1.0
    assert by["perfect", "all"]["always_fake_acc"] == pytest.approx(8 / 14)
    assert by["coin", "all"]["auc_low"] <= by["coin", "all"]["video_auc"] <= by["coin", "all"]["auc_high"]
    assert by["perfect", "ffpp"]["role"] == "selection"
    assert by["perfect", "test"]["role"] == "cross-dataset test"
    assert np.isnan(by["perfect", "dfdc"]["video_auc"])  # fakes only: no AUC
    diff = {r["subset"]: r for r in paired}["all"]
    assert diff["model"] == "perfect" and diff["auc_difference"] > 0 and diff["diff_low"] > 0
    assert len(read_table(tmp_path / "out" / "comparison.csv")) == len(rows)
    assert (tmp_path / "out" / "comparison.png").stat().st_size > 0


def test_evaluations_of_different_clips_are_refused(tmp_path):
    a = _evaluation(tmp_path / "a", np.full(14, 0.5))
    b = tmp_path / "b"
    b.mkdir()
    write_table(b / "scores.csv", [{"path": "ffpp_real_9.mp4", "label": 0, "score": 0.2,
                                    "verdict": "REAL"}])
    with pytest.raises(DataError, match="other clips"):
        comparison.compare({"a": a, "b": b})
    with pytest.raises(DataError, match="no scores"):
        comparison.read_scores(tmp_path / "missing")
