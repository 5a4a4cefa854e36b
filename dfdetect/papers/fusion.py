"""P1 — feature-level fusion of CNNs (``seeds/002``): its settings and tables.

Every P1 hyperparameter lives here; ``experiments/p1_fusion.py`` reads them. The models
are :mod:`dfdetect.models.fusion` (Concatenate of backbones -> Dense(256) -> Dropout(0.5)
-> Dense(1)); the augmentation is :func:`dfdetect.models.layers.build_augmentation`.
"""

from __future__ import annotations

import dataclasses

from dfdetect.papers import lookup

__all__ = ["BASES", "EXTRA", "FusionSettings", "HOLDOUT_METHOD", "PAPER_ACC_AUC", "SETTINGS",
           "TABLES", "TABLE_A", "TABLE_B", "settings_for"]


@dataclasses.dataclass(frozen=True)
class FusionSettings:
    """What P1 trains with at one scale.

    Attributes:
        epochs: maximum epochs of a model trained end to end: the four single backbones
            (and, with ``--bases scratch``, every fusion). Early stopping may end sooner.
        head_epochs: maximum epochs of a fusion head on the frozen bases of the trained
            single models (``--bases singles``, the default): only the head learns, so
            a few epochs suffice.
        learning_rate: Adam's initial rate (assumed: SPEC.md).
        decay_factor, decay_every: step decay, the rate x ``decay_factor`` every
            ``decay_every`` epochs (assumed: halve every 5).
        patience: early-stopping patience on validation loss (assumed: 5).
        rotation_degrees, zoom, brightness, channel_shift: the on-the-fly augmentation
            (channel-shift range assumed: 0.1 of [0, 1]).
    """

    epochs: int
    head_epochs: int
    learning_rate: float = 1e-3
    decay_factor: float = 0.5
    decay_every: int = 5
    patience: int = 5
    rotation_degrees: float = 15.0
    zoom: float = 0.2
    brightness: float = 0.2
    channel_shift: float = 0.1


#: Per scale; ``paper`` is the paper's own setting.
SETTINGS: dict[str, FusionSettings] = {
    "smoke": FusionSettings(epochs=1, head_epochs=1),
    "cpu": FusionSettings(epochs=8, head_epochs=3),
    "paper": FusionSettings(epochs=60, head_epochs=20),
}


def settings_for(scale_name: str) -> FusionSettings:
    """The :data:`SETTINGS` of a scale (ModelError names an unknown one)."""
    return lookup(SETTINGS, scale_name, "P1")


#: The paper's accuracy and AUC: in-dataset (Table 3.1) then cross-dataset (Table 3.3).
PAPER_ACC_AUC = {
    "xception": (0.8833, 0.92, 0.8452, 0.89),
    "densenet121": (0.8346, 0.89, 0.7928, 0.85),
    "resnet50": (0.7742, 0.83, 0.7325, 0.80),
    "meso4": (0.8096, 0.85, 0.7714, 0.82),
    "meso4+resnet50": (0.8225, 0.87, 0.7842, 0.84),
    "meso4+densenet121": (0.8404, 0.90, 0.8019, 0.86),
    "meso4+xception": (0.8756, 0.91, 0.8365, 0.88),
    "xception+resnet50": (0.8947, 0.93, 0.8553, 0.90),
    "xception+densenet121": (0.8963, 0.93, 0.8578, 0.90),
    "resnet50+densenet121": (0.8563, 0.90, 0.8192, 0.87),
}
#: Tables 3.1-3.4: file -> (split, columns).
TABLE_A = ("Acc", "Prec(0)", "Prec(1)", "Rec(0)", "Rec(1)", "ROC AUC")
TABLE_B = ("F1(0)", "F1(1)", "Macro Prec", "Macro Rec", "Macro F1")
EXTRA = ("EER", "AP")
TABLES = {
    "table_3_1.csv": ("test", TABLE_A),
    "table_3_2.csv": ("test", TABLE_B),
    "table_3_3.csv": ("cross", TABLE_A),
    "table_3_4.csv": ("cross", TABLE_B),
}
HOLDOUT_METHOD = "identity_swap"  # the benchmark forgery kept out of training for the cross test
BASES = ("singles", "scratch")
