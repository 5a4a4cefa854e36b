#!/usr/bin/env python
"""Smoke P1 wall time: ``make reproduce-fusion SCALE=smoke`` from a fresh data folder.

A smoke run exists to show a new user that everything works, in minutes (target: <= 180
s on 2 quiet cores). This runs what the make target runs after its setup step,
``python experiments/p1_fusion.py --scale smoke``, as a child process with an empty
``DFDETECT_DATA`` folder (so the smoke image benchmark is built too, as on a first run)
and a fresh results folder: the 11 configurations (4 single models, 7 fusions on their
frozen bases), 1 epoch each, tables and figures. Figures: its wall and CPU seconds (the
CPU seconds say what the run costs on a shared machine, the wall seconds what it took
under that load, recorded in the ``machine`` column) and its peak memory.

Opt-in (minutes): ``make bench BENCH_ONLY=smoke_p1``.

Run: ``python benchmarks/smoke_p1.py`` (headline: ``smoke_p1_wall_seconds``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (REPO, Figure, base_argparser, finish, mark_start,  # noqa: E402
                               run_child)

NAME = "smoke_p1"
SCRIPT = REPO / "experiments" / "p1_fusion.py"


def measure(extra_args: tuple[str, ...] = (), log=print) -> list[Figure]:
    """Every figure of this benchmark (``extra_args``: more flags for the script, e.g.
    ``--configs meso4`` in the tests).

    Raises:
        RuntimeError: the run failed (its last lines).
    """
    with tempfile.TemporaryDirectory(prefix="bench-smoke-p1-") as tmp:
        env = {**os.environ, "DFDETECT_DATA": str(Path(tmp) / "data")}
        argv = [sys.executable, str(SCRIPT), "--scale", "smoke", "--out",
                str(Path(tmp) / "fusion"), *extra_args]
        before = os.times()
        start = time.perf_counter()
        code, peak, output = run_child(argv, env=env)
        wall = time.perf_counter() - start
        after = os.times()
        tail = "\n".join([line for line in output.splitlines() if line.strip()][-3:])
        log(tail)
        if code != 0:
            raise RuntimeError(f"p1_fusion.py --scale smoke exited {code}:\n{tail}")
        runs = (Path(tmp) / "fusion" / "runs.csv").read_text().count("\n") - 1
    cpu = (after.children_user - before.children_user
           + after.children_system - before.children_system)
    return [Figure("smoke_p1_runs", runs, "runs"),
            Figure("smoke_p1_cpu_seconds", cpu, "s"),
            Figure("smoke_p1_peak_rss", peak, "MiB"),
            Figure("smoke_p1_wall_seconds", wall, "s")]


def main(argv=None) -> int:
    parser = base_argparser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    mark_start()
    finish(NAME, measure(), "smoke_p1_wall_seconds", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
