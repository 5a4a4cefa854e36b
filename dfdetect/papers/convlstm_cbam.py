"""P3 — Xception + CBAM + bidirectional ConvLSTM (``seeds/004``): settings and tables.

Every P3 hyperparameter lives here; ``experiments/p3_convlstm_cbam.py`` reads them. The
models are :mod:`dfdetect.models.video`; the imbalance schedule (Table 4) is
:func:`dfdetect.training.imbalance_schedule`.
"""

from __future__ import annotations

import dataclasses

from dfdetect.papers import lookup

__all__ = ["ConvLstmCbamSettings", "COLUMNS", "COUNTS", "MODELS", "PAPER", "PAPER_COLUMNS",
           "SETTINGS", "WARMUP_CONFIG", "settings_for"]


@dataclasses.dataclass(frozen=True)
class ConvLstmCbamSettings:
    """What P3 trains with at one scale.

    Attributes:
        epochs: maximum epochs of each video model (early stopping may end sooner).
        warmup_epochs: epochs of the per-frame Xception warm-up whose weights start the
            video models (0: none; the paper starts from ImageNet weights).
        learning_rate, beta_1, beta_2, batch_size: the paper's Adam 1e-4 (0.9, 0.999)
            and batch 2.
        patience: early-stopping patience (assumed).
        warmup_learning_rate, warmup_patience: the warm-up's Adam rate and patience.
        bn_momentum: BatchNormalization momentum of the scratch-trained Xception (Keras'
            default 0.99 is too slow for a few dozen steps per epoch).
        holdout_method: the benchmark forgery kept for the cross test.
    """

    epochs: int
    warmup_epochs: int
    learning_rate: float = 1e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    batch_size: int = 2
    patience: int = 5
    warmup_learning_rate: float = 1e-3
    warmup_patience: int = 2
    bn_momentum: float = 0.9
    holdout_method: str = "identity_swap"


#: Per scale; ``paper`` is the paper's own setting.
SETTINGS: dict[str, ConvLstmCbamSettings] = {
    "smoke": ConvLstmCbamSettings(epochs=1, warmup_epochs=1),
    "cpu": ConvLstmCbamSettings(epochs=8, warmup_epochs=8),
    "paper": ConvLstmCbamSettings(epochs=60, warmup_epochs=0),
}


def settings_for(scale_name: str) -> ConvLstmCbamSettings:
    """The :data:`SETTINGS` of a scale (ModelError names an unknown one)."""
    return lookup(SETTINGS, scale_name, "P3")


#: The video models in the paper's table order; ``xception`` is the warm-up frame model.
MODELS = ("xception_lstm", "xception_convlstm", "convlstm_cbam")
WARMUP_CONFIG = "xception"
#: Table columns -> keys of evaluation.binary_metrics (fake = positive class).
COLUMNS = {"AUC": "ROC AUC", "Accuracy": "Acc", "Precision": "Prec(1)", "Recall": "Rec(1)",
           "F1": "F1(1)", "EER": "EER", "AP": "AP"}
COUNTS = ("TN", "FP", "FN", "TP")
#: The paper's numbers (Celeb-DF v2): Table 5 (AUC), Table 6 (accuracy), Table 7 (P/R/F1).
PAPER = {
    WARMUP_CONFIG: {"AUC": 0.676},
    "xception_lstm": {"AUC": 0.897, "Accuracy": 0.695},
    "xception_convlstm": {"AUC": 0.886, "Accuracy": 0.850},
    "convlstm_cbam": {"AUC": 0.989, "Accuracy": 0.935, "Precision": 0.989, "Recall": 0.880,
                      "F1": 0.931},
}
PAPER_COLUMNS = ("AUC", "Accuracy", "Precision", "Recall", "F1")
