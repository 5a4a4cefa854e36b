"""Upper-body pose for P4: extraction backends, 12 COCO keypoints -> 24 features, the
paper's CSV forms, 150-frame segments, per-segment z-score and the video majority vote.

Features of a frame are the (x, y) pixel coordinates of the 12 upper-body keypoints of
OpenPose's COCO-18 model the paper keeps (nose, neck, shoulders, elbows, wrists, eyes,
ears), in that order; a keypoint the estimator did not find is (0, 0), as in the paper.

Backends:

- ``mediapipe``: MediaPipe Pose (BlazePose, 33 landmarks). ``mediapipe==0.10.14`` ships
  its models but needs protobuf < 5, which TensorFlow cannot share, so it runs in its own
  environment (``make pose-env`` -> ``.venv-pose``) through ``tools/mediapipe_pose.py``,
  which writes the raw landmarks to CSV; this module maps them to the 12 COCO points.
- ``openpose``: the ``*_keypoints.json`` files OpenPose writes (``--write_json``), COCO-18
  or BODY_25, for users who ran OpenPose as the paper did.

Files (one folder per extraction or benchmark):

- ``poses/<video_id>.pose.csv``: tidy, one row per frame: ``video_id, frame, time_s,
  detected`` (keypoints found, 0-12) and the 24 features;
- ``segments.csv``: the paper's form, a header then one row of 24 values per frame,
  every 150 rows one movement;
- ``labels.csv``: one row per movement, in the same order: ``segment, label`` (1 fake,
  0 real, empty when unknown) and where it comes from (``video_id, start_frame, poi,
  method``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import subprocess
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from dfdetect.errors import DataError
from dfdetect.data.splits import split_by_video  # noqa: F401  (re-exported)
from dfdetect.io import atomic_write_text, write_table

#: COCO-18 (OpenPose) indices of the 12 upper-body keypoints the paper keeps (Table 1).
COCO_UPPER_BODY = (0, 1, 2, 3, 4, 5, 6, 7, 14, 15, 16, 17)
KEYPOINT_NAMES = ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder",
                  "l_elbow", "l_wrist", "r_eye", "l_eye", "r_ear", "l_ear")
#: The 24 feature columns: ``nose_x, nose_y, neck_x, ...`` (x then y per keypoint).
FEATURE_NAMES = tuple(f"{name}_{axis}" for name in KEYPOINT_NAMES for axis in ("x", "y"))
N_KEYPOINTS = len(KEYPOINT_NAMES)
N_FEATURES = len(FEATURE_NAMES)
#: Frames per movement: 5 s at 30 fps (the paper's time steps).
SEGMENT_FRAMES = 150

#: BlazePose (MediaPipe Pose, 33 landmarks) index of each of the 12 keypoints; the neck
#: (None) is the midpoint of the shoulders, as OpenPose's COCO neck is defined.
#: Right/left are the person's, in both models.
BLAZEPOSE_INDEX = OrderedDict([
    ("nose", 0), ("neck", None), ("r_shoulder", 12), ("r_elbow", 14), ("r_wrist", 16),
    ("l_shoulder", 11), ("l_elbow", 13), ("l_wrist", 15), ("r_eye", 5), ("l_eye", 2),
    ("r_ear", 8), ("l_ear", 7),
])
BLAZEPOSE_LANDMARKS = 33
BLAZEPOSE_SHOULDERS = (12, 11)  # right, left
#: Default BlazePose visibility below which a point counts as not detected (MediaPipe's
#: own drawing threshold); OpenPose likewise leaves low-confidence points out.
VISIBILITY_THRESHOLD = 0.5

#: OpenPose model -> indices of the 12 keypoints in its ``pose_keypoints_2d`` triplets.
OPENPOSE_INDEX = {
    18: COCO_UPPER_BODY,                              # COCO-18
    25: (0, 1, 2, 3, 4, 5, 6, 7, 15, 16, 17, 18),     # BODY_25 (8 is the mid-hip)
}

#: The mediapipe runner and the environment it runs in (``make pose-env``).
REPO_ROOT = Path(__file__).resolve().parents[2]
MEDIAPIPE_SCRIPT = REPO_ROOT / "tools" / "mediapipe_pose.py"
POSE_VENV = REPO_ROOT / ".venv-pose"
POSE_PYTHON_ENV = "DFDETECT_POSE_PYTHON"

TIDY_COLUMNS = ("video_id", "frame", "time_s", "detected") + FEATURE_NAMES
LABEL_COLUMNS = ("segment", "label", "video_id", "start_frame", "poi", "method")


# --------------------------------------------------------------------------- mapping

def blazepose_to_coco12(landmarks: np.ndarray, width: float, height: float,
                        visibility: float = VISIBILITY_THRESHOLD) -> np.ndarray:
    """BlazePose's 33 landmarks -> the 24 COCO upper-body features, in pixels.

    A point is dropped to (0, 0), as OpenPose leaves it out, when its visibility is below
    ``visibility`` or MediaPipe placed it outside the image (BlazePose extrapolates
    points it cannot see; OpenPose can only find points in the frame). The neck is the
    midpoint of the shoulders and exists only when both shoulders do.

    Args:
        landmarks: ``(frames, 33, 4)`` or ``(33, 4)``: normalized x, y (0-1 of the image
            width and height), z, visibility. A frame without a pose is all NaN or has
            visibility 0 everywhere.
        width, height: image size in pixels.
        visibility: detection threshold on BlazePose's visibility.

    Returns:
        ``(frames, 24)`` (or ``(24,)``) float32 pixel coordinates.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    single = lm.ndim == 2
    if single:
        lm = lm[None]
    if lm.ndim != 3 or lm.shape[1] != BLAZEPOSE_LANDMARKS or lm.shape[2] < 4:
        raise ValueError(f"expected (frames, 33, 4) BlazePose landmarks, got {lm.shape}")
    x, y, vis = lm[..., 0], lm[..., 1], lm[..., 3]
    with np.errstate(invalid="ignore"):
        found = (vis >= visibility) & (x >= 0) & (x <= 1) & (y >= 0) & (y <= 1)
    found &= np.isfinite(x) & np.isfinite(y)
    out = np.zeros((lm.shape[0], N_KEYPOINTS, 2))
    for k, index in enumerate(BLAZEPOSE_INDEX.values()):
        if index is None:
            r, l = BLAZEPOSE_SHOULDERS
            ok = found[:, r] & found[:, l]
            px, py = (x[:, r] + x[:, l]) / 2, (y[:, r] + y[:, l]) / 2
        else:
            ok, px, py = found[:, index], x[:, index], y[:, index]
        out[ok, k, 0] = px[ok] * width
        out[ok, k, 1] = py[ok] * height
    out = out.reshape(lm.shape[0], N_FEATURES).astype(np.float32)
    return out[0] if single else out


def detected_counts(features: np.ndarray) -> np.ndarray:
    """Keypoints found per frame (a point is missing when both coordinates are 0)."""
    pts = np.asarray(features).reshape(-1, N_KEYPOINTS, 2)
    return np.count_nonzero(np.any(pts != 0, axis=-1), axis=-1)


# --------------------------------------------------------------------------- openpose

_FRAME_NUMBER = re.compile(r"(\d+)_keypoints\.json$")


def openpose_people_to_coco12(people: Sequence[Mapping], confidence: float = 0.0) -> np.ndarray:
    """One OpenPose frame (its ``people`` list) -> 24 features.

    The person of interest is the one with the highest total confidence over the 12
    upper-body points (the paper's videos hold one speaker); points with confidence
    <= ``confidence`` are (0, 0). No people -> all zeros.

    Raises:
        ValueError: a ``pose_keypoints_2d`` that is neither COCO-18 nor BODY_25.
    """
    best, best_score = np.zeros(N_FEATURES, np.float32), -1.0
    for person in people or ():
        flat = np.asarray(person.get("pose_keypoints_2d") or [], dtype=np.float64)
        n = flat.size // 3
        if flat.size % 3 or n not in OPENPOSE_INDEX:
            raise ValueError(f"pose_keypoints_2d has {flat.size} values; expected 54 "
                             "(COCO-18) or 75 (BODY_25)")
        tri = flat.reshape(n, 3)[list(OPENPOSE_INDEX[n])]
        ok = tri[:, 2] > confidence
        score = float(tri[ok, 2].sum())
        if score > best_score:
            feat = np.where(ok[:, None], tri[:, :2], 0.0)
            best, best_score = feat.reshape(-1).astype(np.float32), score
    return best


def read_openpose_json(source: str | os.PathLike | Sequence[str | os.PathLike],
                       confidence: float = 0.0) -> np.ndarray:
    """OpenPose's per-frame JSON files -> ``(frames, 24)`` features.

    Args:
        source: a folder of ``<name>_<frame>_keypoints.json`` files (one video), or the
            files themselves; frames are ordered by the number before ``_keypoints``.
        confidence: points at or below this confidence count as not detected.

    Raises:
        DataError: no keypoint files, or a file that is not OpenPose output.
    """
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        if not folder.is_dir():
            raise DataError("not a folder of OpenPose *_keypoints.json files", folder)
        files = sorted(folder.glob("*_keypoints.json"))
        if not files:
            raise DataError("no *_keypoints.json files (OpenPose --write_json output)", folder)
    else:
        files = [Path(f) for f in source]
    numbered = []
    for f in files:
        match = _FRAME_NUMBER.search(f.name)
        numbered.append((int(match.group(1)) if match else len(numbered), f))
    rows = []
    for _, f in sorted(numbered):
        try:
            data = json.loads(Path(f).read_text())
            rows.append(openpose_people_to_coco12(data.get("people", []), confidence))
        except (OSError, ValueError, AttributeError, TypeError) as err:
            raise DataError(f"not an OpenPose keypoints file: {' '.join(str(err).split())}",
                            f) from None
    return np.stack(rows).astype(np.float32)


# --------------------------------------------------------------------------- mediapipe

def pose_python(python: str | os.PathLike | None = None) -> Path:
    """The Python of the pose environment: ``python``, ``$DFDETECT_POSE_PYTHON`` or
    ``.venv-pose/bin/python``.

    Raises:
        DataError: it does not exist (with the command that creates it).
    """
    candidate = Path(python or os.environ.get(POSE_PYTHON_ENV) or POSE_VENV / "bin" / "python")
    if not candidate.exists():
        raise DataError("the MediaPipe environment is missing; create it with "
                        "`make pose-env` (or pass its python with --pose-python)", candidate)
    return candidate


def run_mediapipe(videos: Sequence[str | os.PathLike], raw_dir: str | os.PathLike,
                  python: str | os.PathLike | None = None,
                  script: str | os.PathLike | None = None,
                  timeout: float | None = None) -> dict[str, dict]:
    """Run ``tools/mediapipe_pose.py`` in the pose environment on ``videos``.

    Writes ``<raw_dir>/<stem>.blazepose.csv`` per video. A video that fails is reported
    (key ``error``) and the others go on.

    Returns:
        video path -> the runner's report: ``csv, frames, detected, fps, width, height,
        seconds`` or ``error``.

    Raises:
        DataError: the environment is missing or the runner itself crashed.
    """
    python = pose_python(python)
    script = Path(script or MEDIAPIPE_SCRIPT)
    os.makedirs(raw_dir, exist_ok=True)
    cmd = [os.fspath(python), os.fspath(script), "--out-dir", os.fspath(raw_dir),
           *[os.fspath(v) for v in videos]]
    # The runner is another Python: this one's PYTHONPATH/PYTHONHOME must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.setdefault("GLOG_minloglevel", "2")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise DataError(f"MediaPipe runner timed out after {timeout} s", script) from None
    reports: dict[str, dict] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            reports[item.get("video", "")] = item
    if proc.returncode not in (0, 1) or (not reports and videos):
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise DataError(f"MediaPipe runner failed (exit {proc.returncode}): {tail[:400]}", script)
    for v in videos:
        reports.setdefault(os.fspath(v), {"video": os.fspath(v), "error": "no report"})
    return {os.fspath(v): reports[os.fspath(v)] for v in videos}


def read_blazepose_csv(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read a ``tools/mediapipe_pose.py`` CSV.

    Returns:
        ``(landmarks (frames, 33, 4), meta)`` with ``meta`` = ``width, height, fps,
        detected`` (frames with a pose); frames without a pose have visibility 0.

    Raises:
        DataError: missing file, wrong columns, or non-numeric values.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("BlazePose CSV not found", path)
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        expected = blazepose_columns()
        if header is None or tuple(header) != expected:
            raise DataError("not a BlazePose CSV from tools/mediapipe_pose.py "
                            "(unexpected header)", path)
        rows = []
        for row in reader:
            if len(row) != len(expected):
                raise DataError(f"line {reader.line_num} has {len(row)} values, expected "
                                f"{len(expected)}", path)
            try:
                rows.append([float(v) if v != "" else np.nan for v in row])
            except ValueError as err:
                raise DataError(f"line {reader.line_num}: {err}", path) from None
    if not rows:
        raise DataError("BlazePose CSV has no frames", path)
    values = np.asarray(rows, dtype=np.float64)
    landmarks = values[:, 6:].reshape(len(values), BLAZEPOSE_LANDMARKS, 4)
    landmarks[..., 3] = np.nan_to_num(landmarks[..., 3], nan=0.0)
    meta = {"width": float(values[0, 3]), "height": float(values[0, 4]),
            "fps": float(values[0, 2]) if np.isfinite(values[0, 2]) else 0.0,
            "detected": int(np.nansum(values[:, 5]))}
    return landmarks, meta


def blazepose_columns() -> tuple[str, ...]:
    """Header of the runner's CSV (kept in step with tools/mediapipe_pose.py)."""
    cols = ["frame", "time_s", "fps", "width", "height", "detected"]
    for i in range(BLAZEPOSE_LANDMARKS):
        cols += [f"lm{i}_x", f"lm{i}_y", f"lm{i}_z", f"lm{i}_v"]
    return tuple(cols)


# --------------------------------------------------------------------------- tidy CSV

def _fmt(v: float) -> str:
    return "0" if v == 0 else f"{v:.2f}"


def write_pose_csv(path: str | os.PathLike, video_id: str, features: np.ndarray,
                   fps: float = 30.0) -> None:
    """Write one video's frames as the tidy per-video CSV (atomically)."""
    features = _check_features(features, path)
    counts = detected_counts(features)
    lines = [",".join(TIDY_COLUMNS)]
    for i, (row, n) in enumerate(zip(features, counts)):
        t = f"{i / fps:.3f}" if fps else ""
        lines.append(",".join([video_id, str(i), t, str(int(n)), *map(_fmt, row)]))
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_pose_csv(path: str | os.PathLike) -> tuple[str, np.ndarray]:
    """Read a tidy per-video CSV -> ``(video_id, features (frames, 24))``.

    Raises:
        DataError: missing file, missing feature columns, or bad values.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("pose CSV not found", path)
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in FEATURE_NAMES if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"pose CSV lacks columns {', '.join(missing[:4])}", path)
        video_id, rows = "", []
        try:
            for row in reader:
                video_id = video_id or row.get("video_id") or ""
                rows.append([float(row[c]) for c in FEATURE_NAMES])
        except (TypeError, ValueError) as err:
            raise DataError(f"bad value on line {reader.line_num}: {err}", path) from None
    features = np.asarray(rows, np.float32).reshape(-1, N_FEATURES)
    return video_id or path.name.split(".")[0], features


# --------------------------------------------------------------------------- segments

def segment(features: np.ndarray, length: int = SEGMENT_FRAMES,
            stride: int | None = None) -> np.ndarray:
    """Cut a video's ``(frames, 24)`` features into movements of ``length`` frames.

    Consecutive, non-overlapping by default (``stride`` = ``length``); frames after the
    last whole movement are dropped, so a video shorter than ``length`` gives none.

    Returns:
        ``(segments, length, 24)``.
    """
    features = np.asarray(features, np.float32)
    stride = int(stride or length)
    if features.ndim != 2:
        raise ValueError(f"expected (frames, features), got {features.shape}")
    starts = range(0, features.shape[0] - length + 1, stride)
    if not len(starts):
        return np.zeros((0, length, features.shape[1]), np.float32)
    return np.stack([features[s:s + length] for s in starts])


def zscore_segments(segments: np.ndarray) -> np.ndarray:
    """Z-score every feature within each segment (over its frames); NaN -> 0.

    A feature that never changes in a segment (e.g. a wrist never detected: all zeros)
    has sigma 0; its 0/0 becomes 0, as in the paper. Works on ``(frames, features)`` or
    ``(segments, frames, features)``.
    """
    x = np.asarray(segments, dtype=np.float64)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        # An all-NaN feature's mean is NaN too: it ends up 0 like any other 0/0.
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=-2, keepdims=True)
        std = np.nanstd(x, axis=-2, keepdims=True)
        z = (x - mean) / std
    z[~np.isfinite(z)] = 0.0
    return z.astype(np.float32)


def write_segments(folder: str | os.PathLike, segments: np.ndarray,
                   labels: Sequence[Mapping]) -> tuple[Path, Path]:
    """Write the paper's two CSVs: ``segments.csv`` (150 rows a movement) and ``labels.csv``.

    Args:
        segments: ``(n, frames, 24)``.
        labels: one mapping per segment with ``label`` (0/1 or None) and optionally
            ``video_id, start_frame, poi, method``.
    """
    segments = np.asarray(segments, np.float32)
    if segments.ndim != 3 or segments.shape[2] != N_FEATURES:
        raise ValueError(f"expected (n, frames, 24) segments, got {segments.shape}")
    if len(labels) != len(segments):
        raise ValueError(f"{len(segments)} segments but {len(labels)} labels")
    folder = Path(folder)
    lines = [",".join(FEATURE_NAMES)]
    lines += [",".join(map(_fmt, row)) for row in segments.reshape(-1, N_FEATURES)]
    atomic_write_text(folder / "segments.csv", "\n".join(lines) + "\n")
    out = [",".join(LABEL_COLUMNS)]
    for i, meta in enumerate(labels):
        label = meta.get("label")
        values = [str(i), "" if label in (None, "") else str(int(label))]
        values += [str(meta.get(c, "") if meta.get(c) is not None else "")
                   for c in LABEL_COLUMNS[2:]]
        out.append(",".join(v.replace(",", ";") for v in values))
    atomic_write_text(folder / "labels.csv", "\n".join(out) + "\n")
    return folder / "segments.csv", folder / "labels.csv"


def read_segments(folder: str | os.PathLike, frames: int = SEGMENT_FRAMES,
                  require_labels: bool = True) -> tuple[np.ndarray, list[dict]]:
    """Read ``segments.csv`` + ``labels.csv`` from ``folder``.

    ``segments.csv`` may have a header line or not (the paper's file has 24 numbers a
    row); ``labels.csv`` needs a ``label`` column (or a single unnamed column of labels).

    Returns:
        ``(segments (n, frames, 24) float32, label rows)``; each row has ``label`` as an
        int (or None when unknown and ``require_labels`` is False) and ``video_id``
        (``segment-<i>`` when the file gives none).

    Raises:
        DataError: missing files, a row count that is not a multiple of ``frames``, a
            segment count that differs from the label count, bad values.
    """
    folder = Path(folder)
    seg_path, lab_path = folder / "segments.csv", folder / "labels.csv"
    for p in (seg_path, lab_path):
        if not p.is_file():
            raise DataError("missing (a pose data folder holds segments.csv and labels.csv)", p)
    with open(seg_path, newline="") as handle:
        first = handle.readline()
        skip = 0 if _is_numeric_row(first) else 1
    try:
        values = np.loadtxt(seg_path, delimiter=",", skiprows=skip, dtype=np.float32, ndmin=2)
    except ValueError as err:
        raise DataError(f"bad value: {' '.join(str(err).split())[:200]}", seg_path) from None
    if values.size and values.shape[1] != N_FEATURES:
        raise DataError(f"{values.shape[1]} columns a row; expected {N_FEATURES}", seg_path)
    if values.shape[0] % frames:
        raise DataError(f"{values.shape[0]} frame rows is not a multiple of {frames} "
                        f"(every movement is {frames} rows)", seg_path)
    segments = values.reshape(-1, frames, N_FEATURES)
    rows = _read_label_rows(lab_path, require_labels)
    if len(rows) != len(segments):
        raise DataError(f"{len(rows)} labels for {len(segments)} movements in segments.csv",
                        lab_path)
    return segments, rows


def _is_numeric_row(line: str) -> bool:
    try:
        [float(v) for v in line.strip().split(",")]
        return bool(line.strip())
    except ValueError:
        return False


def _read_label_rows(path: Path, require_labels: bool) -> list[dict]:
    with open(path, newline="") as handle:
        lines = [line for line in csv.reader(handle) if line]
    if not lines:
        return []
    if "label" in lines[0]:
        header, body = lines[0], lines[1:]
    elif _is_numeric_row(",".join(lines[0])):  # the paper's bare column of labels
        header, body = ["label"], lines
    else:
        raise DataError("labels.csv needs a 'label' column", path)
    rows = []
    for i, values in enumerate(body):
        row = dict(zip(header, values))
        raw = (row.get("label") or "").strip()
        if raw == "":
            if require_labels:
                raise DataError(f"movement {i} has no label (1 fake, 0 real)", path)
            row["label"] = None
        else:
            try:
                row["label"] = int(float(raw))
            except ValueError:
                raise DataError(f"movement {i}: label {raw!r} is not 0 or 1", path) from None
            if row["label"] not in (0, 1):
                raise DataError(f"movement {i}: label {raw!r} is not 0 or 1", path)
        row["video_id"] = row.get("video_id") or f"segment-{i}"
        rows.append(row)
    return rows


def segments_from_pose_files(pose_files: Iterable[str | os.PathLike],
                             video_meta: Mapping[str, Mapping] | None = None,
                             frames: int = SEGMENT_FRAMES) -> tuple[np.ndarray, list[dict]]:
    """Every whole movement of every tidy per-video CSV, with its label row.

    Args:
        pose_files: ``poses/<video_id>.pose.csv`` files.
        video_meta: video_id -> ``label, poi, method`` (copied into each label row).
    """
    video_meta = video_meta or {}
    chunks, rows = [], []
    for path in pose_files:
        video_id, features = read_pose_csv(path)
        segs = segment(features, frames)
        meta = video_meta.get(video_id, {})
        for k in range(len(segs)):
            rows.append({"label": meta.get("label"), "video_id": video_id,
                         "start_frame": k * frames, "poi": meta.get("poi", ""),
                         "method": meta.get("method", "")})
        chunks.append(segs)
    segments = np.concatenate(chunks) if chunks else np.zeros((0, frames, N_FEATURES), np.float32)
    return segments, rows


# --------------------------------------------------------------------------- splits, votes

def majority_vote(fake_votes: int, real_votes: int) -> int:
    """The paper's verdict: real (0) only when real movements outnumber fake ones.

    A tie is therefore fake (1): a video has to earn "real".
    """
    return 0 if real_votes > fake_votes else 1


@dataclasses.dataclass
class VideoVerdict:
    """One video's vote.

    Attributes:
        video_id, label: the video and its true label (None when unknown).
        segments, fake_votes: movements and how many were called fake.
        fake_fraction: ``fake_votes / segments``, the video's score for AUC; >= 0.5
            exactly when the verdict is fake (the tie rule).
        mean_score: mean fake-probability of its movements.
        verdict: 1 fake, 0 real.
    """

    video_id: str
    label: int | None
    segments: int
    fake_votes: int
    fake_fraction: float
    mean_score: float
    verdict: int

    def as_row(self) -> dict:
        return dataclasses.asdict(self)


def video_verdicts(video_ids: Sequence[str], scores: Sequence[float],
                   labels: Sequence[int] | None = None,
                   threshold: float = 0.5) -> list[VideoVerdict]:
    """Majority vote over each video's movements (first-seen video order).

    A movement is fake when its score >= ``threshold``.

    Raises:
        ValueError: one video's movements carry different labels.
    """
    scores = np.asarray(scores, dtype=float).ravel()
    if len(video_ids) != len(scores):
        raise ValueError(f"{len(video_ids)} video ids for {len(scores)} scores")
    groups: "OrderedDict[str, list[int]]" = OrderedDict()
    for i, vid in enumerate(video_ids):
        groups.setdefault(str(vid), []).append(i)
    out = []
    for vid, idx in groups.items():
        label = None
        if labels is not None:
            labs = {int(labels[i]) for i in idx}
            if len(labs) > 1:
                raise ValueError(f"video {vid!r} has movements labelled both real and fake")
            label = labs.pop()
        fake = int(np.sum(scores[idx] >= threshold))
        real = len(idx) - fake
        out.append(VideoVerdict(vid, label, len(idx), fake, fake / len(idx),
                                float(scores[idx].mean()), majority_vote(fake, real)))
    return out


def _check_features(features: np.ndarray, path) -> np.ndarray:
    features = np.asarray(features, np.float32)
    if features.ndim != 2 or features.shape[1] != N_FEATURES:
        raise DataError(f"expected (frames, {N_FEATURES}) features, got {features.shape}", path)
    return features


# --------------------------------------------------------------------------- extraction

@dataclasses.dataclass
class VideoPose:
    """What extraction made of one video.

    Attributes:
        video_id, source: the id (file stem) and the input (video file or JSON folder).
        frames: frames read; ``with_pose``: frames where at least one keypoint was found.
        fps: frame rate (0 when unknown).
        segments: whole 150-frame movements.
        pose_csv: the tidy CSV written ('' on failure).
        error: why the video failed ('' when it did not).
    """

    video_id: str
    source: str
    frames: int = 0
    with_pose: int = 0
    fps: float = 0.0
    segments: int = 0
    pose_csv: str = ""
    error: str = ""

    @property
    def fraction(self) -> float:
        return self.with_pose / self.frames if self.frames else 0.0

    def as_row(self) -> dict:
        return {**dataclasses.asdict(self), "fraction": round(self.fraction, 4)}


def video_id_of(source: str | os.PathLike) -> str:
    """The id of a video (its file stem) or of an OpenPose JSON folder (its name)."""
    p = Path(source)
    return p.name if p.is_dir() else p.stem


def unique_ids(sources: Sequence[str | os.PathLike]) -> list[str]:
    """Video ids of ``sources``.

    Raises:
        DataError: two inputs share an id (they would overwrite each other's CSVs).
    """
    ids = [video_id_of(s) for s in sources]
    seen: dict[str, str] = {}
    for vid, src in zip(ids, sources):
        if vid in seen:
            raise DataError(f"two inputs are both named {vid!r} ({seen[vid]}); extract "
                            "them into different --out folders", src)
        seen[vid] = os.fspath(src)
    return ids


def extract_poses(sources: Sequence[str | os.PathLike], out: str | os.PathLike,
                  backend: str = "mediapipe", visibility: float = VISIBILITY_THRESHOLD,
                  confidence: float = 0.0, fps: float = 30.0,
                  python: str | os.PathLike | None = None, overwrite: bool = False,
                  log=print) -> list[VideoPose]:
    """Extract the 24 pose features of every frame of ``sources`` into ``out/poses/``.

    Videos whose tidy CSV already exists are read back, not re-extracted (unless
    ``overwrite``). A video that fails is reported in its ``error`` and the rest go on.

    Args:
        sources: videos (``mediapipe``) or folders of OpenPose JSON (``openpose``).
        out: output folder (``raw/`` and ``poses/`` go inside).
        backend: ``mediapipe`` or ``openpose``.
        visibility: BlazePose visibility threshold (mediapipe).
        confidence: OpenPose confidence threshold (openpose).
        fps: frame rate for OpenPose JSON (which does not record it).
        python: the pose environment's python (mediapipe; default ``.venv-pose``).
    """
    if backend not in ("mediapipe", "openpose"):
        raise DataError(f"unknown pose backend {backend!r}; choose mediapipe or openpose")
    out = Path(out)
    ids = unique_ids(sources)
    results: dict[str, VideoPose] = {}
    todo = []
    for vid, src in zip(ids, sources):
        tidy = out / "poses" / f"{vid}.pose.csv"
        if tidy.is_file() and not overwrite:
            _, feats = read_pose_csv(tidy)
            results[vid] = VideoPose(vid, os.fspath(src), len(feats),
                                     int(np.count_nonzero(detected_counts(feats))),
                                     _fps_of(out, vid), len(segment(feats)), os.fspath(tidy))
        elif not Path(src).exists():
            results[vid] = VideoPose(vid, os.fspath(src), error="input not found")
        else:
            todo.append((vid, src))
    if todo and backend == "mediapipe":
        reports = run_mediapipe([s for _, s in todo], out / "raw", python=python)
        for vid, src in todo:
            rep = reports[os.fspath(src)]
            if rep.get("error"):
                results[vid] = VideoPose(vid, os.fspath(src), error=rep["error"])
                continue
            try:
                landmarks, meta = read_blazepose_csv(rep["csv"])
                feats = blazepose_to_coco12(landmarks, meta["width"], meta["height"], visibility)
            except DataError as err:
                results[vid] = VideoPose(vid, os.fspath(src), error=str(err))
                continue
            results[vid] = _finish_video(out, vid, src, feats, meta["fps"])
    elif todo:
        for vid, src in todo:
            try:
                feats = read_openpose_json(src, confidence)
            except DataError as err:
                results[vid] = VideoPose(vid, os.fspath(src), error=str(err))
                continue
            results[vid] = _finish_video(out, vid, src, feats, fps)
    ordered = [results[v] for v in ids]
    for item in ordered:
        if item.error:
            log(f"{item.source}: {item.error}")
    return ordered


def _fps_of(out: Path, vid: str) -> float:
    for row in _read_summary(out):
        if row.get("video_id") == vid:
            try:
                return float(row.get("fps") or 0.0)
            except ValueError:
                return 0.0
    return 0.0


def _finish_video(out: Path, vid: str, src, feats: np.ndarray, fps: float) -> VideoPose:
    tidy = out / "poses" / f"{vid}.pose.csv"
    write_pose_csv(tidy, vid, feats, fps or 30.0)
    return VideoPose(vid, os.fspath(src), len(feats),
                     int(np.count_nonzero(detected_counts(feats))), float(fps),
                     len(segment(feats)), os.fspath(tidy))


SUMMARY_COLUMNS = ("video_id", "source", "label", "poi", "method", "frames", "with_pose",
                   "fraction", "fps", "segments", "pose_csv", "error")


def _read_summary(out: Path) -> list[dict]:
    path = Path(out) / "summary.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def update_dataset(out: str | os.PathLike, videos: Sequence[VideoPose],
                   label: int | None = None, poi: str = "", method: str = "",
                   meta: Mapping[str, Mapping] | None = None,
                   frames: int = SEGMENT_FRAMES) -> tuple[int, int]:
    """Record ``videos`` in ``out/summary.csv`` and rebuild ``segments.csv``/``labels.csv``
    from every successfully extracted video recorded there.

    Extracting real and fake videos into one folder in two runs (``--label real``, then
    ``--label fake``) therefore gives one data set.

    Args:
        videos: extraction results.
        label, poi, method: what to record for all of ``videos`` (a video extracted
            again without a label keeps the one recorded before).
        meta: video_id -> ``label, poi, method``, overriding the three above per video.

    Returns:
        ``(videos, movements)`` in the rebuilt data set.
    """
    out = Path(out)
    rows = {r["video_id"]: r for r in _read_summary(out)}
    for v in videos:
        old = rows.get(v.video_id, {})
        own = dict((meta or {}).get(v.video_id, {}))
        lab = own.get("label", label)
        row = {**v.as_row(),
               "label": "" if lab is None else int(lab),
               "poi": own.get("poi") or poi or old.get("poi", ""),
               "method": own.get("method") or method or old.get("method") or
               ("" if lab is None else "real" if int(lab) == 0 else "fake")}
        if lab is None and old.get("label") not in (None, ""):
            row["label"] = old["label"]
        rows[v.video_id] = row
    write_table(out / "summary.csv", list(rows.values()), SUMMARY_COLUMNS)
    ok = [r for r in rows.values() if not r.get("error") and r.get("pose_csv")]
    meta = {r["video_id"]: {"label": None if r.get("label") in (None, "") else int(r["label"]),
                            "poi": r.get("poi", ""), "method": r.get("method", "")}
            for r in ok}
    files = [out / "poses" / f"{r['video_id']}.pose.csv" for r in ok]
    segments, label_rows = segments_from_pose_files(files, meta, frames)
    write_segments(out, segments, label_rows)
    return len(ok), len(segments)
