#!/usr/bin/env python
"""``--help`` times: seconds from a command's start to its help text, for every command.

A user's first contact is ``dfdetect --help`` and ``dfdetect <command> --help``, and the
experiment scripts' ``--help`` (what ``make`` targets run): they must answer at once,
so none of them may import TensorFlow, cv2 or the models (the CLI and the scripts defer
those imports; ``dfdetect.experiment.lazy_import``). Each command runs as a fresh
process with this interpreter (``python -m dfdetect.cli ...``, ``python
experiments/<script>.py --help``); the figure is the fastest of ``--repeats`` runs (on a
shared machine the slow ones measure the neighbours), and ``help_seconds_max`` the
slowest command's.

Run: ``python benchmarks/help_times.py`` (headline: ``help_seconds_max``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, Figure, base_argparser, finish, mark_start  # noqa: E402

NAME = "help_times"
#: The CLI's commands whose --help is timed (``[]``: ``dfdetect --help``).
CLI_COMMANDS = ([], ["data", "crop"], ["data", "build"], ["train"], ["predict"],
                ["explain"], ["evaluate"], ["pose", "extract"])


def commands() -> dict[str, list[str]]:
    """Figure name -> argv (after the interpreter) of every timed ``--help``."""
    found = {("help_seconds_dfdetect" + "".join(f"_{c}" for c in command)):
             ["-m", "dfdetect.cli", *command, "--help"] for command in CLI_COMMANDS}
    for script in sorted((REPO / "experiments").glob("*.py")):
        found[f"help_seconds_{script.stem}"] = [str(script), "--help"]
    return found


def seconds_to_help(argv: list[str], repeats: int) -> float:
    """The fastest of ``repeats`` runs of ``python <argv>`` (wall seconds).

    Raises:
        RuntimeError: the command failed (its last output line).
    """
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                              cwd=REPO)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [""])[-1]
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {last}")
    return min(times)


def measure(repeats: int = 3, only: dict[str, list[str]] | None = None,
            log=print) -> list[Figure]:
    """Every figure of this benchmark (``only``: a subset of :func:`commands`)."""
    figures = []
    for name, argv in (only or commands()).items():
        seconds = seconds_to_help(argv, repeats)
        log(f"{' '.join(argv)}: {seconds:.2f} s")
        figures.append(Figure(name, seconds, "s"))
    figures.append(Figure("help_seconds_max", max(f.value for f in figures), "s"))
    return figures


def main(argv=None) -> int:
    parser = base_argparser(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per command")
    args = parser.parse_args(argv)
    mark_start()
    finish(NAME, measure(args.repeats), "help_seconds_max", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
