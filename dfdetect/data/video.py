"""Open a video, read its metadata and take N evenly spaced frames (OpenCV).

Frames are decoded **sequentially with grab()**, retrieving (colour-converting) only the
wanted ones, and stopping after the last wanted index. Measured on this machine against
seeking (``CAP_PROP_POS_FRAMES`` then ``read()`` per frame) on ../shared/data/videos,
both giving bit-identical frames:

    video (frames)        n=4 seek/grab   n=10 seek/grab   n=40 seek/grab
    closeup_d6 (1008)     0.64 / 1.55 s   2.05 / 2.51 s    9.05 / 0.65 s
    closeup_d13 (352)     1.18 / 0.87 s   4.35 / 1.26 s    18.5 / 1.28 s
    closeup_d0 (78)       0.70 / 0.33 s   1.70 / 0.30 s    6.77 / 0.33 s

OpenCV's seek decodes again from the previous key frame on every call, so grabbing wins
from about 4 frames per video on and by 10-20x at the papers' 40 frames; it also works
where seeking does not (the HEVC ``.mov`` in the shared data cannot seek to its end).

``CAP_PROP_FRAME_COUNT`` comes from the container and can be wrong
(``noface_cartoon.mp4`` claims 98 frames and has 95; a truncated file claims what its
index promised). :func:`probe_video` checks it cheaply by seeking to the claimed last
frame, and counts frames by grabbing only when that check fails. A caller that decodes to
the last frame anyway (evenly spaced samples include it) can skip that seek: sample over
the claimed count and pass it to :func:`iter_frames` as ``expect_total``, which raises
:class:`FrameCountMismatch` with the true count when the claim was wrong (then sample
again). On the 18 real face videos the seek was 11 % of ``dfdetect data crop``'s time.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Iterator, Sequence

# FFmpeg prints demuxer chatter ("moov atom not found") straight to stderr; every such
# case already becomes a DataError here. Read once, at the first VideoCapture.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from dfdetect.errors import DataError  # noqa: E402

# OpenCV's own "[ WARN:0@2.1] ... can't be used to capture by name" around a file it
# cannot open, printed beside the one-line DataError that says the same: off, for every
# module that reads media (faces.py imports this one).
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

__all__ = ["FrameCountMismatch", "VideoInfo", "iter_frames", "probe_video", "read_frames",
           "resize_max_side", "sample_indices"]

log = logging.getLogger(__name__)


class FrameCountMismatch(Exception):
    """:func:`iter_frames` found the video to have ``actual`` frames, not ``expected``.

    Raised only when ``expect_total`` is given: frames sampled over a container's
    unverified count must then be sampled again over ``actual``.
    """

    def __init__(self, path: str, expected: int, actual: int):
        super().__init__(f"{path}: {actual} frames decode, not the {expected} expected")
        self.path, self.expected, self.actual = path, expected, actual


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learned about a video.

    Attributes:
        path: the file.
        frame_count: frames that actually decode (not just what the container claims).
        fps: frames per second from the container (0.0 when unknown).
        width: frame width in pixels.
        height: frame height in pixels.
        duration: ``frame_count / fps`` in seconds (0.0 when fps is unknown).
        claimed_frame_count: ``CAP_PROP_FRAME_COUNT`` as the container reports it.
    """

    path: str
    frame_count: int
    fps: float
    width: int
    height: int
    duration: float
    claimed_frame_count: int


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


def _open(path: str | os.PathLike) -> tuple[cv2.VideoCapture, str]:
    """Opens ``path`` with FFmpeg, turning every failure into a one-line DataError."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError("no such file", path)
    if os.path.isdir(path):
        raise DataError("is a folder, not a video file", path)
    size = os.path.getsize(path)
    if size == 0:
        raise DataError("empty file (0 bytes), not a video", path)
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        with open(path, "rb") as handle:
            head = handle.read(512)
        if _looks_like_text(head):
            raise DataError("is a text file, not a video", path)
        raise DataError(f"cannot open as a video ({size} bytes): unreadable container, "
                        "truncated file or unsupported codec", path)
    return cap, path


def _count_by_grabbing(path: str) -> int:
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    count = 0
    try:
        while cap.grab():
            count += 1
    finally:
        cap.release()
    return count


def _true_frame_count(cap: cv2.VideoCapture, path: str, claimed: int) -> int:
    if claimed > 0:
        cap.set(cv2.CAP_PROP_POS_FRAMES, claimed - 1)
        if cap.grab():
            extra = 0
            while cap.grab():  # the container under-reported: count the tail
                extra += 1
            return claimed + extra
    return _count_by_grabbing(path)


def probe_video(path: str | os.PathLike, verify_count: bool = True) -> VideoInfo:
    """Reads a video's metadata and its true frame count.

    Args:
        path: a video file.
        verify_count: check the container's frame count (see the module docstring).
            ``False`` trusts it unless it is missing, for callers that decode up to the
            last frame anyway and pass it to :func:`iter_frames` as ``expect_total``.

    Returns:
        A :class:`VideoInfo`; ``frame_count`` is verified unless ``verify_count`` is off.

    Raises:
        DataError: missing, empty, text or unreadable file, or no frame decodes.
    """
    cap, path = _open(path)
    try:
        claimed = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = (_true_frame_count(cap, path, claimed) if verify_count or claimed <= 0
                 else claimed)
    finally:
        cap.release()
    if count == 0:
        raise DataError(f"no frame decodes (container claims {max(claimed, 0)}): "
                        "truncated or corrupt video", path)
    if not np.isfinite(fps) or fps < 0 or fps > 1000:
        fps = 0.0
    return VideoInfo(path=path, frame_count=count, fps=fps, width=width, height=height,
                     duration=count / fps if fps > 0 else 0.0,
                     claimed_frame_count=claimed)


def sample_indices(total: int, n: int) -> np.ndarray:
    """``n`` evenly spaced frame indices over ``total`` frames (first and last included).

    Args:
        total: the video's true frame count.
        n: frames wanted; every frame when ``n >= total``.

    Returns:
        Sorted, distinct int64 indices in ``[0, total)``.

    Raises:
        ValueError: ``n < 1`` or ``total < 0``.
    """
    if n < 1:
        raise ValueError(f"frames per video must be >= 1, got {n}")
    if total < 0:
        raise ValueError(f"frame count must be >= 0, got {total}")
    if n >= total:
        return np.arange(total, dtype=np.int64)
    # floor(x + 0.5), not np.round: banker's rounding can merge neighbours (1.5, 2.5 -> 2).
    return np.floor(np.linspace(0, total - 1, n) + 0.5).astype(np.int64)


def resize_max_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscales ``image`` so its longest side is at most ``max_side`` (never upscales)."""
    if max_side is None:
        return image
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def iter_frames(path: str | os.PathLike, indices: Sequence[int],
                max_side: int | None = None,
                expect_total: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yields ``(index, RGB uint8 frame)`` for the wanted indices, decoding sequentially.

    Frames that do not decode (a file cut or corrupt mid-way) are left out and logged;
    compare the yielded indices with ``indices`` to see which.

    Args:
        path: a video file.
        indices: frame indices wanted (any order; duplicates and negatives ignored).
        max_side: downscale each frame so its longest side is at most this.
        expect_total: the frame count ``indices`` were sampled over, unverified (e.g.
            the container's). Decoding then goes on to the end, and a video with a
            different number of frames raises :class:`FrameCountMismatch` after the
            last frame, which saves :func:`probe_video`'s seek when the count is right.

    Raises:
        DataError: the file cannot be opened at all.
        FrameCountMismatch: only with ``expect_total``, as above.
    """
    wanted = sorted({int(i) for i in indices if int(i) >= 0})
    if expect_total is not None:
        yield from _iter_frames_to_end(path, wanted, max_side, int(expect_total))
        return
    if not wanted:
        return
    cap, path = _open(path)
    try:
        position, k = 0, 0
        last = wanted[-1]
        while position <= last:
            if not cap.grab():
                break
            if position == wanted[k]:
                ok, bgr = cap.retrieve()
                if ok and bgr is not None:
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    yield position, resize_max_side(rgb, max_side)
                else:
                    log.warning("%s: frame %d did not decode", path, position)
                k += 1
            position += 1
    finally:
        cap.release()
    if position <= last:
        missing = len(wanted) - k
        log.warning("%s: decoding stopped at frame %d; %d of %d wanted frames missing",
                    path, position, missing, len(wanted))


def _iter_frames_to_end(path, wanted: list[int], max_side: int | None,
                        expected: int) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`iter_frames` with ``expect_total``: decode to the end and check the count."""
    cap, path = _open(path)
    wanted_set = set(wanted)
    position = 0
    try:
        while position <= expected and cap.grab():
            if position in wanted_set:
                ok, bgr = cap.retrieve()
                if ok and bgr is not None:
                    yield position, resize_max_side(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
                                                    max_side)
                else:
                    log.warning("%s: frame %d did not decode", path, position)
            position += 1
        if position > expected:  # the container under-reported: count the tail
            while cap.grab():
                position += 1
    finally:
        cap.release()
    if position != expected:
        raise FrameCountMismatch(path, expected, position)


def read_frames(path: str | os.PathLike, n: int | None = None,
                indices: Sequence[int] | None = None,
                max_side: int | None = None) -> list[tuple[int, np.ndarray]]:
    """Reads selected frames of a video as RGB uint8 arrays.

    Args:
        path: a video file.
        n: take ``n`` evenly spaced frames over the true frame count
            (:func:`sample_indices`); ignored when ``indices`` is given. With neither,
            every frame is read.
        indices: explicit frame indices.
        max_side: downscale frames so the longest side is at most this.

    Returns:
        ``[(frame_index, frame), ...]`` in increasing index order. Frames that fail to
        decode are left out (and logged), so the list can be shorter than asked.

    Raises:
        DataError: missing, empty, text or unreadable file, or zero frames decoded.
    """
    if indices is None:
        total = probe_video(path).frame_count
        indices = sample_indices(total, n) if n is not None else np.arange(total)
    frames = list(iter_frames(path, indices, max_side=max_side))
    if not frames and len(indices):
        raise DataError(f"none of the {len(set(int(i) for i in indices))} requested frames "
                        "decodes: truncated or corrupt video", path)
    return frames
