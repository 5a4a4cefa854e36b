"""How hard is the embedded image benchmark? A floor, a ceiling, and what the fakes look like.

Every table dfdetect produces on its own benchmark means something only if the benchmark
is neither trivial nor impossible. For one face source (``--faces procedural`` or a
folder of real photos such as ``../shared/data/faces``) this builds the image benchmark
(all forgery methods in every split) and measures, on its test split:

- ``logreg_pixels``: logistic regression on raw pixels downsampled to 16 x 16 (its ``C``
  chosen on the validation split). A global cue (colour, brightness, a ghost at a fixed
  position) would let it win; it should stay below ROC AUC 0.75;
- ``meso4``: Meso-4, the smallest forensic CNN of the papers, trained on the same split
  for at most ``--budget`` seconds (``BUDGET_SECONDS`` by default); it should pass 0.85.

Writes under ``results/benchmarks/``:

- ``difficulty.csv``: columns ``faces, generator, model, roc_auc`` (plus accuracy, the
  ROC AUC of the reals against each forgery method's fakes alone, training seconds,
  epochs, sample counts, scale and store), one row per (faces, generator, model); a run
  for one face source and ``--generator`` version replaces only its own rows;
- ``contact_<faces>[_g<version>]_<method>.png``: real, fake, their difference and the
  blend mask of test identities, one sheet per forgery method, face source and
  generator version, so a reader sees what the models learn from.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdetect import experiment, results  # noqa: E402
from dfdetect.synthetic import forge  # noqa: E402

PIXELS = 16  # side of the downsampled image the pixel baseline sees
LOGREG_C = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
BUDGET_SECONDS = 600.0
MAX_EPOCHS = 200
LEARNING_RATE = 1e-3
# Patient enough to use the budget: with patience 15 and decay every 10 epochs, Meso-4
# stopped after 43-52 epochs (100-120 s of the 600 s) at test AUC 0.82 (procedural) and
# 0.75 (real faces), its learning rate already down to 1/16.
DECAY_FACTOR, DECAY_EVERY, PATIENCE = 0.5, 30, 40
SHEET_COLUMNS = 8
COLUMNS = ["faces", "generator", "model", "roc_auc", "accuracy", *(f"roc_auc_{m}" for m in forge.METHODS),
           "seconds", "epochs", "n_train", "n_test", "scale", "store"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="\n".join(__doc__.splitlines()[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    # One difficulty.csv row set per face source and generator version: --faces and
    # --generator name the rows, not a new table.
    experiment.add_common_args(parser, "benchmarks", committed_may_vary=("faces", "generator"))
    parser.add_argument("--budget", type=float, default=BUDGET_SECONDS,
                        help="wall-clock limit of Meso-4 training in seconds "
                             f"(default {BUDGET_SECONDS:g})")
    return parser.parse_args(argv)


def _arrays(rows, root, size: int):
    """Images of ``rows`` at ``size`` px as one float array, with their labels."""
    from dfdetect.data import pipeline

    ds = pipeline.image_dataset(rows, root, size, batch_size=256, cache=False)
    images = np.concatenate([x.numpy() for x, _ in ds])
    return images, pipeline.labels_of(rows)


def auc_per_method(rows, scores) -> dict[str, float]:
    """ROC AUC of the real rows against each forgery method's fakes alone.

    Args:
        rows: manifest rows (``method`` is ``real`` or a forgery method), in score order.
        scores: the model's fake scores for ``rows``.

    Returns:
        ``{method: auc}`` for every method with fakes in ``rows`` (reals needed too).
    """
    from sklearn.metrics import roc_auc_score

    methods = np.array([r["method"] for r in rows])
    scores = np.asarray(scores, dtype=float)
    real = methods == "real"
    out = {}
    for method in sorted(set(methods) - {"real"}):
        keep = real | (methods == method)
        if real.any():
            out[method] = float(roc_auc_score((methods[keep] == method).astype(int),
                                              scores[keep]))
    return out


def logreg_pixels(splits, root) -> dict:
    """Logistic regression on standardised raw pixels; C picked by validation AUC."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    data = {}
    for name in ("train", "val", "test"):
        x, y = _arrays(splits[name], root, PIXELS)
        data[name] = (x.reshape(len(x), -1), y)
    best = None
    for c in LOGREG_C:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
        model.fit(*data["train"])
        auc = roc_auc_score(data["val"][1], model.predict_proba(data["val"][0])[:, 1])
        if best is None or auc > best[0]:
            best = (auc, model)
    scores = best[1].predict_proba(data["test"][0])[:, 1]
    return {"scores": scores, "labels": data["test"][1], "epochs": "",
            "seconds": time.perf_counter() - start}


def meso4(splits, root, size: int, batch: int, budget: float, seed: int, quiet: bool) -> dict:
    """Meso-4 with the P1 augmentation, trained for at most ``budget`` seconds."""
    from dfdetect import training
    from dfdetect.data import pipeline
    from dfdetect.models import registry

    training.set_seed(seed)
    augment = pipeline.build_augmentation(seed=seed)
    train_ds = pipeline.image_dataset(splits["train"], root, size, batch, training=True,
                                      seed=seed, augment=augment)
    val_ds = pipeline.image_dataset(splits["val"], root, size, batch)
    test_ds = pipeline.image_dataset(splits["test"], root, size, batch)
    model = registry.build_model("meso4", input_shape=(size, size, 3))
    training.compile_model(model, "adam", LEARNING_RATE)
    fit = training.fit(model, train_ds, val_ds, epochs=MAX_EPOCHS, learning_rate=LEARNING_RATE,
                       patience=PATIENCE, decay_factor=DECAY_FACTOR, decay_every=DECAY_EVERY,
                       verbose=0 if quiet else 2,
                       extra_callbacks=[training.TimeBudget(budget)])
    return {"scores": training.predict_scores(model, test_ds),
            "labels": pipeline.labels_of(splits["test"]), "epochs": fit.epochs_run,
            "seconds": fit.seconds}


def contact_sheets(out: Path, root: Path, rows, tag: str,
                   columns: int = SHEET_COLUMNS) -> list[Path]:
    """One sheet per forgery method: real, fake, difference and mask of the same views."""
    import cv2

    from dfdetect import plots

    def read(rel: str, grey: bool = False) -> np.ndarray:
        image = cv2.imread(str(root / rel), cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
        return image if grey else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def view(row) -> str:  # "<identity>_v<view>" of "<identity>_v<view>_real|fake"
        return row["video_id"].rsplit("_", 1)[0]

    reals = {view(r): r for r in rows if r["method"] == "real"}
    written = []
    for method in sorted({r["method"] for r in rows} - {"real"}):
        pairs = [(reals.get(view(r)), r) for r in rows if r["method"] == method]
        pairs = [p for p in pairs if p[0] is not None][:columns]
        if not pairs:
            continue
        sheet = {"real": [read(real["crop_path"]) for real, _ in pairs],
                 "fake": [read(fake["crop_path"]) for _, fake in pairs]}
        # what a detector can learn from: the fake's own change plus the independent
        # final noise/JPEG of the two renderings, amplified x4
        sheet["|fake - real| x4"] = [
            np.clip(np.abs(f.astype(np.int16) - r.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
            for r, f in zip(sheet["real"], sheet["fake"])]
        if all(fake.get("mask_path") for _, fake in pairs):
            sheet["blend mask"] = [read(fake["mask_path"], grey=True) for _, fake in pairs]
        path = out / f"contact_{tag}_{method}.png"
        plots.contact_sheet(path, sheet, title=f"{method}, face source '{tag}' (test split)",
                            captions=[fake["identity"][:14] for _, fake in pairs])
        written.append(path)
    return written


def run(args) -> Path:
    from dfdetect.data import store
    from dfdetect.evaluation import binary_metrics

    scale = experiment.scale_of(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.data:
        root = experiment.dataset_store(args.data, args.layout, 1, scale.image_size)
        faces = str(args.data)
    else:
        root = experiment.benchmark_store("images", args.faces, scale, args.seed,
                                          generator=args.generator)
        faces = args.faces
    rows = store.read_manifest(root)
    splits = experiment.split_rows(rows, seed=args.seed)
    generator = forge.DEFAULT_GENERATOR if args.generator is None else args.generator
    tag = experiment.faces_tag(faces)
    if generator != forge.DEFAULT_GENERATOR:
        tag += f"_g{generator}"
    print(f"benchmark difficulty: faces={faces} scale={scale.name} train={len(splits['train'])} "
          f"val={len(splits['val'])} test={len(splits['test'])} store={root}")
    contact_sheets(out, root, splits["test"], tag)

    measured = {
        "logreg_pixels": lambda: logreg_pixels(splits, root),
        "meso4": lambda: meso4(splits, root, scale.image_size, scale.batch_size,
                               args.budget, args.seed, args.quiet),
    }
    new_rows = []
    for name, measure in measured.items():
        m = measure()
        metrics = binary_metrics(m["labels"], m["scores"])
        per_method = {f"roc_auc_{k}": round(v, 4)
                      for k, v in auc_per_method(splits["test"], m["scores"]).items()}
        new_rows.append({"faces": faces, "generator": generator, "model": name, "roc_auc": round(metrics["ROC AUC"], 4),
                         "accuracy": round(metrics["Acc"], 4), **per_method,
                         "seconds": round(m["seconds"], 1),
                         "epochs": m["epochs"], "n_train": len(splits["train"]),
                         "n_test": len(splits["test"]), "scale": scale.name, "store": root.name})
        print(f"{faces:>24}  {name:<14} ROC AUC {metrics['ROC AUC']:.3f}  "
              f"({m['seconds']:.0f} s)")
    path = out / "difficulty.csv"
    # rows written before the generator column existed were made by version 2
    kept = [r for r in results.read_table(path)
            if (r.get("faces"), int(r.get("generator") or 2)) != (faces, generator)]
    results.write_table(path, kept + new_rows, COLUMNS)
    print(f"results written to {out}")
    return out


def main(argv=None) -> int:
    return experiment.run_main("benchmark difficulty", run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
