"""The benchmarks' cores on tiny inputs: CSV schema, finite positive figures, FLOP counts.

No timing assertions here: speed claims live in ``make bench`` (results/bench/), never
in tests. What is checked is that each benchmark runs, counts what it says it counts,
and writes the agreed CSV.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO / ".." / "shared" / "data" / "videos"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import common  # noqa: E402


def _check(figures, tmp_path, name="t", allow_zero=()):
    """Every value finite, positive unless named in allow_zero; the CSV has the schema."""
    assert figures, "no figures"
    for fig in figures:
        assert math.isfinite(fig.value), fig
        if fig.figure not in allow_zero:
            assert fig.value > 0, fig
    path = common.write_figures(name, figures, tmp_path)
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == common.FIELDS
        rows = list(reader)
    assert [r["figure"] for r in rows] == [f.figure for f in figures]
    for row in rows:
        assert math.isfinite(float(row["value"]))
        assert row["unit"] and row["machine"] and row["date"] and row["versions"]
        assert "load" in row["machine"] and "cores" in row["machine"]
    return {f.figure: f.value for f in figures}


# --------------------------------------------------------------------------- common

def test_write_figures_rejects_nan_and_duplicates(tmp_path):
    with pytest.raises(ValueError, match="finite"):
        common.write_figures("x", [common.Figure("a", float("nan"), "s")], tmp_path)
    with pytest.raises(ValueError, match="twice"):
        common.write_figures("x", [common.Figure("a", 1.0, "s"), common.Figure("a", 2.0, "s")],
                             tmp_path)
    assert not (tmp_path / "x.csv").exists()


def test_finish_prints_headline_last(tmp_path, capsys):
    figures = [common.Figure("speedup", 4.0, "x"), common.Figure("seconds", 2.0, "s")]
    common.finish("demo", figures, "speedup", tmp_path)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "speedup = 4 x"
    assert common.read_figures(tmp_path / "demo.csv")[0]["value"] == 4.0


def test_run_child_reports_the_childs_peak_rss():
    code = "import numpy as np; a = np.ones(300 * 2**20 // 8); print(a.sum())"
    status, peak, output = common.run_child([sys.executable, "-c", code])
    assert status == 0 and "3932" in output
    assert 300 <= peak < 2000  # 300 MiB array + the interpreter


def test_run_child_peak_excludes_a_big_parent():
    ballast = np.ones(800 * 2**20 // 8)  # the caller holds 800 MiB (pytest with models: more)
    status, peak, output = common.run_child([sys.executable, "-c", "print('small')"])
    assert status == 0 and output == "small\n"
    assert peak < 200 and ballast.sum() > 0


def test_run_child_passes_the_exit_code_and_honours_the_timeout():
    status, _, output = common.run_child([sys.executable, "-c", "import sys; print('x'); sys.exit(3)"])
    assert (status, output) == (3, "x\n")
    start = time.monotonic()
    status, _, _ = common.run_child([sys.executable, "-u", "-c",
                                     "import time\nwhile True: print(1); time.sleep(0.1)"],
                                    timeout=1.0)
    assert status != 0 and time.monotonic() - start < 30


def test_whole_run_memory_sums_the_process_tree():
    from benchmarks import whole_run_memory

    # a parent holding 150 MiB that starts a child holding 250 MiB: the tree peaks at both
    child = "import numpy as np, time; a = np.ones(250 * 2**20 // 8); time.sleep(1.5)"
    parent = ("import numpy as np, subprocess, sys; a = np.ones(150 * 2**20 // 8); "
              f"subprocess.run([sys.executable, '-c', {child!r}]); sys.exit(4)")
    got = whole_run_memory.measure_command([sys.executable, "-c", parent], interval=0.1)
    assert got["exit_code"] == 4 and got["peak_processes"] == 2
    assert 400 <= got["peak_mib"] < 1500
    assert got["seconds"] >= 1.5


def test_whole_run_memory_keeps_other_experiments_rows(tmp_path):
    from benchmarks import whole_run_memory
    from dfdetect.results import atomic_write_text, rows_to_csv

    path = tmp_path / "whole_run_memory.csv"
    for name, peak in (("p1", 5000.0), ("p3", 3000.0), ("p1", 4000.0)):
        rows = whole_run_memory.merge_rows(path, name, [
            common.Figure(f"{name}_whole_run_peak_rss", peak, "MiB"),
            common.Figure(f"{name}_whole_run_seconds", 60.0, "s")])
        atomic_write_text(path, rows_to_csv(rows, common.FIELDS))
    values = {r["figure"]: r["value"] for r in common.read_figures(path)}
    assert values == pytest.approx({"p1_whole_run_peak_rss": 4000.0, "p1_whole_run_seconds": 60.0,
                                    "p3_whole_run_peak_rss": 3000.0, "p3_whole_run_seconds": 60.0,
                                    "whole_run_peak_rss_max": 4000.0,
                                    "whole_run_peak_rss_max_vs_8gib": 4000.0 / 8192}, rel=1e-5)
    from benchmarks import run_all

    text = run_all.render_readme(tmp_path)
    assert "| `whole_run_memory.whole_run_peak_rss_max` | 4,000 | < 8,192 | yes |" in text
    assert "| p3 | 3,000 MiB | 36.6 % |" in text


# --------------------------------------------------------------------------- compute

def test_count_flops_matches_hand_count():
    import keras

    from benchmarks.compute_efficiency import count_flops

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)            # 2*8*8*4*9*3 = 13,824
    x = keras.layers.SeparableConv2D(6, 3, strides=2, padding="same")(x)
    # depthwise 2*4*4*4*9 = 1,152; pointwise 2*4*4*4*6 = 768
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)                               # 2*6*5 = 60
    model = keras.Model(inputs, outputs)
    flops = count_flops(model, np.zeros((2, 8, 8, 3), np.float32))
    assert flops["conv"] == 2 * (13_824 + 768)
    assert flops["depthwise"] == 2 * 1_152
    assert flops["dense"] == 2 * 60
    assert flops["total"] == 2 * (13_824 + 768 + 1_152 + 60)
    assert flops["layers"] == 3


def test_count_flops_recurrent_and_time_distributed():
    import keras

    from benchmarks.compute_efficiency import count_flops

    inputs = keras.Input((3, 4, 4, 2))
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(5, 1))(inputs)  # 2*3*16*5*2 = 960
    x = keras.layers.ConvLSTM2D(2, 3, padding="same")(x)  # 3 steps * 2*16*4*2*9*(5+2)
    model = keras.Model(inputs, x)
    flops = count_flops(model, np.zeros((1, 3, 4, 4, 2), np.float32))
    assert flops["conv"] == 960
    assert flops["recurrent"] == 3 * 2 * 16 * 4 * 2 * 9 * 7

    seq = keras.Input((5, 3))
    gru = keras.Model(seq, keras.layers.GRU(4)(seq))
    assert count_flops(gru, np.zeros((2, 5, 3), np.float32))["recurrent"] == 2 * 5 * 2 * 3 * 4 * 7


def test_compute_efficiency_on_meso4(tmp_path):
    from benchmarks import compute_efficiency as ce

    figures = ce.measure(models=("meso4",), image_size=32, batch=4, matmul_n=(128,),
                         train_repeats=1, infer_repeats=1,
                         kernels={"tiny": ("conv", 2, 8, 4, 4, 3),
                                  "tiny_dw": ("depthwise", 2, 8, 4, 1, 3)}, log=lambda *_: None)
    values = _check(figures, tmp_path, allow_zero=("meso4_depthwise_flop_share",
                                                   "meso4_recurrent_flop_share"))
    assert values["meso4_train_step_flop"] == 3 * 4 * values["meso4_forward_flop_per_sample"]
    assert 0 < values["meso4_train_vs_peak_efficiency"]
    assert "kernel_tiny_dw_vs_peak_efficiency" in values


# --------------------------------------------------------------------------- pipelines

def test_input_pipeline_tiny(tmp_path, smoke_image_store, smoke_video_store):
    from benchmarks import input_pipeline

    # Xception's rate is given (as make bench takes it from compute_efficiency.csv), far
    # above Meso-4's measured one: the headline must then be the pipeline against
    # Xception, the tightest consumer, not against the model that was measured.
    fast = 1e6
    figures = input_pipeline.measure(images=48, clips=4, image_size=32, video_size=32,
                                     frames=2, batch=8, consumers=("meso4", "xception"),
                                     reference_rates={"xception": fast}, rounds=1,
                                     augment_batches=2, autotune_pairs=2,
                                     image_store=smoke_image_store,
                                     video_store=smoke_video_store, log=lambda *_: None)
    values = _check(figures, tmp_path)
    cached, first = (values["image_pipeline_cached_images_per_s"],
                     values["image_pipeline_images_per_s"])
    assert values["image_pipeline_cached_vs_meso4_ratio"] == pytest.approx(
        cached / values["meso4_train_images_per_s"])
    assert values["pipeline_vs_model_ratio"] == pytest.approx(cached / fast)
    assert values["pipeline_first_epoch_vs_model_ratio"] == pytest.approx(first / fast)
    assert values["pipeline_vs_model_ratio"] < values["image_pipeline_cached_vs_meso4_ratio"]
    assert values["autotune_pairs"] == 2
    for suffix in ("", "_cached"):
        low, mid, high = (values[f"autotune{suffix}_speedup_{k}"] for k in ("min", "median", "max"))
        assert 0 < low <= mid <= high
    # the recorded decision is the documented rule applied to the recorded pairs
    lost_everywhere = (values["autotune_speedup_max"] < 1
                       and values["autotune_cached_speedup_max"] < 1)
    assert values["autotune_kept"] == float(not lost_everywhere)


def test_autotune_pairs_alternate_their_order_and_decide_only_on_a_clean_loss():
    from benchmarks import input_pipeline

    calls = []

    def rate(on):
        calls.append(on)
        return 2.0 if on else 1.0

    assert input_pipeline.autotune_ratios(rate, 3) == [2.0, 2.0, 2.0]
    assert calls == [True, False, False, True, True, False]
    assert input_pipeline.autotune_kept([[0.9, 1.01], [0.8, 0.9]])
    assert not input_pipeline.autotune_kept([[0.9, 0.95], [0.8, 0.99]])


def test_feature_cache_tiny(tmp_path, smoke_video_store):
    from benchmarks import feature_cache

    figures = feature_cache.measure(videos=6, frames=3, size=32, batch=4, backbone="meso4",
                                    source_store=smoke_video_store, log=lambda *_: None)
    values = _check(figures, tmp_path)
    assert values["train_videos"] == 4 and values["frames_per_video"] == 3


def test_replica_store_gives_distinct_crop_files(tmp_path, smoke_video_store):
    from benchmarks.feature_cache import replica_store
    from dfdetect.data import store

    rows = replica_store(Path(smoke_video_store), tmp_path / "s", videos=5, frames=6)
    assert len(rows) == 30 and len({r["crop_path"] for r in rows}) == 30
    assert len(store.read_manifest(tmp_path / "s")) == 30
    assert all((tmp_path / "s" / r["crop_path"]).is_file() for r in rows)
    assert sum(r["split"] == "train" for r in rows) == 4 * 6


# --------------------------------------------------------------------------- real videos

def test_face_crop_same_crops_on_real_videos(tmp_path):
    from benchmarks import face_crop

    videos = [SHARED_VIDEOS / "closeup_single_face.mp4", SHARED_VIDEOS / "upperbody_s13.mp4"]
    figures = face_crop.measure(videos=videos, frames=2, size=32, workers=1,
                                log=lambda *_: None)
    values = _check(figures, tmp_path, allow_zero=("frames_cropped_by_only_one",
                                                   "small_video_box_offset_px_max",
                                                   "large_video_box_offset_px_median",
                                                   "large_video_box_offset_px_max",
                                                   "large_video_box_offset_vs_side_median",
                                                   "large_video_box_offset_vs_side_max",
                                                   "crop_pixel_mae_all"))
    assert values["frames_sampled"] == 4 and values["crops_compared"] == 4
    # <= 640 px frames: the same image reaches the same detector; skipping its finest
    # pyramid levels moves a box by at most a pixel of rounding.
    assert values["small_video_box_offset_px_max"] <= 1
    assert values["large_video_box_iou_min"] > 0.7


def test_box_iou():
    from benchmarks.face_crop import box_iou

    assert box_iou((0, 10, 10, 0), (0, 10, 10, 0)) == 1.0
    assert box_iou((0, 10, 10, 0), (0, 20, 10, 10)) == 0.0
    assert box_iou((0, 10, 10, 0), (0, 15, 10, 5)) == pytest.approx(50 / 150)


def test_predict_latency_tiny(tmp_path):
    from benchmarks import predict_latency

    figures = predict_latency.measure(backbone="meso4", image_size=32, seconds=1.0,
                                      size=(320, 180), frames=2, log=lambda *_: None)
    values = _check(figures, tmp_path, allow_zero=("score_difference",))
    assert values["video_width"] == 320 and values["frames_scored"] == 2
    # the same frames, crops and model: the two ways must agree to float precision
    # (anything more is a different crop or frame, i.e. a bug in one of them)
    assert values["score_difference"] < 1e-5


def test_make_video_has_the_asked_size_and_length(tmp_path):
    import cv2

    from benchmarks.predict_latency import make_video

    path = make_video(SHARED_VIDEOS / "closeup_single_face.mp4", tmp_path / "v.mp4",
                      seconds=4.0, fps=25, size=(160, 90))  # source: 72 frames, looped
    cap = cv2.VideoCapture(str(path))
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) \
        == (160, 90)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 100


# --------------------------------------------------------------------------- memory, options

def test_memory_slice_in_a_child(tmp_path):
    from benchmarks import memory

    figures = memory.measure(slices=("p4",), tiny=True, log=lambda *_: None)
    values = _check(figures, tmp_path)
    assert 50 < values["p4_peak_rss"] < memory.LIMIT_MIB
    assert values["peak_rss_max_vs_8gib"] == pytest.approx(values["p4_peak_rss"] / 8192)


def test_memory_slices_run_in_process():
    from benchmarks import memory

    memory.run_slice("p2", tiny=True)
    with pytest.raises(ValueError, match="unknown slice"):
        memory.run_slice("p9", tiny=True)


def test_tf_options_tiny(tmp_path):
    from benchmarks import tf_options

    # XLA is left out here: compiling even Meso-4 takes long on a busy CPU.
    figures = tf_options.measure(variants=("default", "bf16"), model_name="meso4",
                                 size=32, batch=4, repeats=1, log=lambda *_: None)
    values = _check(figures, tmp_path, allow_zero=("default_kept",))
    assert values["default_kept"] == 1.0  # no exact-precision variant was tried
    assert values["bf16_vs_default_train_speed"] == pytest.approx(
        values["default_train_step_seconds"] / values["bf16_train_step_seconds"])


# --------------------------------------------------------------------------- runner

def test_readme_quotes_the_csvs(tmp_path):
    from benchmarks import run_all

    common.write_figures("input_pipeline", [common.Figure("pipeline_vs_model_ratio", 5.5, "x"),
                                            common.Figure("autotune_speedup", 1.2, "x")],
                         tmp_path)
    common.write_figures("face_crop", [common.Figure("face_crop_speedup", 2.0, "x")], tmp_path)
    text = run_all.render_readme(tmp_path)
    assert "| `input_pipeline.pipeline_vs_model_ratio` | 5.5 | >= 3 | yes |" in text
    assert "| `face_crop.face_crop_speedup` | 2 | >= 3 | **no** |" in text
    assert "| `feature_cache.feature_cache_speedup` | - |" in text


@pytest.mark.parametrize("kept, expected", [(1.0, "Kept on"), (0.0, "lost every pair")])
def test_readme_states_the_autotune_decision_from_the_paired_medians(tmp_path, kept,
                                                                     expected):
    from benchmarks import run_all

    figures = [common.Figure("pipeline_vs_model_ratio", 5.5, "x"),
               common.Figure("autotune_pairs", 7, "pairs"),
               common.Figure("autotune_kept", kept, "bool")]
    for suffix, (low, mid, high) in (("", (0.8, 0.97, 1.1)), ("_cached", (0.9, 1.02, 1.3))):
        figures += [common.Figure(f"autotune{suffix}_speedup_{k}", v, "x")
                    for k, v in (("min", low), ("median", mid), ("max", high))]
    common.write_figures("input_pipeline", figures, tmp_path)
    common.write_figures("tf_options", [common.Figure("default_kept", 1.0, "bool")], tmp_path)
    text = run_all.render_readme(tmp_path)
    assert "median of 7 back-to-back pairs: decoding every pass 0.97 x (pairs 0.8 x to 1.1 x)" \
        in text
    assert "cached, as after epoch 1 1.02 x" in text
    assert expected in text


def test_every_script_exists_with_a_main():
    import importlib

    from benchmarks import run_all

    for name in run_all.SCRIPTS:
        module = importlib.import_module(f"benchmarks.{name}")
        assert callable(module.main) and module.NAME == name


def test_help_times_tiny(tmp_path):
    from benchmarks import help_times

    commands = help_times.commands()
    assert commands["help_seconds_dfdetect"] == ["-m", "dfdetect.cli", "--help"]
    assert commands["help_seconds_dfdetect_train"][-2:] == ["train", "--help"]
    assert "help_seconds_p1_fusion" in commands
    only = {k: commands[k] for k in ("help_seconds_dfdetect", "help_seconds_p1_fusion")}
    values = _check(help_times.measure(repeats=1, only=only, log=lambda *_: None), tmp_path)
    assert values["help_seconds_max"] == max(values[k] for k in only)


def test_smoke_p1_tiny(tmp_path):
    from benchmarks import run_all, smoke_p1

    assert "smoke_p1" in run_all.OPT_IN and "help_times" in run_all.SCRIPTS
    assert ("smoke_p1", "smoke_p1_wall_seconds", 180.0, "<=") == run_all.TARGETS[
        [t[0] for t in run_all.TARGETS].index("smoke_p1")][:4]
    values = _check(smoke_p1.measure(("--configs", "meso4"), log=lambda *_: None), tmp_path)
    assert values["smoke_p1_runs"] == 1
