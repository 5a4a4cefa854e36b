"""The face-crop store: PNG crops + ``manifest.csv``, and the feature cache.

Layout of a store (DESIGN.md, "Store")::

    <root>/manifest.csv                              one row per crop
    <root>/crops/<source>/<video_id>/<frame:03d>.png RGB face crops (PNG, lossless)
    <root>/features/<backbone>_<size>.npy            float16 feature cache
    <root>/features/<backbone>_<size>.csv            its index, one row per array row

``manifest.csv`` columns: the Sample fields ``path, label, video_id, split, source,
method`` then ``frame_index, crop_path`` (``crop_path`` relative to ``root``, with ``/``),
then any extra columns a writer adds (``identity``, ``mask_path``, ``file_digest``...).
Readers keep extra columns and must not depend on their order.

Stores are made by ``dfdetect data crop`` (:func:`dfdetect.data.crop.crop_dataset`: a
dataset's faces, with its settings in ``crop.json``) and by ``dfdetect data build`` (the
embedded benchmarks, :mod:`dfdetect.synthetic`); both write through :class:`StoreWriter`.

Writing (:class:`StoreWriter`): a crop's PNG is written (atomically) when it is added;
the manifest is rewritten atomically, so a killed run leaves either the previous or the
next manifest, never a torn one (a manifest cut short by another writer is refused with
the line number, not extended). Rows become durable per *unit* (a video): ``commit()``
marks the rows added since the last commit as complete, and only complete units are
written. A resumed run therefore never sees half a video, and ``has(source, video_id)``
is enough to skip finished work. Re-adding a crop with the same ``(source, video_id,
frame_index)`` replaces it.

Typical use (this is all :func:`dfdetect.data.crop.crop_dataset` does)::

    with StoreWriter(out) as store:
        for sample in samples:
            if store.has(sample.source, sample.video_id):
                continue
            for frame_index, crop in crops_of(sample):
                store.add(sample, frame_index, crop)
            store.commit()
"""

from __future__ import annotations

import csv
import os
import re
import time
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from dfdetect.data.sample import SAMPLE_FIELDS, Sample
from dfdetect.data.splits import STORE_SPLITS, manifest_split  # noqa: F401  (re-exported)
from dfdetect.errors import DataError
from dfdetect.io import atomic_write_bytes, atomic_write_text, rows_to_csv

__all__ = ["MANIFEST", "MANIFEST_COLUMNS", "STORE_SPLITS", "StoreWriter", "crop_relpath",
           "feature_paths", "has_features", "load_features", "manifest_split",
           "read_manifest", "save_features"]

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = (*SAMPLE_FIELDS, "frame_index", "crop_path")
#: The extra column ``dfdetect data crop`` records each source file's content in.
DIGEST_COLUMN = "file_digest"
#: A crop store's settings; the values every crop in it shares.
CROP_SETTINGS = "crop.json"
CROP_SETTING_KEYS = ("size", "frames", "scale")
#: Files 'dfdetect data build' writes into its stores (dfdetect/synthetic/ writes them):
#: the generator version and settings when a build starts, the marker when it is done.
BENCHMARK_FILES = ("generator.json", "benchmark.json")
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]  # fixed, so identical crops give identical bytes
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# --------------------------------------------------------------------------- paths

def _check_id(value: str, what: str) -> str:
    value = str(value)
    parts = value.split("/")
    if not value or "\\" in value or any(p in ("", ".", "..") for p in parts):
        raise DataError(f"{what} {value!r} cannot be used as a folder name in a store")
    return value


def crop_relpath(source: str, video_id: str, frame_index: int) -> str:
    """``crops/<source>/<video_id>/<frame:03d>.png``: a crop's path relative to the store."""
    return (f"crops/{_check_id(source, 'source')}/{_check_id(video_id, 'video_id')}/"
            f"{int(frame_index):03d}.png")


def _manifest_path(root: str | os.PathLike) -> Path:
    root = Path(os.fspath(root))
    return root if root.suffix.lower() == ".csv" and not root.is_dir() else root / MANIFEST


# --------------------------------------------------------------------------- reading

def read_manifest(root: str | os.PathLike) -> list[dict]:
    """Reads a store's ``manifest.csv``.

    Args:
        root: the store directory (or the manifest file itself).

    Returns:
        One dict per crop with every column of the file (extra columns kept as strings);
        ``label`` and ``frame_index`` are ints, the other values strings.

    Raises:
        DataError: the manifest is missing, empty, lacks columns, or has a malformed line.
    """
    path = _manifest_path(root)
    if not path.is_file():
        raise DataError("no manifest.csv: not a dfdetect store (build one with "
                        "'dfdetect data crop' or 'dfdetect data build')", path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames
            if not header:
                raise DataError("empty file: expected a header with "
                                + ",".join(MANIFEST_COLUMNS), path)
            missing = [c for c in MANIFEST_COLUMNS if c not in header]
            if missing:
                raise DataError(f"missing column(s) {', '.join(missing)}: expected "
                                + ",".join(MANIFEST_COLUMNS), path)
            rows = []
            for row in reader:
                line = reader.line_num
                if None in row or any(v is None for v in row.values()):
                    raise DataError(f"line {line} has a different number of fields than "
                                    f"the header ({len(header)})", path)
                row["label"] = _int_field(row, "label", line, path, allowed=(0, 1))
                row["frame_index"] = _int_field(row, "frame_index", line, path)
                rows.append(row)
    except UnicodeDecodeError:
        raise DataError("not a UTF-8 text CSV file", path) from None
    except csv.Error as err:
        raise DataError(f"malformed CSV: {err}", path) from None
    return rows


def _int_field(row: dict, name: str, line: int, path: Path, allowed=None) -> int:
    text = row[name]
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 0 or (allowed is not None and value not in allowed):
        want = " or ".join(map(str, allowed)) if allowed else "an integer >= 0"
        raise DataError(f"line {line}: {name} must be {want}, got {text!r}", path)
    return value


def _refuse_torn(path: Path) -> None:
    """Refuses a manifest whose last line was cut short (a write from elsewhere died).

    This module always ends the file with a line break. Without one, the last row may
    still parse (a ``crop_path`` cut to ``crops/x/v/0``), and extending the manifest
    would keep it: a crop left unreferenced, a video never cropped again.

    Raises:
        DataError: naming the manifest and the line.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    if data and not data.endswith(b"\n"):
        line = data.count(b"\n") + 1
        raise DataError(f"line {line} is cut short (the file does not end "
                        "with a line break: a write to it was interrupted); delete that "
                        "line and rerun to crop its video again", path)


# --------------------------------------------------------------------------- writing

def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), _PNG_PARAMS)
    if not ok:
        raise DataError("PNG encoding failed", path)

    # Temp + rename, the temp removed when the write fails (a full disk leaves no
    # .png.tmp behind); the row is committed only after the PNG is whole.
    atomic_write_bytes(path, data.tobytes(), fsync=False)


class StoreWriter:
    """Adds crops to a store (new or existing) and keeps its manifest consistent.

    Args:
        root: the store directory (created if needed). An existing manifest is read
            (and validated) first, so new rows are added to it.
        flush_interval: ``commit()`` rewrites the manifest at most this often (seconds),
            and never more often than 20x the last rewrite took, so rewriting a large
            store's manifest costs at most ~5 % of the run; ``flush()`` and ``close()``
            always write. A killed run loses at most that interval's units (redone on
            resume), never the manifest.

    Use as a context manager: a normal exit closes (commits and writes everything); an
    exception writes only committed units, so an interrupted video is redone next time.
    """

    def __init__(self, root: str | os.PathLike, flush_interval: float = 2.0):
        self.root = Path(os.fspath(root))
        if self.root.exists() and not self.root.is_dir():
            raise DataError("store path exists and is not a folder", self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.flush_interval = float(flush_interval)
        existing = self.root / MANIFEST
        if existing.exists():
            _refuse_torn(existing)
        self._rows: list[dict] = read_manifest(self.root) if existing.exists() else []
        self._columns: list[str] = list(MANIFEST_COLUMNS)
        for row in self._rows:
            self._columns.extend(k for k in row if k not in self._columns)
        self._where = {self._key(r): i for i, r in enumerate(self._rows)}
        self._videos = {(r["source"], r["video_id"]) for r in self._rows}
        self._committed = len(self._rows)  # rows before this index are complete units
        self._staged: dict[tuple, dict] = {}  # replacements of committed rows, not yet committed
        self._dirty = False
        self._last_write = time.monotonic()
        self._write_seconds = 0.0

    @staticmethod
    def _key(row: Mapping) -> tuple[str, str, int]:
        return str(row["source"]), str(row["video_id"]), int(row["frame_index"])

    @property
    def rows(self) -> list[dict]:
        """Every row, committed or not (copies)."""
        return [dict(r) for r in self._rows]

    def has(self, source: str, video_id: str) -> bool:
        """Whether the store already holds crops of this video (committed or staged)."""
        return (str(source), str(video_id)) in self._videos

    def add(self, sample: Sample, frame_index: int, crop_rgb: np.ndarray,
            extra: Mapping | None = None) -> dict:
        """Writes one crop's PNG and stages its manifest row.

        Args:
            sample: where the crop comes from (its fields fill the row).
            frame_index: the frame's index in the video (0 for an image).
            crop_rgb: ``(H, W, 3)`` uint8 RGB crop.
            extra: additional columns (e.g. ``{"identity": "17"}``); names may not
                shadow the standard columns.

        Returns:
            The manifest row (``crop_path`` relative to the store root).
        """
        crop = np.asarray(crop_rgb)
        if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
            raise DataError(f"crop must be an (H, W, 3) uint8 array, got {crop.shape} "
                            f"{crop.dtype}", sample.path)
        extra = dict(extra or {})
        clash = sorted(set(extra) & set(MANIFEST_COLUMNS))
        if clash:
            raise ValueError(f"extra columns may not replace standard ones: {clash}")
        rel = crop_relpath(sample.source, sample.video_id, frame_index)
        _write_png(self.root / rel, crop)
        row = {**sample.as_row(), "label": int(sample.label),
               "frame_index": int(frame_index), "crop_path": rel, **extra}
        self._columns.extend(k for k in extra if k not in self._columns)
        key = self._key(row)
        if key in self._where and self._where[key] < self._committed:
            self._staged[key] = row
        elif key in self._where:
            self._rows[self._where[key]] = row
        else:
            self._where[key] = len(self._rows)
            self._rows.append(row)
        self._videos.add((row["source"], row["video_id"]))
        return dict(row)

    def fill_splits(self, assigned: Mapping[tuple[str, str], str]) -> int:
        """Writes a split into the committed rows of each ``(source, video_id)`` in
        ``assigned`` whose split is empty (a store cropped before splits were assigned);
        rows that have one keep it.

        Returns:
            The number of rows changed.
        """
        changed = 0
        for index, row in enumerate(self._rows[:self._committed]):
            split = assigned.get((row["source"], row["video_id"]))
            if split and not row.get("split"):
                self._rows[index] = {**row, "split": split}
                changed += 1
        if changed:
            self._dirty = True
        return changed

    def commit(self) -> None:
        """Marks the rows added since the last commit as one complete unit (a video).

        Writes the manifest when ``flush_interval`` seconds have passed since the last
        write; otherwise the rows are written by a later commit, ``flush()`` or
        ``close()``.
        """
        for key, row in self._staged.items():
            self._rows[self._where[key]] = row
        if self._staged or self._committed != len(self._rows):
            self._dirty = True
        self._staged.clear()
        self._committed = len(self._rows)
        wait = max(self.flush_interval, 20 * self._write_seconds)
        if time.monotonic() - self._last_write >= wait:
            self.flush()

    def flush(self) -> None:
        """Writes the committed rows to ``manifest.csv`` now (atomically)."""
        if not self._dirty and (self.root / MANIFEST).exists():
            return
        started = time.monotonic()
        text = rows_to_csv(self._rows[:self._committed], self._columns)
        atomic_write_text(self.root / MANIFEST, text)
        self._dirty = False
        self._last_write = time.monotonic()
        self._write_seconds = self._last_write - started

    def close(self) -> None:
        """Commits everything added and writes the manifest."""
        self.commit()
        self.flush()

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._drop_uncommitted()
            self.flush()

    def _drop_uncommitted(self) -> None:
        for row in self._rows[self._committed:]:
            del self._where[self._key(row)]
        del self._rows[self._committed:]
        self._staged.clear()
        self._videos = {(r["source"], r["video_id"]) for r in self._rows}


# --------------------------------------------------------------------------- features

def feature_paths(root: str | os.PathLike, backbone: str, size: int) -> tuple[Path, Path]:
    """``(<root>/features/<backbone>_<size>.npy, ....csv)`` of a feature cache."""
    if not _SAFE_NAME.match(str(backbone)):
        raise DataError(f"backbone name {backbone!r} must be letters, digits, '.', '_' or '-'")
    stem = Path(os.fspath(root)) / "features" / f"{backbone}_{int(size)}"
    return stem.with_suffix(".npy"), stem.with_suffix(".csv")


def has_features(root: str | os.PathLike, backbone: str, size: int) -> bool:
    """Whether both files of the ``(backbone, size)`` feature cache exist."""
    array_path, index_path = feature_paths(root, backbone, size)
    return array_path.is_file() and index_path.is_file()


def save_features(root: str | os.PathLike, backbone: str, size: int, array: np.ndarray,
                  index_rows: Sequence[Mapping]) -> tuple[Path, Path]:
    """Caches features as float16 with one index row per array row (atomic writes).

    Args:
        root: the store directory.
        backbone: feature extractor name (``inceptionv3``...).
        size: input image side the features were computed at.
        array: ``(videos, frames, dims)`` or ``(images, dims)``.
        index_rows: what each array row is (e.g. ``video_id, label, split, source``).

    Returns:
        The ``.npy`` and ``.csv`` paths.

    Raises:
        DataError: row count mismatch, bad rank, or values beyond float16's range.
    """
    array_path, index_path = feature_paths(root, backbone, size)
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise DataError(f"features must be (items, dims) or (items, frames, dims), got "
                        f"shape {array.shape}", array_path)
    if array.shape[0] != len(index_rows):
        raise DataError(f"{array.shape[0]} feature rows but {len(index_rows)} index rows",
                        array_path)
    with np.errstate(over="ignore"):
        half = array.astype(np.float16)
    if np.isinf(half).any() and not np.isinf(array).any():
        raise DataError("feature values exceed float16's range (65504)", array_path)
    array_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = array_path.with_name(f".{array_path.name}.tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, half, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, array_path)
    atomic_write_text(index_path, rows_to_csv(list(index_rows)))
    return array_path, index_path


def load_features(root: str | os.PathLike, backbone: str,
                  size: int) -> tuple[np.ndarray, list[dict]]:
    """Loads a feature cache written by :func:`save_features`.

    Returns:
        ``(float16 array, index rows as string-valued dicts)``.

    Raises:
        DataError: a missing or unreadable file, or index and array lengths that differ.
    """
    array_path, index_path = feature_paths(root, backbone, size)
    for path in (array_path, index_path):
        if not path.is_file():
            raise DataError(f"no feature cache for {backbone} at {int(size)} px", path)
    try:
        array = np.load(array_path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"cannot read feature cache: {' '.join(str(err).split())}",
                        array_path) from None
    with open(index_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if len(rows) != array.shape[0]:
        raise DataError(f"index has {len(rows)} rows but the array has {array.shape[0]}; "
                        "delete both files to recompute", index_path)
    return array, rows
