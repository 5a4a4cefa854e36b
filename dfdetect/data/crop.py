"""``dfdetect data crop``: a dataset's videos and images -> face crops in a store.

:func:`crop_dataset` lists the dataset's samples (:mod:`dfdetect.data.sources`), takes N
evenly spaced frames of each video (:mod:`dfdetect.data.video`), finds and crops the
largest face (:mod:`dfdetect.data.faces`) in worker processes, and writes the crops into a
store (:class:`dfdetect.data.store.StoreWriter`), one video at a time, so a killed run
resumes where it stopped.

A store made here records its settings in ``crop.json`` (crop size, frames per video, box
scale) and each source file's :func:`dfdetect.io.quick_digest` in the ``file_digest``
column: a rerun with other settings is refused, a file already cropped is recognised by
its path and content (not its name: ``A/v.mp4`` and ``B/v.mp4`` are two videos), and one
cropped under another label, or changed since, is refused. A dataset that gives no
splits gets them (``split_fractions``): by identity where the layout names one, else by
video, stratified by class and seeded (:func:`dfdetect.data.splits.assign_groups`),
written in the ``split`` column and recorded in ``crop.json``.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from dfdetect.data import faces, sources, splits, video
from dfdetect.data.sample import SPLITS, Sample
from dfdetect.data.store import (BENCHMARK_FILES, CROP_SETTING_KEYS, CROP_SETTINGS,
                                 DIGEST_COLUMN, MANIFEST, StoreWriter)
from dfdetect.errors import DataError, DfdetectError
from dfdetect.io import atomic_write_text, quick_digest
from dfdetect.progress import progress as progress_bar

__all__ = ["CropSummary", "assign_splits", "crop_dataset"]


@dataclasses.dataclass
class CropSummary:
    """What a :func:`crop_dataset` run did.

    Attributes:
        out: the store directory.
        samples: samples the dataset lists (videos + images).
        videos: videos processed in this run (including skipped ones).
        images: images processed in this run (including skipped ones).
        already_done: samples already in the store, not processed again.
        frames_sampled: frames (and images) this run tried to read.
        new_crops: face crops written by this run.
        faces_found: face crops the store holds for this dataset's samples (this run's
            plus earlier runs'); 0 means the store has nothing usable.
        frames_without_face: sampled frames where no face was found.
        frames_undecodable: sampled frames that failed to decode.
        skipped_files: path -> reason, for files left out entirely.
        notes: path -> remark, for files kept with some frames missing.
        renamed: path -> the video id it is stored under, for files whose name another
            file in the store already has (``B/v.mp4`` beside ``A/v.mp4``).
        dataset_notes: what the dataset's adapter did that the user should know (e.g.
            FaceForensics++ without split files: the official splits not used).
        manifest_rows: rows in ``manifest.csv`` after the run.
        splits: what the store's split column holds for this dataset's videos, one line
            (how they were assigned, videos per split and class); ``""`` when not told.
        split_warning: a split that makes the store untrainable as it is (train without
            one class, no val), one line; ``""`` when none.
        seconds: wall-clock time of the run.
    """

    out: str
    samples: int = 0
    videos: int = 0
    images: int = 0
    already_done: int = 0
    frames_sampled: int = 0
    new_crops: int = 0
    faces_found: int = 0
    frames_without_face: int = 0
    frames_undecodable: int = 0
    skipped_files: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: dict[str, str] = dataclasses.field(default_factory=dict)
    renamed: dict[str, str] = dataclasses.field(default_factory=dict)
    dataset_notes: list[str] = dataclasses.field(default_factory=list)
    manifest_rows: int = 0
    splits: str = ""
    split_warning: str = ""
    seconds: float = 0.0

    @property
    def skipped_frames(self) -> int:
        """Sampled frames that gave no crop (no face, or not decodable)."""
        return self.frames_without_face + self.frames_undecodable

    def report(self) -> str:
        """A multi-line human summary; each skipped file is one ``path: reason`` line."""
        lines = [
            f"store: {self.out} ({self.manifest_rows} crops in {MANIFEST})",
            f"samples: {self.samples} listed; processed {self.videos} videos and "
            f"{self.images} images; {self.already_done} already in the store",
            f"frames sampled: {self.frames_sampled}; new face crops: {self.new_crops}; "
            f"face crops for this dataset: {self.faces_found}",
            f"frames skipped: {self.skipped_frames} ({self.frames_without_face} without a "
            f"face, {self.frames_undecodable} not decodable)",
            f"files skipped: {len(self.skipped_files)}",
        ]
        lines += [f"  {path}: {reason}" for path, reason in self.skipped_files.items()]
        if self.notes:
            lines.append(f"files with missing frames: {len(self.notes)}")
            lines += [f"  {path}: {note}" for path, note in self.notes.items()]
        if self.renamed:
            lines.append(f"files named like another file in the store, stored under "
                         f"their own id: {len(self.renamed)}")
            lines += [f"  {path}: video id {vid}" for path, vid in self.renamed.items()]
        lines += [f"note: {note}" for note in self.dataset_notes]
        if self.splits:
            lines.append(f"splits: {self.splits}")
        if self.split_warning:
            lines.append(f"warning: {self.split_warning}")
        lines.append(f"time: {self.seconds:.1f} s")
        return "\n".join(lines)


def _reason(err: BaseException, path: str) -> str:
    """The part of an error message after ``path: `` (messages name the file already)."""
    text = " ".join(str(err).split())
    prefix = f"{path}: "
    if isinstance(err, DfdetectError) and getattr(err, "path", None) == path:
        return text[len(prefix):] if text.startswith(prefix) else text
    if isinstance(err, DfdetectError):
        return text
    return f"unexpected {type(err).__name__}: {text}"


def _worker_init() -> None:
    # One OpenCV thread per worker: the workers are the parallelism.
    cv2.setNumThreads(1)


def _crop_sample(task: tuple) -> dict:
    """Worker: one sample -> its face crops. Never raises (errors become a reason)."""
    sample, frames, size, detector, scale, max_side, min_face = task

    result = {"sample": sample, "kind": "video" if sources.is_video(sample.path) else "image",
              "sampled": 0, "decoded": 0, "crops": [], "error": None}

    def crop_one(index: int, rgb: np.ndarray) -> None:
        box = faces.largest_face(faces.detect_faces(rgb, model=detector, max_side=max_side,
                                                    min_face=min_face))
        if box is not None:
            square = faces.square_box(box, rgb.shape, scale=scale)
            result["crops"].append((index, faces.crop_face(rgb, square, size)))

    try:
        if result["kind"] == "video":
            # Sample over the container's frame count and let the decoding pass check it;
            # a wrong count (rare) means one more pass over the true one.
            total = video.probe_video(sample.path, verify_count=False).frame_count
            for _ in range(2):
                indices = video.sample_indices(total, frames)
                result.update(sampled=len(indices), decoded=0, crops=[])
                try:
                    for index, rgb in video.iter_frames(sample.path, indices,
                                                        expect_total=total):
                        result["decoded"] += 1
                        crop_one(index, rgb)
                    break
                except video.FrameCountMismatch as err:
                    total = err.actual
                    if total == 0:
                        raise DataError("no frame decodes: truncated or corrupt video",
                                        sample.path) from None
            if result["decoded"] == 0:
                result["error"] = (f"none of {len(indices)} sampled frames decodes: "
                                   "truncated or corrupt video")
            elif not result["crops"]:
                result["error"] = (f"0 faces in {result['decoded']} sampled frames, "
                                   "skipped")
        else:
            result["sampled"] = 1
            rgb = faces.load_image(sample.path)
            result["decoded"] = 1
            crop_one(0, rgb)
            if not result["crops"]:
                result["error"] = "0 faces in the image, skipped"
    except Exception as err:  # noqa: BLE001 - one bad file must not end a batch run
        result["error"] = _reason(err, sample.path)
        result["crops"] = []
    return result


def _check_args(frames: int, size: int, detector: str, workers: int | None,
                scale: float) -> int:
    if int(frames) < 1:
        raise DataError(f"--frames must be >= 1, got {frames}")
    if int(size) < faces.MIN_CROP_SIDE:
        raise DataError(f"--size must be >= {faces.MIN_CROP_SIDE} pixels, got {size}")
    if detector not in ("hog", "cnn"):
        raise DataError(f"--detector must be hog or cnn, got {detector!r}")
    if not scale > 0:
        raise DataError(f"box scale must be > 0, got {scale}")
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise DataError(f"--workers must be >= 1, got {workers}")
    return workers


def crop_dataset(source: str | os.PathLike, layout: str = "folder",
                 out: str | os.PathLike | None = None, frames: int = 40, size: int = 256,
                 label: str | int | None = None, detector: str = "hog",
                 workers: int | None = os.cpu_count(), scale: float = faces.CROP_SCALE,
                 max_side: int | None = faces.DETECT_MAX_SIDE, min_face: float | None = 60,
                 progress: bool | None = None,
                 split_fractions: Sequence[float] | None = None, split_seed: int = 0,
                 **options) -> CropSummary:
    """Detects faces in a dataset and writes a crop store (``dfdetect data crop``).

    Each image gives one crop (``frame_index`` 0); each video gives up to ``frames``
    evenly spaced frames (:func:`dfdetect.data.video.sample_indices`) and one crop per
    frame with a face: the largest face, a square of ``scale`` x its side
    (FaceForensics++), resized to ``size``. Videos already in the store are skipped, so
    rerunning resumes; files that cannot be read, and files where no sampled frame has
    a face, are skipped and listed in the summary, never fatal.

    Args:
        source: the dataset root (see :func:`dfdetect.data.sources.discover`).
        layout: ``ffpp``, ``celebdf``, ``openforensics``, ``dfdc`` or ``folder``.
        out: the store directory.
        frames: frames per video.
        size: side of the square crops in pixels.
        label: ``"real"``/``"fake"`` for a flat folder or a single file.
        detector: ``hog`` or ``cnn``.
        workers: processes (spawn start method); 1 runs in this process.
        scale: crop side as a multiple of the face's larger side.
        max_side: faces are detected on frames downscaled to this longest side.
        min_face: ``hog``: faces smaller than this (pixels of the downscaled copy) are
            only searched for when no larger one is found (see
            :func:`dfdetect.data.faces.detect_faces`; 60 skips the detector's two finest
            pyramid levels, ~1.8x faster, boxes within a pixel of the full scan's).
            ``None``: always the full scan.
        progress: False: silent; default: a tqdm bar on a terminal, else a line every
            30 s (:mod:`dfdetect.progress`).
        split_fractions: train, val, test fractions for the videos the dataset gives
            no split (:func:`assign_splits`); ``None``: their split is left empty (the
            experiments split such rows themselves, :func:`dfdetect.data.splits.split_rows`).
        split_seed: the seed of that assignment.
        **options: passed to the layout's adapter (e.g. ``compression="c40"``).

    Returns:
        A :class:`CropSummary`.

    Raises:
        DataError: bad arguments, a source that does not match the layout, a store
            whose manifest is malformed, a store whose splits were assigned with other
            fractions or another seed.
    """
    started = time.monotonic()
    if out is None:
        raise DataError("an output store directory is required (--out)")
    workers = _check_args(frames, size, detector, workers, scale)
    samples = sources.discover(source, layout, label=label, **options)
    summary = CropSummary(out=os.fspath(out), samples=len(samples),
                          dataset_notes=list(getattr(samples, "notes", [])))
    for path in getattr(samples, "skipped_paths", []):
        summary.skipped_files[path] = "listed by the dataset but missing on disk"
    settings = {"size": int(size), "frames": int(frames), "scale": float(scale)}
    split_settings = None if split_fractions is None else _split_settings(
        samples, split_fractions, split_seed)

    with StoreWriter(out) as store:
        _refuse_other_settings(store.root, settings, store.rows)
        _refuse_other_splits(store.root, split_settings)
        by_unit = {}
        if split_settings is not None:
            samples, by_unit = assign_splits(samples, store.rows, split_fractions, split_seed)
            settings["splits"] = split_settings
        plan = _plan(samples, store.rows)  # refuses a file cropped under another label
        store.fill_splits(by_unit)  # an older store's empty splits, once nothing is refused
        _record_settings(store.root, settings)
        summary.already_done, summary.renamed = plan.already_done, plan.renamed
        tasks = [(s, int(frames), int(size), detector, float(scale), max_side, min_face)
                 for s in plan.todo]
        workers = max(1, min(workers, len(tasks)))
        pool = None
        if workers > 1:
            pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_init)
            results = pool.imap(_crop_sample, tasks, chunksize=1)
        else:
            results = map(_crop_sample, tasks)
        try:
            bar = progress_bar(results, total=len(tasks), unit="file", desc="crop",
                               enabled=progress)
            for result in bar:
                _record(result, store, summary, plan.digests)
            if pool is not None:
                pool.close()
                pool.join()
        finally:
            if pool is not None:
                pool.terminate()
    rows = store.rows
    summary.faces_found = sum((r["source"], r["video_id"]) in plan.units for r in rows)
    summary.manifest_rows = len(rows)
    summary.splits, summary.split_warning = _describe_splits(
        [r for r in rows if (r["source"], r["video_id"]) in plan.units], split_settings)
    summary.seconds = time.monotonic() - started
    return summary


def _flags(settings: Mapping) -> str:
    names = {"size": "--size", "frames": "--frames", "scale": "box scale"}
    return ", ".join(f"{names[k]} {settings[k]:g}" for k in CROP_SETTING_KEYS if k in settings)


def _recorded_settings(root: Path, rows: Sequence[Mapping]) -> dict | None:
    """The settings the store's crops were made with: ``crop.json``, else (a store made
    before it was written) the side of its first crop; None for a store with no crop."""
    if not rows:
        return None  # an empty store (every file failed) takes any settings
    try:
        recorded = json.loads((root / CROP_SETTINGS).read_text())
        if isinstance(recorded, dict):
            return {k: recorded[k] for k in CROP_SETTING_KEYS if k in recorded}
    except (OSError, ValueError):
        pass
    crop = cv2.imread(str(root / rows[0]["crop_path"]))
    return None if crop is None else {"size": int(crop.shape[1])}


def _refuse_other_settings(root: Path, settings: Mapping, rows: Sequence[Mapping]) -> None:
    """Refuses to add crops to a benchmark store, or to a store cropped with another size,
    frame count or box scale (its crops would be kept and called 'already in the store').

    Raises:
        DataError: one line naming the store and the settings that differ.
    """
    built = [name for name in BENCHMARK_FILES if (root / name).exists()]
    if built:
        raise DataError(f"is a benchmark store made by 'dfdetect data build' (it holds "
                        f"{built[0]}): crop into another --out", root)
    recorded = _recorded_settings(root, rows)
    differ = {k: v for k, v in (recorded or {}).items() if settings[k] != v}
    if differ:
        raise DataError(f"this store was cropped with {_flags(recorded)}; this run asks "
                        f"{_flags({k: settings[k] for k in differ})}: a store holds one crop "
                        "size and frame count, crop into another --out", root)


def _split_settings(samples: sources.SampleList, fractions: Sequence[float],
                    seed: int) -> dict:
    """What ``crop.json`` records of a split assignment (and a rerun must repeat)."""
    try:
        splits.assign_groups({}, seed, fractions)  # checks the fractions
    except ValueError as err:
        raise DataError(f"--split-ratios: {err}") from None
    return {"by": "identity" if getattr(samples, "identities", None) else "video",
            "fractions": [float(f) for f in fractions], "seed": int(seed)}


def _refuse_other_splits(root: Path, split_settings: Mapping | None) -> None:
    """Refuses to assign splits to a store whose splits were assigned otherwise: one
    store, one assignment (a mix would break the guarantee that no group straddles two
    splits).

    Raises:
        DataError: naming the recorded and the asked fractions and seeds.
    """
    if split_settings is None:
        return
    try:
        recorded = json.loads((root / CROP_SETTINGS).read_text()).get("splits")
    except (OSError, ValueError, AttributeError):
        return
    keys = ("fractions", "seed")
    if recorded and any(recorded.get(k) != split_settings[k] for k in keys):
        def flags(s):
            return (f"--split-ratios {','.join(f'{f:g}' for f in s['fractions'])} "
                    f"--split-seed {s['seed']}")
        raise DataError(f"this store's splits were assigned with {flags(recorded)}; this run "
                        f"asks {flags(split_settings)}: crop into another --out, or rerun "
                        "with the store's values", root)


def assign_splits(samples: Sequence[Sample], rows: Sequence[Mapping],
                  fractions: Sequence[float], seed: int
                  ) -> tuple[sources.SampleList, dict[tuple[str, str], str]]:
    """Gives every sample without a split one (:func:`dfdetect.data.splits.assign_groups`).

    Videos are grouped by the people the layout says they show
    (:attr:`dfdetect.data.sources.SampleList.identities`; no one known: the video alone),
    so a person is never in two splits; a group the store already holds in a split
    (an earlier run of this crop) keeps it, new videos of it included.

    Args:
        samples: the dataset's samples (a :class:`~dfdetect.data.sources.SampleList`).
        rows: the store's rows so far.
        fractions, seed: see :func:`dfdetect.data.splits.assign_groups`.

    Returns:
        ``(samples with their splits, (source, video_id) -> split)``: the second for
        rows of earlier runs whose split column is empty (:meth:`StoreWriter.fill_splits`).
    """
    identities = getattr(samples, "identities", {})
    todo = [s for s in samples if not s.split]
    group_of = splits.split_groups({s.path: identities.get(s.path, ())
                                    for s in todo})
    # Already in the store (same file): its recorded split binds its whole group.
    stored = {}
    for row in rows:
        stored.setdefault(os.path.realpath(row["path"]), row.get("split", ""))
    fixed: dict[str, str] = {}
    for sample in todo:
        split = stored.get(os.path.realpath(sample.path))
        if split:
            fixed.setdefault(group_of[sample.path], split)
    labels: dict[str, set] = {}
    for sample in todo:
        labels.setdefault(group_of[sample.path], set()).add(int(sample.label))
    assigned = {**splits.assign_groups(labels, seed, fractions), **fixed}
    out = sources.SampleList(dataclasses.replace(s, split=assigned[group_of[s.path]])
                             if not s.split else s for s in samples)
    for name in ("skipped", "skipped_paths", "notes", "identities"):
        setattr(out, name, getattr(samples, name, getattr(out, name)))
    by_path = {os.path.realpath(s.path): s.split for s in out}
    by_unit = {(r["source"], r["video_id"]): by_path[os.path.realpath(r["path"])]
               for r in rows if os.path.realpath(r["path"]) in by_path}
    return out, by_unit


def _describe_splits(rows: Sequence[Mapping], split_settings: Mapping | None
                     ) -> tuple[str, str]:
    """``(the splits line, a warning or "")`` for the dataset's rows in the store."""
    videos: dict[tuple[str, str], Mapping] = {}
    for row in rows:
        videos.setdefault((row["source"], row["video_id"]), row)
    if not videos:
        return "", ""
    counts = {split: [0, 0] for split in (*SPLITS, "")}
    for row in videos.values():
        counts.setdefault(row.get("split", ""), [0, 0])[int(row["label"])] += 1
    parts = [f"{name or 'none'} {real + fake} ({real} real, {fake} fake)"
             for name, (real, fake) in counts.items() if real + fake or name in SPLITS]
    if split_settings is None:  # the caller splits unsplit rows itself (the experiments)
        return "videos per split: " + ", ".join(parts), ""
    fractions = "/".join(f"{f:g}" for f in split_settings["fractions"])
    how = (f" (videos without a split assigned by {split_settings['by']}, seed "
           f"{split_settings['seed']}, train/val/test {fractions})")
    line = "videos per split: " + ", ".join(parts) + how
    real, fake = counts["train"]
    warning = ""
    if not real or not fake:
        warning = (f"the train split holds {real} real and {fake} fake videos: a detector "
                   "cannot learn from one class; add videos of the other")
    elif not sum(counts["val"]):
        warning = ("no val split: 'dfdetect train' keeps every epoch and reports no val "
                   "AUC; add videos or raise the val ratio")
    return line, warning


def _record_settings(root: Path, settings: Mapping) -> None:
    path = root / CROP_SETTINGS
    try:  # a run that assigns no splits keeps the record of one that did
        recorded = json.loads(path.read_text()).get("splits")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if recorded and "splits" not in settings:
        settings = {**settings, "splits": recorded}
    text = json.dumps(dict(settings), sort_keys=True) + "\n"
    if not path.is_file() or path.read_text() != text:
        atomic_write_text(path, text)


@dataclasses.dataclass
class _Plan:
    """What :func:`crop_dataset` crops, decided by path and content, never by name.

    Attributes:
        todo: the samples to crop, each with the video id it is stored under.
        digests: sample path -> :func:`dfdetect.io.quick_digest` ("" when unreadable:
            the worker then reports the file).
        units: ``(source, video_id)`` of every sample of the dataset, in the store.
        already_done: samples whose crops the store holds.
        renamed: path -> video id, for files whose name another file already has.
    """

    todo: list[Sample]
    digests: dict[str, str]
    units: set[tuple[str, str]]
    already_done: int
    renamed: dict[str, str]


def _digest(path: str) -> str:
    try:
        return quick_digest(path)
    except OSError:
        return ""


def _plan(samples: Sequence[Sample], rows: Sequence[Mapping]) -> _Plan:
    """Matches the dataset's samples with the videos the store already holds.

    A sample is done when the store holds a video from its path (with the same content
    where the store recorded it), or from a file with its content under its id (the
    dataset moved). Otherwise it is cropped, under its own id, or ``<id>-<digest>``
    when another file holds that id.

    Raises:
        DataError: a file in the store under another label, or changed since it was
            cropped.
    """
    first: dict[tuple[str, str], Mapping] = {}
    for row in rows:
        first.setdefault((row["source"], row["video_id"]), row)
    by_path = {os.path.realpath(r["path"]): r for r in first.values()}
    plan = _Plan([], {}, set(), 0, {})
    taken = set(first)
    for sample in samples:
        digest = plan.digests[sample.path] = _digest(sample.path)
        own_ids = [sample.video_id] + [f"{sample.video_id}-{digest[:n]}" for n in (8, 16)
                                       if digest]
        row = by_path.get(os.path.realpath(sample.path))
        if row is None and digest:  # the same content under one of its ids: moved
            row = next((first[(sample.source, v)] for v in own_ids
                        if first.get((sample.source, v), {}).get(DIGEST_COLUMN) == digest),
                       None)
        if row is not None:
            _refuse_changed(sample, row, digest)
            plan.already_done += 1
            plan.units.add((row["source"], row["video_id"]))
            continue
        video_id = next((v for v in own_ids if (sample.source, v) not in taken), own_ids[-1])
        if video_id != sample.video_id:
            plan.renamed[sample.path] = video_id
            sample = dataclasses.replace(sample, video_id=video_id)
        taken.add((sample.source, video_id))
        plan.units.add((sample.source, video_id))
        plan.todo.append(sample)
    return plan


def _refuse_changed(sample: Sample, row: Mapping, digest: str) -> None:
    unit = f"{row['source']}/{row['video_id']}"
    recorded = row.get(DIGEST_COLUMN)
    if recorded and digest and recorded != digest:
        raise DataError(f"changed since it was cropped into this store as {unit} (its "
                        "content differs): crop into another --out, or delete that "
                        "video's rows from manifest.csv to crop it again", sample.path)
    if int(row["label"]) != int(sample.label):
        names = {0: "real", 1: "fake"}
        raise DataError(f"is in the store as {unit} labelled {names[int(row['label'])]}; "
                        f"this run says {names[int(sample.label)]}: crop into another "
                        "--out, or delete that video's rows from manifest.csv to crop it "
                        "again", sample.path)


def _record(result: dict, store: StoreWriter, summary: CropSummary,
            digests: Mapping[str, str]) -> None:
    sample: Sample = result["sample"]
    if result["kind"] == "video":
        summary.videos += 1
    else:
        summary.images += 1
    summary.frames_sampled += result["sampled"]
    summary.frames_undecodable += result["sampled"] - result["decoded"]
    if result["error"] is not None:
        summary.skipped_files[sample.path] = result["error"]
        summary.frames_without_face += result["decoded"]
        return
    summary.frames_without_face += result["decoded"] - len(result["crops"])
    missing = result["sampled"] - result["decoded"]
    if missing:
        summary.notes[sample.path] = (f"{missing} of {result['sampled']} sampled frames "
                                      "failed to decode")
    for frame_index, crop in result["crops"]:
        store.add(sample, frame_index, crop, extra={DIGEST_COLUMN: digests[sample.path]})
    store.commit()
    summary.new_crops += len(result["crops"])


