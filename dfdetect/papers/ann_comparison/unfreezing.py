"""P2's InceptionV3 unfreezing study (Figures 16-17, its Table 3 column): the first
phase that stands in for ImageNet offline, the grid over the unfrozen share, the chosen
model exported for predict, and the same study on ImageNet EfficientNet-Lite0
(``--network lite0``) compared run by run with InceptionV3's."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Callable, Mapping

from dfdetect import experiment, results
from dfdetect.errors import ModelError
from dfdetect.io import atomic_path, atomic_write_text, read_table, sha256_of, write_table
from dfdetect.papers.ann_comparison.common import (SETTINGS, frame_datasets, load_videos,
                                                   parse_configs, select_best, settings_for,
                                                   summarize_runs, table_3_column,
                                                   write_table_3, merge_table_3)
from dfdetect.results import run_metrics

# Bound now, executed on first use: an experiment's --help must not wait for TensorFlow.
keras = experiment.lazy_import("keras")
plots = experiment.lazy_import("dfdetect.plots")
training = experiment.lazy_import("dfdetect.training")
transfer = experiment.lazy_import("dfdetect.models.transfer")
registry = experiment.lazy_import("dfdetect.models.registry")
export = experiment.lazy_import("dfdetect.models.export")
backbones = experiment.lazy_import("dfdetect.models.backbones")
efficientnet_lite = experiment.lazy_import("dfdetect.models.efficientnet_lite")

KERAS_NOTOP = Path(os.path.expanduser("~/.keras/models")) / \
    "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
PHASE1_FILE = "phase1_notop.h5"
BEST_FILE = "best.json"
#: The chosen model exported for ``dfdetect predict`` / ``evaluate`` (an image model).
BEST_MODEL = "best.keras"


def inception_size(scale) -> int:
    """InceptionV3's input side: the paper's 299 at ``paper`` scale, else the frames' side
    (below 75 px the model upsamples to 75 itself)."""
    settings = settings_for(scale.name)
    return int(settings.inception_size or settings.frame_size)


def train_phase1(models_dir: str | os.PathLike, train_ds, val_ds, size: int, epochs: int,
                 seed: int, key: Mapping, verbose: int | str = 0,
                 log: Callable[[str], None] = print) -> tuple[Path, dict]:
    """Train (once) the first phase and save its base as a notop ``.h5``.

    Reused when ``phase1.json`` beside it records the same ``key`` (store, size,
    epochs, seed...), so every repeat, unfreezing option and later run starts from
    the same weights, as they would from ImageNet's.

    Returns:
        ``(path of the notop .h5, its record)``.
    """
    models_dir = Path(models_dir)
    path, record_path = models_dir / PHASE1_FILE, models_dir / "phase1.json"
    key = {k: (str(v) if isinstance(v, Path) else v) for k, v in key.items()}
    key.update(size=int(size), epochs=int(epochs), seed=int(seed),
               bn_momentum=backbones.SCRATCH_BN_MOMENTUM)
    if path.is_file() and record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("key") == key:
            return path, record
    log(f"InceptionV3 first phase: {epochs} epochs, every layer, plain BatchNormalization")
    training.set_seed(seed)
    model = registry.build_model("inception_phase1", input_shape=(size, size, 3))
    training.compile_model(model, "adam", SETTINGS["paper"].learning_rate)
    fit = training.fit(model, train_ds, val_ds, epochs=epochs, patience=None,
                       decay_factor=None, verbose=verbose)
    models_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        keras.saving.save_model(model.get_layer("inception_v3"), tmp)
    metrics = run_metrics(fit.history)
    record = {"key": key, "seconds": round(fit.seconds, 1), **metrics}
    atomic_write_text(record_path, json.dumps(record, indent=2, default=float))
    return path, record


def _file_or_random(weights: str | None, init: str) -> tuple[str | None, str] | None:
    """``--weights FILE`` (checked) or ``--init random``, which both studies take alike:
    ``(weights argument, description)``; ``None`` when neither was asked for."""
    if weights:
        if not os.path.isfile(weights):
            raise ModelError("weights file not found", weights)
        return os.fspath(weights), f"file {Path(weights).name}"
    if init == "random":
        return None, "random (no pretraining)"
    return None


def resolve_inception_init(weights: str | None, init: str,
                           phase1: Callable[[], tuple[Path, dict]]) -> tuple[str | None, str]:
    """Where the transfer models' base weights come from, and how to say it in results.

    Args:
        weights: ``--weights``: ``"imagenet"``, a local weights file, or None.
        init: ``--init``: ``auto`` (Keras' cached ImageNet notop file when present,
            else the first phase), ``phase1`` or ``random``.
        phase1: trains (or reuses) the first phase; called only when needed.

    Returns:
        ``(weights argument for build_inception_transfer, description)``.
    """
    if weights == "imagenet":
        return "imagenet", "imagenet"
    chosen = _file_or_random(weights, init)
    if chosen is not None:
        return chosen
    if init == "auto" and KERAS_NOTOP.is_file():
        return str(KERAS_NOTOP), "imagenet (Keras cache file)"
    if init in ("auto", "phase1"):
        path, record = phase1()
        return str(path), (f"phase1 ({record['key']['epochs']} epochs, all layers, "
                           f"on the training frames; A_v {record.get('A_v', float('nan')):.3f})")
    raise ModelError(f"unknown --init {init!r}; expected auto, phase1 or random")


def best_inception(inception_dir: str | os.PathLike) -> dict | None:
    """The record of the best InceptionV3 transfer model an inception grid saved.

    Returns:
        ``models/best.json`` of ``inception_dir`` with ``weights`` made an absolute
        path, or None when there is none (or its weights file is gone).
    """
    path = Path(inception_dir) / "models" / BEST_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    weights = path.parent / record["weights"]
    if not weights.is_file():
        return None
    return {**record, "weights": str(weights)}


def export_best_inception(inception_dir: str | os.PathLike) -> Path | None:
    """Export the chosen InceptionV3 as ``models/best.keras`` for predict and evaluate.

    The grid keeps each option's best weights (what the sequence grids read); the chosen
    one also becomes a scorable image model, exported again whenever its weights are
    newer than the export.

    Returns:
        The exported file, or None when the grid has chosen no model yet.
    """
    record = best_inception(inception_dir)
    if record is None:
        return None
    path = Path(inception_dir) / "models" / BEST_MODEL
    weights = Path(record["weights"])
    if path.is_file() and path.stat().st_mtime >= weights.stat().st_mtime:
        return path
    size = int(record["size"])
    # records written before the Lite0 study name no network: InceptionV3's
    model = build_unfreeze_model(record.get("network", DEFAULT_NETWORK), record["config"],
                                 size, os.fspath(weights))
    export.export_model(model, path, experiment="p2_inception_unfreeze",
                        config=record["config"], image_size=size, threshold=0.5,
                        repeat=record.get("repeat"), selected_by=record.get("selected_by", ""),
                        trained_on=record.get("store", ""))
    return path


def inception_extractor(weights: str | os.PathLike, size: int):
    """A trained InceptionV3 transfer model without its head, and its cache name.

    Returns:
        ``(extractor: [0, 1] image -> 2048-d, cache name "p2-inception-<sha12>")``: the
        name identifies the weights, so another model never reads these features.
    """
    model = registry.build_model("inception_features", input_shape=(int(size), int(size), 3),
                                 weights=os.fspath(weights))
    return model, inception_cache_name(weights)


def inception_cache_name(weights: str | os.PathLike) -> str:
    """The feature-cache name of an InceptionV3 transfer model's weights file."""
    return f"p2-inception-{sha256_of(weights)[:12]}"

INCEPTION_FAMILY = "InceptionV3"
INCEPTION_FIGURES = (16, 17, "17b")
INCEPTION_CONFIGS = ("top50", "top25", "head")  # dfdetect.models.transfer.UNFREEZE_OPTIONS


@dataclasses.dataclass(frozen=True)
class UnfreezeNetwork:
    """A network the unfreezing study runs on (same options, head and training).

    Attributes:
        family: its name in Table 3 and on the figures.
        builder: its registry name (``unfreeze``, ``input_shape``, ``weights`` and, for
            EfficientNet-Lite, ``variant``).
        folder: its committed results folder under ``results/``.
        variant: the EfficientNet-Lite variant; None for InceptionV3.
    """

    family: str
    builder: str
    folder: str
    variant: str | None = None


#: ``--network`` -> the network. InceptionV3 is the paper's (from a first phase on the
#: benchmark offline, the committed results); ``lite0`` runs the same protocol on
#: ImageNet EfficientNet-Lite0, the one ImageNet network installable here.
UNFREEZE_NETWORKS: dict[str, UnfreezeNetwork] = {
    "inceptionv3": UnfreezeNetwork(INCEPTION_FAMILY, "inception_transfer", "p2/inception"),
    "lite0": UnfreezeNetwork("EfficientNet-Lite0", "lite_transfer", "p2/lite0_unfreeze",
                             variant="lite0"),
}
DEFAULT_NETWORK = "inceptionv3"
#: A Lite study's runs compared with these of the InceptionV3 study (comparison.csv).
COMPARED_METRICS = ("A_v", "L_v")
#: Within one network: does unfreezing more than the head help?
UNFREEZE_CONTRASTS = (("top50", "head"), ("top25", "head"), ("top50", "top25"))


def build_unfreeze_model(network: str, config: str, size: int, weights):
    """The study's model for ``network`` (a key of :data:`UNFREEZE_NETWORKS`)."""
    net = UNFREEZE_NETWORKS[network]
    extra = {"variant": net.variant} if net.variant else {}
    return registry.build_model(net.builder, unfreeze=config, input_shape=(size, size, 3),
                                weights=weights, **extra)


def unfreeze_size(network: str, scale) -> int:
    """The study's input side: at ``paper`` scale the network's own (InceptionV3 299,
    Lite its ImageNet resolution), else the frames' side (both networks alike)."""
    net = UNFREEZE_NETWORKS[network]
    if net.variant is None:
        return inception_size(scale)
    if scale.name == "paper":
        return int(efficientnet_lite.VARIANTS[net.variant].resolution)
    return int(settings_for(scale.name).frame_size)


def resolve_lite_init(variant: str, weights: str | None, init: str) -> tuple[str | None, str]:
    """Where a Lite study's weights come from, and how to say it in results.

    ``--init auto`` is ImageNet (the installed package): the point of this network.
    ``phase1`` is InceptionV3's offline stand-in for ImageNet and is refused here.

    Returns:
        ``(weights argument for build_lite_transfer, description)``.
    """
    package = efficientnet_lite.VARIANTS[variant].package
    if weights == "imagenet" or (not weights and init == "auto"):
        return "imagenet", f"imagenet ({package})"
    chosen = _file_or_random(weights, init)
    if chosen is not None:
        return chosen
    raise ModelError(f"--init {init} is InceptionV3's offline stand-in for ImageNet; "
                     f"{variant} has ImageNet weights (--init auto) or none (--init random)")


def _study_folder(args: argparse.Namespace) -> str:
    return UNFREEZE_NETWORKS[args.network].folder


def inception_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The unfreezing grid's flags (common ones included) on ``parser``."""
    # One committed folder per network: --network lite0 writes results/p2/lite0_unfreeze
    # and never touches InceptionV3's tables.
    experiment.add_common_args(parser, out=UNFREEZE_NETWORKS[DEFAULT_NETWORK].folder,
                               committed_may_vary=("network",), out_of=_study_folder)
    parser.add_argument("--network", choices=tuple(UNFREEZE_NETWORKS), default=DEFAULT_NETWORK,
                        help="the network whose top 50 %% / top 25 %% / head is retrained: "
                             + "; ".join(f"{k} = {v.family} (results/{v.folder})"
                                         for k, v in UNFREEZE_NETWORKS.items())
                             + f" (default {DEFAULT_NETWORK})")
    parser.add_argument("--configs", default=None,
                        help="comma-separated subset of top50,top25,head (default: all)")
    parser.add_argument("--init", choices=("auto", "phase1", "random"), default="auto",
                        help="initial weights when --weights is not given (see above; "
                             "for lite0 auto = ImageNet, phase1 is refused)")
    parser.add_argument("--reference", default=None,
                        help="for another network than InceptionV3: the InceptionV3 study "
                             "its runs are compared with in comparison.csv (default: the "
                             "folder 'inception' beside --out)")
    parser.add_argument("--phase1-epochs", type=int, default=None,
                        help="epochs of the first phase (default: the scale's)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per video used as images (default: the scale's)")
    parser.add_argument("--size", type=int, default=None,
                        help=f"input side (default at paper scale: InceptionV3 "
                             f"{SETTINGS['paper'].inception_size}, Lite its ImageNet "
                             "resolution; else the frames')")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size (default: the scale's)")
    return parser


def describe_inception(config: str) -> dict:
    """The summary's description columns of an unfreezing option."""
    return {"unfreeze": config}


def run_inception(args) -> Path:
    """The unfreezing grid (``experiments/p2_inception_unfreeze.py``) on InceptionV3,
    or with ``--network lite0`` the same grid on ImageNet EfficientNet-Lite0 (same
    options, head, data, epochs, optimiser and seeds), then compared with the
    InceptionV3 study (:func:`compare_unfreeze`).

    Args:
        args: the flags of :func:`inception_parser`.

    Returns:
        The results folder.
    """
    scale = experiment.scale_of(args)
    settings = settings_for(scale.name)
    network = getattr(args, "network", None) or DEFAULT_NETWORK
    net = UNFREEZE_NETWORKS[network]
    configs = parse_configs(args.configs, list(INCEPTION_CONFIGS))
    out = Path(args.out)
    models_dir = out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    size = args.size or unfreeze_size(network, scale)
    frames = args.frames or settings.inception_frames
    epochs = args.epochs or settings.inception_epochs
    phase1_epochs = args.phase1_epochs or settings.phase1_epochs
    repeats = args.repeats or scale.repeats
    batch = args.batch_size or scale.batch_size
    verbose = 0 if args.quiet else 2
    if args.cross:
        print("p2: the paper has no cross-dataset test; --cross is ignored")

    splits = load_videos(args, scale, max(frames, settings.sequence_frames))
    train_ds, val_ds, n_train, n_val = frame_datasets(splits, size, frames, batch,
                                                         seed=args.seed)

    def phase1():
        key = {"store": str(splits.root), "frames_per_video": frames, "train_frames": n_train}
        return train_phase1(models_dir, train_ds, val_ds, size, phase1_epochs, args.seed,
                               key, verbose=verbose)

    key = {"scale": scale.name, "store": str(splits.root), "size": size,
           "frames_per_video": frames, "epochs": epochs, "batch_size": batch,
           "learning_rate": settings.learning_rate, "init": args.init, "weights": args.weights,
           "phase1_epochs": phase1_epochs}
    if network != DEFAULT_NETWORK:  # InceptionV3's key stays as committed: no new entry
        key["network"] = network
    results.start_or_resume(out, key, also=[f"models/{c}{ext}" for c in INCEPTION_CONFIGS
                                       for ext in (".json", ".weights.h5")]
                       + [f"models/{BEST_FILE}"])
    table = results.ResultsTable(out / "runs.csv")
    pending = [(c, r) for c in configs for r in range(repeats)
               if not table.done(config=c, repeat=r)]
    if not pending:  # a finished grid: nothing to initialise (and no first phase to redo)
        init_weights, init = None, next((r["init"] for r in table.rows if r.get("init")), "")
    elif net.variant is None:
        init_weights, init = resolve_inception_init(experiment.weights_arg(args.weights),
                                                       args.init, phase1)
    else:
        init_weights, init = resolve_lite_init(net.variant,
                                               experiment.weights_arg(args.weights), args.init)
    info = {"scale": scale.name, "store": str(splits.root), "videos": splits.videos,
            "frames_per_video": frames, "train_frames": n_train, "val_frames": n_val,
            "size": size, "epochs": epochs, "repeats": repeats, "batch_size": batch,
            "learning_rate": settings.learning_rate, "init": init, "configs": configs}
    if network != DEFAULT_NETWORK:
        info["network"] = network
    atomic_write_text(out / "settings.json", json.dumps(info, indent=2))
    print(f"P2 {net.family} unfreezing: scale={scale.name} {configs} x {repeats} repeats, "
          f"{epochs} epochs, {size} px, {n_train} train / {n_val} val frames, init: {init}")

    inits = {r.get("init") for r in table.rows if r.get("status") == "ok"}
    if inits - {init}:
        print(f"warning: runs.csv already holds runs with init {sorted(inits - {init})}; "
              f"new runs use {init!r} (delete runs.csv to start over)")

    def one_run(config: str, repeat: int) -> dict:
        keras.backend.clear_session()
        seed = args.seed + repeat
        training.set_seed(seed)
        model = build_unfreeze_model(network, config, size, init_weights)
        tmp = models_dir / f".{config}-r{repeat}.weights.h5"
        row = training.train_run(model, train_ds, val_ds, epochs, tmp, keep_weights=True,
                                 verbose=verbose)
        _keep_if_best(models_dir, config, repeat, tmp, row["A_v"], init, size, str(splits.root),
                      network)
        return {**describe_inception(config), **row, "seed": seed, "size": size, "init": init,
                "trainable_layers": transfer.count_trainable_layers(model),
                "trainable_params": int(sum(int(w.numpy().size) for w in model.trainable_weights)),
                "train_frames": n_train, "val_frames": n_val}

    experiment.run_grid(configs, repeats, table, one_run, progress=not args.quiet)
    finish_inception(out, table.rows, configs, network)
    if network != DEFAULT_NETWORK:
        reference = Path(args.reference) if getattr(args, "reference", None) else \
            out.parent / Path(UNFREEZE_NETWORKS[DEFAULT_NETWORK].folder).name
        compare_unfreeze(out, reference, network)
    print(f"results written to {out}")
    return out


def _keep_if_best(models_dir: Path, config: str, repeat: int, tmp: Path, a_v: float,
                  init: str, size: int, store: str, network: str = DEFAULT_NETWORK) -> None:
    """Keep ``tmp`` as ``<config>.weights.h5`` when it is the option's best repeat so far."""
    record_path = models_dir / f"{config}.json"
    dest = models_dir / f"{config}.weights.h5"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if dest.is_file() and record and a_v <= record.get("A_v", -1.0):
        tmp.unlink()
        return
    os.replace(tmp, dest)
    atomic_write_text(record_path, json.dumps(
        {"config": config, "repeat": repeat, "A_v": a_v, "init": init, "size": size,
         "store": store, "weights": dest.name, "network": network}, indent=2))


def finish_inception(out: Path, rows, configs, network: str = DEFAULT_NETWORK) -> None:
    """summary.csv, table_3.csv, models/best.json and the figures of one network's study.

    InceptionV3's Table 3 column joins ``results/p2/table_3.csv``; another network's
    stays in its own folder, the paper's InceptionV3 column beside it.
    """
    family = UNFREEZE_NETWORKS[network].family
    summary = summarize_runs(rows, configs, describe_inception)
    write_table(out / "summary.csv", summary)
    best, why = select_best(summary)
    if best is not None:
        chosen = next(r for r in summary if r["config"] == best)
        write_table_3(out / "table_3.csv", {family: table_3_column(chosen, why)},
                      paper_of={family: INCEPTION_FAMILY})
        if out.name == "inception" and network == DEFAULT_NETWORK:
            merge_table_3(out.parent)
        record_path = out / "models" / f"{best}.json"
        if record_path.is_file():
            record = json.loads(record_path.read_text())
            record.update(selected_by=why, A_v_mean=chosen.get("A_v_mean"))
            atomic_write_text(out / "models" / BEST_FILE,
                                      json.dumps(record, indent=2, default=float))
            export_best_inception(out)
        print(f"Table 3 ({family}): {best} — {why}")
    plots.family_figures(out, summary, INCEPTION_FIGURES, family)


def setup_differences(mine: Mapping, theirs: Mapping) -> str:
    """What differs between two studies' settings.json in what makes runs comparable."""
    keys = ("store", "frames_per_video", "train_frames", "val_frames", "size", "epochs",
            "batch_size", "learning_rate")
    diff = []
    for k in keys:
        a, b = mine.get(k), theirs.get(k)
        if k == "store":  # the same store may sit under another checkout's path
            a, b = Path(str(a)).name, Path(str(b)).name
        if a != b:
            diff.append(f"{k} {a} vs {b}")
    return "same data, size and training" if not diff else "differs: " + "; ".join(diff)


def compare_unfreeze(out: str | os.PathLike, reference: str | os.PathLike,
                     network: str, log: Callable[[str], None] = print) -> list[dict]:
    """``comparison.csv``: a network's unfreezing study against InceptionV3's, run by run.

    Rows, for each of :data:`COMPARED_METRICS` (A_v, L_v):

    - each option on this network against the same option on InceptionV3 (the
      reference), paired by repeat: repeat r of both used seed ``--seed + r``, so the same
      shuffling of the same frames (the networks' initial weights differ by design);
    - within each network, the options against each other (:data:`UNFREEZE_CONTRASTS`:
      does retraining more than the head help, on ImageNet features and on the
      first-phase base?).

    Each row holds :func:`dfdetect.results.paired_comparison` (means, sd, mean
    difference a - b, repeats won / lost, paired t-test p; NaN below 2 pairs) and
    ``setup``: whether both studies ran on the same data, size and training (from their
    ``settings.json``).

    Args:
        out: this network's study (``runs.csv``, ``settings.json``).
        reference: the InceptionV3 study; when it has no ``runs.csv`` only the
            within-network rows are written.
        network: this study's network (a key of :data:`UNFREEZE_NETWORKS`).

    Returns:
        The rows written.
    """
    out, reference = Path(out), Path(reference)
    family = UNFREEZE_NETWORKS[network].family
    studies = {family: (read_table(out / "runs.csv"), out)}
    if (reference / "runs.csv").is_file() and reference.resolve() != out.resolve():
        studies[INCEPTION_FAMILY] = (read_table(reference / "runs.csv"), reference)
    else:
        log(f"{reference}: no InceptionV3 study to compare with; within-network rows only")

    def values(rows, config, metric):
        return {int(r["repeat"]): r.get(metric) for r in rows
                if r.get("status") == "ok" and r.get("config") == config}

    def settings_of(folder):
        path = folder / "settings.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    table = []
    for metric in COMPARED_METRICS:
        if INCEPTION_FAMILY in studies:
            setup = setup_differences(settings_of(out), settings_of(reference))
            for config in INCEPTION_CONFIGS:
                stats = results.paired_comparison(
                    values(studies[family][0], config, metric),
                    values(studies[INCEPTION_FAMILY][0], config, metric))
                if stats["pairs"]:
                    table.append({"a": f"{family} {config}", "b": f"{INCEPTION_FAMILY} {config}",
                                  "comparison": "network, same option", "metric": metric,
                                  **stats, "setup": setup})
        for name, (rows, _) in studies.items():
            for a, b in UNFREEZE_CONTRASTS:
                stats = results.paired_comparison(values(rows, a, metric),
                                                  values(rows, b, metric))
                if stats["pairs"]:
                    table.append({"a": f"{name} {a}", "b": f"{name} {b}",
                                  "comparison": "option, same network", "metric": metric,
                                  **stats, "setup": "one study"})
    write_table(out / "comparison.csv", table)
    for row in table:
        if row["metric"] == "A_v" and row["comparison"] == "network, same option":
            log(f"{row['a']} vs {row['b']}: A_v {row['a mean']:.3f} vs {row['b mean']:.3f}, "
                f"won {row['won']}/{row['pairs']}, paired t p={row['paired t p']:.3g}")
    return table

