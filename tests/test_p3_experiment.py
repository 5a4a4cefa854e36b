"""P3 end to end at smoke scale (paper model + warm-up row), and the script's helpers."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import p3_convlstm_cbam  # noqa: E402

from dfdetect import results  # noqa: E402
from dfdetect.papers import convlstm_cbam as p3  # noqa: E402


def _rows(video_id, label, frames, split="train", mask=""):
    return [{"source": "s", "video_id": video_id, "label": label, "split": split,
             "frame_index": k, "crop_path": f"crops/s/{video_id}/{k:03d}.png",
             "mask_path": mask and f"{mask}/{k:03d}.png"} for k in range(frames)]


def test_first_frames_keeps_the_start_of_every_clip():
    rows = _rows("a", 0, 5)[::-1] + _rows("b", 1, 2)
    kept = p3.first_frames(rows, 3)
    assert [(r["video_id"], r["frame_index"]) for r in kept] == [
        ("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)]


def test_subsample_reals_keeps_every_fake_and_the_ratio():
    rows = [r for i in range(10) for r in _rows(f"r{i}", 0, 2)] + \
           [r for i in range(8) for r in _rows(f"f{i}", 1, 2)]
    kept = p3.subsample_reals(rows, 0.25, np.random.default_rng(0))
    reals = {r["video_id"] for r in kept if r["label"] == 0}
    fakes = {r["video_id"] for r in kept if r["label"] == 1}
    assert len(reals) == 2 and fakes == {f"f{i}" for i in range(8)}
    assert len(kept) == 2 * (2 + 8)  # whole clips are kept or dropped
    assert p3.subsample_reals(rows, None, np.random.default_rng(0)) == rows
    with pytest.raises(ValueError):
        p3.subsample_reals(rows, 0.0, np.random.default_rng(0))


def test_clip_masks_binarise_and_lend_the_fake_twin_mask_to_the_real(tmp_path):
    import cv2

    for k in range(2):
        mask = np.zeros((8, 8), np.uint8)
        mask[:, :4] = 255
        mask[0, 4] = 100  # a soft edge below one half does not count as forged
        (tmp_path / "m").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / "m" / f"{k:03d}.png"), mask)
    rows = _rows("x_c0_real", 0, 2) + _rows("x_c0_fake", 1, 2, mask="m") + _rows("y_c0_real", 0, 2)
    masks = p3.clip_masks(rows, tmp_path, size=8, frames=2)
    assert set(masks) == {("s", "x_c0_fake"), ("s", "x_c0_real")}  # y has no twin
    assert masks[("s", "x_c0_fake")].shape == (2, 8, 8)
    assert masks[("s", "x_c0_fake")].mean() == 0.5
    np.testing.assert_array_equal(masks[("s", "x_c0_real")], masks[("s", "x_c0_fake")])


def test_mask_mass_verdict(tmp_path):
    def run(model, fake, real, area):
        return {"config": model, "repeat": "0", "status": "ok", "test AUC": "0.5",
                "gradcam fake mass": fake, "gradcam real mass": real,
                "gradcam fake mask area": area, "gradcam fake videos": "3",
                "gradcam real videos": "3", "gradcam fake empty": "0",
                "gradcam real empty": "1"}
    rows = [run("convlstm_cbam", "0.7", "0.4", "0.35"), run("xception_lstm", "0.3", "0.2", "0.35"),
            run("xception_convlstm", "", "", "0.35")]
    p3.write_tables(tmp_path, rows, ["xception_lstm", "xception_convlstm", "convlstm_cbam"])
    mass = {r["model"]: r for r in results.read_table(tmp_path / "gradcam_mask_mass.csv")}
    # above on average, but no per-clip masses to test: no claim either way
    assert mass["convlstm_cbam"]["on_forgery"] == "undetermined"
    assert mass["xception_lstm"]["on_forgery"] == "no"  # below the mask's own area
    assert mass["xception_convlstm"]["on_forgery"] == ""  # no heat: no verdict
    assert float(mass["convlstm_cbam"]["empty heat maps"]) == 1
    table = results.read_table(tmp_path / "table_5_6_7.csv")
    assert [r["model"] for r in table] == ["xception_lstm", "xception_convlstm", "convlstm_cbam"]
    assert float(table[2]["paper F1"]) == 0.931 and table[0]["paper F1"] == ""


def _write_mass(path, model, fakes, reals, repeat=0):
    rows = []
    for i, (f, r) in enumerate(zip(fakes, reals)):
        rows += [{"model": model, "repeat": repeat, "source": "s", "video_id": f"v{i}_c0_fake",
                  "label": 1, "mass_in_mask": f, "mask_area": 0.3},
                 {"model": model, "repeat": repeat, "source": "s", "video_id": f"v{i}_c0_real",
                  "label": 0, "mass_in_mask": r, "mask_area": 0.3}]
    results.write_table(path, rows, list(rows[0]))


def test_mask_mass_verdict_needs_the_fakes_above_their_twins_video_for_video(tmp_path):
    def run(model, fake, real):
        return {"config": model, "repeat": "0", "status": "ok", "test AUC": "0.5",
                "gradcam fake mass": fake, "gradcam real mass": real,
                "gradcam fake mask area": "0.3", "gradcam fake videos": "8",
                "gradcam real videos": "8", "gradcam fake empty": "0",
                "gradcam real empty": "0"}
    (tmp_path / "gradcam").mkdir()
    # Every fake above its twin: significant. Two large wins and six small losses: the
    # mean is higher, but video for video it is not.
    _write_mass(tmp_path / "gradcam" / "convlstm_cbam-r0-mass.csv", "convlstm_cbam",
                [0.5 + 0.01 * i for i in range(8)], [0.4] * 8)
    _write_mass(tmp_path / "gradcam" / "xception_lstm-r0-mass.csv", "xception_lstm",
                [0.95, 0.95] + [0.38] * 6, [0.4] * 8)
    # A NaN fake (empty heat map) drops its pair; two pairs left cannot be tested.
    _write_mass(tmp_path / "gradcam" / "xception_convlstm-r0-mass.csv", "xception_convlstm",
                [0.6, 0.6, "nan"], [0.4, 0.4, 0.4])
    rows = [run("convlstm_cbam", "0.535", "0.4"), run("xception_lstm", "0.523", "0.4"),
            run("xception_convlstm", "0.6", "0.4")]
    p3.write_tables(tmp_path, rows, ["xception_lstm", "xception_convlstm", "convlstm_cbam"])
    mass = {r["model"]: r for r in results.read_table(tmp_path / "gradcam_mask_mass.csv")}
    assert mass["convlstm_cbam"]["on_forgery"] == "yes"
    assert float(mass["convlstm_cbam"]["fake above twin"]) == 8
    assert float(mass["convlstm_cbam"]["paired p"]) < 0.01
    assert mass["xception_lstm"]["on_forgery"] == "not significant"
    assert float(mass["xception_lstm"]["fake above twin"]) == 2
    assert float(mass["xception_lstm"]["paired p"]) > 0.05
    assert float(mass["xception_convlstm"]["twin pairs"]) == 2
    assert mass["xception_convlstm"]["paired p"] == "" and mass["xception_convlstm"]["clip p"] == ""
    assert mass["xception_convlstm"]["on_forgery"] == "undetermined"


def test_mask_mass_verdict_counts_a_clip_once_however_many_runs_scored_it(tmp_path):
    """Three runs re-score the same clips: 4 clips x 3 runs are 12 pairs but 4 units, too
    few to test; the same pairs from 12 distinct clips are enough."""
    run = {"config": "convlstm_cbam", "repeat": "0", "status": "ok", "test AUC": "0.5",
           "gradcam fake mass": "0.55", "gradcam real mass": "0.4",
           "gradcam fake mask area": "0.3", "gradcam fake videos": "4",
           "gradcam real videos": "4", "gradcam fake empty": "0", "gradcam real empty": "0"}
    (tmp_path / "gradcam").mkdir()
    for k in range(3):
        _write_mass(tmp_path / "gradcam" / f"convlstm_cbam-r{k}-mass.csv", "convlstm_cbam",
                    [0.5 + 0.01 * i + 0.001 * k for i in range(4)], [0.4] * 4, repeat=k)
    p3.write_tables(tmp_path, [run], ["convlstm_cbam"])
    row = results.read_table(tmp_path / "gradcam_mask_mass.csv")[0]
    assert (int(row["twin pairs"]), int(row["clips"]), int(row["clips above twin"])) == (12, 4, 4)
    assert row["paired p"] != "" and float(row["paired p"]) < 0.01  # the pseudo-replicated test
    assert row["clip p"] == "" and row["on_forgery"] == "undetermined"
    assert row["run p"] == "- / - / -"  # 4 pairs a run: no per-run test either

    _write_mass(tmp_path / "gradcam" / "convlstm_cbam-r0-mass.csv", "convlstm_cbam",
                [0.5 + 0.01 * i for i in range(12)], [0.4] * 12)
    for k in (1, 2):
        (tmp_path / "gradcam" / f"convlstm_cbam-r{k}-mass.csv").unlink()
    p3.write_tables(tmp_path, [run], ["convlstm_cbam"])
    row = results.read_table(tmp_path / "gradcam_mask_mass.csv")[0]
    assert int(row["clips"]) == 12 and float(row["clip p"]) < 0.001
    assert row["on_forgery"] == "yes"


def test_p3_smoke_end_to_end_with_schedule_gradcam_export_and_resume(tmp_path, smoke_video_store):
    from dfdetect.data import pipeline, store
    from dfdetect.models.export import load_exported

    out = tmp_path / "p3"
    argv = ["--scale", "smoke", "--data", str(smoke_video_store), "--models", "convlstm_cbam",
            "--real-ratio", "0.5", "--gradcam-videos", "1", "--out", str(out), "--quiet"]
    assert p3_convlstm_cbam.main(argv) == 0

    table = results.read_table(out / "table_5_6_7.csv")
    assert [r["model"] for r in table] == ["xception", "convlstm_cbam"]
    header = list(table[0])
    assert header[:6] == ["model", "AUC", "Accuracy", "Precision", "Recall", "F1"]
    assert float(table[1]["paper AUC"]) == 0.989 and float(table[0]["paper AUC"]) == 0.676
    assert {"AUC sd", "Accuracy sd", "repeats"} <= set(header)
    # The paper's model against the one baseline that ran (one repeat: no t-test yet).
    comparisons = results.read_table(out / "comparisons.csv")
    assert [(r["a"], r["b"], r["split"]) for r in comparisons][0] == (
        "convlstm_cbam", "xception", "test")
    assert float(comparisons[0]["difference"]) == pytest.approx(
        float(table[1]["AUC"]) - float(table[0]["AUC"]), abs=1e-5)
    manifest = store.read_manifest(smoke_video_store)
    test_clips = pipeline.group_clips([r for r in manifest if r["split"] == "test"])
    for row in table:
        assert 0.0 <= float(row["Accuracy"]) <= 1.0
        assert sum(int(float(row[c])) for c in ("TN", "FP", "FN", "TP")) == len(test_clips)

    # Table 4's schedule: 3 fake training clips, 2 reals kept -> 2 rounds
    run = {r["config"]: r for r in results.read_table(out / "runs.csv")}["convlstm_cbam"]
    assert run["status"] == "ok"
    assert (int(run["train reals"]), int(run["train fakes"]), int(run["rounds"])) == (2, 3, 2)
    assert run["gradcam layer"] == p3.FINER_CAM_LAYER  # the 2 x 2 default map is too coarse
    schedule = results.read_table(out / "schedule-r0.csv")
    rounds = sorted({int(r["round"]) for r in schedule})
    fakes = [r["video_id"] for r in schedule if r["label"] == "1"]
    assert rounds == [0, 1] and len(fakes) == len(set(fakes)) == 3  # every fake once
    reals = [{r["video_id"] for r in schedule if r["label"] == "0" and int(r["round"]) == c}
             for c in rounds]
    assert reals[0] == reals[1] and len(reals[0]) == 2  # every real in every round

    assert (out / "confusion_matrix.png").stat().st_size > 1000
    grids = sorted(p.name for p in (out / "gradcam").glob("*.png"))
    assert len(grids) == 2 and grids[0].startswith("convlstm_cbam_fake_") \
        and grids[1].startswith("convlstm_cbam_real_")
    mass = results.read_table(out / "gradcam_mask_mass.csv")
    assert [(m["model"], m["layer"]) for m in mass] == [("convlstm_cbam", p3.FINER_CAM_LAYER)]
    assert 0.0 < float(mass[0]["mask area"]) < 1.0
    for key in ("fake mass in mask", "real mass in twin mask"):
        assert mass[0][key] == "" or 0.0 <= float(mass[0][key]) <= 1.0
    per_video = results.read_table(out / "gradcam" / "convlstm_cbam-r0-mass.csv")
    assert {int(v["label"]) for v in per_video} == {0, 1}  # the real borrowed its twin's mask
    # blank (NaN written by results) = the heat map was all zeros: no mass to place
    masses = [float(v["mass_in_mask"] or "nan") for v in per_video]
    assert all(math.isnan(m) or 0 <= m <= 1 for m in masses)

    model, meta = load_exported(out / "models" / "convlstm_cbam.keras")
    assert meta["config"] == "convlstm_cbam" and meta["frames"] == 4
    clip = np.random.default_rng(0).random((1, 4, 64, 64, 3)).astype("float32")
    probs = np.asarray(model.predict_on_batch(clip))
    assert probs.shape == (1, 2) and abs(float(probs.sum()) - 1.0) < 1e-5
    # The warm-up frame model is exported too, as the image model predict scores, and
    # gives the frame scores its row was computed from.
    frames, meta = load_exported(out / "models" / "xception.keras")
    assert (meta["config"], meta["kind"], meta["image_size"]) == ("xception", "image", 64)
    from dfdetect import evaluation, training

    rows = [r for r in manifest if r["split"] == "test"]
    frame_scores = training.predict_scores(
        frames, pipeline.image_dataset(rows, smoke_video_store, 64, 8))
    order, _, video_scores = evaluation.aggregate_by_video(
        [f"{r['source']}\t{r['video_id']}" for r in rows], pipeline.labels_of(rows),
        frame_scores)
    recorded = {f"{r['source']}\t{r['video_id']}": float(r["score"])
                for r in results.read_table(out / "scores" / "xception-r0-test.csv")}
    assert [recorded[v] for v in order] == pytest.approx(list(video_scores), abs=1e-4)

    before = (out / "runs.csv").read_text()
    assert p3_convlstm_cbam.main(argv) == 0  # resume: nothing retrained, the rows are kept
    assert (out / "runs.csv").read_text() == before


def test_unknown_model_is_a_clean_error(tmp_path, smoke_video_store, capsys):
    argv = ["--scale", "smoke", "--data", str(smoke_video_store), "--models", "nope",
            "--out", str(tmp_path), "--quiet"]
    assert p3_convlstm_cbam.main(argv) == 2
    assert "nope" in capsys.readouterr().err


def test_comparisons_put_the_papers_model_against_each_baseline():
    from dfdetect.papers import convlstm_cbam

    configs = ["xception", *convlstm_cbam.MODELS]
    pairs = convlstm_cbam.comparison_pairs(configs)
    assert [(a, b) for a, b, _ in pairs] == [("convlstm_cbam", "xception"),
                                            ("convlstm_cbam", "xception_lstm"),
                                            ("convlstm_cbam", "xception_convlstm")]
    assert convlstm_cbam.comparison_pairs(["xception", "xception_lstm"]) == []
