"""The papers' figures redraw from committed tables alone (``python -m dfdetect.figures``)."""

import shutil
from pathlib import Path

import numpy as np

from dfdetect import figures

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def _copy(src: Path, dest: Path, names) -> Path:
    dest.mkdir(parents=True)
    for name in names:
        if (src / name).is_file():
            shutil.copy(src / name, dest / name)
        elif (src / name).is_dir():
            shutil.copytree(src / name, dest / name)
    return dest


def test_error_bars_never_leave_the_metric_range():
    err = figures.clipped_errors([0.05, 0.5, 0.98, np.nan], [0.2, 0.1, 0.1, 0.3], 0.0, 1.0)
    assert err.shape == (2, 4)
    assert np.allclose(err[0], [0.05, 0.1, 0.1, 0.0])  # down to 0 at most
    assert np.allclose(err[1], [0.2, 0.1, 0.02, 0.0])  # up to 1 at most
    lr = figures.clipped_errors([1.3, 4.7], [2.0, 2.0], 1.0, 5.0)
    assert np.allclose(lr, [[0.3, 2.0], [2.0, 0.3]])


def test_eleven_roc_curves_differ_in_colour_and_line_style():
    names = ["xception", "densenet121", "resnet50", "meso4", "meso4+resnet50",
             "meso4+densenet121", "meso4+xception", "xception+resnet50",
             "xception+densenet121", "resnet50+densenet121", "meso4+densenet121+xception"]
    styles = figures.roc_styles(names)
    assert len({s["color"] for s in styles.values()}) == 11
    assert {styles[n]["ls"] for n in names} == {"-", "--", "-.", ":"}


def test_p2_figures_redraw_from_the_committed_inception_tables(tmp_path):
    folder = _copy(RESULTS / "p2" / "inception", tmp_path / "inception",
                   ["summary.csv", "runs.csv", "table_3.csv", "settings.json"])
    paths = figures.p2_folder(folder)
    assert [Path(p).name for p in paths] == [
        "fig16_inceptionv3_metrics.png", "fig17_inceptionv3_convergence.png",
        "fig17b_inceptionv3_cost.png"]
    assert all(Path(p).stat().st_size > 10_000 for p in paths)


def test_redraw_finds_fusion_p3_and_p5_folders(tmp_path):
    _copy(RESULTS / "fusion", tmp_path / "fusion", ["table_3_1.csv", "table_3_3.csv", "scores"])
    _copy(RESULTS / "p3", tmp_path / "p3", ["table_5_6_7.csv", "table_5_6_7_cross.csv",
                                            "scores"])
    _copy(RESULTS / "p5", tmp_path / "p5", ["cv.csv", "folds.csv", "setup.csv"])
    written = sorted(Path(p).relative_to(tmp_path).as_posix()
                     for p in figures.redraw(tmp_path))
    assert written == ["fusion/roc.png", "p3/roc.png", "p5/cv.png"]
    assert figures.main([str(tmp_path / "missing")]) == 2
