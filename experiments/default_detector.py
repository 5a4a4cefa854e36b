#!/usr/bin/env python
"""The shipped default detector: SBI + boundary head on ImageNet EfficientNet-Lite (``make detector``).

Prepares face canvases from real face photos and frames of real videos (never a
deepfake set), trains :func:`dfdetect.models.detector.build_lite_detector` (or, with
``--backbone scratch``, the first release's from-scratch CNN) on fresh Self-Blended
Images every step, and exports the selected epoch to ``dfdetect/weights/default.keras``
(the model ``dfdetect predict`` uses when no model is named).

Selection follows the published SBI protocol: with ``--select`` (default: the FF++ clips
of ``../shared/data/realworld/``, when that folder exists) the epoch and the threshold
are chosen on real FaceForensics++ deepfakes, which are never trained on; the Celeb-DF
and DFDC clips beside them stay a cross-dataset test. Without it, on the held-out
validation photos and videos (SBI pairs and identity swaps).

Resumable: ``--out`` keeps the full training state after every epoch; rerun the same
command to continue (``--hours`` stops cleanly after the epoch that passes a budget).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from dfdetect.detector.settings import BACKBONES, SCALES, STAGES, scratch_recipe  # noqa: E402
from dfdetect.errors import DfdetectError  # noqa: E402
from dfdetect.scales import SCALE_NAMES  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))
REALWORLD = os.path.join(SHARED, "realworld")
DEFAULT_SELECT = REALWORLD if os.path.isdir(REALWORLD) else "none"


def _describe(name: str) -> str:
    def one(sc, stop_after=None) -> str:
        epochs = f"{stop_after} of {sc.epochs}" if stop_after else f"{sc.epochs}"
        return (f"{sc.backbone} at {sc.size} px, {epochs} epochs of {sc.steps} steps, "
                f"lr {sc.lr:g} (backbone x{sc.backbone_lr:g})")

    if name in STAGES:
        return " then ".join(one(st.scale(SCALES[name]), st.stop_after) for st in STAGES[name])
    return one(SCALES[name])


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python experiments/default_detector.py --scale cpu --hours 1.5")
    parser.add_argument("--scale", choices=SCALE_NAMES, default="cpu",
                        help="; ".join(f"{n}: {_describe(n)}" for n in SCALE_NAMES))
    parser.add_argument("--backbone", choices=BACKBONES, default=None,
                        help="the network under the heads: lite0/lite1/lite2 (ImageNet "
                             "EfficientNet-Lite) or scratch (the first release's CNN); "
                             "default: the scale's")
    parser.add_argument("--size", type=int, default=None,
                        help="input side, divisible by 32 (default: the scale's)")
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate of the heads (default: the scale's)")
    parser.add_argument("--backbone-lr", type=float, default=None,
                        help="the backbone's rate as a multiple of --lr (default: the "
                             "scale's)")
    parser.add_argument("--canvas", type=int, default=None,
                        help="side of the prepared face canvases (default: the scale's; "
                             "about 1.5x --size keeps the crop at its native resolution)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per epoch (default: the scale's)")
    parser.add_argument("--frame-share", type=float, default=None,
                        help="chance that a training pair is built on a real video frame "
                             "rather than a photo (default: the scale's)")
    parser.add_argument("--swap-share", type=float, default=None,
                        help="chance that a pair's fake is an identity swap with another "
                             "training face instead of its self-blend (default: the "
                             "scale's, 0: SBI alone)")
    parser.add_argument("--select", default=DEFAULT_SELECT,
                        help="folder whose ffpp_* clips pick the epoch and threshold "
                             "(default ../shared/data/realworld when it exists; 'none': "
                             "select on the validation split)")
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
    parser.add_argument("--init", default=None, metavar="CHECKPOINT",
                        help="start from another run's last.keras / best training "
                             "checkpoint (same network, any input side) instead of "
                             "ImageNet: e.g. continue a 128 px run at 224 px")
    parser.add_argument("--record-as", default=None, metavar="NAME",
                        help="after training, score the selected epoch once on the "
                             "cross-dataset test clips (celebdf_* / dfdc_* of the --select "
                             "folder) and add the run as row NAME of <results>/ablation.csv")
    parser.add_argument("--note", default="", help="what this run changed (ablation row)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes preparing the face pool")
    return parser.parse_args(argv)


CACHE = os.path.join("build", "detector")


def _runs(args, detector) -> list[tuple]:
    """``(scale, run folder, init checkpoint, stop_after)`` of each run this command trains.

    Without flags that change the recipe, a scale with stages (:data:`STAGES`) runs them in
    order, each from the previous stage's last checkpoint; otherwise one run.
    """
    import dataclasses

    sc = detector.SCALES[args.scale]
    out = args.out or os.path.join(CACHE, args.scale)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("size", args.size),
                                   ("lr", args.lr), ("backbone_lr", args.backbone_lr),
                                   ("steps", args.steps), ("canvas", args.canvas),
                                   ("frame_share", args.frame_share),
                                   ("swap_share", args.swap_share)) if v is not None}
    if args.scale in STAGES and not (overrides or args.backbone or args.init):
        runs, init = [], None
        for stage in STAGES[args.scale]:
            folder = os.path.join(out, stage.name)
            runs.append((stage.scale(sc), folder, init, stage.stop_after))
            init = os.path.join(folder, "last.keras")
        return runs
    if args.backbone == "scratch":
        sc = scratch_recipe(sc)
    elif args.backbone:
        sc = dataclasses.replace(sc, backbone=args.backbone)
    return [(dataclasses.replace(sc, **overrides), out, args.init, None)]


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    from dfdetect import detector

    runs = _runs(args, detector)
    final_out = runs[-1][1]
    export = args.export or (os.path.join(final_out, "default.keras") if args.scale == "smoke"
                             else detector.DEFAULT_EXPORT)
    faces = None if args.faces == "none" else args.faces
    videos = None if args.videos == "none" else args.videos
    select = None if args.select == "none" else args.select
    command = "python experiments/default_detector.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    try:
        for i, (sc, out, init, stop_after) in enumerate(runs):
            last = i == len(runs) - 1
            if len(runs) > 1:
                print(f"stage {i + 1}/{len(runs)}: {os.path.basename(out)} ({sc.size} px)")
            selection = None
            if select and args.scale != "smoke":
                selection = detector.load_selection(select, sc.size,
                                                    os.path.join(CACHE, "selection"))
            pool = detector.prepare_pool(faces, videos, sc, os.path.join(CACHE, "pools"),
                                         workers=args.workers)
            detector.train_detector(pool, sc, out, export_path=export if last else None,
                                    seed=args.seed, hours=args.hours, command=command,
                                    precision_choice=args.precision, selection=selection,
                                    init_weights=init, stop_after=stop_after)
            done = json.loads(open(os.path.join(out, "state.json")).read())["epoch"]
            if done < min(sc.epochs, stop_after or sc.epochs):
                return 0  # --hours spent inside this stage: a rerun continues it
        out = final_out
        if args.record_as:
            from dfdetect.detector import ablation

            test = detector.load_test_clips(select, sc.size, os.path.join(
                CACHE, "selection")) if select else None
            row = ablation.ablation_row(out, args.record_as, test, note=args.note)
            print(f"ablation row {args.record_as}: {ablation.record(args.results, row, out)}")
        # the committed record describes the shipped detector: only a run exported there
        ships = os.path.abspath(export) == os.path.abspath(detector.DEFAULT_EXPORT)
        if ships and args.scale != "smoke":
            print(f"training record: {detector.write_training_record(out, args.results)}")
    except DfdetectError as err:
        print(f"default_detector: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
