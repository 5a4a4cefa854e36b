import numpy as np
import pytest

from dfdetect import evaluation


def test_binary_metrics_hand_computed():
    # 4 reals, 4 fakes; threshold 0.5 -> preds 0,0,1,0 | 1,1,0,1
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.2, 0.7, 0.3, 0.9, 0.8, 0.4, 0.6]
    m = evaluation.binary_metrics(labels, scores)
    assert (m["TN"], m["FP"], m["FN"], m["TP"]) == (3, 1, 1, 3)
    assert m["Acc"] == pytest.approx(6 / 8)
    assert m["Prec(1)"] == pytest.approx(3 / 4)
    assert m["Rec(0)"] == pytest.approx(3 / 4)
    assert m["F1(1)"] == pytest.approx(0.75)
    # AUC over 16 (fake, real) pairs; misordered: 0.4 < 0.7 and 0.6 < 0.7 -> 14/16
    assert m["ROC AUC"] == pytest.approx(14 / 16)
    assert m["Macro F1"] == pytest.approx(0.75)
    assert set(evaluation.PAPER_COLUMNS) <= set(m)


def test_eer_perfect_and_inverted():
    labels = [0, 0, 1, 1]
    assert evaluation.equal_error_rate(labels, [0.1, 0.2, 0.8, 0.9]) == pytest.approx(0.0)
    assert evaluation.equal_error_rate(labels, [0.9, 0.8, 0.2, 0.1]) == pytest.approx(1.0)


def test_eer_symmetric_overlap():
    # One real above one fake out of two each: EER = 0.5
    labels = [0, 0, 1, 1]
    assert evaluation.equal_error_rate(labels, [0.1, 0.7, 0.6, 0.9]) == pytest.approx(0.5)


def test_single_class_gives_nan_auc_not_crash():
    m = evaluation.binary_metrics([1, 1, 1], [0.2, 0.7, 0.9])
    assert np.isnan(m["ROC AUC"]) and np.isnan(m["EER"])
    assert m["Acc"] == pytest.approx(2 / 3)


def test_video_aggregation_is_mean():
    vids, labels, scores = evaluation.aggregate_by_video(
        ["a", "a", "b", "b", "b"], [1, 1, 0, 0, 0], [0.2, 0.6, 0.1, 0.2, 0.6])
    assert vids == ["a", "b"]
    assert labels.tolist() == [1, 0]
    assert scores == pytest.approx([0.4, 0.3])


def test_video_with_mixed_labels_is_an_error():
    with pytest.raises(ValueError, match="both real and fake"):
        evaluation.aggregate_by_video(["a", "a"], [0, 1], [0.1, 0.2])


def test_frame_and_video_metrics_prefix():
    m = evaluation.frame_and_video_metrics(["a", "a", "b", "b"], [1, 1, 0, 0],
                                           [0.9, 0.4, 0.1, 0.6])
    assert m["Acc"] == pytest.approx(0.5)
    assert m["video_Acc"] == pytest.approx(1.0)


def test_paired_auc_bootstrap_difference_and_p():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 100)
    good = y + rng.normal(0, 0.5, 200)
    bad = y + rng.normal(0, 3.0, 200)
    diff, p = evaluation.paired_auc_bootstrap(y, good, bad, n_boot=500)
    assert diff == pytest.approx(roc_auc_score(y, good) - roc_auc_score(y, bad))
    assert p < 0.01
    # The same model against itself: no difference, p at its maximum.
    assert evaluation.paired_auc_bootstrap(y, good, good, n_boot=200) == (0.0, 1.0)
    # Repeats: the difference is between the means of the repeats' AUCs.
    two = np.stack([good, bad])
    diff, _ = evaluation.paired_auc_bootstrap(y, two, bad, n_boot=100)
    assert diff == pytest.approx((roc_auc_score(y, good) + roc_auc_score(y, bad)) / 2
                                 - roc_auc_score(y, bad))


def test_paired_auc_bootstrap_one_class_and_mismatch():
    diff, p = evaluation.paired_auc_bootstrap([1, 1, 1], [0.1, 0.5, 0.9], [0.2, 0.3, 0.4])
    assert np.isnan(p)
    with pytest.raises(ValueError, match="labels for 3"):
        evaluation.paired_auc_bootstrap([0, 1, 1], [0.1, 0.5], [0.2, 0.3, 0.4])


def test_auc_interval_brackets_the_auc_and_narrows_with_more_items():
    from dfdetect.evaluation import auc_interval

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(20), np.ones(20)].astype(int)
    s = rng.normal(size=40) + y
    auc, lo, hi = auc_interval(y, s, n_boot=1000)
    assert lo < auc < hi and 0.6 < auc < 0.95
    y4, s4 = np.tile(y, 4), np.tile(s, 4) + rng.normal(scale=1e-6, size=160)
    _, lo4, hi4 = auc_interval(y4, s4, n_boot=1000)
    assert hi4 - lo4 < 0.7 * (hi - lo)  # 4x the items: about half the width
    assert all(np.isnan(auc_interval([1, 1, 1], [0.1, 0.2, 0.3])))


def test_wilson_interval_matches_the_textbook_value():
    from dfdetect.evaluation import wilson_interval

    p, lo, hi = wilson_interval(8, 10)
    assert p == 0.8 and lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 5)[1] == 0.0 and np.isnan(wilson_interval(0, 0)[0])


def test_paired_auc_interval_sees_a_better_model_and_balanced_accuracy():
    from dfdetect.evaluation import balanced_accuracy, paired_auc_interval

    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(40), np.ones(40)].astype(int)
    good, bad = y * 2.0 + rng.normal(size=80), rng.normal(size=80)
    diff, lo, hi, p = paired_auc_interval(y, good, bad, n_boot=1000)
    assert 0 < lo < diff < hi and p < 0.01
    same = paired_auc_interval(y, good, good, n_boot=200)
    assert same[0] == 0 and same[3] == 1.0
    # calling everything fake: balanced accuracy 0.5 however many fakes there are
    assert balanced_accuracy([0, 1, 1, 1], [0.9, 0.9, 0.9, 0.9], 0.5) == 0.5
    assert balanced_accuracy([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.2], 0.5) == 0.5
    assert np.isnan(balanced_accuracy([1, 1], [0.1, 0.9], 0.5))


def test_holm_adjust_matches_the_hand_computed_step_down():
    # sorted 0.01, 0.02, 0.04 of m = 3 (one NaN left out): 0.03, 0.04, max(0.04, 0.04)
    adjusted = evaluation.holm_adjust([0.04, float("nan"), 0.01, 0.02])
    assert adjusted[0] == pytest.approx(0.04) and np.isnan(adjusted[1])
    assert adjusted[2:] == pytest.approx([0.03, 0.04])
    # monotone in the raw order and capped at 1
    assert evaluation.holm_adjust([0.3, 0.2, 0.01]) == pytest.approx([0.4, 0.4, 0.03])
    assert evaluation.holm_adjust([0.9, 0.8]) == pytest.approx([1.0, 1.0])
