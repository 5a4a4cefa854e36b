"""The ``dfdetect`` command: parses arguments and calls the library (nothing more).

Every user-facing failure is a :class:`dfdetect.errors.DfdetectError`, printed as one
line ``dfdetect: error: <file>: <what is wrong>`` with exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from dfdetect.errors import DfdetectError

LAYOUTS = ("ffpp", "celebdf", "openforensics", "dfdc", "folder")


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter buries the one line a user needs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cmd_data_crop(args: argparse.Namespace) -> int:
    from dfdetect.data import store

    summary = store.crop_dataset(
        args.source, layout=args.layout, out=args.out, frames=args.frames,
        size=args.size, label=args.label, detector=args.detector, workers=args.workers,
    )
    print(summary.report())
    return 0 if summary.faces_found > 0 else 1


def _cmd_data_build(args: argparse.Namespace) -> int:
    from dfdetect.data import benchmark

    summary = benchmark.build_benchmark(
        args.benchmark, faces=args.faces, scale=args.scale, out=args.out, seed=args.seed,
        holdout_method=args.holdout_method,
    )
    print(summary.report())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="dfdetect",
        description="Deepfake detection: build data, reproduce the papers' tables, "
                    "score videos. Labels: 1 = fake, 0 = real.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="build face-crop stores and embedded benchmarks")
    data_sub = data.add_subparsers(dest="data_command", required=True)

    crop = data_sub.add_parser(
        "crop", help="detect faces in a dataset and write crops + manifest.csv",
        description="Sample N evenly spaced frames per video (or take each image), "
                    "keep the largest face, crop a square 1.3x its side and write "
                    "<out>/crops/... + <out>/manifest.csv. Resumes where it stopped.",
    )
    crop.add_argument("source", help="dataset root, a folder with real/ + fake/, "
                      "a flat folder or a single file (the last two need --label)")
    crop.add_argument("--layout", choices=LAYOUTS, default="folder",
                      help="dataset layout (default: folder)")
    crop.add_argument("--frames", type=int, default=40, help="frames per video (default 40)")
    crop.add_argument("--size", type=int, default=256, help="crop side in pixels (default 256)")
    crop.add_argument("--out", required=True, help="store directory to write")
    crop.add_argument("--label", choices=("real", "fake"),
                      help="label for a flat folder or a single file")
    crop.add_argument("--detector", choices=("hog", "cnn"), default="hog",
                      help="face_recognition detector (default hog; cnn is ~60x slower)")
    crop.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                      help="parallel worker processes (default: all cores)")
    crop.set_defaults(func=_cmd_data_crop)

    build = data_sub.add_parser(
        "build", help="generate an embedded benchmark (no download needed)",
        description="Make real/fake face data with dfdetect's own forgery generator "
                    "and write a store exactly like 'data crop' does.",
    )
    build.add_argument("--benchmark", choices=("images", "videos", "poses"), required=True)
    build.add_argument("--faces", default="procedural",
                       help="'procedural' (default, drawn faces) or a folder of real face "
                            "photos or videos, e.g. ../shared/data/faces")
    build.add_argument("--scale", choices=("smoke", "cpu", "paper"), default="cpu")
    build.add_argument("--out", required=True, help="store directory to write")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--holdout-method", default=None,
                       help="forgery method kept out of train/val, used for the "
                            "cross-dataset style split")
    build.set_defaults(func=_cmd_data_build)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dfdetect`` console command."""
    _quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DfdetectError as err:
        print(f"dfdetect: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dfdetect: interrupted; finished work is kept, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
