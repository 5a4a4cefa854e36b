#!/usr/bin/env python
"""The shipped detector: training images/s and ``predict`` on a 10-s 720p video.

- **training**: the detector's own training step (``dfdetect.detector``: fresh SBI pairs
  made by the tf.data pipeline *and* the network's update) at the cpu scale's input
  side, on a small face pool prepared from ``../shared/data/faces``; images per second
  over a few steps after the first (tracing) one. The network alone (random inputs, no
  pair making) is measured beside it, so the pairs' share shows.
- **predict**: ``dfdetect predict`` on the shipped ``dfdetect/weights/default.keras``
  for the benchmark video of :mod:`benchmarks.predict_latency` (a real close-up looped
  to 10 s at 1280 x 720), 16 frames as the detector's metadata says: cold (TensorFlow's
  import, the model's load and first trace inside the timing, as a user's command runs
  them: ``predict.load_and_predict``, the video's faces found by a forked process
  meanwhile) and warm (the video again with the model loaded). Targets on 2 quiet cores: <= 5 s cold, <= 2 s warm.

Run: ``python benchmarks/detector.py`` (headline: ``detector_predict_cold_seconds``).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def predict_speed(seconds: float = 10.0, log=print) -> tuple[float, float, int]:
    """(cold seconds, warm seconds, frames) of predict with the shipped detector."""
    from dfdetect.predict import default_model, load_and_predict, score_video

    with tempfile.TemporaryDirectory(prefix="bench-detector-") as tmp:
        video = make_video(SHARED_DATA / "videos" / SOURCE_VIDEO, Path(tmp) / "video.mp4",
                           seconds=seconds)
        start = time.perf_counter()
        # what `dfdetect predict VIDEO` runs: TensorFlow starts while a forked process
        # finds the video's faces (when TensorFlow is not imported yet, as here)
        model, meta, summary = load_and_predict(default_model(), [video])
        cold = time.perf_counter() - start
        result = summary.results[0]
        if result.failed:
            raise RuntimeError(f"predict failed on the benchmark video: {result.error}")
        start = time.perf_counter()
        score_video(model, meta, video)
        warm = time.perf_counter() - start
    frames = int(result.frames_sampled)
    log(f"predict: {cold:.2f} s cold, {warm:.2f} s warm ({frames} frames, "
        f"backbone {meta.get('backbone', 'scratch')})")
    return cold, warm, frames


def measure(log=print) -> list[Figure]:
    """Every figure of this benchmark."""
    import face_recognition  # noqa: F401  (dlib's model load is not part of either timing)

    cold, warm, frames = predict_speed(log=log)
    with_pairs, alone, size = training_speed(log=log)
    return [
        Figure("detector_input_side", size, "px"),
        Figure("detector_train_images_per_s", with_pairs, "img/s"),
        Figure("detector_network_images_per_s", alone, "img/s"),
        Figure("detector_predict_frames", frames, "frames"),
        Figure("detector_predict_warm_seconds", warm, "s"),
        Figure("detector_predict_cold_target", TARGET_COLD, "s"),
        Figure("detector_predict_warm_target", TARGET_WARM, "s"),
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
