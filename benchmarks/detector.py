#!/usr/bin/env python
"""The shipped detector: training images/s and ``predict`` on a 10-s 720p video.

- **training**: the detector's own training step (``dfdetect.detector``: fresh SBI pairs
  made by the tf.data pipeline *and* the network's update) at the cpu scale's input
  side, on a small face pool prepared from ``../shared/data/faces``; images per second
  over a few steps after the first (tracing) one. The network alone (random inputs, no
  pair making) is measured beside it, so the pairs' share shows.
- **predict**: ``dfdetect predict`` on the shipped ``dfdetect/weights/default.keras``
  for the benchmark video of :mod:`benchmarks.predict_latency` (a real close-up looped
  to 10 s at 1280 x 720), 16 frames as the detector's metadata says: cold (a fresh
  process: TensorFlow's import, the model's load and first trace inside the timing, as
  a user's command runs them: ``predict.load_and_predict``, the video's faces found by a
  forked process meanwhile; and the same without that worker, interleaved) and warm (the
  video again with the model loaded); medians of 3. Targets on 2 quiet cores: <= 5 s cold, <= 2 s warm.

Run: ``python benchmarks/detector.py`` (headline: ``detector_predict_cold_seconds``).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import SHARED_DATA, Figure, base_argparser, finish, mark_start  # noqa: E402
from benchmarks.predict_latency import SOURCE_VIDEO, make_video  # noqa: E402

NAME = "detector"
TARGET_COLD, TARGET_WARM = 5.0, 2.0


def training_speed(steps: int = 6, photos: int = 64, log=print) -> tuple[float, float, int]:
    """(images/s with pair making, images/s of the network alone, input side)."""
    import numpy as np

    from dfdetect import detector
    from dfdetect.detector.training import build_training_model

    sc = dataclasses.replace(detector.SCALES["cpu"], steps=steps + 1, max_photos=photos)
    with tempfile.TemporaryDirectory(prefix="bench-detector-") as tmp:
        folder = Path(tmp) / "faces"
        folder.mkdir()
        for path in sorted((SHARED_DATA / "faces").glob("*.jpg"))[:photos]:
            shutil.copy(path, folder / path.name)
        pool = detector.prepare_pool(str(folder), None, sc, Path(tmp) / "pool", workers=2,
                                     say=lambda s: None)
        model = build_training_model(sc)
        train_idx, _ = detector.split_pool(pool)
        batches = iter(detector.training_dataset(pool, train_idx, sc, seed=0, epoch=0))
        x, y = next(batches)
        model.train_on_batch(x, y)  # traces
        start = time.perf_counter()
        for _ in range(steps):
            x, y = next(batches)
            model.train_on_batch(x, y)
        with_pairs = steps * 2 * sc.batch_pairs / (time.perf_counter() - start)
        xs = np.random.default_rng(0).uniform(size=x.shape).astype("float32")
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(xs, y)
        alone = steps * 2 * sc.batch_pairs / (time.perf_counter() - start)
    log(f"training: {with_pairs:.1f} img/s with pair making, {alone:.1f} img/s network alone "
        f"({sc.size} px)")
    return with_pairs, alone, sc.size


#: One cold ``dfdetect predict`` in a fresh interpreter (dlib's model load outside the
#: timing, as before): prints its seconds.
COLD_CHILD = """
import sys, time
import face_recognition
from dfdetect import predict
start = time.perf_counter()
_, _, summary = predict.load_and_predict(predict.default_model(), [sys.argv[1]],
                                         background=sys.argv[2] == "fork")
assert not summary.results[0].failed, summary.results[0].error
print(time.perf_counter() - start)
"""


def cold_seconds(video: str, background: bool) -> float:
    """Seconds of one cold predict of ``video`` in a fresh process (TensorFlow not yet
    imported), with or without the forked face worker."""
    done = subprocess.run([sys.executable, "-c", COLD_CHILD, video,
                           "fork" if background else "plain"], cwd=REPO, capture_output=True,
                          text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        raise RuntimeError(f"cold predict failed: {done.stderr.strip()[-500:]}")
    return float(done.stdout.strip().splitlines()[-1])


def predict_speed(seconds: float = 10.0, repeats: int = 3,
                  log=print) -> tuple[float, float, float, int]:
    """(cold seconds, cold seconds without the face worker, warm seconds, frames) of
    predict with the shipped detector; medians of ``repeats``, the two cold ways
    interleaved so that load from other jobs hits both alike."""
    import numpy as np

    from dfdetect.predict import default_model, load_detector, score_video

    with tempfile.TemporaryDirectory(prefix="bench-detector-") as tmp:
        video = make_video(SHARED_DATA / "videos" / SOURCE_VIDEO, Path(tmp) / "video.mp4",
                           seconds=seconds)
        forked, plain = [], []
        for _ in range(repeats):
            forked.append(cold_seconds(str(video), background=True))
            plain.append(cold_seconds(str(video), background=False))
        model, meta = load_detector(default_model())
        result = score_video(model, meta, video)  # the first call traces
        warm = []
        for _ in range(repeats):
            start = time.perf_counter()
            score_video(model, meta, video)
            warm.append(time.perf_counter() - start)
    cold, sequential, warm = (float(np.median(v)) for v in (forked, plain, warm))
    frames = int(result.frames_sampled)
    log(f"predict: {cold:.2f} s cold ({sequential:.2f} s without the face worker), "
        f"{warm:.2f} s warm ({frames} frames, backbone {meta.get('backbone', 'scratch')})")
    return cold, sequential, warm, frames


def measure(log=print) -> list[Figure]:
    """Every figure of this benchmark."""
    import face_recognition  # noqa: F401  (dlib's model load is not part of either timing)

    cold, sequential, warm, frames = predict_speed(log=log)
    with_pairs, alone, size = training_speed(log=log)
    return [
        Figure("detector_input_side", size, "px"),
        Figure("detector_train_images_per_s", with_pairs, "img/s"),
        Figure("detector_network_images_per_s", alone, "img/s"),
        Figure("detector_predict_frames", frames, "frames"),
        Figure("detector_predict_warm_seconds", warm, "s"),
        Figure("detector_predict_cold_target", TARGET_COLD, "s"),
        Figure("detector_predict_warm_target", TARGET_WARM, "s"),
        Figure("detector_predict_cold_sequential_seconds", sequential, "s"),
        Figure("detector_predict_cold_seconds", cold, "s"),
    ]


def main(argv=None) -> int:
    parser = base_argparser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    mark_start()
    finish(NAME, measure(), "detector_predict_cold_seconds", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
