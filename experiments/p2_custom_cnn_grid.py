#!/usr/bin/env python
"""P2 — the custom CNN grid (paper Table 1, Figures 13-15, Table 3's first column).

Trains every configuration of Table 1 (depth 2-5 x ascending / descending / constant
widths, 23 plain Conv-ReLU-MaxPool stacks with Flatten -> Dense(1024) -> Dense(2)) on
the frames of a video store, each frame an image with its video's label, as the paper
did, and writes under ``results/p2/custom_cnn/``:

- ``runs.csv``: one row per (configuration, repeat), resumable: L_t, L_v, A_t, A_v
  (best values over the epochs), L_r of each (epoch of the best value), T_s (seconds),
  N_p, W_s (bytes of the saved weights), seed; a configuration that runs out of
  memory is recorded ``failed`` with the reason and the grid goes on;
- ``summary.csv``: mean and std per configuration;
- ``table_3.csv``: the best configuration by the paper's rule (``dfdetect.papers.ann_comparison.select_best``)
  beside the paper's column; ``results/p2/table_3.csv`` merges every P2 grid's;
- ``fig13_custom_cnn_metrics.png``, ``fig14_custom_cnn_convergence.png``,
  ``fig15_custom_cnn_cost.png``;
- ``settings.json``: data, sizes, epochs and repeats of the run.

Data: ``--data`` (a store or a video dataset root, cropped once) or, by default, the
embedded video benchmark; the store's ``train`` videos train, its ``val`` + ``test``
videos are the paper's 20 % validation part.

Assumptions where the paper is silent (also in results/p2/README.md): Adam 1e-3,
batch size of the scale (32), sparse categorical cross-entropy on the 2-way softmax,
a fixed number of epochs (no early stopping, no decay), Conv 3x3 same + ReLU + MaxPool 2
per layer. Scale: ``paper`` = {{paper.cnn_frames}} frames per video at {{paper.frame_size}} px,
{{paper.cnn_epochs}} epochs, {{paper_scale.repeats}} repeats; ``cpu`` = {{cpu.cnn_frames}} of each video's {{cpu_scale.video_frames}} frames at
{{cpu.frame_size}} px, {{cpu.cnn_epochs}} epochs, {{cpu_scale.repeats}} repeats, all 23 configurations (the measured
time is in results/p2/README.md); ``smoke`` = {{smoke.cnn_frames}} frames, {{smoke.cnn_epochs}} epoch.

Memory: each configuration (all its repeats) trains in a worker process of its own, since
TensorFlow keeps every model fitted in a process until it exits (the 141-run sequence
grid in one process reached 21.6 GB); ``--in-process`` runs the whole grid here.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdetect import experiment  # noqa: E402

# P2's settings, tables and logic live in its home, dfdetect/papers/ann_comparison/
# (this grid: custom_cnn_grid.py); this script is its --help (the docstring above, settings
# filled in) and one call.
parse_args, run, main = experiment.paper_script(
    "p2_custom_cnn_grid", __doc__, "dfdetect.papers.ann_comparison",
    add_args="custom_cnn_parser", run="run_custom_cnn", settings="help_settings")


if __name__ == "__main__":
    sys.exit(main())
