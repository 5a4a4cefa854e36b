#!/usr/bin/env python
"""Per-frame BlazePose landmarks of videos, written to CSV (runs inside .venv-pose).

MediaPipe 0.10.14 needs protobuf < 5 and TensorFlow 2.21 needs >= 6.31, so this script
runs in its own environment (``make pose-env``) and imports only mediapipe, cv2 and
numpy (plus the standard library). dfdetect reads its CSV (``dfdetect/data/pose.py``)
and maps the 33 landmarks to the 12 COCO upper-body keypoints.

    .venv-pose/bin/python tools/mediapipe_pose.py VIDEO [VIDEO...] --out-dir DIR

writes ``DIR/<video stem>.blazepose.csv``: one row per frame, columns ``frame, time_s,
fps, width, height, detected`` then ``lm<i>_x, lm<i>_y, lm<i>_z, lm<i>_v`` for the 33
landmarks (x, y normalized to the image width and height as MediaPipe returns them, v
the visibility; a frame without a pose has detected 0 and empty landmark cells). One JSON
line per video goes to stdout (``video, csv, frames, detected, fps, width, height,
seconds`` or ``video, error``). Exit status: 0 all videos done, 1 some failed, 2 usage.

``--self-check`` only verifies that the models load offline (used by ``make pose-env``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

N_LANDMARKS = 33


def columns() -> list[str]:
    cols = ["frame", "time_s", "fps", "width", "height", "detected"]
    for i in range(N_LANDMARKS):
        cols += [f"lm{i}_x", f"lm{i}_y", f"lm{i}_z", f"lm{i}_v"]
    return cols


def make_pose(model_complexity: int, min_detection: float, min_tracking: float):
    import mediapipe as mp

    # Video mode: the detector runs once, then landmarks are tracked frame to frame,
    # like a real-time estimator. Complexity 1 is the model shipped in the wheel
    # (0 and 2 would be downloaded, which fails offline).
    return mp.solutions.pose.Pose(static_image_mode=False, model_complexity=model_complexity,
                                  smooth_landmarks=True, enable_segmentation=False,
                                  min_detection_confidence=min_detection,
                                  min_tracking_confidence=min_tracking)


def process_video(path: str, out_csv: str, args) -> dict:
    import cv2

    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise ValueError("cannot open the video (missing, unreadable or unsupported codec)")
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    if not (0 < fps < 1000):
        fps = 0.0
    tmp = out_csv + ".tmp"
    frames = detected = 0
    width = height = 0
    start = time.perf_counter()
    empty = ",".join([""] * (4 * N_LANDMARKS))
    with make_pose(args.model_complexity, args.min_detection_confidence,
                   args.min_tracking_confidence) as pose, open(tmp, "w") as handle:
        handle.write(",".join(columns()) + "\n")
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            height, width = frame.shape[:2]
            result = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            t = frames / fps if fps else 0.0
            head = f"{frames},{t:.3f},{fps:.3f},{width},{height}"
            if result.pose_landmarks:
                detected += 1
                cells = []
                for lm in result.pose_landmarks.landmark:
                    cells += [f"{lm.x:.5f}", f"{lm.y:.5f}", f"{lm.z:.5f}", f"{lm.visibility:.4f}"]
                handle.write(f"{head},1,{','.join(cells)}\n")
            else:
                handle.write(f"{head},0,{empty}\n")
            frames += 1
    cap.release()
    if frames == 0:
        os.unlink(tmp)
        raise ValueError("no frame could be decoded")
    os.replace(tmp, out_csv)
    return {"csv": out_csv, "frames": frames, "detected": detected, "fps": fps,
            "width": width, "height": height,
            "seconds": round(time.perf_counter() - start, 2)}


def self_check(args) -> int:
    import numpy as np

    with make_pose(args.model_complexity, 0.5, 0.5) as pose:
        pose.process(np.zeros((64, 64, 3), np.uint8))
    import mediapipe as mp

    print(json.dumps({"mediapipe": mp.__version__, "ok": True}))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="*", help="video files")
    parser.add_argument("--out-dir", help="folder for <stem>.blazepose.csv")
    parser.add_argument("--model-complexity", type=int, default=1,
                        help="BlazePose model (default 1, the one the wheel ships)")
    parser.add_argument("--min-detection-confidence", type=float, default=0.5)
    parser.add_argument("--min-tracking-confidence", type=float, default=0.5)
    parser.add_argument("--self-check", action="store_true",
                        help="only check that the pose models load")
    args = parser.parse_args(argv)
    if args.self_check:
        return self_check(args)
    if not args.videos or not args.out_dir:
        parser.error("give videos and --out-dir")
    os.makedirs(args.out_dir, exist_ok=True)
    failed = 0
    for video in args.videos:
        stem = os.path.splitext(os.path.basename(video))[0]
        out_csv = os.path.join(args.out_dir, f"{stem}.blazepose.csv")
        try:
            report = {"video": video, **process_video(video, out_csv, args)}
        except Exception as err:  # one bad video must not stop the batch
            failed += 1
            message = " ".join(str(err).split()) or type(err).__name__
            report = {"video": video, "error": message}
            print(f"{video}: {message}", file=sys.stderr)
        print(json.dumps(report), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
