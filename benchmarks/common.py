"""What every benchmark shares: the CSV schema, machine/version stamps, timing helpers.

Each benchmark writes ``results/bench/<name>.csv`` with the columns
``figure, value, unit, machine, date, versions``: one row per figure, the same
``machine`` / ``date`` / ``versions`` on every row of a run. ``machine`` carries the
load average at the start and end of the run, because the 2-core machines these run on
are shared: absolute figures are noisy, ratios measured within one run are what count.

Benchmarks are scripts (``python benchmarks/<name>.py``) whose core is a plain
function returning :class:`Figure` rows, so ``tests/test_benchmarks.py`` can run it on
tiny inputs. A script prints its headline figure last.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # scripts run as ``python benchmarks/x.py``
    sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dfdetect.precision import cpu_model  # noqa: E402
from dfdetect.results import atomic_write_text, read_table, rows_to_csv  # noqa: E402

#: The CSV columns, in order.
FIELDS = ("figure", "value", "unit", "machine", "date", "versions")
#: Where ``make bench`` writes.
RESULTS = REPO / "results" / "bench"
#: Real media beside the repository (never copied into it).
SHARED_DATA = REPO.parent / "shared" / "data"


@dataclasses.dataclass(frozen=True)
class Figure:
    """One measured number.

    Attributes:
        figure: its name, e.g. ``face_crop_speedup`` (ratios are named for what they
            compare).
        value: the number (finite).
        unit: ``x`` for ratios, ``s``, ``images/s``, ``MiB``, ``FLOP``, ``1`` ...
    """

    figure: str
    value: float
    unit: str


_START_LOAD: tuple[float, float, float] | None = None


def mark_start() -> None:
    """Records the load average at the start of a run (``machine`` column)."""
    global _START_LOAD
    _START_LOAD = os.getloadavg()


def machine() -> str:
    """CPU, core count and the 1-minute load average at the start and end of the run."""
    end = os.getloadavg()[0]
    start = _START_LOAD[0] if _START_LOAD else end
    return (f"{cpu_model()}; {os.cpu_count()} cores; {platform.system()} "
            f"{platform.machine()}; load {start:.1f} at start, {end:.1f} at end")


def versions() -> str:
    """Python and the versions of the libraries that do the work (only those imported)."""
    parts = [f"python {platform.python_version()}"]
    for module, label in (("tensorflow", "tensorflow"), ("keras", "keras"),
                          ("numpy", "numpy"), ("cv2", "opencv"), ("dlib", "dlib")):
        mod = sys.modules.get(module)
        if mod is not None:
            parts.append(f"{label} {getattr(mod, '__version__', getattr(mod, 'DLIB_VERSION', '?'))}")
    return "; ".join(parts)


def now() -> str:
    """UTC time stamp, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_figures(figures: Sequence[Figure]) -> None:
    """Raises ValueError on a non-finite value or a duplicated figure name."""
    seen = set()
    for fig in figures:
        if not isinstance(fig.value, (int, float)) or not math.isfinite(fig.value):
            raise ValueError(f"figure {fig.figure!r} is not a finite number: {fig.value!r}")
        if fig.figure in seen:
            raise ValueError(f"figure {fig.figure!r} appears twice")
        seen.add(fig.figure)


def write_figures(name: str, figures: Sequence[Figure], out_dir: str | os.PathLike = RESULTS,
                  ) -> Path:
    """Writes ``<out_dir>/<name>.csv`` (atomically) with the :data:`FIELDS` columns."""
    check_figures(figures)
    stamp = {"machine": machine(), "date": now(), "versions": versions()}
    rows = [{"figure": f.figure, "value": float(f.value), "unit": f.unit, **stamp}
            for f in figures]
    path = Path(out_dir) / f"{name}.csv"
    atomic_write_text(path, rows_to_csv(rows, FIELDS))
    return path


def read_figures(path: str | os.PathLike) -> list[dict]:
    """Rows of a benchmark CSV (``value`` as float)."""
    rows = read_table(path)
    for row in rows:
        row["value"] = float(row["value"])
    return rows


def format_value(value: float) -> str:
    """A short human rendering: 3 significant digits, thousands separated."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e12 or magnitude < 1e-3:
        return f"{value:.3g}"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def finish(name: str, figures: Sequence[Figure], headline: str,
           out_dir: str | os.PathLike = RESULTS) -> Path:
    """Writes the CSV, prints every figure and then the headline figure last."""
    path = write_figures(name, figures, out_dir)
    by_name = {f.figure: f for f in figures}
    for fig in figures:
        if fig.figure != headline:
            print(f"{fig.figure:<44} {format_value(fig.value):>14} {fig.unit}")
    print(f"wrote {path}")
    head = by_name[headline]
    print(f"{head.figure} = {format_value(head.value)} {head.unit}", flush=True)
    return path


# --------------------------------------------------------------------------- timing

def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def timed_cpu(fn: Callable[[], object], repeats: int, warmup: int = 1,
              ) -> tuple[list[float], float]:
    """Like :func:`timed`, plus this process's CPU seconds (all threads) per call.

    CPU time counts only what the process got: on a shared machine it is the
    load-robust measure of cost (but it also counts threads spinning while waiting).
    """
    for _ in range(warmup):
        fn()
    times = []
    cpu_start = time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times, (time.process_time() - cpu_start) / repeats


def best(times: Iterable[float]) -> float:
    """The fastest repeat: on a shared machine the slow ones measure the neighbours."""
    return min(times)


# --------------------------------------------------------------------------- memory

#: Runs its argv as a grandchild and reports that process's exit code and peak RSS.
#: Linux carries a process's resident high-water mark across fork and exec, so a child
#: forked straight from a big parent (pytest holding TensorFlow models: ~2.5 GiB) would
#: report the parent's size. Forked from this small interpreter, the grandchild starts
#: from a few MiB and its ``ru_maxrss`` is its own.
_RSS_MARKER = "__dfdetect_peak_rss__"
_RSS_WRAPPER = (
    "import os, subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(child.pid, 0)\n"
    f"print('\\n{_RSS_MARKER}', os.waitstatus_to_exitcode(status), usage.ru_maxrss, "
    "flush=True)\n"
)


def run_child(argv: Sequence[str], env: dict | None = None, timeout: float | None = None,
              ) -> tuple[int, float, str]:
    """Runs ``argv`` as a child process and returns ``(exit code, peak RSS MiB, output)``.

    The peak resident set size is ``wait4``'s ``ru_maxrss`` of that one process (KiB on
    Linux), taken by a small wrapper interpreter so that the caller's own size never
    leaks into it (see ``_RSS_WRAPPER``).
    """
    # Own session: a timeout kills the wrapper and the measured process together.
    proc = subprocess.Popen([sys.executable, "-c", _RSS_WRAPPER, *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            text=True, start_new_session=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    chunks = []
    # Read while waiting so a chatty child never blocks on a full pipe.
    assert proc.stdout is not None
    for line in proc.stdout:
        chunks.append(line)
        if deadline is not None and time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    output = "".join(chunks)
    code, peak_kib = proc.returncode, 0.0
    head, marker, tail = output.rpartition(_RSS_MARKER)
    if marker:
        fields = tail.split()
        code, peak_kib = int(fields[0]), float(fields[1])
        output = head.rstrip("\n") + ("\n" if head.strip() else "")
    scale = 1024.0 if sys.platform != "darwin" else 1.0  # macOS reports bytes
    return code, peak_kib * scale / 2**20, output


def own_peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * (1024.0 if sys.platform != "darwin" else 1.0) / 2**20


def base_argparser(description: str):
    """The flags every benchmark script takes."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=str(RESULTS),
                        help="folder for <name>.csv (default results/bench)")
    return parser


def naive_face_crops(video: str | os.PathLike, frames: int, size: int):
    """The straightforward way to get face crops: the peer dfdetect is measured against.

    Reads every frame with ``cap.read()`` and runs face detection (HOG, one upsample) on
    the full-size frame at ``frames`` evenly spaced indices.

    Yields:
        ``(frame index, box, crop)`` for each sampled frame with a face (largest face,
        1.3x square crop resized to ``size``, RGB uint8).
    """
    import cv2
    import face_recognition

    from dfdetect.data import faces
    from dfdetect.data.video import sample_indices

    cap = cv2.VideoCapture(os.fspath(video))
    wanted = set(int(i) for i in sample_indices(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), frames))
    index = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if index in wanted:
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                boxes = [faces.Box(*b) for b in face_recognition.face_locations(rgb, 1, "hog")]
                box = faces.largest_face(boxes)
                if box is not None:
                    yield index, box, faces.crop_face(rgb, faces.square_box(box, rgb.shape), size)
            index += 1
    finally:
        cap.release()
