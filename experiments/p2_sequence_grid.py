#!/usr/bin/env python
"""P2 — LSTM, GRU and MLP grids over cached CNN feature sequences (Figures 18-26).

Every video becomes a ``(frames, 2048)`` sequence of the best CNN's features (the
InceptionV3 transfer model without its head), computed once and cached in the store's
feature cache (``<store>/features/``); every configuration then trains on the cached
arrays, never running the CNN again. Grids: LSTM and GRU, depth 1-4 x width 128 /
512 / 1024 / 2048, each followed by Dense(1024) -> Dense(2); the MLPs of Table 2 over
the flattened sequence. Writes under ``results/p2/sequence/``:

- ``runs.csv`` (resumable; L_t, L_v, A_t, A_v, their L_r, T_s, N_p, W_s, seed),
  ``summary.csv`` (mean and std per configuration, with a ``family`` column);
- ``table_3.csv``: the best LSTM, GRU and MLP by the paper's rule beside the paper's
  columns, "Total" N_p / W_s adding the feature extractor's; ``results/p2/table_3.csv``
  merges every P2 grid's;
- ``fig18_lstm_metrics.png`` ... ``fig26_mlp_cost.png`` (three figures per family);
- ``features.json``: which extractor, its cache name, extraction seconds, shapes.

Feature extractor (``--backbone``):

- ``auto`` (default): the InceptionV3 model ``experiments/p2_inception_unfreeze.py``
  chose for Table 3 (``results/p2/inception/models/best.json``; ``--inception-dir``),
  the paper's pipeline: run ``make inception-unfreeze`` first. Without it, the paper's
  best option (top 50 % trainable) is trained once by that same script into
  ``<out>/extractor/`` (one repeat, the scale's epochs and initialisation);
- the path of a ``.weights.h5`` of an InceptionV3 transfer model;
- a backbone name of ``dfdetect.models.backbones`` (``inceptionv3``, ``meso4``...)
  with ``--weights`` (random init by default: quick plumbing checks, not the paper).

Widths: the paper's method lists 128 / 512 / 1024 / 2048, but its results discuss
256-unit models and give sizes only width 256 reproduces (see
``dfdetect/models/sequence.py``); ``--rnn-widths 128,256,512,1024`` runs that reading.
Off-grid names such as ``lstm-2x256`` are accepted by ``--configs``.

Assumptions (also in results/p2/README.md): Adam 1e-3, batch of the scale (32),
fixed epochs, ReLU on the Dense(1024) and MLP layers. Scale: ``paper`` {{paper.sequence_frames}} frames per
video, {{paper.sequence_epochs}} epochs, {{paper_scale.repeats}} repeats, RNN widths {{paper.rnn_widths}}; ``cpu`` the store's
{{cpu.sequence_frames}} frames per video, {{cpu.sequence_epochs}} epochs, {{cpu_scale.repeats}} repeats, RNN widths {{cpu.rnn_widths}} (the
2048-wide RNNs are cut at cpu scale, 256 added: see results/p2/README.md, which has the
measured time); ``smoke`` {{smoke.sequence_epochs}} epochs, RNN widths {{smoke.rnn_widths}}.

Memory: each configuration (all its repeats) trains in a worker process of its own, since
TensorFlow keeps every model fitted in a process until it exits (the 141-run sequence
grid in one process grew with every configuration); ``--in-process`` runs the whole grid
here.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdetect import experiment  # noqa: E402

# P2's settings, tables and logic live in its home, dfdetect/papers/ann_comparison/
# (this grid: sequence_grids.py); this script is its --help (the docstring above, settings
# filled in) and one call.
parse_args, run, main = experiment.paper_script(
    "p2_sequence_grid", __doc__, "dfdetect.papers.ann_comparison", add_args="sequence_parser",
    run="run_sequence", settings="help_settings")


if __name__ == "__main__":
    sys.exit(main())
