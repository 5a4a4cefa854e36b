#!/usr/bin/env python
"""P4 — Fighting deepfakes using body language analysis (Tables 4, 5 and 6, Fig. 8).

A many-to-one LSTM reads 150-frame movements of 12 upper-body keypoints (24 features,
z-scored per movement) and says whether they are a person of interest's own; a video is
real only when its real movements outnumber its fake ones. As in the paper, a model
learns one person of interest (PoI): with ``--poi each`` (the default) every PoI of the
data gets its own models and files in ``results/p4/<poi>/``, and the top-level
``table_4.csv``, ``table_5.csv``, ``segment_metrics.csv`` and ``video_metrics.csv`` hold
every PoI's rows (first column ``PoI``) and their mean (``PoI`` = ``mean``). Data without
a PoI column, or ``--poi all``, train one model in ``results/p4/`` itself. Each model
folder holds:

- ``runs.csv``: one row per (configuration, repeat), resumable;
- ``table_4.csv``: models A/B/C (2x512, 2x256, 3x128): train/validation/test movement
  accuracy, test ROC AUC, EER, the video-level majority-vote accuracy, the paper's number;
- ``table_5.csv``: the proposed LSTM beside its baselines (train/val/test): VGG16,
  ResNet50/101/152 over the movement read as a pose image (``--configs baselines``; our
  reading of the paper's text is in ``dfdetect/models/pose_baselines.py``) and the
  CNN+LSTM;
- ``table_6.csv``: the proposed LSTM beside Li et al.'s ResNet152 trained on the facial
  landmarks only (nose, eyes, ears), testing accuracy;
- ``segment_metrics.csv`` and ``video_metrics.csv``: every metric of every configuration,
  per movement and per video (score of a video = share of its movements called fake);
- ``fig8_optimizers.png`` (+ ``fig8_optimizers.csv``): loss and accuracy curves of the
  optimizer study (SGD 1e-3, SGD 1e-4, Adam 1e-3 on the one-layer 128-unit start model),
  ``fig10_final.png``: the curves of the final model (2x512, the main optimizer, decay);
- ``scores/``: per-movement and per-video scores; ``models/<config>.keras`` (git-ignored).

Data: ``--data`` (one or more comma-separated folders with ``segments.csv`` +
``labels.csv``, e.g. from ``dfdetect pose extract``) or, by default, the embedded
synthetic PoI benchmark (``dfdetect/synthetic/poses.py``), split 80/10/10 by video.

Scale (also in docs/differences.md): the paper trains with batch {{paper.batch_size}}
for {{paper.epochs}} epochs and halves the rate every 30. ``--scale paper`` does exactly that;
``cpu`` and ``smoke`` use a larger batch ({{cpu.batch_size}} and {{smoke.batch_size}}: batch 1 through a 512x2 LSTM
over 150 steps is far too slow on a CPU) and fewer epochs ({{cpu.epochs}} and {{smoke.epochs}}), with the decay
step scaled by the same factor (30 x epochs / {{paper.epochs}}) so the rate still halves about 6.7
times over the run, and their main optimizer is {{cpu.optimizer}} (``--optimizer``; see
``dfdetect.papers.pose_lstm``): at batch {{cpu.batch_size}} the paper's {{paper.optimizer}} never moved the stacked
LSTMs off 0.5 validation accuracy.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdetect import experiment  # noqa: E402

# P4's settings, tables and logic live in its home, dfdetect/papers/pose_lstm.py;
# this script is its --help (the docstring above, settings filled in) and one call.
parse_args, run, main = experiment.paper_script(
    "p4_pose_lstm", __doc__, "dfdetect.papers.pose_lstm", settings="SETTINGS")


if __name__ == "__main__":
    sys.exit(main())
