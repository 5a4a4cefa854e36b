#!/usr/bin/env python
"""The shipped detector: training images/s and ``predict`` on a 10-s 720p video.

- **training**: the detector's own training step (``dfdetect.detector``: fresh SBI pairs
  made by the tf.data pipeline *and* the network's update) at the cpu scale's input
  side, on a small face pool prepared from ``../shared/data/faces``; images per second
  over a few steps after the first (tracing) one. The network alone (random inputs, no
  pair making) is measured beside it, so the pairs' share shows.
- **predict**: ``dfdetect predict`` with the shipped detector for the benchmark video of
  :mod:`benchmarks.predict_latency` (a real close-up looped to 10 s at 1280 x 720), 16
  frames as the detector's metadata says. Cold: a fresh process, everything from the
  imports to the result inside the timing, as a user's command runs it
  (``predict.load_and_predict``): on the default path, the detector's LiteRT twin
  (``default.tflite``, no TensorFlow) with the video's faces found by two processes; and
  with Keras (TensorFlow's import, the model's load and first trace), with the forked
  face worker and without it. The three are interleaved. Warm: the video again in the
  same process, on both paths. Medians of 3. Targets on 2 quiet cores: <= 5 s cold,
  <= 2 s warm.

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


#: One cold ``dfdetect predict`` in a fresh interpreter: prints its seconds. argv: video,
#: runtime (auto: the LiteRT twin; keras), fork (the Keras path's face worker) or plain.
COLD_CHILD = """
import sys, time
from dfdetect import predict
start = time.perf_counter()
_, _, summary = predict.load_and_predict(predict.default_model(), [sys.argv[1]],
                                         runtime=sys.argv[2], background=sys.argv[3] == "fork")
assert not summary.results[0].failed, summary.results[0].error
print(time.perf_counter() - start)
"""

#: Warm predict on the default path (the LiteRT twin, faces found by two processes): the
#: video scored once, then timed ``repeats`` times; prints the seconds, one per line.
WARM_CHILD = """
import sys, time
from dfdetect import predict
model, meta, _ = predict.load_and_predict(predict.default_model(), [sys.argv[1]])
assert type(model).__name__ == "LiteRTModel", type(model)
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    predict.score_video(model, meta, sys.argv[1])
    print(time.perf_counter() - start)
"""


def _child(script: str, *args: str) -> list[float]:
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        raise RuntimeError(f"predict failed: {done.stderr.strip()[-500:]}")
    return [float(line) for line in done.stdout.split()]


def cold_seconds(video: str, runtime: str = "auto", background: bool = False) -> float:
    """Seconds of one cold predict of ``video`` in a fresh process: with the shipped
    detector's LiteRT twin (``auto``), or Keras with or without the forked face worker."""
    return _child(COLD_CHILD, video, runtime, "fork" if background else "plain")[-1]


@dataclasses.dataclass(frozen=True)
class PredictSpeed:
    """Medians of predict's timings, in seconds (see the module docstring)."""

    cold: float
    cold_keras: float
    cold_keras_sequential: float
    warm: float
    warm_keras: float
    frames: int


def predict_speed(seconds: float = 10.0, repeats: int = 3, log=print) -> PredictSpeed:
    """Predict with the shipped detector, medians of ``repeats``: cold on the default
    path (LiteRT) and with Keras (with and without the face worker), interleaved so that
    load from other jobs hits all alike; warm on both."""
    import numpy as np

    from dfdetect.predict import default_model, load_detector, score_video

    with tempfile.TemporaryDirectory(prefix="bench-detector-") as tmp:
        video = str(make_video(SHARED_DATA / "videos" / SOURCE_VIDEO, Path(tmp) / "video.mp4",
                               seconds=seconds))
        lite, forked, plain = [], [], []
        for _ in range(repeats):
            lite.append(cold_seconds(video))
            forked.append(cold_seconds(video, "keras", background=True))
            plain.append(cold_seconds(video, "keras", background=False))
        warm = _child(WARM_CHILD, video, str(repeats))
        model, meta = load_detector(default_model())  # TensorFlow starts here, not before
        result = score_video(model, meta, video)  # the first call traces
        warm_keras = []
        for _ in range(repeats):
            start = time.perf_counter()
            score_video(model, meta, video)
            warm_keras.append(time.perf_counter() - start)
    speed = PredictSpeed(*(float(np.median(v)) for v in (lite, forked, plain, warm, warm_keras)),
                         frames=int(result.frames_sampled))
    log(f"predict: {speed.cold:.2f} s cold with LiteRT ({speed.cold_keras:.2f} s with Keras "
        f"and the face worker, {speed.cold_keras_sequential:.2f} s without it), "
        f"{speed.warm:.2f} s warm with LiteRT ({speed.warm_keras:.2f} s with Keras; "
        f"{speed.frames} frames, backbone {meta.get('backbone', 'scratch')})")
    return speed


def measure(log=print) -> list[Figure]:
    """Every figure of this benchmark."""
    speed = predict_speed(log=log)
    with_pairs, alone, size = training_speed(log=log)
    return [
        Figure("detector_input_side", size, "px"),
        Figure("detector_train_images_per_s", with_pairs, "img/s"),
        Figure("detector_network_images_per_s", alone, "img/s"),
        Figure("detector_predict_frames", speed.frames, "frames"),
        Figure("detector_predict_warm_keras_seconds", speed.warm_keras, "s"),
        Figure("detector_predict_warm_seconds", speed.warm, "s"),
        Figure("detector_predict_cold_target", TARGET_COLD, "s"),
        Figure("detector_predict_warm_target", TARGET_WARM, "s"),
        Figure("detector_predict_cold_sequential_seconds", speed.cold_keras_sequential, "s"),
        Figure("detector_predict_cold_keras_seconds", speed.cold_keras, "s"),
        Figure("detector_predict_cold_seconds", speed.cold, "s"),
    ]


def main(argv=None) -> int:
    parser = base_argparser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    mark_start()
    finish(NAME, measure(), "detector_predict_cold_seconds", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
