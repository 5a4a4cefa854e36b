"""The ``dfdetect`` command: parses arguments and calls the library (nothing more).

Every user-facing failure is printed as one line ``dfdetect: error: <file>: <what is
wrong / what to do>`` with exit code 2: a :class:`dfdetect.errors.DfdetectError`, and
also (one error boundary, :func:`main`) any ``OSError`` (full disk, permissions, a
read-only file system), decode error or damaged archive the library did not turn into
one. ``--verbose`` adds the traceback. Output paths are checked before the work starts,
and none may name an input (:func:`dfdetect.io.refuse_overwriting_inputs`). After a
Ctrl-C (exit 130) or a full disk, the line says what the run keeps: each command sets
``args.kept``, and a library function that knows better notes it on the exception
(:func:`dfdetect.errors.note_kept`, e.g. the epochs ``train`` checkpointed).
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import traceback
import zipfile
import zlib

from dfdetect import __version__
from dfdetect.errors import DataError, DfdetectError, ModelError, kept_note, one_line
from dfdetect.io import (check_output_dir, check_output_file, os_error_line,
                         refuse_overwriting_inputs, same_file, start_tensorflow)
from dfdetect.models.litert import RUNTIMES
from dfdetect.pose_cli import add_pose_parser
from dfdetect.progress import every_seconds
from dfdetect.scales import SCALE_NAMES, get_scale

# The commands' own modules are imported inside the command that uses it, on purpose:
# each pulls OpenCV (0.3 s), and some TensorFlow, scikit-learn or matplotlib, so
# 'dfdetect --help' and every 'dfdetect <command> --help' load only the modules above;
# TensorFlow is imported through _import_tensorflow_silently.

LAYOUTS = ("ffpp", "celebdf", "openforensics", "dfdc", "folder")
#: predict pads paths to the longest input's, up to this many characters.
PATH_COLUMN_MAX = 80
#: What --plot can be: the formats matplotlib's savefig writes, checked before scoring.
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".webp", ".tif", ".tiff",
                 ".eps", ".ps")
#: What a store keeps after a fault: finished videos are committed to its manifest.
STORE_KEPT = ("the store keeps every video finished before this; rerun the same command "
              "to resume")


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter buries the one line a user needs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


#: Commands that load a Keras model, and so TensorFlow, before they start (``predict``
#: starts it itself, finding the first video's faces meanwhile: ``load_and_predict``).
TENSORFLOW_COMMANDS = ("explain", "evaluate", "train", "litert")


def _import_tensorflow_silently() -> None:
    """Imports TensorFlow without its start-up lines (:func:`dfdetect.io.start_tensorflow`);
    a failure to import still raises (and reaches the error boundary)."""
    start_tensorflow()


def _cmd_data_crop(args: argparse.Namespace) -> int:
    from dfdetect.data import crop  # deferred: cv2 (0.3 s) is not for --help

    check_output_dir(args.out, "store folder")
    refuse_overwriting_inputs(args.out, [args.source], "store folder")
    args.kept = STORE_KEPT
    summary = crop.crop_dataset(
        args.source, layout=args.layout, out=args.out, frames=args.frames,
        size=args.size, label=args.label, detector=args.detector, workers=args.workers,
        min_face=args.min_face or None, split_fractions=args.split_ratios,
        split_seed=args.split_seed,
    )
    print(summary.report())
    return 0 if summary.faces_found > 0 else 1


def _cmd_data_build(args: argparse.Namespace) -> int:
    from dfdetect.synthetic import benchmark  # deferred: cv2 (see the imports above)

    check_output_dir(args.out, "store folder")
    if args.faces != "procedural":
        refuse_overwriting_inputs(args.out, [args.faces], "store folder")
    args.kept = STORE_KEPT
    summary = benchmark.build_benchmark(
        args.benchmark, faces=args.faces, scale=get_scale(args.scale), out=args.out,
        seed=args.seed,
        holdout_method=args.holdout_method,
        **({"generator": args.generator} if args.generator is not None else {}),
    )
    print(summary.report())
    return 0


# --------------------------------------------------------------------------- predict / explain

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _split_ratios(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not three numbers: {text!r}") from None
    if len(values) != 3 or min(values) < 0 or values[0] <= 0 \
            or abs(sum(values) - 1.0) > 1e-6:
        raise argparse.ArgumentTypeError(
            f"must be TRAIN,VAL,TEST: three numbers >= 0 (train > 0) summing to 1, got "
            f"{text!r}")
    return values


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def _scoring_options(args: argparse.Namespace) -> dict:
    return {"frames": args.frames, "threshold": args.threshold,
            "detect": not args.no_detect, "detector": args.detector}


def _print_failure(result) -> None:
    print(f"dfdetect: error: {result.path}: {result.error}", file=sys.stderr, flush=True)


def _finish_run(summary, inputs: list[str], quiet: bool = False) -> int:
    if not quiet and (len(summary.results) != 1 or summary.ignored
                      or any(os.path.isdir(i) for i in inputs)):
        print(summary.report())
    return 2 if summary.failures else 0


def _scored_so_far(done: int, total: int, unit: str = "inputs") -> str:
    """``3 of 10 inputs were scored (their lines are above)``: what an interrupted
    scoring run has to show."""
    if not done:
        return f"none of the {total} {unit} was scored"
    return f"{done} of {total} {unit} were scored (their lines are above)"


def _log_warnings() -> None:
    # Library warnings (e.g. a frame that does not decode) as one prefixed line each.
    logging.basicConfig(format="dfdetect: warning: %(message)s", level=logging.WARNING)


def _model_and_inputs(args: argparse.Namespace) -> tuple[str, list[str]]:
    """``(model path, inputs)`` from ``[MODEL.keras] INPUT...`` or ``--model``.

    The first positional argument is the model when it ends in ``.keras`` and no
    ``--model`` is given; otherwise every positional argument is an input and the model
    is the shipped default detector.

    Raises:
        ModelError: no model named and none shipped.
        DataError: a model but no input.
    """
    from dfdetect import predict  # deferred: cv2 (see the imports above)

    items = list(args.items)
    if args.model:
        model = args.model
    elif items and items[0].lower().endswith(".keras"):
        model = items.pop(0)
    else:
        model = predict.default_model()
    if not os.path.exists(model) and os.path.abspath(model) == os.path.abspath(
            predict.DEFAULT_MODEL):
        predict.default_model()  # named explicitly (make realworld) but not shipped yet
    if not items:
        raise DataError(f"no input given after the model {model}: name videos, images "
                        "or folders to score")
    return model, items


def _require_media(inputs: list[str]) -> list[str]:
    """Refuses a run with nothing to score (e.g. an empty folder) before loading a model.

    Returns:
        The media files the inputs name or hold.

    Raises:
        DataError: the inputs hold no video or image (one line naming them).
    """
    from dfdetect import predict  # deferred: cv2 (see the imports above)

    paths, ignored = predict.collect_inputs(inputs)
    if not paths:
        others = f" ({ignored} other files ignored)" if ignored else ""
        raise DataError(f"no videos or images found{others}: name a folder that holds "
                        "some, or the files themselves", ", ".join(inputs))
    return paths


def _check_output_files(outputs: dict[str, str], inputs: list[str]) -> None:
    """Checks each output file (writable, a regular file or new, not an input, not
    another output) before any work.

    Args:
        outputs: what the message calls it -> the path (``JSON report`` -> ``r.json``).
        inputs: every input of the run, the model included.
    """
    seen: dict[str, str] = {}
    for what, path in outputs.items():
        check_output_file(path, what)
        refuse_overwriting_inputs(path, inputs, what)
        for other, earlier in seen.items():
            if same_file(path, earlier):
                raise DataError(f"the {what} and the {other} are the same file: give "
                                "each its own path", path)
        seen[what] = path


def _write_json_or_print(path: str, summary, model_path: str, meta: dict) -> None:
    """Writes the JSON report; when that fails, prints it to stdout so no score is lost.

    Raises:
        DataError: the report could not be written (after printing it).
    """
    from dfdetect import predict  # deferred: cv2 (see the imports above)

    try:
        written = predict.write_json(path, summary, model_path, meta)
    except OSError as err:
        print(predict.json_report(summary, model_path, meta), flush=True)
        raise DataError("cannot write the JSON report "
                        f"({os_error_line(err, with_file=False)}); it was printed to "
                        "stdout instead", path) from err
    print(f"scores written to {written}")


def _check_plot_name(path: str) -> None:
    # savefig picks the format from the name: a video's name fails after the scoring.
    if path.strip() and os.path.splitext(path)[1].lower() not in PLOT_SUFFIXES:
        raise DataError(f"the plot must be a picture file: end its name in "
                        f"{', '.join(PLOT_SUFFIXES)}", path)


def _cmd_predict(args: argparse.Namespace) -> int:
    from dfdetect import predict  # deferred: cv2 (see the imports above)

    _log_warnings()
    args.model, args.inputs = _model_and_inputs(args)
    paths = _require_media(args.inputs)
    # Outputs checked before an hour of scoring, not after it; '-' is stdout.
    to_stdout = args.json == "-"
    outputs = {}
    if args.json is not None and not to_stdout:
        outputs["JSON report"] = args.json
    if args.plot is not None:
        _check_plot_name(args.plot)
        outputs["plot"] = args.plot
    _check_output_files(outputs, [args.model, *args.inputs, *paths])
    done: list = []
    not_written = f"; {' and '.join(outputs)} not written" if outputs else ""
    args.kept = lambda: _scored_so_far(len(done), len(paths)) + not_written
    # the verdicts line up in a column; one very long path does not push every line out
    width = min(max((len(os.fspath(p)) for p in paths), default=0), PATH_COLUMN_MAX)

    def show(result) -> None:
        done.append(result)
        if result.failed:
            _print_failure(result)
        elif not to_stdout:  # stdout is the JSON document's alone
            print(result.line(width), flush=True)

    # TensorFlow starts here, not in main(): the first video's faces are found meanwhile
    _, meta, summary = predict.load_and_predict(args.model, args.inputs, on_result=show,
                                                quiet_start=not getattr(args, "verbose", False),
                                                runtime=args.runtime,
                                                **_scoring_options(args))
    if to_stdout:
        print(predict.json_report(summary, args.model, meta), end="", flush=True)
    elif args.json is not None:
        _write_json_or_print(args.json, summary, args.model, meta)
    if args.plot is not None:
        drawn = predict.write_plot(args.plot, summary.results, threshold=args.threshold)
        print(f"plot written to {drawn}" if drawn else "no plot: no input had a face to score",
              file=sys.stderr if to_stdout else sys.stdout)
    return _finish_run(summary, args.inputs, quiet=to_stdout)


def _cmd_litert(args: argparse.Namespace) -> int:
    from dfdetect.models.litert import export_litert  # deferred: starts TensorFlow

    print(f"LiteRT twin written: {export_litert(args.model)}")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from dfdetect import overlays, predict  # deferred: cv2 (see the imports above)

    _log_warnings()
    args.model, args.inputs = _model_and_inputs(args)
    check_output_dir(args.out, "folder for the PNGs")
    paths = _require_media(args.inputs)
    refuse_overwriting_inputs(args.out, [args.model, *args.inputs, *paths],
                              "folder for the PNGs")
    done: list = []
    args.kept = lambda: _scored_so_far(len(done), len(paths)) + (
        f"; their pictures are in {args.out}" if done else "")
    model, meta = predict.load_detector(args.model)

    def show(item) -> None:
        done.append(item)
        if item.result.failed:
            _print_failure(item.result)
        else:
            print(item.line(), flush=True)

    summary = overlays.explain_inputs(model, meta, args.inputs, args.out, on_result=show,
                                      top=args.top, layer_name=args.layer,
                                      **_scoring_options(args))
    return _finish_run(summary, args.inputs)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from dfdetect import evaluate, predict  # deferred: cv2, sklearn, matplotlib

    _log_warnings()
    if args.mesonet:
        if args.model or (args.items and args.items[0].lower().endswith(".keras")):
            raise DataError("give either a model (.keras / --model) or --mesonet, not both")
        model_path, inputs = args.mesonet, list(args.items)
        name = f"mesonet_{os.path.splitext(os.path.basename(args.mesonet))[0]}"
    else:
        model_path, inputs = _model_and_inputs(args)
        name = os.path.splitext(os.path.basename(model_path))[0]
    out = args.out if args.out is not None else os.path.join("results", "evaluate", name)
    if args.out is None:  # a folder in the current one: say where, before the work
        print(f"{name}: results go to {os.path.abspath(out)} (results/evaluate/{name} in "
              "the current folder; --out DIR to choose)", flush=True)
    # Everything checked before the model loads and the scoring starts.
    check_output_dir(out, "output folder")
    evaluate.refuse_split_on_media(inputs, args.split)
    media = predict.collect_inputs([i for i in inputs if not evaluate.is_store(i)])[0]
    refuse_overwriting_inputs(out, [model_path, *inputs, *media], "output folder",
                              holds=True)
    evaluate.check_out_folder(out)
    progress = {"done": 0, "total": 0}

    def kept() -> str:
        scored = (_scored_so_far(progress["done"], progress["total"], "videos")
                  if progress["total"] else "no video was scored")
        return f"{scored}; {out} was not changed"

    args.kept = kept
    if args.mesonet:
        from dfdetect.models.released import load_mesonet  # deferred: TensorFlow

        model, meta = load_mesonet(args.mesonet)
    else:
        model, meta = predict.load_detector(model_path)

    def show(position: int, total: int, video, result) -> None:
        progress.update(done=position, total=total)
        if result.failed:
            _print_failure(result)
            return
        label = "fake" if video.item.label else "real"
        print(f"[{position}/{total}] {result.line()}  ({label}, {video.item.source}/"
              f"{video.item.method})", flush=True)

    summary = evaluate.evaluate_inputs(
        model, meta, inputs, frames=args.frames, threshold=args.threshold, split=args.split,
        on_result=show, detect=not args.no_detect, detector=args.detector)
    paths = evaluate.write_outputs(out, summary, title=f"{name}: video ROC")
    skipped = summary.skipped_line()
    if skipped:
        print(skipped)
    if summary.ignored:
        print(f"{summary.ignored} other files ignored (not images or videos)")
    print(f"{name}: {summary.headline()} -> {paths['metrics']}")
    return 2 if summary.failures else 0


def _cmd_train(args: argparse.Namespace) -> int:
    from dfdetect import train  # deferred: cv2 (see the imports above)

    # Refused before TensorFlow starts: default_detector, a bad --out; train_model then
    # checks the store, then (with TensorFlow) the name.
    train.refuse_untrainable(args.model_name)
    if not str(args.out).lower().endswith(".keras"):
        raise ModelError("the model file name must end in .keras", args.out)
    check_output_file(args.out, "model file")  # before the training, not after it
    refuse_overwriting_inputs(args.out, [args.data], "model file")
    args.kept = "no epoch had finished: nothing was kept"  # train_model notes better
    summary = train.train_model(
        args.model_name, args.data, args.out, epochs=args.epochs,
        batch_size=args.batch_size, image_size=args.image_size, learning_rate=args.lr,
        seed=args.seed, augment=not args.no_augment, precision=args.precision,
        log=lambda line: print(line, flush=True))
    print(summary.report(), flush=True)
    return 0


#: Frames per video when neither the user nor the model says (dfdetect.predict's
#: DEFAULT_FRAMES; not imported from there, which would load NumPy and cv2 for --help).
DEFAULT_FRAMES = 10


def _shipped_frames() -> int | None:
    """The frames the shipped detector samples, from its metadata (a zip member: no
    TensorFlow for --help); None when it is not there."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights",
                        "default.keras")
    try:
        with zipfile.ZipFile(path) as archive:
            frames = json.loads(archive.read("dfdetect.json")).get("frames")
        return int(frames) if frames else None
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, AttributeError):
        return None


def _add_scoring_arguments(parser: argparse.ArgumentParser, what: str = "score") -> None:
    parser.usage = "%(prog)s [options] [MODEL.keras] INPUT [INPUT ...]"
    parser.add_argument("items", nargs="+", metavar="[MODEL.keras] INPUT",
                        help="a .keras model exported by dfdetect (experiments write them "
                             "to results/<experiment>/models/), then the inputs to "
                             f"{what}: videos, images, or folders of them (searched "
                             "recursively). Without a model (the first argument does not "
                             "end in .keras) the detector shipped with dfdetect is used")
    parser.add_argument("--model", default=None, metavar="PATH",
                        help="the model, when its name does not end in .keras; every "
                             "positional argument is then an input")
    shipped = _shipped_frames()
    parser.add_argument("--frames", type=_positive_int, default=None,
                        help="frames sampled per video for image models (default: the "
                             "number saved with the model"
                             + (f", {shipped} for the shipped detector" if shipped else "")
                             + f", else {DEFAULT_FRAMES}); video models always take their "
                             "own clip length")
    parser.add_argument("--threshold", type=_probability, default=None,
                        help="P(fake) at or above which the verdict is FAKE "
                             "(default: the threshold saved with the model, else 0.5)")
    parser.add_argument("--no-detect", action="store_true",
                        help="inputs are already face crops: use the centre square of "
                             "each image or frame instead of detecting a face")
    parser.add_argument("--detector", choices=("hog", "cnn"), default="hog",
                        help="face_recognition detector (default hog; cnn is ~60x slower)")


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line like every other dfdetect error.

    argparse prints its whole usage block before the message; the promise is one line
    (``--help`` still shows the usage). Subcommand parsers inherit this class.
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and ``--help``)."""
    parser = _OneLineParser(
        prog="dfdetect",
        description="Deepfake detection: build data, reproduce the papers' tables, "
                    "score videos. Labels: 1 = fake, 0 = real.",
    )

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="build face-crop stores and embedded benchmarks")
    data_sub = data.add_subparsers(dest="data_command", required=True)

    crop = data_sub.add_parser(
        "crop", help="detect faces in a dataset and write crops + manifest.csv",
        description="Sample N evenly spaced frames per video (or take each image), "
                    "keep the largest face, crop a square 1.3x its side and write "
                    "<out>/crops/... + <out>/manifest.csv. Videos the dataset gives no "
                    "split get one (train/val/test, see --split-ratios): by person where "
                    "the layout names them (FaceForensics++, Celeb-DF, DFDC), else by "
                    "video; every class in each split where there are enough videos; "
                    "recorded in the manifest's split column and crop.json, so the store "
                    "is ready for 'dfdetect train'. Resumes where it stopped.",
    )
    crop.add_argument("source", help="dataset root, a folder with real/ + fake/ (or "
                      "train/ val/ test/ each holding them), a flat folder of files "
                      "named <name>_real_... / <name>_fake_..., or a flat folder or single "
                      "file with --label")
    crop.add_argument("--layout", choices=LAYOUTS, default="folder",
                      help="dataset layout (default: folder)")
    crop.add_argument("--frames", type=_positive_int, default=40,
                      help="frames per video (default 40)")
    crop.add_argument("--size", type=_positive_int, default=256,
                      help="crop side in pixels (default 256)")
    crop.add_argument("--out", required=True, help="store directory to write")
    crop.add_argument("--label", choices=("real", "fake"),
                      help="label for a flat folder or a single file")
    crop.add_argument("--split-ratios", type=_split_ratios, metavar="TRAIN,VAL,TEST",
                      default=(0.8, 0.1, 0.1),
                      help="fractions of the videos without a split that go to train, val "
                           "and test (default 0.8,0.1,0.1); a dataset's own splits are "
                           "kept")
    crop.add_argument("--split-seed", type=int, default=0,
                      help="seed of that assignment (default 0)")
    crop.add_argument("--detector", choices=("hog", "cnn"), default="hog",
                      help="face_recognition detector (default hog; cnn is ~60x slower)")
    crop.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1,
                      help="parallel worker processes (default: all cores)")
    crop.add_argument("--min-face", type=_non_negative_float, default=60,
                      help="hog: look for faces smaller than this many pixels (on the "
                           "<= 640 px detection copy) only in frames where no larger face "
                           "is found; 1.8x faster, same boxes within a pixel (default 60; "
                           "0: always search every size)")
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
    build.add_argument("--scale", choices=SCALE_NAMES, default="cpu")
    build.add_argument("--out", required=True, help="store directory to write")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--holdout-method", default=None,
                       help="forgery method kept out of train/val, used for the "
                            "cross-dataset style split")
    build.add_argument("--generator", type=int, default=None, metavar="VERSION",
                       help="forgery generator version: 2 (default: the committed tables' "
                            "soft blends and swaps) or 3 (the Self-Blended Images recipe in "
                            "full, JPEG 40-100; see README 'The embedded benchmark')")
    build.set_defaults(func=_cmd_data_build)

    predict = sub.add_parser(
        "predict", help="score videos and images with a trained detector",
        description="Sample frames, crop the largest face, score it with the model and "
                    "print one line per input: path, verdict (FAKE / REAL / NO FACE), "
                    "P(fake), frames used. The model's input size, clip length and "
                    "preprocessing are read from the metadata saved with it. A bad input "
                    "is reported on one line (exit code 2); the other inputs are still "
                    "scored. Without a model argument the detector shipped with dfdetect "
                    "(dfdetect/weights/default.keras) is used.",
    )
    _add_scoring_arguments(predict)
    predict.add_argument("--json", metavar="OUT",
                         help="write every frame's score, face box and timestamp as JSON "
                              "('-': stdout); a box is [top, right, bottom, left] in frame "
                              "pixels, as the report's box_order key says")
    predict.add_argument("--plot", metavar="OUT.png",
                         help="draw P(fake) over each video's time (seconds) with the "
                              "threshold")
    predict.add_argument("--runtime", choices=RUNTIMES, default="auto",
                         help="what runs the network: auto (default) takes the model's "
                              "LiteRT twin (MODEL.tflite, written by 'dfdetect litert') "
                              "when it is current and ai-edge-litert is installed, which "
                              "starts in a fraction of TensorFlow's time, else Keras; "
                              "keras or litert force one")
    predict.set_defaults(func=_cmd_predict)

    twin = sub.add_parser(
        "litert", help="write a model's LiteRT twin, which predict starts faster with",
        description="Convert an exported dfdetect model (.keras) to LiteRT: MODEL.tflite "
                    "and MODEL.tflite.json beside it. The two are run on a probe batch "
                    "first and the twin is written only if their scores agree. 'dfdetect "
                    "predict' then scores with the twin without starting TensorFlow, as "
                    "long as the .keras file is the one it was converted from.",
        epilog="example: dfdetect litert mine.keras")
    twin.add_argument("model", metavar="MODEL.keras", help="an exported dfdetect model")
    twin.set_defaults(func=_cmd_litert)

    explain = sub.add_parser(
        "explain", help="Grad-CAM overlays for the most suspicious frames",
        description="Score each input like 'predict', then draw Grad-CAM heat maps over "
                    "the face crops of its most suspicious frames (highest P(fake) for "
                    "image models; evenly spaced clip frames for video models).",
    )
    _add_scoring_arguments(explain, what="explain")
    explain.add_argument("--out", required=True, help="folder for the PNGs")
    explain.add_argument("--top", type=_positive_int, default=4,
                         help="frames to explain per input (default 4)")
    explain.add_argument("--layer", default=None,
                         help="Grad-CAM target layer (default: the last feature map)")
    explain.set_defaults(func=_cmd_explain)

    evaluate = sub.add_parser(
        "evaluate", help="score labelled videos and report AUC, accuracy, EER per "
                         "source and method",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Score labelled inputs the way 'predict' does and compare with their "
                    "labels: the\nreal-world check of a detector.\n\n"
                    "Labels come from a real/ or fake/ folder on the path, from a real / "
                    "fake token in the\nfile name (ffpp_fake_Face2Face_000_003.mp4, "
                    "celebdf_real_id21_0009.mp4), or from a\nstore's manifest.csv (its "
                    "face crops are scored as they are). Inputs with no label are\n"
                    "skipped and counted. Source: the name's first token (ffpp, dfdc, "
                    "celebdf) or the folder\nabove real/ / fake/; method: the token after "
                    "_fake_ (Deepfakes, Face2Face, FaceSwap, ...).\n\n"
                    "Writes OUT/scores.csv (one row per video), OUT/metrics.csv (all, per "
                    "source, per\nmethod: video ROC AUC and its chance p, AP, EER, "
                    "accuracy at the model's threshold,\nframe ROC AUC, frames with a face) "
                    "and OUT/roc.png.\nNothing is fitted or tuned on the inputs.\n\n"
                    "examples:\n"
                    "  dfdetect evaluate mine.keras stores/mine --split test\n"
                    "  dfdetect evaluate results/fusion/models/meso4.keras "
                    "../shared/data/realworld/\n"
                    "  dfdetect evaluate model.keras stores/test/manifest.csv --split test\n"
                    "  dfdetect evaluate --mesonet ../shared/weights/mesonet/Meso4_DF.h5 "
                    "--frames 16 DIR",
    )
    _add_scoring_arguments(evaluate, what="evaluate (or stores: a folder with manifest.csv, "
                                          "or the manifest itself)")
    evaluate.add_argument("--mesonet", metavar="WEIGHTS.h5", default=None,
                          help="score with the MesoNet authors' released Meso-4 / "
                               "MesoInception-4 weights (HDF5, output P(real): scored as "
                               "1 - output) instead of a dfdetect model")
    evaluate.add_argument("--out", default=None, metavar="DIR",
                          help="output folder (default results/evaluate/<model name> in "
                               "the current folder; the run's first line says where)")
    evaluate.add_argument("--split", default=None,
                          help="stores only: evaluate the rows of this split (e.g. test); "
                               "default every row")
    evaluate.set_defaults(func=_cmd_evaluate)

    train = sub.add_parser(
        "train", help="train a registered image model on a store and export it as .keras",
        description="Build MODEL_NAME through the model registry, train it on the store's "
                    "train split (validating on its val split: early stopping, the best "
                    "epoch's weights kept, step learning-rate decay, P1's augmentation) "
                    "and export it with its input size and threshold, ready for "
                    "'dfdetect predict / explain / evaluate'. Progress: a bar on a "
                    "terminal, a line every 30 s in a log file, and one line per epoch "
                    "with its loss, accuracy and ROC AUC on the train and val splits. "
                    "Every epoch is checkpointed in MODEL.keras.checkpoint/: after an "
                    "interrupt, the same command resumes at the next epoch.",
        epilog="models: meso4, mesoinception4, inception_transfer, or a fusion "
               "configuration (xception, densenet121, resnet50, meso4, joined by +, e.g. "
               "meso4+xception). default_detector is built by 'make detector'. "
               "example: dfdetect train meso4 --data data/bench-images-procedural-cpu-seed0 "
               "--epochs 5 --out meso4.keras",
    )
    train.add_argument("model_name", metavar="MODEL_NAME",
                       help="a registered model name or fusion configuration")
    train.add_argument("--data", required=True, metavar="STORE",
                       help="a store: folder with manifest.csv whose split column holds "
                            "train (and val) rows, from 'dfdetect data build' or "
                            "'data crop'")
    train.add_argument("--out", required=True, metavar="MODEL.keras",
                       help="the .keras file to write")
    train.add_argument("--epochs", type=_positive_int, default=10,
                       help="maximum epochs (default 10; early stopping may end sooner)")
    train.add_argument("--batch-size", type=_positive_int, default=32,
                       help="batch size (default 32)")
    train.add_argument("--image-size", type=_positive_int, default=None,
                       help="input side in pixels (default: the store's crop size)")
    train.add_argument("--lr", type=_non_negative_float, default=1e-3,
                       help="initial Adam learning rate, halved every 5 epochs "
                            "(default 1e-3)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--no-augment", action="store_true",
                       help="train on the crops as stored (default: P1's rotation, zoom, "
                            "flip, brightness and channel shift)")
    train.add_argument("--precision", default="float32",
                       choices=("auto", "float32", "mixed_bfloat16"),
                       help="training precision (default float32); auto probes the model "
                            "in both and keeps bfloat16 where it is > 10 %% faster, "
                            "caching the probe in precision.json beside the model")
    train.set_defaults(func=_cmd_train)

    add_pose_parser(sub)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """``--verbose`` on the top parser and on every subcommand, so it goes anywhere."""
    parser.add_argument("--verbose", action="store_true",
                        default=False if top else argparse.SUPPRESS,
                        help="on an error, also print the Python traceback")
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_verbose(child, top=False)


def _error_line(err: BaseException) -> str:
    """The one line (without the ``dfdetect: error:`` prefix) for any failure."""
    if isinstance(err, DfdetectError):
        return one_line(err)
    if isinstance(err, OSError):
        return one_line(os_error_line(err))
    detail = one_line(err, 300)
    if isinstance(err, (zipfile.BadZipFile, zlib.error, EOFError)):
        return f"a damaged archive or compressed file ({detail}): download or build it again"
    if isinstance(err, (UnicodeDecodeError, json.JSONDecodeError)):
        return f"a file that should be text or JSON does not decode ({detail}): rebuild it"
    return (f"unexpected {type(err).__name__}: {detail}; rerun with --verbose for the "
            "traceback and report it")


def _check_environment() -> None:
    """Refuses an invalid ``DFDETECT_*`` setting before any work, in every command (a
    video run used to ignore what an image run refused)."""
    from dfdetect.data.faces import max_pixels  # deferred: cv2 (see the imports above)
    from dfdetect.predict import face_workers

    every_seconds()
    max_pixels()
    face_workers()


def _kept(args: argparse.Namespace, err: BaseException) -> str:
    """What the interrupted or failed run leaves: the library's note on the error, else
    the command's ``args.kept`` (text, or a function of the progress so far)."""
    kept = kept_note(err) or getattr(args, "kept", None) or "nothing was written"
    return kept() if callable(kept) else kept


def _disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dfdetect`` console command.

    The one error boundary: whatever goes wrong below it reaches the user as one line
    and exit code 2 (130 on Ctrl-C, with what the run keeps); ``--verbose`` adds the
    traceback.
    """
    _quiet_tensorflow()
    parser = build_parser()
    _add_verbose(parser)
    args = parser.parse_args(argv)
    try:
        _check_environment()
        if args.command in TENSORFLOW_COMMANDS and not getattr(args, "verbose", False):
            _import_tensorflow_silently()
        return int(args.func(args) or 0)
    except KeyboardInterrupt as err:
        print(f"dfdetect: interrupted; {_kept(args, err)}", file=sys.stderr, flush=True)
        return 130
    except Exception as err:  # noqa: BLE001 - the boundary: one line, never a traceback
        if getattr(args, "verbose", False):
            traceback.print_exc()
        line = _error_line(err)
        if _disk_full(err):
            line += f"; {_kept(args, err)}"
        print(f"dfdetect: error: {line}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
