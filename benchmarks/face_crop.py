#!/usr/bin/env python
"""Face cropping: ``dfdetect data crop`` against the straightforward loop, on real videos.

Both crop the same evenly spaced frames of every ``closeup_*`` and ``upperbody_*`` video
in ``../shared/data/videos`` (``--frames`` per video) to the largest face, as a square of
1.3x its side (FaceForensics++), and write PNG crops.

- **dfdetect** (:func:`dfdetect.data.crop.crop_dataset`): one process per core (spawn
  pool); each video decoded once, sequentially with ``grab()``, only the sampled frames
  colour-converted, the container's frame count checked by that same pass (no probing
  seek); faces detected (HOG) on a copy downscaled to at most 640 px, skipping the
  detector's two finest pyramid levels (``min_face=60``: they only hold faces under
  ~58 px, and the full scan runs when nothing is found), boxes mapped back to full
  resolution; crops written to a store with its manifest.
- **straightforward loop**: one process, ``cap.read()`` of every frame (decode and
  BGR conversion of each), the sampled frames' faces detected on the full-size frame.

Figures: sampled frames cropped per second by each and their ratio
``face_crop_speedup`` (target >= 3x); how alike the crops are: the largest corner
offset between the two paths' face boxes on the videos whose frames are at most 640 px
(the detector sees the very same image; the skipped levels may move a box by a pixel of
rounding), the mean absolute difference of the crops in 0-255 grey levels, and on the
larger videos, where dfdetect detects on a downscaled copy, the IoU, largest corner offset
in full-resolution pixels, and that offset relative to the box side.

Run: ``python benchmarks/face_crop.py`` (headline: ``face_crop_speedup``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (SHARED_DATA, Figure, base_argparser, finish,  # noqa: E402
                               mark_start, naive_face_crops)

NAME = "face_crop"
PATTERNS = ("closeup_*", "upperbody_*")
DETECT_MAX_SIDE = 640
MIN_FACE = 60  # crop_dataset's default


def default_videos(folder: str | Path | None = None) -> list[Path]:
    """The real face videos of the shared data (``closeup_*``, ``upperbody_*``), sorted."""
    folder = Path(folder or SHARED_DATA / "videos")
    videos = sorted(p for pattern in PATTERNS for p in folder.glob(pattern) if p.is_file())
    if not videos:
        raise FileNotFoundError(f"no {' or '.join(PATTERNS)} videos in {folder}")
    return videos


def naive_crop(videos, out: Path, frames: int, size: int) -> dict:
    """The straightforward loop. Returns ``{(video_id, index): (box, crop)}`` and writes PNGs.

    Reads every frame (``cap.read()``), detects on the full-size sampled frames in this
    one process. Frame indices are spread over the container's frame count.
    """
    import cv2

    found = {}
    for path in videos:
        for index, box, crop in naive_face_crops(path, frames, size):
            target = out / path.stem / f"{index:03d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(target), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
            found[(path.stem, index)] = (box, crop)
    return found


def store_crop(videos, out: Path, frames: int, size: int, workers: int | None) -> dict:
    """``dfdetect data crop`` on the same videos. Returns ``{(video_id, index): crop}``."""
    import cv2

    from dfdetect.data import crop, store

    folder = out / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    for path in videos:
        link = folder / path.name
        if not link.exists():
            os.symlink(os.path.abspath(path), link)
    summary = crop.crop_dataset(str(folder), layout="folder", out=str(out / "store"),
                                 frames=frames, size=size, label="real", detector="hog",
                                 workers=workers, progress=False)
    crops = {}
    for row in store.read_manifest(out / "store"):
        bgr = cv2.imread(str(out / "store" / row["crop_path"]))
        crops[(row["video_id"], int(row["frame_index"]))] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    crops["_summary"] = summary
    return crops


def box_iou(a, b) -> float:
    """IoU of two ``(top, right, bottom, left)`` boxes."""
    top, bottom = max(a[0], b[0]), min(a[2], b[2])
    left, right = max(a[3], b[3]), min(a[1], b[1])
    inter = max(0, bottom - top) * max(0, right - left)
    area = lambda box: max(0, box[2] - box[0]) * max(0, box[1] - box[3])  # noqa: E731
    union = area(a) + area(b) - inter
    return inter / union if union else 0.0


def dfdetect_boxes(videos, keys) -> dict:
    """Boxes dfdetect's crop path finds (downscaled copy, ``min_face``) for the frames in
    ``keys``: ``{(video_id, index): box}``. Not timed."""
    from dfdetect.data import faces
    from dfdetect.data.video import iter_frames

    out = {}
    for path in videos:
        indices = [i for (vid, i) in keys if vid == path.stem]
        for index, rgb in iter_frames(path, indices):
            box = faces.largest_face(faces.detect_faces(rgb, max_side=DETECT_MAX_SIDE,
                                                        min_face=MIN_FACE))
            if box is not None:
                out[(path.stem, index)] = box
    return out


def measure(videos=None, frames: int = 10, size: int = 128, workers: int | None = None,
            log=print) -> list[Figure]:
    """Every figure of this benchmark."""
    import numpy as np

    from dfdetect.data.video import probe_video

    videos = [Path(v) for v in (videos or default_videos())]
    with tempfile.TemporaryDirectory(prefix="bench-crop-") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        fast = store_crop(videos, tmp / "fast", frames, size, workers)
        fast_seconds = time.perf_counter() - start
        summary = fast.pop("_summary")
        log(f"dfdetect data crop: {fast_seconds:.1f} s, {summary.frames_sampled} frames")
        import face_recognition  # noqa: F401  (its ~1 s model load is not the loop's cost)

        start = time.perf_counter()
        naive = naive_crop(videos, tmp / "naive", frames, size)
        naive_seconds = time.perf_counter() - start
        log(f"straightforward loop: {naive_seconds:.1f} s")

    sampled = summary.frames_sampled
    both = sorted(set(fast) & set(naive))
    large = {p.stem for p in videos
             if max(probe_video(p).width, probe_video(p).height) > DETECT_MAX_SIDE}
    mae_all = [float(np.mean(np.abs(fast[k].astype(np.int16) - naive[k][1].astype(np.int16))))
               for k in both]
    fast_boxes = dfdetect_boxes(videos, both)
    small_offsets = [max(abs(int(a) - int(b)) for a, b in zip(box, naive[key][0]))
                     for key, box in fast_boxes.items() if key[0] not in large]
    ious, offsets, rel = [], [], []
    for key, box in fast_boxes.items():
        if key[0] not in large:
            continue
        ref = naive[key][0]
        ious.append(box_iou(box, ref))
        offset = max(abs(int(a) - int(b)) for a, b in zip(box, ref))
        offsets.append(offset)
        rel.append(offset / max(ref.width, ref.height))
    only_one = len(set(fast) ^ set(naive))
    figures = [
        Figure("videos", len(videos), "videos"),
        Figure("frames_sampled", sampled, "frames"),
        Figure("dfdetect_crop_seconds", fast_seconds, "s"),
        Figure("straightforward_seconds", naive_seconds, "s"),
        Figure("dfdetect_crop_frames_per_s", sampled / fast_seconds, "frames/s"),
        Figure("straightforward_frames_per_s", sampled / naive_seconds, "frames/s"),
        Figure("crops_compared", len(both), "crops"),
        Figure("frames_cropped_by_only_one", only_one, "frames"),
        Figure("small_video_box_offset_px_max", max(small_offsets) if small_offsets else 0,
               "px (max over frames)"),
        Figure("crop_pixel_mae_all", float(np.mean(mae_all)) if mae_all else 0.0,
               "grey levels (mean over crops)"),
    ]
    if ious:
        figures += [
            Figure("large_video_frames_compared", len(ious), "frames"),
            Figure("large_video_box_iou_mean", float(np.mean(ious)), "ratio"),
            Figure("large_video_box_iou_min", float(np.min(ious)), "ratio"),
            Figure("large_video_box_offset_px_median", float(np.median(offsets)), "px"),
            Figure("large_video_box_offset_px_max", float(np.max(offsets)), "px"),
            Figure("large_video_box_offset_vs_side_median", float(np.median(rel)), "ratio"),
            Figure("large_video_box_offset_vs_side_max", float(np.max(rel)), "ratio"),
        ]
    figures.append(Figure("face_crop_speedup", naive_seconds / fast_seconds, "x"))
    return figures


def main(argv=None) -> int:
    parser = base_argparser(__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10, help="frames per video")
    parser.add_argument("--size", type=int, default=128, help="crop side in pixels")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes for dfdetect data crop (default: one per core)")
    args = parser.parse_args(argv)
    mark_start()
    figures = measure(frames=args.frames, size=args.size, workers=args.workers)
    finish(NAME, figures, "face_crop_speedup", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
