"""P5's scikit-learn pipelines: folds, selection, classifiers, ensembles, save/load."""

import warnings

import numpy as np
import pytest

from dfdetect.errors import DataError, ModelError
from dfdetect.models import classical

warnings.filterwarnings("ignore", category=UserWarning)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Tiny fits: BLAS threads only fight the other processes on the 2 shared cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _data(n_ident=40, dims=12, seed=0):
    """Two rows (real, fake) per identity; features 0 and 1 carry the label."""
    rng = np.random.default_rng(seed)
    labels = np.tile([0, 1], n_ident)
    groups = np.repeat([f"id{i}" for i in range(n_ident)], 2)
    x = rng.normal(size=(2 * n_ident, dims)).astype(np.float32)
    x[:, 0] += 3.0 * labels
    x[:, 1] -= 2.0 * labels
    return x, labels, groups


def test_group_folds_no_identity_in_two_folds_and_stratified():
    x, y, g = _data(n_ident=30)
    folds = classical.group_folds(y, g, k=5, seed=1)
    assert len(folds) == 5
    seen = {}
    for i, (train, test) in enumerate(folds):
        assert not set(g[train]) & set(g[test])
        assert set(y[test]) == {0, 1}
        for ident in set(g[test]):
            assert ident not in seen, f"{ident} tested in folds {seen[ident]} and {i}"
            seen[ident] = i
    tested = np.concatenate([te for _, te in folds])
    assert sorted(tested) == list(range(len(y)))  # every row tested exactly once


def test_group_folds_rejects_too_few_groups_or_one_class():
    x, y, g = _data(n_ident=3)
    with pytest.raises(DataError, match="cannot fill 5 folds"):
        classical.group_folds(y, g, k=5)
    with pytest.raises(DataError, match="both real and fake"):
        classical.group_folds(np.zeros(6, int), g, k=2)


@pytest.mark.parametrize("method", classical.SELECTIONS)
def test_each_selection_keeps_the_requested_number_of_features(method):
    x, y, _ = _data(n_ident=30, dims=10)
    pipe = classical.build_pipeline("svm", selection=method, n_features=3, seed=0)
    pipe.fit(x, y)
    kept = classical.selected_features(pipe, x.shape[1])
    assert len(kept) == 3
    assert pipe.named_steps["select"].transform(x).shape == (len(x), 3)
    # Features 0 and 1 carry the label: a working selector keeps at least one of them.
    assert {0, 1} & set(kept.tolist())


def test_prefilter_then_selection_indices_refer_to_inputs():
    x, y, _ = _data(n_ident=30, dims=20)
    pipe = classical.build_pipeline("svm", selection="forward", n_features=2, prefilter=6)
    pipe.fit(x, y)
    kept = classical.selected_features(pipe, x.shape[1])
    assert len(kept) == 2 and kept.max() < 20
    assert set(kept.tolist()) <= set(np.flatnonzero(
        pipe.named_steps["prefilter"].get_support()).tolist())


def test_bad_names_and_sizes_raise():
    with pytest.raises(ModelError, match="unknown classifier"):
        classical.build_estimator("knn")
    with pytest.raises(ModelError, match="unknown selection"):
        classical.build_selector("lasso", 3)
    with pytest.raises(ModelError, match="positive integer"):
        classical.build_selector("rfe", 0)
    with pytest.raises(ModelError, match="needs n_features"):
        classical.build_pipeline("svm", selection="rfe")


@pytest.mark.parametrize("name", classical.MODELS)
def test_every_model_learns_a_separable_problem(name):
    x, y, g = _data(n_ident=40)
    train = np.arange(0, 60)
    test = np.arange(60, 80)
    inner = classical.inner_group_folds(y[train], g[train], k=3) if name == "stacking" else None
    pipe = classical.build_pipeline(name, pca=8, seed=0, inner_cv=inner)
    pipe.fit(x[train], y[train])
    scores = classical.fake_probability(pipe, x[test])
    assert scores.shape == (20,) and np.all((scores >= 0) & (scores <= 1))
    metrics = classical.fold_metrics(y[test], scores)
    assert metrics["AUC"] > 0.85, (name, metrics)


def test_stacking_combines_the_three_members_with_probabilities():
    est = classical.build_estimator("stacking", inner_cv=3)
    assert [n for n, _ in est.estimators] == list(classical.STACK_MEMBERS)
    assert est.stack_method == "predict_proba"


def test_cross_validate_scores_every_row_once_and_resumes():
    x, y, g = _data(n_ident=20)
    folds = classical.group_folds(y, g, k=4, seed=0)
    seen = []
    res = classical.cross_validate(lambda tr: classical.build_pipeline("random_forest"),
                                   x, y, folds, name="rf", on_fold=lambda i, m: seen.append(i))
    assert seen == [0, 1, 2, 3] and not np.isnan(res.scores).any()
    summary = res.summary()
    assert summary["folds"] == 4 and 0.8 < summary["AUC_mean"] <= 1.0
    assert summary["Accuracy_std"] >= 0
    resumed = classical.cross_validate(lambda tr: classical.build_pipeline("random_forest"),
                                       x, y, folds, done={0: {**res.folds[0]}, 1: res.folds[1]})
    assert resumed.folds[:2] == res.folds[:2]
    assert np.isnan(resumed.scores[folds[0][1]]).all()
    assert not np.isnan(resumed.scores[folds[3][1]]).any()


def test_fold_metrics_on_known_input():
    m = classical.fold_metrics([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.2])
    assert m["Accuracy"] == 0.5 and m["Precision"] == 0.5 and m["Recall"] == 0.5
    assert m["AUC"] == 0.75


@pytest.mark.parametrize("name,selection", [("stacking", "rfe"), ("mlp", "importance"),
                                            ("bagging", None), ("gradient_boosting", "forward")])
def test_saved_pipeline_loads_and_predicts_identically(tmp_path, name, selection):
    x, y, g = _data(n_ident=25)
    pipe = classical.build_pipeline(name, selection=selection,
                                    n_features=4 if selection else None, pca=3,
                                    inner_cv=classical.inner_group_folds(y, g, 3))
    pipe.fit(x, y)
    path = classical.save_pipeline(pipe, tmp_path / f"{name}.skops")
    loaded = classical.load_pipeline(path)
    np.testing.assert_array_equal(classical.fake_probability(pipe, x),
                                  classical.fake_probability(loaded, x))
    assert not list(tmp_path.glob(".*.tmp"))


def test_load_refuses_unknown_types_and_non_skops_files(tmp_path):
    import os

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    # A reference to an OS function is exactly what a malicious file would smuggle in.
    obj = FunctionTransformer(func=os.getcwd)
    path = tmp_path / "evil.skops"
    sio.dump(obj, path)
    with pytest.raises(ModelError, match="untrusted type"):
        classical.load_pipeline(path)
    bad = tmp_path / "bad.skops"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a skops pipeline file"):
        classical.load_pipeline(bad)
    with pytest.raises(ModelError, match="no such pipeline file"):
        classical.load_pipeline(tmp_path / "missing.skops")
