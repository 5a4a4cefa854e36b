#!/usr/bin/env python
"""The shipped default detector: SBI + boundary head, trained from scratch (``make detector``).

Prepares face canvases from real face photos and frames of real videos (never a
deepfake set: ``realworld/`` is for evaluation only), trains
:func:`dfdetect.models.detector.build_default_detector` on fresh Self-Blended Images
every step, selects the epoch by validation ROC AUC on held-out photos and videos (SBI
pairs and identity swaps), and exports it to ``dfdetect/weights/default.keras`` (the
model ``dfdetect predict`` uses when no model is named).

Resumable: ``--out`` keeps the full training state after every epoch; rerun the same
command to continue (``--hours`` stops cleanly after the epoch that passes a budget).
Scales: ``smoke`` (seconds, tests), ``cpu`` (128 px, ~1 h on 2 cores), ``paper``
(256 px, 100 epochs: for a GPU).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from dfdetect.errors import DfdetectError  # noqa: E402
from dfdetect.scales import SCALE_NAMES  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python experiments/default_detector.py --scale cpu --hours 1.5")
    parser.add_argument("--scale", choices=SCALE_NAMES, default="cpu")
    parser.add_argument("--faces", default=os.path.join(SHARED, "faces"),
                        help="folder of real face photos (default ../shared/data/faces; "
                             "'none' to use videos only)")
    parser.add_argument("--videos", default=os.path.join(SHARED, "videos"),
                        help="folder of real face videos (default ../shared/data/videos; "
                             "'none' for photos only). Never a folder of deepfakes.")
    parser.add_argument("--out", default=None,
                        help="run folder (default build/detector/<scale>): state, "
                             "checkpoints, history.csv")
    parser.add_argument("--export", default=None,
                        help="where the best model goes (default: the shipped "
                             "dfdetect/weights/default.keras at cpu/paper scale, "
                             "<out>/default.keras at smoke)")
    parser.add_argument("--results", default=os.path.join("results", "detector"),
                        help="where history.csv and training.json go (cpu/paper scale)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None,
                        help="planned epochs (default: the scale's)")
    parser.add_argument("--hours", type=float, default=None,
                        help="stop after the epoch that passes this budget; rerun resumes")
    parser.add_argument("--precision", default="float32",
                        choices=("auto", "float32", "mixed_bfloat16"),
                        help="training precision: float32 (default, the shipped model), "
                             "mixed_bfloat16, or auto (probed on the first build, bfloat16 "
                             "kept where > 10 %% faster; see dfdetect/precision.py)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes preparing the face pool")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    import dataclasses

    from dfdetect import detector

    sc = detector.SCALES[args.scale]
    if args.epochs:
        sc = dataclasses.replace(sc, epochs=args.epochs)
    out = args.out or os.path.join("build", "detector", args.scale)
    export = args.export or (os.path.join(out, "default.keras") if args.scale == "smoke"
                             else detector.DEFAULT_EXPORT)
    faces = None if args.faces == "none" else args.faces
    videos = None if args.videos == "none" else args.videos
    try:
        pool = detector.prepare_pool(faces, videos, sc, os.path.join("build", "detector",
                                                                      "pools"),
                                     workers=args.workers)
        command = "python experiments/default_detector.py " + " ".join(
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        detector.train_detector(pool, sc, out, export_path=export, seed=args.seed,
                                hours=args.hours, command=command,
                                precision_choice=args.precision)
        if args.scale != "smoke":
            print(f"training record: {detector.write_training_record(out, args.results)}")
    except DfdetectError as err:
        print(f"default_detector: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
