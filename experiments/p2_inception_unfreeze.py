#!/usr/bin/env python
"""P2 — InceptionV3 transfer learning, top 50 % / top 25 % / head trainable (Figures 16-17).

Trains InceptionV3 + GlobalAveragePooling -> Dense(1024) -> Dense(2) with the paper's
three unfreezing options (``dfdetect/models/transfer.py``: the last 157, 78 or 2 of
its 314 layers trainable, BatchNormalization statistics frozen) on the frames of a
video store, each frame an image with its video's label, and writes under
``results/p2/inception/``:

- ``runs.csv`` (resumable; the columns of the custom CNN grid plus ``init``,
  ``trainable_layers`` and ``trainable_params``), ``summary.csv`` (mean and std),
  ``table_3.csv`` (the best option by the paper's rule beside the paper's column;
  ``results/p2/table_3.csv`` merges every P2 grid's);
- ``fig16_inceptionv3_metrics.png``, ``fig17_inceptionv3_convergence.png`` and
  ``fig17b_inceptionv3_cost.png`` (time, parameters, size: not a figure of the paper);
- ``models/<option>.weights.h5`` (+ ``.json``): each option's best repeat by A_v;
  ``models/best.json``: the Table 3 choice, the feature extractor of the sequence grids
  (``experiments/p2_sequence_grid.py`` reads it).

Initial weights, recorded in every row's ``init``: ``--weights imagenet`` (needs a
network), ``--weights FILE`` (Keras' ``inception_v3_..._notop.h5`` or a
``.weights.h5`` of a transfer model); otherwise ``--init auto`` uses Keras' cached
ImageNet notop file when ``~/.keras/models`` has it, and else a first training phase
on the benchmark (``--init phase1``): InceptionV3 with ordinary BatchNormalization and
the same head, every layer trainable, trained on the training frames; its base then
stands in for ImageNet's, the head starts fresh. That is not transfer from another
domain: offline, the comparison of the three options is what this measures.
``--init random`` starts from random weights.

Assumptions (also in results/p2/README.md): Adam 1e-3, fixed epochs, batch of the
scale; input 299 px at ``paper`` scale, the store's frame side elsewhere (64 px at
``cpu``, upsampled to 75 inside the model). Scale: ``paper`` 40 frames per video,
60 epochs, 10 repeats, a 20-epoch first phase when no ImageNet file is found; ``cpu``
all 10 frames per video, 10 epochs, 3 repeats, an 8-epoch first phase (estimated
14-26 minutes on 2 cores); ``smoke`` 2 frames, 1 epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdetect import experiment, results  # noqa: E402
# Bound now, executed on first use: --help must not wait for TensorFlow.
p2 = experiment.lazy_import("dfdetect.p2")
training = experiment.lazy_import("dfdetect.training")

FAMILY = "InceptionV3"
FIGURES = (16, 17, "17b")
CONFIGS = ("top50", "top25", "head")  # dfdetect.models.transfer.UNFREEZE_OPTIONS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    experiment.add_common_args(parser, out="p2/inception")
    parser.add_argument("--configs", default=None,
                        help="comma-separated subset of top50,top25,head (default: all)")
    parser.add_argument("--init", choices=("auto", "phase1", "random"), default="auto",
                        help="initial weights when --weights is not given (see above)")
    parser.add_argument("--phase1-epochs", type=int, default=None,
                        help="epochs of the first phase (default: the scale's)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per video used as images (default: the scale's)")
    parser.add_argument("--size", type=int, default=None,
                        help="input side (default: 299 at paper scale, else the frames')")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size (default: the scale's)")
    return parser.parse_args(argv)


def describe(config: str) -> dict:
    return {"unfreeze": config}


def run(args) -> Path:
    from dfdetect.models import transfer

    scale = experiment.scale_of(args)
    settings = p2.settings_for(scale.name)
    configs = p2.parse_configs(args.configs, list(CONFIGS))
    out = Path(args.out)
    models_dir = out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    size = args.size or p2.inception_size(scale)
    frames = args.frames or settings.inception_frames
    epochs = args.epochs or settings.inception_epochs
    phase1_epochs = args.phase1_epochs or settings.phase1_epochs
    repeats = args.repeats or scale.repeats
    batch = args.batch_size or scale.batch_size
    verbose = 0 if args.quiet else 2
    if args.cross:
        print("p2: the paper has no cross-dataset test; --cross is ignored")

    splits = p2.load_video_splits(args, scale, max(frames, scale.p2_frames))
    train_ds, val_ds, n_train, n_val = p2.frame_datasets(splits, size, frames, batch,
                                                         seed=args.seed)

    def phase1():
        key = {"store": str(splits.root), "frames_per_video": frames, "train_frames": n_train}
        return p2.train_phase1(models_dir, train_ds, val_ds, size, phase1_epochs, args.seed,
                               key, verbose=verbose)

    key = {"scale": scale.name, "store": str(splits.root), "size": size,
           "frames_per_video": frames, "epochs": epochs, "batch_size": batch,
           "learning_rate": p2.LEARNING_RATE, "init": args.init, "weights": args.weights,
           "phase1_epochs": phase1_epochs}
    p2.start_or_resume(out, key, also=[f"models/{c}{ext}" for c in CONFIGS
                                       for ext in (".json", ".weights.h5")]
                       + [f"models/{p2.BEST_FILE}"])
    table = results.ResultsTable(out / "runs.csv")
    pending = [(c, r) for c in configs for r in range(repeats)
               if not table.done(config=c, repeat=r)]
    if pending:
        init_weights, init = p2.resolve_inception_init(experiment.weights_arg(args.weights),
                                                       args.init, phase1)
    else:  # a finished grid: nothing to initialise (and no first phase to redo)
        init_weights, init = None, next((r["init"] for r in table.rows if r.get("init")), "")
    info = {"scale": scale.name, "store": str(splits.root), "videos": splits.videos,
            "frames_per_video": frames, "train_frames": n_train, "val_frames": n_val,
            "size": size, "epochs": epochs, "repeats": repeats, "batch_size": batch,
            "learning_rate": p2.LEARNING_RATE, "init": init, "configs": configs}
    results.atomic_write_text(out / "settings.json", json.dumps(info, indent=2))
    print(f"P2 InceptionV3 unfreezing: scale={scale.name} {configs} x {repeats} repeats, "
          f"{epochs} epochs, {size} px, {n_train} train / {n_val} val frames, init: {init}")

    inits = {r.get("init") for r in table.rows if r.get("status") == "ok"}
    if inits - {init}:
        print(f"warning: runs.csv already holds runs with init {sorted(inits - {init})}; "
              f"new runs use {init!r} (delete runs.csv to start over)")

    def one_run(config: str, repeat: int) -> dict:
        import keras

        keras.backend.clear_session()
        seed = args.seed + repeat
        training.set_seed(seed)
        model = transfer.build_inception_transfer(config, (size, size, 3),
                                                  weights=init_weights)
        tmp = models_dir / f".{config}-r{repeat}.weights.h5"
        row = p2.train_run(model, train_ds, val_ds, epochs, tmp, keep_weights=True,
                           verbose=verbose)
        _keep_if_best(models_dir, config, repeat, tmp, row["A_v"], init, size, str(splits.root))
        return {**describe(config), **row, "seed": seed, "size": size, "init": init,
                "trainable_layers": transfer.count_trainable_layers(model),
                "trainable_params": int(sum(int(w.numpy().size) for w in model.trainable_weights)),
                "train_frames": n_train, "val_frames": n_val}

    training.run_grid(configs, repeats, table, one_run, progress=not args.quiet)
    finish(out, table.rows, configs)
    print(f"results written to {out}")
    return out


def _keep_if_best(models_dir: Path, config: str, repeat: int, tmp: Path, a_v: float,
                  init: str, size: int, store: str) -> None:
    """Keep ``tmp`` as ``<config>.weights.h5`` when it is the option's best repeat so far."""
    record_path = models_dir / f"{config}.json"
    dest = models_dir / f"{config}.weights.h5"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if dest.is_file() and record and a_v <= record.get("A_v", -1.0):
        tmp.unlink()
        return
    os.replace(tmp, dest)
    results.atomic_write_text(record_path, json.dumps(
        {"config": config, "repeat": repeat, "A_v": a_v, "init": init, "size": size,
         "store": store, "weights": dest.name}, indent=2))


def finish(out: Path, rows, configs) -> None:
    """summary.csv, table_3.csv, models/best.json and the figures."""
    summary = p2.summarize_runs(rows, configs, describe)
    results.write_table(out / "summary.csv", summary)
    best, why = p2.select_best(summary)
    if best is not None:
        chosen = next(r for r in summary if r["config"] == best)
        p2.write_table_3(out / "table_3.csv", {FAMILY: p2.table_3_column(chosen, why)})
        if out.name == "inception":
            p2.merge_table_3(out.parent)
        record_path = out / "models" / f"{best}.json"
        if record_path.is_file():
            record = json.loads(record_path.read_text())
            record.update(selected_by=why, A_v_mean=chosen.get("A_v_mean"))
            results.atomic_write_text(out / "models" / p2.BEST_FILE,
                                      json.dumps(record, indent=2, default=float))
        print(f"Table 3 ({FAMILY}): {best} — {why}")
    p2.plot_family(out, summary, FIGURES, FAMILY)


def main(argv=None) -> int:
    return experiment.run_main("p2_inception_unfreeze", run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
