"""A trained detector on labelled inputs: every metric, per source and method.

This is the real-world check: does a detector recognise deepfakes it was not trained
on? Inputs are scored exactly as ``dfdetect predict`` scores them
(:func:`dfdetect.predict.score_input`: same frame sampling, face detection and crop),
then compared with their labels.

Inputs and their labels:

- **files and folders** (searched recursively): the label comes from the nearest
  ``real/`` or ``fake/`` folder on the file's path, or from a ``real`` / ``fake`` token
  in the file name (``ffpp_fake_Face2Face_000_003.mp4``, ``celebdf_real_id21_...``).
  A file with neither is skipped and counted; a file whose folder and name disagree
  too (it is not clear which is right).
- **a store** (its ``manifest.csv``, or the folder holding it): label, source and
  method come from the manifest's columns; its face crops are scored as they are
  (no detection), grouped into videos by ``(source, video_id)``.

Source: the name's first ``_``-separated token when the label token follows it
(``ffpp``, ``dfdc``, ``celebdf``), else the folder above ``real/`` / ``fake/``.
Method: ``real`` for reals; for fakes a known manipulation name after ``_fake_``
(``Deepfakes``, ``Face2Face``, ``FaceSwap``, ``NeuralTextures``, ``FaceShifter``,
``DeepFakeDetection``, or any capitalised token), a folder between ``fake/`` and the
file, the source's only method (``Celeb-synthesis`` for Celeb-DF, ``DFDC`` for DFDC,
whose names carry a video id there instead), else ``unknown``.

Outputs (``out``, written as a fresh folder and swapped in whole, so a rerun never
leaves one run's table beside another's figure): ``scores.csv`` (one row per video),
``metrics.csv`` (all videos, each source, each method: video ROC AUC and the chance
that a model with no skill reaches it, AP, EER, accuracy at the model's threshold, frame
ROC AUC, frames with a face) and ``roc.png``.
An existing ``out`` may hold only an earlier run's files (:func:`check_out_folder`).

Nothing here fits, tunes or selects anything: the threshold is the model's (or the
user's), so a held-out evaluation set stays held out.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter
from typing import Callable, Iterable, Sequence

import numpy as np

from dfdetect import plots, predict
# The file-name rule lives with the dataset adapters ('data crop' reads the same names).
from dfdetect.data.sources import (KNOWN_METHODS, LABEL_WORDS, SOURCE_METHODS,  # noqa: F401
                                   method_token, parse_name)
from dfdetect.data.store import MANIFEST, read_manifest
from dfdetect.errors import DataError
from dfdetect.evaluation import auc_chance_p, auc_interval, binary_metrics
from dfdetect.io import replaced_folder
from dfdetect.predict import collect_inputs
from dfdetect.results import read_table, to_float, write_table

__all__ = ["EvaluationSummary", "KNOWN_METHODS", "LabelledInput", "METRIC_COLUMNS",
           "RUN_FILES", "SCORE_COLUMNS", "SOURCE_METHODS", "VideoScore", "check_out_folder",
           "collect_labelled", "evaluate_inputs", "is_store", "label_from_path",
           "metrics_table", "model_family", "parse_name", "refuse_split_on_media",
           "summarize_folder", "write_outputs"]


SCORE_COLUMNS = ("path", "label", "source", "method", "score", "verdict", "frames_sampled",
                 "frames_used", "error")
METRIC_COLUMNS = ("group", "name", "n_videos", "n_real", "n_fake", "n_scored", "n_no_face",
                  "n_failed", "video_auc", "video_auc_p", "video_ap", "video_eer",
                  "video_acc", "threshold", "frame_auc", "n_frames_scored",
                  "frames_with_face", "frames_sampled", "face_rate")

#: What one evaluation writes into its folder (and all an earlier run's folder may hold).
RUN_FILES = ("scores.csv", "metrics.csv", "roc.png")


# --------------------------------------------------------------------------- labels

@dataclasses.dataclass(frozen=True)
class LabelledInput:
    """One video to score, with what it is.

    Attributes:
        path: the media file, or for a store video its source path from the manifest.
        label: 1 fake, 0 real.
        source: dataset name (``ffpp``, ``dfdc``, ``celebdf``, a folder name...).
        method: manipulation name, or ``real``.
        crops: a store video's ``(frame index, crop file)`` pairs; ``None`` for media.
    """

    path: str
    label: int
    source: str
    method: str
    crops: tuple[tuple[int, str], ...] | None = None


def _folder_label(path: str) -> tuple[int | None, str | None, str | None]:
    """``(label, source, method)`` from the nearest ``real/`` or ``fake/`` folder above ``path``.

    Source: the folder above that one; method: the folder between ``fake/`` and the file.
    """
    parts = os.path.abspath(path).split(os.sep)[:-1]
    for position in range(len(parts) - 1, -1, -1):
        label = LABEL_WORDS.get(parts[position].lower())
        if label is None:
            continue
        source = parts[position - 1] if position > 0 and parts[position - 1] else None
        below = parts[position + 1:]
        # fake/<method>/file: a folder per method, whatever its spelling.
        method = "real" if label == 0 else (method_token(below[0]) or below[0]
                                            if below else None)
        return label, source, method
    return None, None, None


def label_from_path(path: str | os.PathLike) -> LabelledInput | None:
    """The label, source and method of a media file, or ``None`` when it has no label.

    Folder and name are both read; when both give a label and they disagree the file
    counts as unlabelled. Folder labels win for source and method only when the name
    gives none (names like ``ffpp_fake_Face2Face_...`` are the more specific).
    """
    path = os.fspath(path)
    name_label, name_source, name_method = parse_name(path)
    folder_label, folder_source, folder_method = _folder_label(path)
    if name_label is not None and folder_label is not None and name_label != folder_label:
        return None
    label = name_label if name_label is not None else folder_label
    if label is None:
        return None
    source = name_source or folder_source or "unknown"
    if label == 0:
        method = "real"
    else:
        method = (name_method or folder_method or SOURCE_METHODS.get(source.lower())
                  or "unknown")
    return LabelledInput(path=path, label=label, source=source, method=method)


def is_store(item: str | os.PathLike) -> bool:
    """Whether an input is a store: a folder holding ``manifest.csv``, or a ``.csv``."""
    item = os.fspath(item)
    if os.path.isdir(item):
        return os.path.isfile(os.path.join(item, MANIFEST))
    return item.lower().endswith(".csv")


def refuse_split_on_media(inputs: Iterable[str | os.PathLike], split: str | None) -> None:
    """Refuses ``--split`` beside an input it cannot apply to (it used to be ignored).

    Raises:
        DataError: ``split`` is given and an input is not a store (media files and
            folders of them carry no split).
    """
    if split is None:
        return
    for item in inputs:
        if not is_store(item):
            raise DataError(f"--split {split} selects rows of a store's manifest.csv, and "
                            "this input is not a store (media files have no split): drop "
                            "--split, or give the store", item)


def _store_videos(item: str, split: str | None) -> list[LabelledInput]:
    """One :class:`LabelledInput` per ``(source, video_id)`` of a store's manifest."""
    manifest = item if not os.path.isdir(item) else os.path.join(item, MANIFEST)
    root = os.path.dirname(os.path.abspath(manifest))
    rows = read_manifest(manifest)
    # A video's name: its source file, unless other videos of the store share that file
    # (the embedded benchmark makes a real and its fakes from one photo), then its
    # store id, so each line and scores.csv row names one video (the same in every split).
    shared = Counter(path for path in {(r["source"], r["video_id"]): r["path"]
                                       for r in rows}.values())
    if split is not None:
        rows = [r for r in rows if r["split"] == split]
    videos: dict[tuple[str, str], dict] = {}
    for row in rows:
        key = (row["source"], row["video_id"])
        video = videos.setdefault(key, {"row": row, "crops": {}})
        if video["row"]["label"] != row["label"]:
            raise DataError(f"video {row['source']}/{row['video_id']} has crops labelled "
                            "both real and fake", manifest)
        video["crops"][row["frame_index"]] = os.path.join(root, row["crop_path"])
    found = []
    for (source, video_id), video in videos.items():
        row = video["row"]
        unique = row["path"] and shared[row["path"]] == 1
        found.append(LabelledInput(
            path=row["path"] if unique else f"{source}/{video_id}", label=int(row["label"]),
            source=source or "unknown",
            method="real" if row["label"] == 0 else (row["method"] or "unknown"),
            crops=tuple(sorted(video["crops"].items()))))
    return found


def collect_labelled(inputs: Iterable[str | os.PathLike], split: str | None = None
                     ) -> tuple[list[LabelledInput], list[str], int]:
    """Expands inputs into labelled videos.

    Args:
        inputs: media files, folders of them, stores (folder with ``manifest.csv``) or
            manifest files.
        split: for stores, only rows of this split (``None``: every row).

    Returns:
        ``(labelled, unlabelled paths, other files ignored)``.

    Raises:
        DataError: a manifest that cannot be read, or ``split`` beside a media input.
    """
    inputs = list(inputs)
    refuse_split_on_media(inputs, split)
    labelled, unlabelled, ignored, media = [], [], 0, []
    for item in inputs:
        item = os.fspath(item)
        if is_store(item):
            labelled.extend(_store_videos(item, split))
        else:
            media.append(item)
    paths, ignored = collect_inputs(media)
    for path in paths:
        found = label_from_path(path)
        if found is None:
            unlabelled.append(path)
        else:
            labelled.append(found)
    return labelled, unlabelled, ignored


# --------------------------------------------------------------------------- scoring

@dataclasses.dataclass
class VideoScore:
    """One labelled video with its outcome (a row of ``scores.csv``).

    ``frame_scores`` are the per-frame P(fake) of an image model (empty for a video
    model, which scores the clip once); ``frames_used`` counts frames with a face.
    """

    item: LabelledInput
    score: float | None
    verdict: str
    threshold: float
    frames_sampled: int
    frames_used: int
    frame_scores: list[float]
    error: str | None = None

    def row(self) -> dict:
        return {"path": self.item.path, "label": self.item.label, "source": self.item.source,
                "method": self.item.method, "score": self.score, "verdict": self.verdict,
                "frames_sampled": self.frames_sampled, "frames_used": self.frames_used,
                "error": self.error}


@dataclasses.dataclass
class EvaluationSummary:
    """Everything :func:`evaluate_inputs` measured."""

    videos: list[VideoScore]
    threshold: float
    unlabelled: list[str] = dataclasses.field(default_factory=list)
    ignored: int = 0

    @property
    def failures(self) -> int:
        return sum(v.verdict == "ERROR" for v in self.videos)

    def headline(self) -> str:
        """One line: videos, classes, video AUC and accuracy at the threshold."""
        rows = metrics_table(self.videos, self.threshold)
        total = rows[0]
        auc = total["video_auc"]
        acc = total["video_acc"]
        text = (f"{total['n_videos']} videos ({total['n_real']} real, {total['n_fake']} fake): "
                f"video AUC {'-' if np.isnan(auc) else f'{auc:.3f}'}, accuracy "
                f"{'-' if np.isnan(acc) else f'{acc:.3f}'} at threshold {self.threshold:g}; "
                f"frames with a face {total['frames_with_face']}/{total['frames_sampled']}; "
                f"{total['n_no_face']} NO FACE, {total['n_failed']} failed")
        return text

    def skipped_line(self) -> str | None:
        """One line counting inputs skipped for want of a label, or ``None``."""
        if not self.unlabelled:
            return None
        n = len(self.unlabelled)
        return (f"{n} input{'s' if n > 1 else ''} without a label skipped (no real/ or fake/ "
                f"folder, no _real_ or _fake_ in the name), e.g. {self.unlabelled[0]}")


def _video_score(item: LabelledInput, result) -> VideoScore:
    frame_scores = [f.score for f in result.frames if f.score is not None]
    return VideoScore(item=item, score=result.score, verdict=result.verdict,
                      threshold=result.threshold, frames_sampled=result.frames_sampled,
                      frames_used=result.frames_used, frame_scores=frame_scores,
                      error=result.error)


def evaluate_inputs(model, meta: dict, inputs: Sequence[str | os.PathLike],
                    frames: int | None = None, threshold: float | None = None,
                    split: str | None = None, on_result: Callable | None = None,
                    **kwargs) -> EvaluationSummary:
    """Scores every labelled input with :mod:`dfdetect.predict`; failures are counted.

    Args:
        model, meta: from :func:`dfdetect.predict.load_detector` (or
            :func:`dfdetect.models.released.load_mesonet`).
        inputs: files, folders, stores or manifests (see the module docstring).
        frames: frames sampled per video (image models; default the model's or 10).
        threshold: decision threshold (default: the model's, else 0.5).
        split: for stores, only this split.
        on_result: called as ``on_result(position, total, video_score, predict_result)``
            after each video (e.g. to print progress).
        **kwargs: passed to :func:`dfdetect.predict.score_input` (``detect``,
            ``detector``, ``detect_max_side``).

    Returns:
        An :class:`EvaluationSummary`.

    Raises:
        DataError: no input has a label.
    """
    spec = predict.model_spec(model, meta)
    threshold = float(spec.threshold if threshold is None else threshold)
    labelled, unlabelled, ignored = collect_labelled(inputs, split=split)
    if not labelled:
        where = f" ({len(unlabelled)} unlabelled, e.g. {unlabelled[0]})" if unlabelled else ""
        raise DataError("no labelled input to evaluate: put files under real/ and fake/ "
                        "folders, name them <source>_real_... / <source>_fake_..., or pass a "
                        f"store's manifest.csv{where}")
    summary = EvaluationSummary(videos=[], threshold=threshold, unlabelled=unlabelled,
                                ignored=ignored)
    for position, item in enumerate(labelled, 1):
        if item.crops is None:
            result = predict.guarded(item.path, lambda: predict.score_input(
                model, meta, item.path, frames=frames, threshold=threshold, **kwargs))
        else:
            result = predict.guarded(item.path, lambda: predict.score_face_crops(
                model, meta, item.path, item.crops, threshold=threshold))
        video = _video_score(item, result)
        video.threshold = threshold
        summary.videos.append(video)
        if on_result is not None:
            on_result(position, len(labelled), video, result)
    return summary


# --------------------------------------------------------------------------- metrics

def _group_metrics(group: str, name: str, videos: Sequence[VideoScore],
                   threshold: float) -> dict:
    scored = [v for v in videos if v.score is not None]
    labels = np.array([v.item.label for v in scored], dtype=int)
    scores = np.array([v.score for v in scored], dtype=float)
    nan = float("nan")
    video = binary_metrics(labels, scores, threshold) if len(scored) else {}
    frame_labels = np.array([v.item.label for v in scored for _ in v.frame_scores], dtype=int)
    frame_scores = np.array([s for v in scored for s in v.frame_scores], dtype=float)
    frame = binary_metrics(frame_labels, frame_scores, threshold) if len(frame_scores) else {}
    with_face = sum(v.frames_used for v in videos)
    sampled = sum(v.frames_sampled for v in videos)
    return {
        "group": group, "name": name, "n_videos": len(videos),
        "n_real": sum(v.item.label == 0 for v in videos),
        "n_fake": sum(v.item.label == 1 for v in videos),
        "n_scored": len(scored),
        "n_no_face": sum(v.verdict == "NO FACE" for v in videos),
        "n_failed": sum(v.verdict == "ERROR" for v in videos),
        "video_auc": video.get("ROC AUC", nan),
        # the chance that a model with no skill reaches this AUC on these videos (the
        # number summary.csv carries too): with a few videos, a high AUC is weak evidence
        "video_auc_p": auc_chance_p(video.get("ROC AUC", nan), int(labels.sum()),
                                    int(len(labels) - labels.sum())),
        "video_ap": video.get("AP", nan),
        "video_eer": video.get("EER", nan), "video_acc": video.get("Acc", nan),
        "threshold": threshold, "frame_auc": frame.get("ROC AUC", nan),
        "n_frames_scored": int(len(frame_scores)), "frames_with_face": with_face,
        "frames_sampled": sampled, "face_rate": with_face / sampled if sampled else nan,
    }


def metrics_table(videos: Sequence[VideoScore], threshold: float) -> list[dict]:
    """Rows of ``metrics.csv``: all videos, then each source, then each fake method.

    A source's row holds that source's videos (AUC, AP and EER are NaN -- blank in the
    CSV -- when it has one class only). A method's row holds its fakes against **all**
    the reals of the evaluation, the usual per-manipulation AUC. Video metrics are over
    videos with a score (NO FACE and failed ones are counted, not scored); the frame
    AUC is over every scored frame of an image model, labelled with its video's label.
    """
    rows = [_group_metrics("all", "all", videos, threshold)]
    for source in sorted({v.item.source for v in videos}):
        rows.append(_group_metrics("source", source,
                                   [v for v in videos if v.item.source == source], threshold))
    reals = [v for v in videos if v.item.label == 0]
    for method in sorted({v.item.method for v in videos if v.item.label == 1}):
        fakes = [v for v in videos if v.item.label == 1 and v.item.method == method]
        rows.append(_group_metrics("method", method, fakes + reals, threshold))
    return rows


def check_out_folder(out: str | os.PathLike) -> None:
    """Refuses an output folder that holds anything but an earlier run's :data:`RUN_FILES`.

    The run replaces ``out`` whole (:func:`write_outputs`), so anything else in it would
    be lost.

    Raises:
        DataError: ``out`` holds other files (names the first).
    """
    out = os.fspath(out)
    if not os.path.isdir(out):
        return
    foreign = sorted(name for name in os.listdir(out) if name not in RUN_FILES)
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise DataError(f"the output folder holds {foreign[0]!r}{more}, not only an earlier "
                        f"evaluation's {', '.join(RUN_FILES)}; the run replaces the folder "
                        "whole: choose a new or empty folder", out)


def write_outputs(out: str | os.PathLike, summary: EvaluationSummary,
                  title: str = "") -> dict[str, str]:
    """Writes ``scores.csv``, ``metrics.csv`` and ``roc.png`` as the folder ``out``.

    They are written into a fresh folder that then replaces ``out`` whole
    (:func:`dfdetect.io.replaced_folder`): an earlier run's ``roc.png`` never stays beside
    this run's tables, and a failure (a full disk between two files) leaves ``out`` as it
    was. Call :func:`check_out_folder` first.

    Returns:
        ``{"scores": path, "metrics": path, "roc": path or None}`` (no ROC when no group
        has both classes scored).
    """
    out = os.fspath(out)
    paths = {"scores": os.path.join(out, "scores.csv"),
             "metrics": os.path.join(out, "metrics.csv"), "roc": None}
    by_source = _roc_curves(summary.videos)
    drawable = {k: c for k, c in by_source.items() if len(set(c[0])) == 2}
    with replaced_folder(out) as fresh:
        write_table(os.path.join(fresh, "scores.csv"), [v.row() for v in summary.videos],
                    SCORE_COLUMNS)
        write_table(os.path.join(fresh, "metrics.csv"),
                    metrics_table(summary.videos, summary.threshold), METRIC_COLUMNS)
        if drawable:
            plots.roc_curves(os.path.join(fresh, "roc.png"), drawable,
                             title=title or "video ROC: all and per source")
            paths["roc"] = os.path.join(out, "roc.png")
    return paths


def redraw_roc(folder: str | os.PathLike, title: str | None = None) -> str | None:
    """Draws ``<folder>/roc.png`` again from the folder's ``scores.csv`` (nothing is
    scored): an evaluation made before the figure changed gets today's figure.

    Returns:
        The PNG's path, or ``None`` when no group has both classes scored.
    """
    folder = os.fspath(folder)
    rows = [r for r in read_table(os.path.join(folder, "scores.csv"))
            if np.isfinite(to_float(r.get("score")))]
    curves = {"all": ([int(r["label"]) for r in rows], [to_float(r["score"]) for r in rows])}
    for source in sorted({r["source"] for r in rows}):
        mine = [r for r in rows if r["source"] == source]
        curves[source] = ([int(r["label"]) for r in mine], [to_float(r["score"]) for r in mine])
    drawable = {k: c for k, c in curves.items() if len(set(c[0])) == 2}
    if not drawable:
        return None
    name = os.path.basename(os.path.abspath(folder))
    return plots.roc_curves(os.path.join(folder, "roc.png"), drawable,
                            title=title or f"{name}: video ROC")


def _roc_curves(videos: Sequence[VideoScore]) -> dict[str, tuple[list, list]]:
    """``{"all": (labels, scores), <source>: ...}`` over the scored videos."""
    def curve(group):
        scored = [v for v in group if v.score is not None]
        return [v.item.label for v in scored], [v.score for v in scored]

    curves = {"all": curve(videos)}
    for source in sorted({v.item.source for v in videos}):
        curves[source] = curve([v for v in videos if v.item.source == source])
    return curves


# --------------------------------------------------------------------------- across models

SUMMARY_COLUMNS = ("model", "n_videos", "video_auc", "video_auc_p", "video_acc", "threshold",
                   "ffpp_auc", "celebdf_auc", "dfdc_acc", "face_rate")


def summarize_folder(root: str | os.PathLike) -> str | None:
    """One row per evaluated model under ``root`` (each ``<root>/<model>/metrics.csv``).

    Writes ``<root>/summary.csv`` (video AUC, the chance of a no-skill model reaching it
    (:func:`dfdetect.evaluation.auc_chance_p`) and accuracy overall, AUC per source with
    both classes, DFDC's accuracy: its clips are all fakes) and ``<root>/summary.png``
    (every model's video AUC as a bar, best first, coloured by :func:`model_family`, its
    accuracy as a point, chance at 0.5), so the models can be compared at a glance.

    Returns:
        The CSV's path, or ``None`` when no evaluation is there yet.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        return None
    rows = []
    for name in sorted(os.listdir(root)):
        table = read_table(os.path.join(root, name, "metrics.csv"))
        if not table:
            continue
        by = {(r["group"], r["name"]): r for r in table}
        first = by.get(("all", "all"), {})
        rows.append({"model": name, "n_videos": first.get("n_videos"),
                     "video_auc": first.get("video_auc"),
                     # how likely a model with no skill scores this well on this set
                     "video_auc_p": auc_chance_p(to_float(first.get("video_auc")),
                                                 _count(first.get("n_fake")),
                                                 _count(first.get("n_real"))),
                     "video_acc": first.get("video_acc"),
                     "threshold": first.get("threshold"),
                     "ffpp_auc": by.get(("source", "ffpp"), {}).get("video_auc"),
                     "celebdf_auc": by.get(("source", "celebdf"), {}).get("video_auc"),
                     "dfdc_acc": by.get(("source", "dfdc"), {}).get("video_acc"),
                     "face_rate": first.get("face_rate")})
    if not rows:
        return None
    path = os.path.join(root, "summary.csv")
    write_table(path, rows, SUMMARY_COLUMNS)
    # Ranked bars: with dozens of models, a grouped chart per source was unreadable; the
    # per-source AUCs stay in the CSV. Each bar carries its bootstrap interval: on 32
    # videos a bar's length alone overstates what the set can tell apart.
    videos = {r["n_videos"] for r in rows if r["n_videos"]}
    plots.ranked_bars(os.path.join(root, "summary.png"), [r["model"] for r in rows],
                      [to_float(r["video_auc"]) for r in rows],
                      groups=[model_family(r["model"]) for r in rows],
                      markers={"accuracy at its threshold": [to_float(r["video_acc"])
                                                             for r in rows]},
                      lines={"chance": 0.5},
                      intervals=[_auc_interval(os.path.join(root, r["model"], "scores.csv"))
                                 for r in rows],
                      interval_label="AUC 95 % bootstrap interval (reals and fakes "
                                     "resampled apart)",
                      title=f"{os.path.basename(os.path.abspath(root))}: video ROC AUC"
                            + (f" ({videos.pop()} videos)" if len(videos) == 1 else ""),
                      xlabel="video ROC AUC (bars), accuracy (points)")
    return path


def _auc_interval(scores_csv: str) -> tuple[float, float]:
    """The 95 % stratified bootstrap interval of the video AUC in an evaluation's
    ``scores.csv`` (videos with a score); NaN without the file or one class."""
    rows = [r for r in read_table(scores_csv) if np.isfinite(to_float(r.get("score")))]
    if not rows:
        return float("nan"), float("nan")
    _, low, high = auc_interval([int(r["label"]) for r in rows],
                                [to_float(r["score"]) for r in rows])
    return low, high


def _count(cell) -> int:
    value = to_float(cell)
    return int(value) if np.isfinite(value) else 0


def model_family(name: str) -> str:
    """The family an evaluated model's folder name belongs to, for the summary's colours.

    ``p1_v3_faces_xception`` -> ``p1_v3_faces`` (paper, generator, face source: the name
    up to the configuration), ``mesonet_Meso4_DF`` -> ``mesonet``, ``default`` ->
    ``default``.
    """
    parts = name.split("_")
    if re.fullmatch(r"p\d", parts[0]) and len(parts) > 3:
        return "_".join(parts[:3])
    return parts[0]
