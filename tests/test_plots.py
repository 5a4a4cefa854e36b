import numpy as np
import pytest

from dfdetect import plots


def _is_png(path):
    with open(path, "rb") as handle:
        return handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_every_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 50)
    scores = rng.random(50)
    made = [
        plots.roc_curves(tmp_path / "roc.png", {"a": (labels, scores)}),
        plots.roc_panels(tmp_path / "rocp.png", {"in": {"a": (labels, scores)},
                                                 "cross": {"a": (labels, scores)}}),
        plots.ranked_bars(tmp_path / "bars.png", ["x", "y"], [0.5, 0.7], groups=["s", "p"],
                          markers={"m": [0.6, 0.8]}, lines={"chance": 0.5}),
        plots.confusion_matrix(tmp_path / "cm.png", 5, 1, 2, 7),
        plots.confusion_matrices(tmp_path / "cms.png", {"m": (5, 1, 2, 7), "n": (1, 2, 3, 4)}),
        plots.training_curves(tmp_path / "curves.png", {"adam": {"loss": [1, 0.5], "accuracy": [0.5, 0.9]}}),
        plots.frame_scores(tmp_path / "frames.png", {"real": ([0, 1, 2], [0.1, 0.2, 0.1])}),
        plots.scatter_2d(tmp_path / "sc.png", rng.normal(size=(20, 2)), ["a", "b"] * 10),
    ]
    for path in made:
        assert _is_png(path)


def test_single_class_roc_is_skipped_not_an_error(tmp_path):
    path = plots.roc_curves(tmp_path / "r.png", {"one": ([1, 1], [0.2, 0.3])})
    assert _is_png(path)
