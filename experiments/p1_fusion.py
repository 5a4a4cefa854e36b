#!/usr/bin/env python
"""P1 — Deepfake detection via feature-level fusion of CNNs (Tables 3.1-3.4).

Trains the paper's 11 configurations (Xception, DenseNet-121, ResNet50, Meso-4 alone; six
pairs; Meso-4 + DenseNet-121 + Xception) on one image dataset, tests each in-dataset and
cross-dataset, and writes under ``results/fusion/``:

- ``runs.csv``: one row per (configuration, repeat), resumable;
- ``table_3_1.csv`` ... ``table_3_4.csv``: the paper's tables (in-dataset Acc/Prec/Rec/AUC,
  in-dataset F1 and macro averages, and the same two for the cross-dataset test) plus
  EER, AP, parameters and training seconds;
- ``roc.png`` (every configuration's ROC, in-dataset and cross-dataset panels) and
  ``accuracy_auc.png`` (ours beside the paper's numbers);
- ``models/<config>.keras`` (git-ignored), loadable with ``keras.models.load_model``.

Data: ``--data`` (a store or a dataset root) or, by default, the embedded image
benchmark; the cross-dataset test is ``--cross`` or the benchmark's held-out forgery
method (a forgery the models never saw in training).

Bases (``--bases``): the report's text trains every configuration from scratch, its
listing freezes ImageNet-pretrained bases and trains the fusion head only. Offline there
are no ImageNet weights, so by default (``singles``) the four single models are trained
first, end to end from scratch (``papers.fusion`` ``epochs``), and every fusion then freezes
the bases of those trained single models and trains its own head on the concatenated
features (``papers.fusion`` ``head_epochs``) — the listing's design, with bases pretrained on
the task instead of ImageNet. Missing single models of a chosen fusion are added to the
run. ``scratch`` trains every fusion end to end as the text says (at ``cpu`` scale about
2.5 hours on 2 cores: five configurations hold two or three big backbones).
``--weights imagenet`` or a local file with ``--freeze`` is the listing itself.

At cpu and paper scale each configuration trains in its own worker process
(``--in-process`` for one process): TensorFlow keeps every fitted model's weights until
its process exits, and the fusions pass their bases between configurations through the
exported single models anyway. At smoke scale, there to show that everything works in a
few minutes, every configuration runs in this process, eagerly (tracing a graph costs
more than its 2 training steps), and the fusions take their bases from memory.

Assumptions where the report is silent (also in docs/differences.md):
Adam 1e-3, binary cross-entropy, learning rate halved every 5 epochs, early stopping
patience 5 on validation loss with the best weights restored; channel-shift range 0.1.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdetect import experiment  # noqa: E402

# P1's settings, tables and logic live in its home, dfdetect/papers/fusion.py;
# this script is its --help (the docstring above, settings filled in) and one call.
parse_args, run, main = experiment.paper_script(
    "p1_fusion", __doc__, "dfdetect.papers.fusion", settings="SETTINGS")


if __name__ == "__main__":
    sys.exit(main())
