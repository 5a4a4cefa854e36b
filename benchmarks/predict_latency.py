#!/usr/bin/env python
"""Prediction latency: seconds to score a 10-second 720p video end to end.

The video: a real close-up (``closeup_pexels_woman.mp4``, 640 x 360) resized to
1280 x 720 and looped to 10 s at 25 fps with OpenCV into a temporary folder (no such
video is in the shared data). The model: P1's Xception classifier at the ``cpu`` image
size, untrained (latency does not depend on the weights), exported with
``dfdetect.models.export.export_model``.

- **dfdetect** (what ``dfdetect predict video.mp4`` runs): ``load_detector`` then
  ``score_video``: 10 evenly spaced frames decoded with ``grab()``, faces found on
  <= 640 px copies, crops scored in one ``predict_on_batch``.
- **straightforward**: ``keras.models.load_model``, ``cap.read()`` of every frame, the
  same 10 frames' faces found on the full 1280 x 720 frame, and ``model.predict`` on each
  crop in turn.

Both load the model inside the timing (a user's command does). Figures: both
latencies, their ratio ``predict_latency_speedup``, the warm per-video time (model
already loaded and traced), the video's duration over the latency (``x real time``),
and how far the two video scores are apart.

Run: ``python benchmarks/predict_latency.py`` (headline: ``predict_latency_seconds``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (SHARED_DATA, Figure, base_argparser, finish,  # noqa: E402
                               mark_start, naive_face_crops)

NAME = "predict_latency"
SOURCE_VIDEO = "closeup_pexels_woman.mp4"


def make_video(source: str | Path, out: str | Path, seconds: float = 10.0, fps: int = 25,
               size: tuple[int, int] = (1280, 720)) -> Path:
    """Writes ``seconds`` of ``source`` resized to ``size`` (width, height), looped."""
    import cv2

    out = Path(out)
    needed = int(round(seconds * fps))
    cap = cv2.VideoCapture(str(source))
    frames = []
    while len(frames) < needed:  # only what the clip needs; looped when the source is short
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(bgr)
    cap.release()
    if not frames:
        raise FileNotFoundError(f"{source}: no frames decode")
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(needed):
        writer.write(cv2.resize(frames[i % len(frames)], size, interpolation=cv2.INTER_CUBIC))
    writer.release()
    return out


def export_untrained(path: str | Path, backbone: str = "xception", image_size: int = 64) -> Path:
    """P1's single-backbone classifier, untrained, exported with dfdetect's metadata."""
    import keras

    from dfdetect.models import registry
    from dfdetect.models.export import export_model

    keras.utils.set_random_seed(0)
    model = registry.build_model("fusion", backbones=[backbone],
                                 input_shape=(image_size, image_size, 3))
    export_model(model, str(path), image_size=image_size, experiment="bench")
    return Path(path)


def dfdetect_way(model_path: Path, video: Path, frames: int) -> tuple[float, float, float]:
    """(seconds end to end, seconds of a second (warm) scoring, the video score)."""
    from dfdetect.predict import load_detector, score_video

    start = time.perf_counter()
    model, meta = load_detector(model_path)
    result = score_video(model, meta, video, frames=frames)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    score_video(model, meta, video, frames=frames)
    warm = time.perf_counter() - start
    return cold, warm, float(result.score if result.score is not None else float("nan"))


def straightforward_way(model_path: Path, video: Path, frames: int) -> tuple[float, float]:
    """(seconds end to end, the video score) of the straightforward loop."""
    import keras
    import numpy as np

    import dfdetect.models  # noqa: F401  (registers dfdetect's layers)

    start = time.perf_counter()
    model = keras.models.load_model(str(model_path))
    size = int(model.input_shape[1])
    scores = []
    for _, _, crop in naive_face_crops(video, frames, size):
        x = crop[None].astype(np.float32) / 255.0
        scores.append(float(np.ravel(model.predict(x, verbose=0))[0]))
    seconds = time.perf_counter() - start
    return seconds, float(np.mean(scores)) if scores else float("nan")


def measure(backbone: str = "xception", image_size: int | None = None, seconds: float = 10.0,
            size: tuple[int, int] = (1280, 720), frames: int = 10, source=None,
            log=print) -> list[Figure]:
    """Every figure of this benchmark."""
    import face_recognition  # noqa: F401  (dlib's model load is not part of either way)

    from dfdetect.papers import fusion

    image_size = image_size or fusion.settings_for("cpu").image_size
    source = Path(source or SHARED_DATA / "videos" / SOURCE_VIDEO)
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        video = make_video(source, Path(tmp) / "video.mp4", seconds=seconds, size=size)
        model_path = export_untrained(Path(tmp) / f"{backbone}.keras", backbone, image_size)
        import keras
        keras.utils.clear_session(free_memory=True)
        # dfdetect first: whatever the process warms up (oneDNN primitives, caches)
        # then favours the straightforward way, so the speedup is not flattered.
        cold, warm, score = dfdetect_way(model_path, video, frames)
        log(f"dfdetect: {cold:.2f} s end to end, {warm:.2f} s warm")
        keras.utils.clear_session(free_memory=True)
        naive_seconds, naive_score = straightforward_way(model_path, video, frames)
        log(f"straightforward: {naive_seconds:.2f} s")
    return [
        Figure("video_seconds", seconds, "s"),
        Figure("video_width", size[0], "px"),
        Figure("video_height", size[1], "px"),
        Figure("frames_scored", frames, "frames"),
        Figure("straightforward_seconds", naive_seconds, "s"),
        Figure("predict_warm_seconds", warm, "s"),
        Figure("predict_latency_speedup", naive_seconds / cold, "x"),
        Figure("predict_real_time_factor", seconds / cold, "x real time"),
        Figure("score_difference", abs(score - naive_score), "probability"),
        Figure("predict_latency_seconds", cold, "s"),
    ]


def main(argv=None) -> int:
    parser = base_argparser(__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10, help="frames scored per video")
    args = parser.parse_args(argv)
    mark_start()
    figures = measure(frames=args.frames)
    finish(NAME, figures, "predict_latency_seconds", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
