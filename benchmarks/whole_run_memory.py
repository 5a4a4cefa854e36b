#!/usr/bin/env python
"""Memory of whole runs: peak resident memory of a complete ``cpu``-scale experiment.

``memory.py`` measures slices (a few training steps of each experiment's largest
configuration) so that ``make bench`` stays under 15 minutes. A slice cannot see what
grows with the number of models a run trains: TensorFlow keeps the weights and optimizer
slots of every model fitted in a process until the process exits (~250 MB a fit of a
21 M-parameter model, measured), so a run is only bounded when its trainings run in
worker processes (the P1 configurations, the P2 grids) or are few. This script runs an
experiment's ``make`` target from start to end and samples, every ``--interval``
seconds, the summed resident set (``VmRSS``) of the whole process tree — make, the
experiment's process and its worker processes together. Summing counts pages shared
between processes (libraries) once per process, so the figure errs high.

It takes as long as the experiment (tens of minutes each), so it is not part of
``make bench``; ``make bench-whole-runs`` (or ``python benchmarks/whole_run_memory.py p1 p3``)
measures the named experiments and updates their rows in
``results/bench/whole_run_memory.csv``, keeping the other experiments' rows:
``<experiment>_whole_run_peak_rss`` (MiB), ``<experiment>_whole_run_seconds`` and
``<experiment>_whole_run_exit_code``, each stamped with its own machine and date. The
experiment writes its results where its ``make`` target always does.

Run: ``python benchmarks/whole_run_memory.py p1 [p3 ...]`` (headline:
``whole_run_peak_rss_max_vs_8gib`` over every experiment in the CSV).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (FIELDS, REPO, Figure, base_argparser, check_figures,  # noqa: E402
                               format_value, machine, mark_start, now, read_figures,
                               versions)

NAME = "whole_run_memory"
LIMIT_MIB = 8 * 1024
#: Experiment -> its make target (run with SCALE=cpu).
TARGETS = {
    "p1": "reproduce-fusion",
    "p2_custom_cnn": "grid-custom-cnn",
    "p2_inception": "inception-unfreeze",
    "p2_sequence": "grid-sequence",
    "p3": "reproduce-convlstm",
    "p4": "reproduce-pose",
    "p5": "reproduce-deepforense",
    "difficulty": "benchmark-difficulty",
}


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids of every process visible in ``/proc``."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8") as handle:
                stat = handle.read()
        except OSError:  # the process ended while we looked
            continue
        # the command name (field 2) may hold spaces and parentheses: split after it
        ppid = int(stat.rpartition(")")[2].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(root: int) -> tuple[float, int]:
    """Summed resident memory (MiB) of ``root`` and all its descendants, and their count."""
    tree = _children()
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(tree.get(pid, ()))
    return sum(_rss_kib(p) for p in pids) / 1024.0, len(pids)


def measure_command(argv, interval: float = 0.5, log=print, cwd=None) -> dict:
    """Runs ``argv`` to its end, sampling its process tree's resident memory.

    Returns:
        ``{"peak_mib", "peak_processes", "seconds", "exit_code"}``; the output of the
        command goes to this process's stdout / stderr.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), cwd=cwd)
    peak, peak_procs, last_log = 0.0, 0, start
    while proc.poll() is None:
        mib, count = tree_rss_mib(proc.pid)
        if mib > peak:
            peak, peak_procs = mib, count
        if time.perf_counter() - last_log > 60:
            log(f"[whole_run_memory] {time.perf_counter() - start:.0f} s: {mib:.0f} MiB now "
                f"in {count} processes, peak {peak:.0f} MiB", flush=True)
            last_log = time.perf_counter()
        time.sleep(interval)
    return {"peak_mib": peak, "peak_processes": peak_procs,
            "seconds": time.perf_counter() - start, "exit_code": proc.returncode}


def merge_rows(path: Path, name: str, figures) -> list[dict]:
    """The CSV's rows with ``name``'s figures replaced by ``figures`` (stamped now)."""
    check_figures(figures)
    kept = [r for r in (read_figures(path) if path.exists() else [])
            if not r["figure"].startswith(f"{name}_whole_run_")
            and not r["figure"].startswith("whole_run_peak_rss_max")]
    stamp = {"machine": machine(), "date": now(), "versions": versions()}
    rows = kept + [{"figure": f.figure, "value": float(f.value), "unit": f.unit, **stamp}
                   for f in figures]
    peaks = [r["value"] for r in rows if r["figure"].endswith("_whole_run_peak_rss")]
    if peaks:
        worst = max(peaks)
        rows += [{"figure": "whole_run_peak_rss_max", "value": worst, "unit": "MiB", **stamp},
                 {"figure": "whole_run_peak_rss_max_vs_8gib", "value": worst / LIMIT_MIB,
                  "unit": "ratio", **stamp}]
    return rows


def main(argv=None) -> int:
    from dfdetect.results import atomic_write_text, rows_to_csv

    parser = base_argparser(__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="+", choices=sorted(TARGETS),
                        help="experiments to run whole, in order")
    parser.add_argument("--scale", default="cpu", help="SCALE passed to make (default cpu)")
    parser.add_argument("--interval", type=float, default=0.5,
                        help="seconds between memory samples (default 0.5)")
    parser.add_argument("--make", default="make", help="the make program")
    args = parser.parse_args(argv)
    path = Path(args.out) / f"{NAME}.csv"
    status = 0
    for name in args.experiments:
        mark_start()
        command = [args.make, TARGETS[name], f"SCALE={args.scale}"]
        print(f"[whole_run_memory] {name}: {' '.join(command)}", flush=True)
        got = measure_command(command, args.interval, cwd=REPO)
        figures = [Figure(f"{name}_whole_run_peak_rss", got["peak_mib"], "MiB"),
                   Figure(f"{name}_whole_run_processes_at_peak", got["peak_processes"], "1"),
                   Figure(f"{name}_whole_run_seconds", got["seconds"], "s"),
                   Figure(f"{name}_whole_run_exit_code", got["exit_code"], "1")]
        rows = merge_rows(path, name, figures)
        atomic_write_text(path, rows_to_csv(rows, FIELDS))
        print(f"[whole_run_memory] {name}: peak {format_value(got['peak_mib'])} MiB in "
              f"{got['peak_processes']} processes, {got['seconds']:.0f} s, exit "
              f"{got['exit_code']}; wrote {path}", flush=True)
        status = status or (got["exit_code"] != 0)
    # the last merge holds every experiment's rows and the max over them
    ratio = next(r["value"] for r in rows if r["figure"] == "whole_run_peak_rss_max_vs_8gib")
    print(f"whole_run_peak_rss_max_vs_8gib = {format_value(ratio)} ratio")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
