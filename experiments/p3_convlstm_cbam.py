#!/usr/bin/env python
"""P3 — Xception + CBAM + bidirectional ConvLSTM for deepfake videos (Tables 5, 6, 7).

Trains the paper's model (``convlstm_cbam``) and its two baselines on the same clips
(``xception_lstm``: pooled per-frame Xception features -> LSTM; ``xception_convlstm``:
Xception maps -> unidirectional ConvLSTM2D, no CBAM), tests them, explains them with
Grad-CAM, and writes under ``results/p3/``:

- ``runs.csv``: one row per (model, repeat), resumable (a killed run restarts at the first
  missing row; the warm-up backbone is reused from ``warmup/``). The warm-up and each
  model train in their own worker process (``--in-process`` for one process), because
  TensorFlow keeps every fitted model's weights until its process exits;
- ``table_5_6_7.csv``: one row per model, first column ``model``: AUC, Accuracy,
  Precision, Recall, F1 (fake = positive class, threshold 0.5 on the softmax's fake
  probability), EER, AP, the confusion counts, parameters, training seconds and rounds
  (mean over repeats), then the paper's own numbers as reference columns ``paper AUC``
  ... ``paper F1`` (fractions; empty where the paper reports none: Table 5 gives every
  model's AUC, Table 6 the accuracies, Table 7 precision/recall/F1 of the paper's model
  only). ``table_5_6_7_cross.csv``: the same on the cross test (``--cross``, or the
  benchmark's held-out forgery method), without paper columns;
- ``confusion_matrix.png`` (one matrix per model, counts summed over repeats),
  ``roc.png`` (repeat 0);
- ``gradcam/<model>_<real|fake>_<video>.png``: Grad-CAM grids (frames x [input, heat
  map, overlay]) for a few real and fake test videos;
- ``gradcam_mask_mass.csv``: per model, the share of the Grad-CAM mass (class "fake")
  that falls inside the forgery mask, for fake test videos and for real test videos
  (measured inside the mask of the real clip's fake twin, which the benchmark renders
  pixel-aligned from the same frames), the mask's area share (what a uniform heat map
  would score), the paired comparison: ``twin pairs`` and ``fake above twin`` over every
  (clip, run), their pooled one-sided Wilcoxon ``paired p`` (pseudo-replicated: the runs
  re-score the same clips), ``clips``, ``clips above twin`` and ``clip p`` (the test with
  each clip's difference averaged over the runs: the verdict's), ``run p`` (each run on
  its own), and the verdict ``on_forgery``: ``yes`` (fake mass above the mask's area and
  the twins', clip p below the level), ``not significant`` (above on average only),
  ``undetermined`` (above on average, too few clips to test), ``no``;
  ``gradcam/<model>-r<k>-mass.csv`` holds the per-video values;
- ``schedule-r<k>.csv``: which training clips each round of the imbalance schedule used;
- ``models/<model>.keras`` (git-ignored), loadable with ``keras.models.load_model``.

Training as in the paper: Adam 1e-4 (beta1 0.9, beta2 0.999), batch 2, cross-entropy on
the 2-way softmax, and the imbalance schedule of Table 4 (all real clips every round,
the fake clips in rotating chunks of the real count, weights carried over;
``--schedule class-weights`` or ``plain`` instead). Data: ``--data`` (a store or a dataset
root, e.g. Celeb-DF v2 with ``--layout celebdf``) or, by default, the embedded video
benchmark (the first {{paper.frames}} frames of each clip at {{paper.size}} px at ``paper`` scale,
{{cpu.frames}} at {{cpu.size}} px at ``cpu``, {{smoke.frames}} at ``smoke``: ``papers.convlstm_cbam``'s
``frames`` and ``size``).

Assumptions and deviations (also in docs/differences.md):

- **Per-frame warm-up of the Xception backbone** (``--warmup-epochs``; smoke {{smoke.warmup_epochs}},
  cpu {{cpu.warmup_epochs}}, paper {{paper.warmup_epochs}}). Without ImageNet weights (offline here) and with the little training a CPU
  affords, a randomly initialised Xception learns too little inside the video models to
  separate anything. So before the video training, Xception (+ global average pooling +
  Dense(1, sigmoid)) is trained as a frame classifier on the training clips' frames
  (Adam 1e-3, batch ``scale.batch_size``, balanced class weights, early stopping with
  patience 2 on the validation frames), and all three video models start from that same
  backbone — the role ImageNet pre-training plays in the paper, here from the benchmark
  itself. The warm-up model is also reported, as row ``xception`` (video score = mean
  frame score), beside the paper's Table 5 "Xception" row. ``--weights imagenet``
  (online) or a local Xception file replaces the random init; the warm-up then
  fine-tunes it. (Measured at cpu scale: after 4 warm-up epochs the frame model reaches
  0.74 validation frame accuracy, and 2 video epochs of the paper's model on top reach
  0.74 test AUC; without it predictions sit at 0.5.)
- **Batch-norm momentum 0.9** (Keras' default 0.99) in every model trained here: at
  30-60 steps per epoch, 0.99 leaves the moving statistics near their initial values
  for several epochs, and inference (which uses them) predicts the same ~0.5 for every
  input while the training accuracy rises (measured: frame validation accuracy 0.50 after
  3 warm-up epochs with 0.99, 0.73 with 0.9).
- Epochs (paper silent): each schedule round trains up to ``--epochs`` (the scale's)
  epochs with early stopping (patience 5) on the validation loss, best weights restored
  at the end of the round; constant learning rate.
- Imbalance: the embedded benchmark is balanced (one real and one fake clip per
  identity), so Table 4's schedule is a single round there. ``--real-ratio R`` keeps only
  ``R`` real training clips per fake one (Celeb-DF has 490 / 5,539 = 0.088) to train
  under the paper's imbalance; the smoke test uses it to run several rounds.
  ``--chunk-size 590`` is the paper prose's reading (chunks of 590 fakes).
- Default benchmark: forgeries ``self_blend`` in train/val/test, ``identity_swap`` held
  out as the cross test (the same store the other video experiments use).
- Grad-CAM: explains the "fake" class for every clip; target layer = the last per-frame
  feature map before the sequence layer (``cbam`` for the paper's model, the Xception
  maps for the baselines; 8 x 8 at the paper's 240 px) unless ``--gradcam-layer``. When
  that map is under 4 x 4 (64-px clips: 2 x 2, as Xception downsamples 32x) it cannot
  localise anything — an upsampled 2 x 2 map puts about the mask's area share of its mass
  inside any mask — so ``block13_sepconv2_act`` (4 x 4 at 64 px, the last Xception map
  before its final downsampling) is used instead; gradients still flow through CBAM and
  the ConvLSTM, so it explains the same decision. A heat map with no positive evidence
  (all zeros) has no mass and is counted as ``empty``, not averaged. Masks are
  binarised at half intensity.
- ``--eager`` (default at smoke scale): run Keras eagerly. Tracing Xception's training
  graph costs ~30 s, more than a few eager steps on a dozen clips.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdetect import experiment  # noqa: E402

# P3's settings, tables and logic live in its home, dfdetect/papers/convlstm_cbam.py;
# this script is its --help (the docstring above, settings filled in) and one call.
parse_args, run, main = experiment.paper_script(
    "p3_convlstm_cbam", __doc__, "dfdetect.papers.convlstm_cbam", settings="SETTINGS")


if __name__ == "__main__":
    sys.exit(main())
