"""P2 — comparison of ANNs (``seeds/003``): its settings, tables and library code.

The three grid scripts (``experiments/p2_custom_cnn_grid.py``,
``p2_inception_unfreeze.py``, ``p2_sequence_grid.py``) parse their flags and call the
grid's run here (:func:`run_custom_cnn`, :func:`run_inception`, :func:`run_sequence`).
One module a job:

- :mod:`.common`, what the three grids share: :data:`SETTINGS` per scale (frames,
  epochs, widths; the grids' content is data in :mod:`dfdetect.models.custom_cnn` and
  :mod:`dfdetect.models.sequence`); the videos of a store split as the paper does (80 %
  train / 20 % validation: :func:`dfdetect.data.splits.train_heldout`), frames as
  labelled images for the CNNs; summaries (:func:`summarize_runs`, over
  :func:`dfdetect.results.mean_over_repeats`), the Table 3 choice (:func:`select_best`),
  Table 3 itself beside the paper's numbers (:data:`PAPER_TABLE_3`). One run is
  :func:`dfdetect.training.train_run` (fixed epochs, the paper's columns, see
  :data:`dfdetect.results.RUN_METRICS`); figures :func:`dfdetect.plots.family_figures`.
- :mod:`.unfreezing`, the InceptionV3 study: initialisation offline (a first training
  phase standing in for ImageNet), the unfreezing grid itself (:func:`run_inception`,
  which the sequence grid also calls to train its default feature extractor), the best
  transfer model exported; the same grid on ImageNet EfficientNet-Lite0 (``--network
  lite0``, :data:`UNFREEZE_NETWORKS`), compared run by run with the InceptionV3 one
  (:func:`compare_unfreeze`).
- :mod:`.custom_cnn_grid`, the custom CNN grid (:func:`run_custom_cnn`; Table 1 on
  frames, each configuration in a worker process running :data:`CUSTOM_CNN_SCRIPT`).
- :mod:`.sequence_grids`, the LSTM, GRU and MLP grids over cached per-video feature
  sequences (:func:`sequence_data`, :func:`run_sequence`, its extractor from
  :func:`resolve_extractor`; workers run :data:`SEQUENCE_SCRIPT`).

The run columns (``runs.csv``), as the paper defines them (section 1.4):

- ``L_t``, ``L_v``, ``A_t``, ``A_v``: the best (lowest loss, highest accuracy) training
  and validation values over the epochs, the paper's "optimal metric value";
- ``L_r_Lt``, ``L_r_Lv``, ``L_r_At``, ``L_r_Av``: L_r, the 1-based epoch at which each of
  them was reached (Table 3 reports the two validation ones; Figures 14, 17... all four);
- ``T_s``: seconds of ``fit`` (every epoch, validation included);
- ``N_p``: parameters; ``W_s``: bytes of the saved ``.weights.h5``. The paper's W_s is
  about 12 bytes per parameter (e.g. GRU 970,498 parameters -> "11.1MB" = 11.1 MiB,
  MLP 10.5 M -> "120MB"): its files held Adam's two moment tensors beside the weights.
  Ours hold the weights only, ~4 bytes per parameter, so ours x 3 ~ the paper's.
"""

# The package's API, as the one module held it before it was split along its seams.
from dfdetect.papers.ann_comparison.common import (  # noqa: F401 (re-exported)
    FAMILIES, PAPER_TABLE_3, SETTINGS, TABLE_3_ROWS, P2Settings, VideoSplits,
    frame_datasets, frames_of, help_settings, load_videos, merge_table_3, parse_configs,
    select_best, settings_for, summarize_runs, table_3_column, write_table_3)
from dfdetect.papers.ann_comparison.unfreezing import (  # noqa: F401 (re-exported)
    BEST_FILE, BEST_MODEL, COMPARED_METRICS, DEFAULT_NETWORK, INCEPTION_CONFIGS,
    INCEPTION_FAMILY, INCEPTION_FIGURES, KERAS_NOTOP, PHASE1_FILE, UNFREEZE_CONTRASTS,
    UNFREEZE_NETWORKS, UnfreezeNetwork, best_inception, build_unfreeze_model,
    compare_unfreeze, describe_inception, export_best_inception, finish_inception,
    inception_cache_name, inception_extractor, inception_parser, inception_size,
    resolve_inception_init, resolve_lite_init, run_inception, setup_differences,
    train_phase1, unfreeze_size)
from dfdetect.papers.ann_comparison.custom_cnn_grid import (  # noqa: F401 (re-exported)
    CUSTOM_CNN_FAMILY, CUSTOM_CNN_FIGURES, CUSTOM_CNN_SCRIPT, custom_cnn_grid,
    custom_cnn_parser, describe_custom_cnn, finish_custom_cnn, run_custom_cnn)
from dfdetect.papers.ann_comparison.sequence_grids import (  # noqa: F401 (re-exported)
    SEQUENCE_FAMILIES, SEQUENCE_SCRIPT, describe_sequence, finish_sequence,
    resolve_extractor, run_sequence, sequence_data, sequence_grid, sequence_parser,
    train_default_extractor)
