"""What every embedded image and video build shares: the summary, the store's records
(generator version, settings, completion marker), the splits with each identity's donor,
the forgery method of each sample, and the task loop that makes the samples in worker
processes and writes them into the store.

Determinism: every sample draws from ``numpy.random.default_rng([seed, ...ids])``
(:func:`sample_rng`, one :data:`TAG` per stream), so the same seed gives byte-identical
crops, masks and manifest, whatever the number of workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from dfdetect.data.splits import CROSS_SPLIT, SPLIT_FRACTIONS, SPLIT_FRACTIONS_HOLDOUT
from dfdetect.data.splits import assign_identities as assign_splits
from dfdetect.data.store import BENCHMARK_FILES, CROP_SETTINGS, StoreWriter
from dfdetect.errors import DataError
from dfdetect.io import atomic_write_text
from dfdetect.progress import progress as tqdm  # a line every 30 s off a terminal
from dfdetect.synthetic import forge

#: What a build records as it starts (version and settings) and, when it finishes, its
#: parameters and counts (its presence marks a complete store).
GENERATOR_FILE, COMPLETE_MARKER = BENCHMARK_FILES
#: One random stream per purpose (:func:`sample_rng`); ``split`` is
#: ``dfdetect.data.splits``' benchmark tag, which every committed store was split with.
TAG = {"identity": 1, "view": 2, "pair": 3, "donor": 4, "split": 5, "video": 6,
       "select": 7, "motion": 8}


# ----------------------------------------------------------------------------- summary

@dataclasses.dataclass
class BenchmarkSummary:
    """What :func:`dfdetect.synthetic.benchmark.build_benchmark` did.

    Attributes:
        out: the store directory.
        kind: ``images`` or ``videos``.
        faces: the face source (``procedural`` or a folder).
        scale: the scale preset's name.
        seed: the seed.
        holdout_method: the method kept for the ``cross`` split, or ``None``.
        identities: split -> number of identities.
        counts: ``"split/label/method"`` -> crops written (this run and earlier runs).
        new_items: pairs (images) or clips (videos) made by this run.
        already_done: pairs / clips found in the store and not made again.
        skipped_files: path -> reason for face files left out.
        manifest_rows: rows in ``manifest.csv``.
        seconds: wall-clock time.
        generator: the forgery generator version the store is made with.
    """

    out: str
    kind: str
    faces: str
    scale: str
    seed: int
    holdout_method: str | None = None
    generator: int = forge.DEFAULT_GENERATOR
    identities: dict = dataclasses.field(default_factory=dict)
    counts: dict = dataclasses.field(default_factory=dict)
    new_items: int = 0
    already_done: int = 0
    skipped_files: dict = dataclasses.field(default_factory=dict)
    manifest_rows: int = 0
    seconds: float = 0.0

    def report(self) -> str:
        """A multi-line human summary."""
        lines = [
            f"benchmark: {self.kind} from {self.faces} at scale {self.scale}, seed {self.seed}, "
            f"forgery generator v{self.generator}"
            + (f", held-out method {self.holdout_method} in split '{CROSS_SPLIT}'"
               if self.holdout_method else ""),
            f"store: {self.out} ({self.manifest_rows} crops in manifest.csv)",
            "identities: " + ", ".join(f"{k} {v}" for k, v in self.identities.items()),
        ]
        for key in sorted(self.counts):
            lines.append(f"  {key}: {self.counts[key]}")
        lines.append(f"made {self.new_items} {'pairs' if self.kind == 'images' else 'clips'}; "
                     f"{self.already_done} already in the store")
        lines.append(f"face files skipped: {len(self.skipped_files)}")
        lines += [f"  {p}: {r}" for p, r in sorted(self.skipped_files.items())[:50]]
        if len(self.skipped_files) > 50:
            lines.append(f"  ... and {len(self.skipped_files) - 50} more")
        lines.append(f"time: {self.seconds:.1f} s")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- helpers

def sample_rng(seed: int, *keys: int) -> np.random.Generator:
    """The random stream of one sample: ``default_rng([seed, *keys])``."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *(int(k) for k in keys)])


def short_reason(err: BaseException, path: str) -> str:
    """An error's message on one line, without the path it would repeat."""
    text = " ".join(str(err).split())
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def safe_id(name: str) -> str:
    """``name`` as a store id (letters, digits, ``._-``)."""
    keep = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return keep.strip("._-") or "x"


def source_name(faces: str) -> str:
    """The store's ``source`` of a face source: ``bench-procedural``, ``bench-<folder>``."""
    if faces == "procedural":
        return "bench-procedural"
    return "bench-" + safe_id(Path(os.path.abspath(faces)).name)


# ----------------------------------------------------------------------------- store records

def store_generator_version(out: str | os.PathLike) -> int | None:
    """The forgery generator version a benchmark store was (or is being) built with.

    ``None`` for a folder that holds no benchmark yet; 1 for stores made before
    versions were recorded (they have crops or a manifest but no version file).
    """
    out = Path(out)
    path = out / GENERATOR_FILE
    if path.is_file():
        return int(json.loads(path.read_text()).get("generator_version", 1))
    if any((out / name).exists() for name in (COMPLETE_MARKER, "manifest.csv", "crops")):
        return 1
    return None


# What a store's samples depend on: adding samples made with other values to a store
# would mix two benchmarks under one manifest (the seed-0 crops kept, the marker saying 1).
SETTING_KEYS = ("kind", "source", "scale", "seed", "holdout_method")
# Names a benchmark store (or its landmark cache) may hold; anything else means the
# folder is the user's, not a store.
_STORE_NAMES = {GENERATOR_FILE, COMPLETE_MARKER, "manifest.csv", "crops", "masks",
                "landmarks.npz"}


def settings_of(summary: BenchmarkSummary) -> dict:
    """The :data:`SETTING_KEYS` of a build."""
    # The face source's store name, not the path as typed: the same folder given as
    # ../faces or /abs/faces is the same benchmark.
    return {"kind": summary.kind, "source": source_name(summary.faces),
            "scale": summary.scale, "seed": summary.seed,
            "holdout_method": summary.holdout_method}


def store_settings(out: str | os.PathLike) -> dict | None:
    """The settings (:data:`SETTING_KEYS`) a benchmark store was built with.

    Read from ``generator.json`` (written when a build starts), else from a finished
    store's ``benchmark.json``; ``None`` when neither records them (no store yet, or
    one made before settings were recorded).
    """
    out = Path(out)
    for name in (GENERATOR_FILE, COMPLETE_MARKER):
        try:
            info = json.loads((out / name).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict):
            continue
        if name == COMPLETE_MARKER and "faces" in info and "source" not in info:
            info = dict(info, source=source_name(str(info["faces"])))
        if all(k in info for k in SETTING_KEYS):
            return {k: info[k] for k in SETTING_KEYS}
    return None


def refuse_foreign_folder(out: Path) -> None:
    """Refuses to write a store into an existing folder that holds something else."""
    if not out.is_dir():
        return
    if (out / CROP_SETTINGS).exists():  # its samples are a dataset's, not generated
        raise DataError(f"--out is a store made by 'dfdetect data crop' (it holds "
                        f"{CROP_SETTINGS}): build into another --out", out)
    foreign = sorted(p.name for p in out.iterdir()
                     if p.name not in _STORE_NAMES and not p.name.startswith("."))
    if foreign and store_generator_version(out) is None:
        raise DataError(f"--out is an existing folder that is not a benchmark store (it "
                        f"holds {foreign[0]!r}{' and more' if len(foreign) > 1 else ''}): "
                        "choose a new or empty folder", out)


def claim_generator_version(out: Path, settings: dict | None = None,
                             version: int = forge.DEFAULT_GENERATOR) -> None:
    """Refuses to add samples to a store made by another generator version or with
    other settings; records this build's version and settings.

    Raises:
        DataError: the store was made by another generator version, or with another
            seed, scale, face source, kind or held-out method (one line naming them).
    """
    found = store_generator_version(out)
    if found is not None and found != version:
        raise DataError(f"this benchmark store was made by forgery generator version {found}, "
                        f"this build asks for version {version}: delete it or build into "
                        "another --out", out)
    recorded = store_settings(out) if found is not None else None
    if settings is not None and recorded is not None and recorded != settings:
        diff = ", ".join(f"{k} {recorded[k]!r} (asked {settings[k]!r})"
                         for k in SETTING_KEYS if recorded[k] != settings[k])
        raise DataError(f"this benchmark store was built with other settings: {diff}; "
                        "build into another --out, or delete it to rebuild", out)
    out.mkdir(parents=True, exist_ok=True)
    info = {"generator_version": version, **(settings or {})}
    atomic_write_text(out / GENERATOR_FILE, json.dumps(info, sort_keys=True) + "\n")


def unclaim(out: Path) -> None:
    """Undoes a refused first build: a store that never got a sample keeps no settings
    file (it would otherwise refuse the corrected rerun's settings)."""
    if (out / "manifest.csv").exists() or (out / "crops").exists():
        return  # samples were written: the record must stay for the resume
    (out / GENERATOR_FILE).unlink(missing_ok=True)
    try:
        out.rmdir()  # only when nothing else is there
    except OSError:
        pass


def write_marker(out: Path, summary: BenchmarkSummary) -> None:
    """The completion marker: the build's parameters and counts."""
    info = {"kind": summary.kind, "faces": summary.faces, "scale": summary.scale,
            "seed": summary.seed, "holdout_method": summary.holdout_method,
            "cross_split": CROSS_SPLIT if summary.holdout_method else None,
            "identities": summary.identities, "counts": summary.counts,
            "manifest_rows": summary.manifest_rows,
            "skipped_files": len(summary.skipped_files),
            "generator_version": summary.generator}
    atomic_write_text(out / COMPLETE_MARKER, json.dumps(info, indent=1, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------- splits, donors, methods

def refuse_empty_splits(split_of: dict[str, str], holdout: str | None, faces: str) -> None:
    """A benchmark whose val or test split would be empty is refused, not made.

    Raises:
        DataError: fewer usable identities than splits (says how many are needed).
    """
    names = list(SPLIT_FRACTIONS_HOLDOUT if holdout else SPLIT_FRACTIONS)
    empty = [n for n in names if n not in set(split_of.values())]
    if empty:
        raise DataError(f"only {len(split_of)} usable face identities: split "
                        f"{' and '.join(empty)} would be empty; the benchmark needs at "
                        f"least {len(names)} (one per split: {', '.join(names)}); add face "
                        "photos or videos of more people",
                        faces if faces != "procedural" else None)


def split_counts(split_of: dict[str, str]) -> dict[str, int]:
    """Identities per split."""
    names = ("train", "val", "test", CROSS_SPLIT)
    return {s: sum(v == s for v in split_of.values()) for s in names
            if s != CROSS_SPLIT or CROSS_SPLIT in split_of.values()}


def shape_key(lm: np.ndarray) -> np.ndarray:
    """Landmarks normalised for position and scale: donors are picked by face shape."""
    a = lm - lm.mean(0)
    return (a / (np.sqrt((a ** 2).sum(1).mean()) + 1e-9)).ravel()


def pick_donors(members: list[int], seed: int, shapes: list | None = None,
                 colours: list | None = None, candidates: int = 40) -> dict[int, int]:
    """For every identity, another identity of the same split to take a face from.

    Among ``candidates`` random others, the one closest in face shape (pose) and skin
    colour wins, as face-swap datasets pair look-alike targets and sources.
    """
    donors = {}
    n = len(members)
    if n < 2:
        return donors
    for pos, i in enumerate(members):
        rng = sample_rng(seed, TAG["donor"], i)
        picks = rng.choice(n - 1, min(candidates, n - 1), replace=False)
        cand = [members[k + (k >= pos)] for k in picks]
        score = np.zeros(len(cand))
        for keys in (shapes, colours):
            if keys is not None:
                d = np.array([float(np.sum((np.asarray(keys[i]) - np.asarray(keys[j])) ** 2))
                              for j in cand])
                score += d / (np.median(d) + 1e-9)
        donors[i] = cand[int(np.argmin(score))]
    return donors


def splits_and_donors(summary: BenchmarkSummary, ids: list[str], seed: int,
                      holdout: str | None, faces: str, shapes: list | None,
                      colours: list) -> tuple[dict[str, str], dict[int, int]]:
    """Every identity's split (none shared across splits; refused when one would be
    empty, recorded in ``summary``) and, for each, a donor of the same split.

    Args:
        ids: the identities, in build order; donors are indices into it.
        shapes, colours: per identity, what donors are matched on (:func:`pick_donors`).

    Returns:
        ``(identity -> split, identity index -> donor index)``.
    """
    split_of = assign_splits(ids, seed, holdout is not None)
    refuse_empty_splits(split_of, holdout, faces)
    summary.identities = split_counts(split_of)
    members: dict[str, list[int]] = {}
    for i, x in enumerate(ids):
        members.setdefault(split_of[x], []).append(i)
    donors = {}
    for mem in members.values():
        donors.update(pick_donors(mem, seed, shapes, colours))
    return split_of, donors


def methods_for(split: str, holdout: str | None, methods: tuple[str, ...]) -> list[str]:
    """The forgery methods a split's fakes may use (only the held-out one in ``cross``)."""
    if holdout is None:
        return list(methods)
    if split == CROSS_SPLIT:
        return [holdout]
    return [m for m in methods if m != holdout]


def next_method(counter: dict[str, int], split: str, allowed: list[str],
                has_donor: bool) -> str | None:
    """The split's next method in turn (methods alternate within a split); a swap
    without a donor becomes a self-blend, or ``None`` (no sample) when that is not
    allowed either."""
    k = counter.get(split, 0)
    counter[split] = k + 1
    method = allowed[k % len(allowed)]
    if method == "identity_swap" and not has_donor:
        return "self_blend" if "self_blend" in allowed else None
    return method


# ----------------------------------------------------------------------------- the task loop

def _worker_init() -> None:
    cv2.setNumThreads(1)


@contextlib.contextmanager
def worker_pool(workers: int):
    """``workers`` spawned processes (``None`` for one: the work runs in this process)."""
    pool = None
    if workers > 1:
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_init)
    try:
        yield pool
    finally:
        if pool is not None:
            pool.close()
            pool.join()


def imap(pool, fn, tasks, chunksize=4):
    """``fn`` over ``tasks`` in order, in ``pool``'s processes when there is one."""
    if pool is None:
        return map(fn, tasks)
    return pool.imap(fn, tasks, chunksize=chunksize)


@dataclasses.dataclass(frozen=True)
class Samples:
    """How one kind of benchmark makes and stores its samples (:func:`run_tasks`).

    Attributes:
        make: the worker, task -> ``{"task", "error", ...}`` (module level: it is sent to
            spawned processes by name).
        ids: task -> ``(real video_id, fake video_id)`` in the store.
        write: ``(store, out, source, task, result)``: the result into the store.
        failed: task -> the key its failure is listed under in ``skipped_files``.
        unit, desc: the progress bar's words; ``what``: a sample's name in the error.
        chunksize: tasks sent to a worker at a time.
    """

    make: Callable[[dict], dict]
    ids: Callable[[dict], tuple[str, str]]
    write: Callable
    failed: Callable[[dict], str]
    unit: str
    desc: str
    what: str
    chunksize: int


def run_tasks(summary: BenchmarkSummary, out: Path, source: str, pool, tasks: list[dict],
              kind: Samples, progress: bool | None) -> None:
    """Make every task whose real and fake are not in the store yet, and write each one
    as it comes (a killed build resumes where it stopped); counts into ``summary``.

    Raises:
        DataError: there was work to do and not one sample could be made (the first
            failure named).
    """
    with StoreWriter(out) as store:
        todo = []
        for t in tasks:
            rid, fid = kind.ids(t)
            if store.has(source, rid) and store.has(source, fid):
                summary.already_done += 1
            else:
                todo.append(t)
        results = imap(pool, kind.make, todo, chunksize=kind.chunksize)
        for res in tqdm(results, total=len(todo), unit=kind.unit, desc=kind.desc,
                        enabled=progress):
            t = res["task"]
            if res["error"] is not None:
                summary.skipped_files[kind.failed(t)] = res["error"]
                continue
            kind.write(store, out, source, t, res)
            summary.new_items += 1
        rows = store.rows
    if todo and summary.new_items == 0:
        first = next(iter(summary.skipped_files.items()))
        raise DataError(f"no benchmark {kind.what} could be made; first failure: {first[1]}",
                        first[0])
    record_counts(summary, rows)


def mask_relpath(source: str, video_id: str, frame: int) -> str:
    """Where a fake frame's forgery mask lives in the store."""
    return f"masks/{source}/{video_id}/{int(frame):03d}.png"


def record_counts(summary: BenchmarkSummary, rows: list[dict]) -> None:
    """The manifest's crops per split, label and method, into ``summary``."""
    counts: dict[str, int] = {}
    for r in rows:
        key = f"{r['split']}/{'fake' if int(r['label']) else 'real'}/{r['method']}"
        counts[key] = counts.get(key, 0) + 1
    summary.counts = counts
    summary.manifest_rows = len(rows)
