#!/usr/bin/env python
"""Which inference variant the detector uses, chosen on the FF++ selection clips (``make detector-variants``).

Scores finished detectors on the FaceForensics++ clips of ``../shared/data/realworld/``
(``ffpp_*``, which the SBI protocol lets choose a checkpoint, a threshold and a variant)
under every variant of ``dfdetect.detector.variants``: frame scores aggregated by mean,
median, mean log-odds or max, each with and without averaging a left-right mirrored
copy of every crop. Each variant is compared with the one predict uses (plain crops,
mean) by a paired bootstrap on the same clips and written to
``results/detector/variants.csv``. ``--combine`` also scores finished runs combined, their
frame scores averaged (an ensemble) and their weights averaged (a soup), each paired
against the first ``--model`` (``results/detector/combinations.csv``). The Celeb-DF /
DFDC test clips are never scored here.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from dfdetect import predict  # noqa: E402
from dfdetect.errors import DfdetectError  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REALWORLD = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "realworld"))
CACHE = os.path.join("build", "detector", "selection")


def _model_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def _combine_arg(text: str) -> tuple[str, list[str]]:
    name, sep, members = text.partition("=")
    parts = [m for m in members.split("+") if m]
    if not sep or not name or len(parts) < 2:
        raise argparse.ArgumentTypeError(f"expected NAME=MODEL+MODEL[+...], got {text!r}")
    return name, parts


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python experiments/detector_variants.py "
               "--model default=dfdetect/weights/default.keras "
               "--model r2=build/detector/r2_lite0_224/best.keras")
    parser.add_argument("--model", type=_model_arg, action="append", required=True,
                        metavar="NAME=PATH",
                        help="a detector exported by dfdetect (.keras, image model); repeat "
                             "for several. NAME is its row label in variants.csv")
    parser.add_argument("--combine", type=_combine_arg, action="append", default=[],
                        metavar="NAME=A+B[+...]",
                        help="also score these --model NAMEs combined, as an ensemble (frame "
                             "scores averaged) and as a soup (weights averaged; the same "
                             "network only), each paired against the first --model; repeat "
                             "for several")
    parser.add_argument("--select", default=REALWORLD,
                        help="folder whose ffpp_* clips are scored (default "
                             "../shared/data/realworld)")
    parser.add_argument("--results", default=os.path.join("results", "detector"),
                        help="where variants.csv goes (rows of the same NAME are replaced)")
    parser.add_argument("--boot", type=int, default=2000, help="bootstrap resamples")
    return parser.parse_args(argv)


def _scorer(model, spec):
    lo, hi = spec.value_range

    def fn(x):
        return predict.score_crops(model, (lo + x * (hi - lo)).astype("float32"))
    return fn


def combinations(combine: list, loaded: dict, against: str, n_boot: int) -> list[dict]:
    """Ensemble and soup rows of each ``--combine``, paired against model ``against``.

    ``loaded``: NAME -> (model, its spec, its selection clips, its plain P(fake) per crop).
    """
    from dfdetect.detector import variants
    from dfdetect.detector.selection import frame_scores
    from dfdetect.models.detector import average_detectors

    rows = []
    sel = loaded[against][2]
    for combo, members in combine:
        sides = {loaded[m][2].side for m in members} | {sel.side}
        if len(sides) > 1:
            raise DfdetectError(f"--combine {combo}: its models take different input sides "
                                f"({', '.join(map(str, sorted(sides)))} px); combine one side")
        ensemble = np.mean([loaded[m][3] for m in members], axis=0)
        soup = average_detectors([loaded[m][0] for m in members])
        souped = frame_scores(_scorer(soup, loaded[members[0]][1]), sel.crops)
        for how, per_frame in (("ensemble", ensemble), ("soup", souped)):
            r = variants.combination_row(combo, how, members, per_frame, against,
                                         loaded[against][3], sel, n_boot=n_boot)
            print(f"{combo:>22s} {how:>9s}  FF++ AUC {r['ffpp_auc']:.3f} (c23 "
                  f"{r['ffpp_auc_c23']:.3f} / c40 {r['ffpp_auc_c40']:.3f})  vs {against} "
                  f"{r['diff']:+.3f} [{r['diff_low']:+.3f}, {r['diff_high']:+.3f}] "
                  f"p {r['diff_p']:.3f}")
            rows.append(r)
    return rows


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    from dfdetect.detector import load_selection, variants
    from dfdetect.detector.selection import frame_scores

    try:
        names = [name for name, _ in args.model]
        for combo, members in args.combine:
            unknown = [m for m in members if m not in names]
            if unknown:
                raise DfdetectError(f"--combine {combo}: {', '.join(unknown)} is not a --model "
                                    f"NAME (those are {', '.join(names)})")
        rows, loaded = [], {}
        for name, path in args.model:
            model, meta = predict.load_detector(path)
            spec = predict.model_spec(model, meta)
            if spec.kind != "image":
                raise DfdetectError(f"{path}: a video model; variants are for image detectors")
            sel = load_selection(args.select, spec.height, CACHE)
            fn = _scorer(model, spec)
            plain = frame_scores(fn, sel.crops)  # once: the variants and --combine share it
            loaded[name] = (model, spec, sel, plain)
            found = variants.variant_rows(name, fn, sel, n_boot=args.boot, plain=plain)
            for r in found:
                print(f"{name:>22s} {r['view']:>12s} {r['aggregation']:>10s}  FF++ AUC "
                      f"{r['ffpp_auc']:.3f} (c23 {r['ffpp_auc_c23']:.3f} / c40 "
                      f"{r['ffpp_auc_c40']:.3f})  vs plain-mean {r['diff']:+.3f} "
                      f"[{r['diff_low']:+.3f}, {r['diff_high']:+.3f}] p {r['diff_p']:.3f}")
            rows += found
        path = variants.record_variants(args.results, rows)
        kept = variants.adopted(rows)
        print(f"variants: {path}; "
              + (f"better on every model: {kept}" if kept else
                 "no variant beats the shipped one (plain, mean) on every model: kept"))
        if args.combine:
            combined = combinations(args.combine, loaded, names[0], args.boot)
            print(f"combinations: {variants.record_combinations(args.results, combined)}")
    except DfdetectError as err:
        print(f"detector_variants: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
