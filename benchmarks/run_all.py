#!/usr/bin/env python
"""``make bench``: runs every benchmark script, then writes ``results/bench/README.md``.

Each script runs in its own process (a fresh TensorFlow, its own peak memory) and writes
``results/bench/<name>.csv``. This runner adds ``results/bench/bench_run.csv`` (wall and
CPU seconds of each script and of the whole run: on a shared machine the CPU seconds say
what the run costs, the wall seconds what it took under that load) and renders the
README from the CSVs, so the README never quotes a number the CSVs do not hold.

Run: ``python benchmarks/run_all.py [--only a,b] [--readme-only]``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (Figure, base_argparser, finish, format_value,  # noqa: E402
                               mark_start, read_figures)

#: Scripts in the order ``make bench`` runs them.
SCRIPTS = ("compute_efficiency", "tf_options", "input_pipeline", "feature_cache",
           "face_crop", "predict_latency", "detector", "memory", "help_times")
BUDGET_SECONDS = 15 * 60
#: Scripts run only when named (``make bench BENCH_ONLY=precision``): ``precision`` probes
#: six models in two precisions at 128 px, and ``smoke_p1`` runs P1's whole smoke grid
#: (minutes each, which the bench budget above has not).
OPT_IN = ("precision", "smoke_p1")

#: (benchmark, figure, target, comparison, what it means) for the README's summary.
TARGETS = (
    ("input_pipeline", "pipeline_vs_model_ratio", 3.0, ">=",
     "image pipeline as the experiments run it after epoch 1 (cached decode, shuffle, "
     "batch, augment) vs Meso-4, the fastest-training model"),
    ("input_pipeline", "clip_pipeline_vs_p3_ratio", 3.0, ">=",
     "clip pipeline vs the P3 model"),
    ("feature_cache", "feature_cache_speedup", 20.0, ">=",
     "P2 sequence-grid epoch, cached features vs recomputing the CNN"),
    ("face_crop", "face_crop_speedup", 3.0, ">=",
     "`dfdetect data crop` vs the straightforward loop, real videos"),
    ("detector", "detector_predict_cold_seconds", 5.0, "<=",
     "`dfdetect predict` with the shipped detector on a 10-s 720p video (16 frames), "
     "cold: a fresh process, imports, the model's load and its LiteRT twin's first run "
     "included, the video's faces found by two processes (s; with Keras: "
     "`detector_predict_cold_keras_seconds`)"),
    ("detector", "detector_predict_warm_seconds", 2.0, "<=",
     "the same with the model loaded (s)"),
    ("memory", "peak_rss_max", 8192.0, "<",
     "largest peak resident memory of the cpu-scale experiment slices (MiB)"),
    ("whole_run_memory", "whole_run_peak_rss_max", 8192.0, "<",
     "largest peak resident memory of a whole cpu-scale experiment run, its process tree "
     "summed (MiB; `make bench-whole-runs`, not part of `make bench`)"),
    ("smoke_p1", "smoke_p1_wall_seconds", 180.0, "<=",
     "`make reproduce-fusion SCALE=smoke` from a fresh data folder, its benchmark built "
     "too (s; the target is for 2 quiet cores: see the load in the CSV's `machine`; "
     "`BENCH_ONLY=smoke_p1`)"),
    ("help_times", "help_seconds_max", 2.0, "<=",
     "slowest `--help` of `dfdetect`, its commands and the experiment scripts (s)"),
    ("bench_run", "total_wall_seconds", float(BUDGET_SECONDS), "<",
     "`make bench` wall time (s)"),
)


#: What bounds each model's efficiency at cpu scale: the kernels its FLOPs run in
#: (architecture facts at 64 px) with the measured kernel efficiencies filled in.
LIMITS = {
    "xception": "at 64 px its middle flow is 1x1 and depthwise convolutions on 4 x 4 x 728 "
                "maps: pointwise {pointwise_4px_728ch}, depthwise {depthwise_4px_728ch} of "
                "peak (depthwise: {depthwise} of its FLOPs)",
    "inceptionv3": "64 px crops are upsampled to 75 px, so its inception blocks run on "
                   "8 x 8 down to 1 x 1 maps (3x3 conv on 16 x 16 x 128: "
                   "{conv3x3_16px_128ch} of peak); {ms_per_layer} per counted layer per "
                   "training step",
    "meso4": "3x3 / 5x5 convolutions with 8-16 channels at 64 px ({conv3x3_64px_32ch} of "
             "peak for 16 -> 32 channels): little work per op, so batch norm, pooling and "
             "per-op overhead take most of the step ({ms_per_layer} per counted layer per "
             "training step)",
    "p3": "Xception per frame (as above) plus ConvLSTM steps that run one after another on "
          "2 x 2 maps with batch 2 ({convlstm_step_2px} of peak; {recurrent} of its FLOPs)",
}


def run_scripts(names, out: Path, log=print) -> list[Figure]:
    """Runs each script as a child; returns the timing figures for ``bench_run.csv``."""
    from benchmarks.common import run_child

    figures = []
    total_wall = total_cpu = 0.0
    failed = []
    for name in names:
        script = Path(__file__).with_name(f"{name}.py")
        log(f"== {name}", flush=True)
        before = os.times()
        start = time.perf_counter()
        code, peak, output = run_child([sys.executable, str(script), "--out", str(out)])
        wall = time.perf_counter() - start
        after = os.times()
        cpu = (after.children_user - before.children_user
               + after.children_system - before.children_system)
        tail = [line for line in output.splitlines() if line.strip()][-3:]
        log("\n".join(tail))
        log(f"   {wall:.0f} s wall, {cpu:.0f} s CPU, peak {peak:.0f} MiB", flush=True)
        if code != 0:
            failed.append(name)
            log(output[-3000:])
        total_wall += wall
        total_cpu += cpu
        figures += [Figure(f"{name}_wall_seconds", wall, "s"),
                    Figure(f"{name}_cpu_seconds", cpu, "s")]
    figures += [Figure("scripts_failed", len(failed), "scripts"),
                Figure("total_cpu_seconds", total_cpu, "s"),
                Figure("total_wall_seconds", total_wall, "s")]
    if failed:
        log(f"FAILED: {', '.join(failed)}")
    return figures


# --------------------------------------------------------------------------- README

def _load(out: Path) -> dict[str, dict[str, dict]]:
    tables = {}
    for path in sorted(out.glob("*.csv")):
        tables[path.stem] = {row["figure"]: row for row in read_figures(path)}
    return tables


def _v(tables, bench, figure):
    row = tables.get(bench, {}).get(figure)
    return None if row is None else row["value"]


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _fmt(value, unit="") -> str:
    if value is None:
        return "-"
    return f"{format_value(value)}{(' ' + unit) if unit else ''}"


def autotune_lines(tables: dict) -> list[str]:
    """README lines on tf.data autotune: the paired measurement and the decision it made."""
    ip = "input_pipeline"
    if _v(tables, ip, "autotune_speedup_median") is None:
        return []
    parts = []
    for suffix, what in (("", "decoding every pass"), ("_cached", "cached, as after epoch 1")):
        m = _v(tables, ip, f"autotune{suffix}_speedup_median")
        if m is not None:
            low = _v(tables, ip, f"autotune{suffix}_speedup_min")
            high = _v(tables, ip, f"autotune{suffix}_speedup_max")
            parts.append(f"{what} {_fmt(m, 'x')} (pairs {_fmt(low, 'x')} to {_fmt(high, 'x')})")
    pairs = _v(tables, ip, "autotune_pairs")
    kept = _v(tables, ip, "autotune_kept")
    head = _v(tables, ip, "pipeline_vs_model_ratio")
    text = (f"tf.data autotune on vs off, image pipeline, median of {_fmt(pairs, '')} "
            f"back-to-back pairs: " + "; ".join(parts) + ". ")
    if kept == 0.0:
        text += "**Autotune lost every pair of both pipelines in this run.**"
    else:
        text += ("Kept on (TensorFlow's default, which sizes the parallel maps to a bigger "
                 "machine's cores): it did not lose every pair")
        if head is not None:
            text += (f", and with the pipeline {_fmt(head, 'x')} faster than the fastest "
                     "model the choice cannot change training time here")
        text += "."
    return [text, ""]


def precision_lines(tables: dict) -> list[str]:
    """README lines on float32 vs mixed_bfloat16 training and what ``auto`` picks."""
    pr = "precision"
    if pr not in tables:
        return []
    models = [name[len("bf16_speedup_"):] for name in tables[pr]
              if name.startswith("bf16_speedup_") and not name.startswith(("bf16_speedup_min",
                                                                           "bf16_speedup_max"))]
    lines = ["## Training precision: float32 vs mixed_bfloat16 (`BENCH_ONLY=precision`)", "",
             "Training steps of each model built in each precision (output layers "
             "float32), timed in alternating rounds in one process: the probe "
             "`--precision auto` runs (`benchmarks/precision.py`, 128 px, batch 32; P3: "
             "4 clips of 8 frames). auto keeps bfloat16 only where the CPU has it "
             "natively, it is > 10 % faster (median of the rounds' paired ratios) and "
             "faster in every round.", ""]
    first = next(iter(tables[pr].values()))
    lines += [f"Measured {first['date']} on {first['machine']}: a load average above 2 "
              "means other jobs shared the 2 cores, so single rounds swing; each ratio "
              "pairs two chunks timed back to back, and the per-round range shows the "
              "spread.", "",
              "| model | float32 /s | bfloat16 /s | bf16 speed-up | per round | auto picks |",
              "|---|---|---|---|---|---|"]
    for m in models:
        unit = "clips_per_s" if m == "p3" else "images_per_s"
        picks = _v(tables, pr, f"auto_picks_bf16_{m}")
        lines.append(
            f"| {m} | {_fmt(_v(tables, pr, f'float32_{unit}_{m}'))} "
            f"| {_fmt(_v(tables, pr, f'bf16_{unit}_{m}'))} "
            f"| {_fmt(_v(tables, pr, f'bf16_speedup_{m}'), 'x')} "
            f"| {_fmt(_v(tables, pr, f'bf16_speedup_min_{m}'), 'x')} to "
            f"{_fmt(_v(tables, pr, f'bf16_speedup_max_{m}'), 'x')} "
            f"| {'mixed_bfloat16' if picks == 1.0 else 'float32'} |")
    return lines + [""]


def _meets(value: float, op: str, target: float) -> bool:
    return {">=": value >= target, "<=": value <= target, "<": value < target}[op]


def render_readme(out: Path) -> str:
    """The README text from the CSVs in ``out``."""
    tables = _load(out)
    lines = ["# Benchmarks (`make bench`)", "",
             "Generated by `benchmarks/run_all.py` from the CSVs in this folder "
             "(columns `figure, value, unit, machine, date, versions`). Every ratio is "
             "measured within one run on one machine; the `machine` column records the "
             "load average, because these machines' 2 cores are shared: absolute "
             "figures are noisy, ratios are what carry over.", ""]
    any_row = next((row for t in tables.values() for row in t.values()), None)
    if any_row:
        lines += [f"Last run: {any_row['date']} on {any_row['machine']}.",
                  f"Versions: {any_row['versions']}.", ""]

    lines += ["## Targets", "", "| figure | measured | target | met | what |",
              "|---|---|---|---|---|"]
    for bench, figure, target, op, what in TARGETS:
        value = _v(tables, bench, figure)
        met = "-" if value is None else ("yes" if _meets(value, op, target) else "**no**")
        lines.append(f"| `{bench}.{figure}` | {_fmt(value)} | {op} {format_value(target)} "
                     f"| {met} | {what} |")
    lines.append("")

    ce = "compute_efficiency"
    if ce in tables:
        peak = _v(tables, ce, "matmul_peak_flop_per_s")
        lines += ["## Compute efficiency (cpu scale)", "",
                  f"Dense float32 matmul peak measured in the same run: "
                  f"{_fmt(peak / 1e9 if peak else None)} GFLOP/s (best of 1024 and 2048 "
                  "square float32 matrices). FLOPs are "
                  "counted from the layer shapes (2 x multiply-adds of convolutions, "
                  "dense and recurrent layers; a training step = 3 x forward), see "
                  "`compute_efficiency.py`.", "",
                  "Efficiency = achieved FLOP/s over the peak, on wall time (what the "
                  "issue asks; noisy when neighbours load the cores) and per CPU second "
                  "of the process (load-robust; blind to an idle core).", "",
                  "| model | FLOP/sample (fwd) | train samples/s | train vs peak (wall) | "
                  "train vs peak (CPU time) | inference samples/s | inference vs peak "
                  "(wall) | inference vs peak (CPU time) |",
                  "|---|---|---|---|---|---|---|---|"]
        for model in ("xception", "inceptionv3", "meso4", "p3"):
            unit = "clips" if model == "p3" else "images"
            if _v(tables, ce, f"{model}_train_step_flop") is None:
                continue
            lines.append(
                f"| {model} | {_fmt(_v(tables, ce, f'{model}_forward_flop_per_sample'))} "
                f"| {_fmt(_v(tables, ce, f'{model}_train_{unit}_per_s'))} "
                f"| {_pct(_v(tables, ce, f'{model}_train_vs_peak_efficiency'))} "
                f"| {_pct(_v(tables, ce, f'{model}_train_vs_peak_cpu_time_efficiency'))} "
                f"| {_fmt(_v(tables, ce, f'{model}_inference_{unit}_per_s'))} "
                f"| {_pct(_v(tables, ce, f'{model}_inference_vs_peak_efficiency'))} "
                f"| {_pct(_v(tables, ce, f'{model}_inference_vs_peak_cpu_time_efficiency'))} |")
        kernels = {name[len("kernel_"):-len("_vs_peak_efficiency")]: row["value"]
                   for name, row in tables[ce].items() if name.startswith("kernel_")}
        if kernels:
            lines += ["", "What limits it: single kernels at the shapes these models run at "
                      "cpu scale, timed alone (forward) as a share of the matmul peak, "
                      "next to what each model spends its FLOPs on:", "",
                      "| kernel | vs peak |", "|---|---|"]
            lines += [f"| {name} | {_pct(value)} |" for name, value in kernels.items()]
            lines += ["", "| model | limited by |", "|---|---|"]
            for model, text in LIMITS.items():
                if _v(tables, ce, f"{model}_train_step_flop") is None:
                    continue
                values = {k: _pct(v) for k, v in kernels.items()}
                values["recurrent"] = _pct(_v(tables, ce, f"{model}_recurrent_flop_share"))
                values["depthwise"] = _pct(_v(tables, ce, f"{model}_depthwise_flop_share"))
                values["ms_per_layer"] = _fmt(_v(tables, ce,
                                                 f"{model}_ms_per_counted_layer_train"), "ms")
                try:
                    lines.append(f"| {model} | {text.format(**values)} |")
                except KeyError:  # a kernel was not measured in this run
                    lines.append(f"| {model} | - |")
            lines += ["", "Element-wise work (batch norm, activations, pooling, the "
                      "optimizer update) is not counted as FLOPs but takes time, and a "
                      "training step adds the weight and input gradients of every "
                      "convolution, whose small-map kernels are no more efficient than "
                      "the forward ones."]
        lines.append("")

    if "tf_options" in tables:
        t = "tf_options"
        lines += ["## TensorFlow options (Xception, cpu scale)", "",
                  "| variant | train step s | inference s | train speed vs default | "
                  "inference speed vs default |", "|---|---|---|---|---|"]
        for variant in ("default", "xla", "onednn_off", "bf16"):
            if _v(tables, t, f"{variant}_train_step_seconds") is None:
                continue
            lines.append(
                f"| {variant} | {_fmt(_v(tables, t, f'{variant}_train_step_seconds'))} "
                f"| {_fmt(_v(tables, t, f'{variant}_inference_seconds'))} "
                f"| {_fmt(_v(tables, t, f'{variant}_vs_default_train_speed'), 'x')} "
                f"| {_fmt(_v(tables, t, f'{variant}_vs_default_inference_speed'), 'x')} |")
        kept = _v(tables, t, "default_kept")
        lines += ["", "default = what the experiments run: Keras `jit_compile=\"auto\"` "
                  "(off without a GPU), oneDNN on, float32. "
                  + ("The default was the fastest exact-precision choice and is kept."
                     if kept == 1.0 else
                     "**A variant beat the default in this run: see the table.**")
                  + " `mixed_bfloat16` changes the arithmetic the papers' numbers are "
                  "compared with, so it stays an opt-in whatever its speed; on a GPU "
                  "Keras' `auto` turns XLA on and `mixed_float16` is the usual choice.", ""]
        lines += autotune_lines(tables)

    lines += precision_lines(tables)

    ip = "input_pipeline"
    if ip in tables:
        lines += ["## Input pipeline (cpu scale, 64 px crops)", "",
                  "| pipeline | delivers (epoch 1: decode) | consumer trains at | epoch 1 "
                  "ratio | later epochs (decoded crops cached): ratio |", "|---|---|---|---|---|"]
        for model, unit in (("meso4", "images/s"), ("xception", "images/s"), ("p3", "clips/s")):
            key = "clip" if model == "p3" else "image"
            ratio = _v(tables, ip, f"clip_pipeline_vs_p3_ratio" if model == "p3"
                       else f"image_pipeline_vs_{model}_ratio")
            cached = _v(tables, ip, "clip_pipeline_cached_vs_p3_ratio" if model == "p3"
                        else f"image_pipeline_cached_vs_{model}_ratio")
            if ratio is None:
                continue
            rate = _v(tables, ip, f"{key}_pipeline_{unit.replace('/', '_per_')}")
            consumed = _v(tables, ip, f"{model}_train_{unit.replace('/', '_per_')}")
            lines.append(f"| {key} | {_fmt(rate, unit)} | {model}: {_fmt(consumed, unit)} "
                         f"| {_fmt(ratio, 'x')} | {_fmt(cached, 'x')} |")
        layers = {k[len("augment_"):-len("_images_per_s")]: r["value"]
                  for k, r in tables[ip].items() if k.startswith("augment_")}
        plain = _v(tables, ip, "image_pipeline_no_augmentation_images_per_s")
        if layers:
            lines += ["", f"What limits the image pipeline: without augmentation it "
                      f"delivers {_fmt(plain, 'images/s')}; each augmentation layer alone "
                      "(in a tf.data map over in-memory batches): "
                      + ", ".join(f"{k} {_fmt(v, 'images/s')}" for k, v in layers.items())
                      + "."]
        lines.append("")

    fc = "face_crop"
    if fc in tables:
        lines += ["## Face cropping (real videos)", "",
                  f"{_fmt(_v(tables, fc, 'videos'))} videos (`closeup_*`, `upperbody_*`), "
                  f"{_fmt(_v(tables, fc, 'frames_sampled'))} sampled frames: "
                  f"`dfdetect data crop` {_fmt(_v(tables, fc, 'dfdetect_crop_seconds'), 's')}, "
                  f"the straightforward loop {_fmt(_v(tables, fc, 'straightforward_seconds'), 's')} "
                  f"(**{_fmt(_v(tables, fc, 'face_crop_speedup'), 'x')}**). Same crops? On "
                  "videos of at most 640 px (same image, the detector's two finest pyramid "
                  "levels skipped) the face boxes differ by at most "
                  f"{_fmt(_v(tables, fc, 'small_video_box_offset_px_max'), 'px')}; crops "
                  f"differ by {_fmt(_v(tables, fc, 'crop_pixel_mae_all'))} grey levels on "
                  "average (mean absolute difference, all videos). On larger videos the "
                  "box found on "
                  "the 640 px copy vs the full-size frame: IoU mean "
                  f"{_fmt(_v(tables, fc, 'large_video_box_iou_mean'))}, min "
                  f"{_fmt(_v(tables, fc, 'large_video_box_iou_min'))}; corner offset median "
                  f"{_fmt(_v(tables, fc, 'large_video_box_offset_px_median'), 'px')}, max "
                  f"{_fmt(_v(tables, fc, 'large_video_box_offset_px_max'), 'px')} "
                  f"({_pct(_v(tables, fc, 'large_video_box_offset_vs_side_max'))} of the face "
                  "box side at most).", ""]

    pl = "predict_latency"
    if pl in tables:
        lines += ["## Prediction latency", "",
                  f"A {_fmt(_v(tables, pl, 'video_seconds'), 's')} "
                  f"{_fmt(_v(tables, pl, 'video_width'))} x "
                  f"{_fmt(_v(tables, pl, 'video_height'))} video, "
                  f"{_fmt(_v(tables, pl, 'frames_scored'))} frames scored with the cpu-scale "
                  "Xception classifier: `dfdetect predict` end to end (model load included) "
                  f"**{_fmt(_v(tables, pl, 'predict_latency_seconds'), 's')}**, "
                  f"{_fmt(_v(tables, pl, 'predict_warm_seconds'), 's')} for a further video "
                  "with the model loaded; the straightforward way "
                  f"{_fmt(_v(tables, pl, 'straightforward_seconds'), 's')} "
                  f"({_fmt(_v(tables, pl, 'predict_latency_speedup'), 'x')}).", ""]

    mem = "memory"
    if mem in tables:
        lines += ["## Peak memory (cpu-scale slices)", "", "| experiment | peak RSS | of 8 GiB |",
                  "|---|---|---|"]
        for name, row in tables[mem].items():
            if name.endswith("_peak_rss") and name != "peak_rss_max":
                lines.append(f"| {name[:-len('_peak_rss')]} | {_fmt(row['value'], 'MiB')} "
                             f"| {_pct(row['value'] / 8192)} |")
        lines.append("")

    whole = "whole_run_memory"
    if whole in tables:
        lines += ["## Peak memory of whole cpu-scale runs (`make bench-whole-runs`)", "",
                  "The experiment's `make` target from start to end, the resident memory of "
                  "its whole process tree (make, the experiment, its worker processes) "
                  "summed every 0.5 s: see `whole_run_memory.py`.", "",
                  "| experiment | peak RSS | of 8 GiB | processes at the peak | wall | measured |",
                  "|---|---|---|---|---|---|"]
        for name, row in tables[whole].items():
            if not name.endswith("_whole_run_peak_rss"):
                continue
            exp = name[:-len("_whole_run_peak_rss")]
            seconds = _v(tables, whole, f"{exp}_whole_run_seconds")
            lines.append(f"| {exp} | {_fmt(row['value'], 'MiB')} | {_pct(row['value'] / 8192)} "
                         f"| {_fmt(_v(tables, whole, f'{exp}_whole_run_processes_at_peak'))} "
                         f"| {_fmt(None if seconds is None else seconds / 60, 'min')} "
                         f"| {row['date'][:10]} |")
        lines.append("")

    lines += ["## All figures", ""]
    for bench, rows in tables.items():
        lines += [f"### {bench}", "", "| figure | value | unit |", "|---|---|---|"]
        lines += [f"| {name} | {format_value(row['value'])} | {row['unit']} |"
                  for name, row in rows.items()]
        lines.append("")
    lines += ["## Notes", "",
              "- `memory.csv` holds slices (the largest configuration of each "
              "experiment, a few training steps with its data in memory), not full "
              "runs: see `memory.py`; `whole_run_memory.csv` whole runs, measured one "
              "experiment at a time by `make bench-whole-runs` (tens of minutes each).",
              "- The feature-cache epoch uses random inputs of the cpu-scale shapes "
              "(timing does not depend on pixel values); face cropping and prediction "
              "latency use real videos (a data folder outside the repository).",
              "- Speed claims live here, never in tests: `tests/test_benchmarks.py` "
              "runs each benchmark's core on tiny inputs and checks the CSV schema only.",
              ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = base_argparser(__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated subset of scripts")
    parser.add_argument("--readme-only", action="store_true",
                        help="only re-render README.md from the CSVs")
    args = parser.parse_args(argv)
    out = Path(args.out)
    status = 0
    if not args.readme_only:
        mark_start()
        names = [n for n in (args.only.split(",") if args.only else SCRIPTS) if n]
        unknown = sorted(set(names) - set(SCRIPTS) - set(OPT_IN))
        if unknown:
            parser.error(f"unknown benchmark(s) {unknown}; choose from "
                         f"{', '.join(SCRIPTS + OPT_IN)}")
        figures = run_scripts(names, out)
        status = 1 if any(f.figure == "scripts_failed" and f.value for f in figures) else 0
        if set(names) == set(SCRIPTS):
            finish("bench_run", figures, "total_wall_seconds", out)
    from dfdetect.results import atomic_write_text

    atomic_write_text(out / "README.md", render_readme(out))
    print(f"wrote {out / 'README.md'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
