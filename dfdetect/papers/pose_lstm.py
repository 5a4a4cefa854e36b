"""P4 — the body-language LSTM (``seeds/001``): its settings and tables.

Every P4 training setting lives here; ``experiments/p4_pose_lstm.py`` reads them. The
optimizers themselves (Adam / SGD by name, gradient clipping at global norm 0.25, the
step decay x0.5 every 30 epochs) are built by
:func:`dfdetect.models.sequence.pose_optimizer` from ``POSE_OPTIMIZERS``,
``POSE_CLIPNORM`` and ``POSE_LR_DECAY`` there; the data (12 keypoints, 150-frame
segments, z-scores) is :mod:`dfdetect.data.pose`.
"""

from __future__ import annotations

import dataclasses

from dfdetect.papers import lookup

__all__ = ["BASELINES", "FIG8_OPTIMIZERS", "PAPER_TABLE_4", "PAPER_TABLE_5", "PAPER_TABLE_6",
           "PoseLstmSettings", "SETTINGS", "settings_for"]


@dataclasses.dataclass(frozen=True)
class PoseLstmSettings:
    """What P4 trains with at one scale.

    Attributes:
        epochs: training epochs (paper 200; the best validation epoch is kept).
        batch_size: paper 1; larger on a CPU, where batch 1 through a 512 x 2 LSTM over
            150 steps is far too slow.
        optimizer: the main optimizer (Table 4, Table 5), a name of
            ``dfdetect.models.sequence.POSE_OPTIMIZERS``: the paper's Adam 1e-2 at its
            batch 1; with the larger CPU batch, stacked LSTMs diverge at 1e-2 and
            oscillate at 1e-3, so ``cpu`` and ``smoke`` use Adam 3e-4 (measured on the
            cpu pose benchmark, one PoI, batch 16, 8 epochs: 2x512 validation accuracy
            0.50 / 0.47-0.88 swinging / 0.78 steady; 2x256 at 1e-2: 0.50).
        hidden, layers, dropout: the main model, 2 x 512 with dropout 0.5 between layers.
        l2: weight decay (L2) of every kernel, paper 1e-4.
    """

    epochs: int
    batch_size: int
    optimizer: str
    hidden: int = 512
    layers: int = 2
    dropout: float = 0.5
    l2: float = 1e-4


#: Per scale; ``paper`` is the paper's own setting.
SETTINGS: dict[str, PoseLstmSettings] = {
    "smoke": PoseLstmSettings(epochs=1, batch_size=8, optimizer="adam-3e-4"),
    "cpu": PoseLstmSettings(epochs=20, batch_size=16, optimizer="adam-3e-4"),
    "paper": PoseLstmSettings(epochs=200, batch_size=1, optimizer="adam-1e-2"),
}


def settings_for(scale_name: str) -> PoseLstmSettings:
    """The :data:`SETTINGS` of a scale (ModelError names an unknown one)."""
    return lookup(SETTINGS, scale_name, "P4")


#: Table 4 of the paper (test accuracy of models A, B, C).
PAPER_TABLE_4 = {"lstm-2x512": 0.9439, "lstm-2x256": 0.9124, "lstm-3x128": 0.8662}
#: Table 5 / Table 6's image-network baselines: config -> registry name. They are
#: trained like the proposed LSTM (the scale's main optimizer, batch, epochs and decay);
#: how a movement enters them is our reading, ``dfdetect/models/pose_baselines.py``.
BASELINES = {"vgg16": "pose_vgg16", "resnet50": "pose_resnet50",
             "resnet101": "pose_resnet101", "resnet152": "pose_resnet152",
             "resnet152-face": "pose_resnet152_face"}
#: Table 5 of the paper (train, validation, test accuracy); the baselines' rows are
#: ``pose_baselines.PAPER_TABLE_5_BASELINES`` (a test keeps the two equal; this module
#: must not import Keras).
PAPER_TABLE_5 = {"vgg16": (0.8210, 0.7634, 0.7403), "resnet50": (0.9129, 0.8764, 0.8449),
                 "resnet101": (0.9300, 0.8990, 0.8800), "resnet152": (0.9600, 0.9290, 0.9201),
                 "lstm-2x512": (0.9906, 0.9623, 0.9439), "cnn+lstm": (0.9811, 0.9400, 0.9378)}
#: Table 6 of the paper (test accuracy): Li et al.'s ResNet152 on the facial landmarks
#: only, beside the proposed LSTM.
PAPER_TABLE_6 = {"resnet152-face": 0.9320, "lstm-2x512": 0.9439}
#: The optimizer study of Fig. 8 (run without learning-rate decay).
FIG8_OPTIMIZERS = ("sgd-1e-3", "sgd-1e-4", "adam-1e-3")
