"""Inference variants of the detector, compared on selection clips (no network needed)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from dfdetect.detector import variants
from dfdetect.detector.selection import SelectionSet
from dfdetect.io import read_table


def test_aggregations_on_known_frames():
    scores = np.array([0.2, 0.4, 0.9, 0.5, 0.5])
    video = np.array([0, 0, 0, 2, 2])
    assert variants.aggregate(scores, video, 3, "mean")[[0, 2]] == pytest.approx([0.5, 0.5])
    assert variants.aggregate(scores, video, 3, "median")[0] == pytest.approx(0.4)
    assert variants.aggregate(scores, video, 3, "max")[0] == pytest.approx(0.9)
    logit = np.log(np.array([0.2, 0.4, 0.9]) / (1 - np.array([0.2, 0.4, 0.9]))).mean()
    assert variants.aggregate(scores, video, 3, "mean_logit")[0] == pytest.approx(logit)
    assert np.isnan(variants.aggregate(scores, video, 3, "mean")[1])  # a clip without a face
    with pytest.raises(ValueError, match="unknown aggregation"):
        variants.aggregate(scores, video, 3, "mode")


def test_the_flip_view_averages_a_crop_and_its_mirror():
    crops = np.zeros((2, 4, 4, 3), np.uint8)
    crops[0, :, :2] = 255  # left half white: the mirror has it on the right

    def left_half(x):
        return x[:, :, :2].mean(axis=(1, 2, 3))

    assert variants.view_scores(left_half, crops, "plain") == pytest.approx([1.0, 0.0])
    assert variants.view_scores(left_half, crops, "flip_average") == pytest.approx([0.5, 0.0])
    with pytest.raises(ValueError, match="unknown view"):
        variants.view_scores(left_half, crops, "rotate")


def _clips():
    """Reals: every frame at 0.5. Fakes: most frames at 0.3, one at 0.9. The mean ranks
    every fake below every real, the max above."""
    rng = np.random.default_rng(0)
    labels = np.array([0] * 6 + [1] * 6)
    values, video = [], []
    for v, y in enumerate(labels):
        frames = [0.5] * 4 if y == 0 else [0.3, 0.3, 0.3, 0.9]
        values += [f + rng.uniform(-0.01, 0.01) for f in frames]
        video += [v] * 4
    crops = (np.asarray(values)[:, None, None, None] * 255 * np.ones((1, 2, 2, 3))).astype(np.uint8)
    sel = SelectionSet(names=[f"c{i}" for i in range(12)], labels=labels,
                       methods=["real" if y == 0 else "Deepfakes" for y in labels],
                       compression=["c23"] * 12, crops=crops, video=np.asarray(video))
    return sel


def test_variant_rows_compare_each_variant_with_the_shipped_one(tmp_path):
    sel = _clips()
    rows = variants.variant_rows("toy", lambda x: x.mean(axis=(1, 2, 3)), sel, n_boot=300)
    assert len(rows) == len(variants.VIEWS) * len(variants.AGGREGATIONS)
    by = {(r["view"], r["aggregation"]): r for r in rows}
    shipped = by[variants.SHIPPED]
    assert shipped["ffpp_auc"] == 0.0 and shipped["diff"] == 0.0
    best = by["plain", "max"]
    assert best["ffpp_auc"] == 1.0 and best["diff"] == 1.0 and best["diff_low"] > 0
    assert (best["n_real"], best["n_fake"]) == (6, 6)
    # the mirror changes nothing for a crop-mean model: both views win with max
    assert variants.adopted(rows) == [("flip_average", "max"), ("plain", "max")]
    # a second model on which max does not win: no variant is adopted
    other = [{**r, "model": "other", "diff_low": -0.1} for r in rows]
    assert variants.adopted(rows + other) == []
    path = variants.record_variants(tmp_path, rows)
    variants.record_variants(tmp_path, rows[:2])  # the same model again: replaced
    assert len(read_table(path)) == 2


def test_a_combination_is_paired_against_one_model_and_recorded_by_name(tmp_path):
    sel = _clips()
    mean_model = sel.crops.mean(axis=(1, 2, 3)) / 255  # ranks every fake below every real
    wrong = 1 - mean_model  # ranks every fake above every real
    row = variants.combination_row("both", "ensemble", ["m", "w"], (mean_model + wrong) / 2,
                                   "m", mean_model, sel, n_boot=300)
    # the average of two opposite models is constant: AUC 0.5, half a point above "m"
    assert row["ffpp_auc"] == 0.5 and row["diff"] == 0.5 and row["diff_low"] > 0
    assert (row["against"], row["members"], row["n_real"], row["n_fake"]) == ("m", "m+w", 6, 6)
    alone = variants.combination_row("w", "soup", ["w", "w"], wrong, "m", mean_model, sel,
                                     n_boot=300)
    assert alone["ffpp_auc"] == 1.0 and alone["diff"] == 1.0
    with pytest.raises(ValueError, match="unknown combination"):
        variants.combination_row("x", "vote", ["m", "w"], wrong, "m", mean_model, sel)
    path = variants.record_combinations(tmp_path, [row, alone])
    variants.record_combinations(tmp_path, [{**row, "how": "soup"}])  # "both" replaced
    assert [(r["combination"], r["how"]) for r in read_table(path)] == [("w", "soup"),
                                                                        ("both", "soup")]


def _script():
    path = Path(__file__).resolve().parents[1] / "experiments" / "detector_variants.py"
    spec = importlib.util.spec_from_file_location("detector_variants_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_says_what_is_wrong_in_one_line(tmp_path, capsys):
    script = _script()
    with pytest.raises(SystemExit):
        script.parse_args(["--model", "no-equals-sign"])
    assert "expected NAME=PATH" in capsys.readouterr().err
    missing = tmp_path / "nope.keras"
    assert script.main(["--model", f"x={missing}", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.keras" in err[0]
    with pytest.raises(SystemExit):
        script.parse_args(["--model", "x=a.keras", "--combine", "alone=x"])
    assert "expected NAME=MODEL+MODEL" in capsys.readouterr().err
    # a member that is no --model is refused before any model is loaded
    assert script.main(["--model", f"x={missing}", "--combine", "c=x+y",
                        "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "y is not a --model NAME" in err[0]


def test_the_script_combines_models_by_scores_and_by_weights():
    import types

    import keras

    def tiny(sign):
        inputs = keras.Input((2, 2, 3))
        x = keras.layers.GlobalAveragePooling2D()(inputs)
        out = keras.layers.Dense(1, activation="sigmoid", name="p_fake")(x)
        model = keras.Model(inputs, out)
        model.get_layer("p_fake").set_weights([np.full((3, 1), 10.0 * sign), np.zeros(1)])
        return model

    from dfdetect.detector.selection import frame_scores

    script = _script()
    sel = _clips()
    spec = types.SimpleNamespace(value_range=(0.0, 1.0))
    loaded = {name: (model, spec, sel, frame_scores(script._scorer(model, spec), sel.crops))
              for name, model in (("up", tiny(1)), ("down", tiny(-1)))}
    rows = script.combinations([("both", ["up", "down"])], loaded, "up", n_boot=200)
    by = {r["how"]: r for r in rows}
    # averaged weights are all zero: P(fake) 0.5 everywhere, AUC 0.5 against "up"'s 0.0
    assert by["soup"]["ffpp_auc"] == 0.5 and by["soup"]["diff"] == 0.5
    assert set(by) == {"ensemble", "soup"}
    assert by["ensemble"]["members"] == "up+down" and by["ensemble"]["against"] == "up"
