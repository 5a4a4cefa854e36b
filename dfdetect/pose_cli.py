"""``dfdetect pose extract``: upper-body keypoints of videos for P4 (parsing only; the
work is in :mod:`dfdetect.data.pose`).

Hooked into ``dfdetect/cli.py`` with ``add_pose_parser(subparsers)``.
"""

from __future__ import annotations

import argparse
import sys

from dfdetect.data import pose
from dfdetect.io import check_output_dir, refuse_overwriting_inputs

EXTRACT_DESCRIPTION = """\
Per frame, the 12 upper-body keypoints of OpenPose's COCO-18 model (nose, neck,
shoulders, elbows, wrists, eyes, ears) as (x, y) pixels -> 24 features, (0, 0) where a
point is not found. Writes into --out:
  poses/<video>.pose.csv   one row per frame (video_id, frame, time_s, detected, 24 features)
  segments.csv, labels.csv the paper's form: 150 rows a movement; one label row a movement
  summary.csv              per video: frames, frames with a pose, movements, errors
  raw/<video>.blazepose.csv  MediaPipe's 33 landmarks as it returned them (mediapipe)
Videos already extracted into --out are reused; extract real and fake videos into one
folder with two runs (--label real, --label fake) to get one labelled data set, which
experiments/p4_pose_lstm.py reads with --data.

Backends: mediapipe (MediaPipe Pose 0.10.14 in its own environment: `make pose-env`)
or openpose (inputs are folders of OpenPose --write_json output, COCO-18 or BODY_25)."""


def _print_failure(source: str, error: str) -> None:
    # The one-line form of every dfdetect error, on stderr (the error may name the file).
    line = error if error.startswith(f"{source}: ") else f"{source}: {error}"
    print(f"dfdetect: error: {line}", file=sys.stderr, flush=True)


def _cmd_pose_extract(args: argparse.Namespace) -> int:
    check_output_dir(args.out, "output folder")
    refuse_overwriting_inputs(args.out, args.inputs, "output folder")
    # MediaPipe's runner tidies nothing until every video is done: say what a rerun reuses.
    args.kept = (f"a rerun reuses every video whose {args.out}/poses/<video>.pose.csv was "
                 "written and extracts the others again")
    label = {"real": 0, "fake": 1, None: None}[args.label]
    videos = pose.extract_poses(args.inputs, args.out, backend=args.backend,
                                visibility=args.visibility, confidence=args.confidence,
                                fps=args.fps, python=args.pose_python,
                                overwrite=args.overwrite, log=lambda line: None)
    failed = [v for v in videos if v.error]
    for v in failed:
        _print_failure(v.source, v.error)
    if len(failed) == len(videos):
        return 2  # nothing extracted: no data set tables rewritten (or left empty)
    n_videos, n_segments = pose.update_dataset(args.out, videos, label=label, poi=args.poi,
                                               method=args.method)
    low = [v for v in videos if not v.error and v.fraction < args.min_detected]
    for v in videos:
        if not v.error:
            print(f"{v.source}: {v.frames} frames, pose in {v.with_pose} "
                  f"({100 * v.fraction:.1f} %), {v.segments} movements of "
                  f"{pose.SEGMENT_FRAMES} frames")
    frames = sum(v.frames for v in videos if not v.error)
    found = sum(v.with_pose for v in videos if not v.error)
    share = f"{100 * found / frames:.1f} %" if frames else "n/a"
    print(f"pose extract ({args.backend}): {len(videos) - len(failed)}/{len(videos)} inputs, "
          f"{frames} frames, pose in {found} ({share}); {args.out} now holds "
          f"{n_videos} videos, {n_segments} movements")
    for v in low:
        print(f"{v.source}: keypoints in only {100 * v.fraction:.1f} % of frames "
              f"(required {100 * args.min_detected:.0f} %)")
    return 2 if failed else 1 if low else 0


def add_pose_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``pose extract`` to the ``dfdetect`` sub-command parsers.

    Args:
        subparsers: the object ``ArgumentParser.add_subparsers()`` returned.

    Returns:
        The ``pose`` parser.
    """
    pose_parser = subparsers.add_parser("pose", help="upper-body pose keypoints (P4)")
    pose_sub = pose_parser.add_subparsers(dest="pose_command", required=True)
    extract = pose_sub.add_parser(
        "extract", help="12 upper-body keypoints per frame -> the paper's CSVs",
        description=EXTRACT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    extract.add_argument("inputs", nargs="+", metavar="VIDEO",
                         help="video files (mediapipe) or folders of OpenPose JSON (openpose)")
    extract.add_argument("--out", required=True, help="output folder")
    extract.add_argument("--backend", choices=("mediapipe", "openpose"), default="mediapipe",
                         help="pose estimator (default mediapipe)")
    extract.add_argument("--label", choices=("real", "fake"), default=None,
                         help="label of these videos in labels.csv (default: none)")
    extract.add_argument("--poi", default="", help="person of interest of these videos")
    extract.add_argument("--method", default="",
                         help="how the videos were made (default: real / fake)")
    extract.add_argument("--visibility", type=float, default=0.5,
                         help="mediapipe: BlazePose visibility below which a point is "
                              "(0, 0) (default 0.5)")
    extract.add_argument("--confidence", type=float, default=0.0,
                         help="openpose: confidence at or below which a point is (0, 0)")
    extract.add_argument("--fps", type=float, default=30.0,
                         help="openpose: frame rate of the video (JSON does not record it)")
    extract.add_argument("--pose-python", default=None,
                         help="python of the MediaPipe environment (default .venv-pose, "
                              "or $DFDETECT_POSE_PYTHON)")
    extract.add_argument("--min-detected", type=float, default=0.0,
                         help="exit 1 when a video has a pose in fewer than this share "
                              "of its frames (e.g. 0.95)")
    extract.add_argument("--overwrite", action="store_true",
                         help="extract again videos already in --out")
    extract.set_defaults(func=_cmd_pose_extract)
    return pose_parser
