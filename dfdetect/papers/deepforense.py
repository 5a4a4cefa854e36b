"""P5 — DeepForense (``seeds/000``): its settings.

Every P5 setting lives here; ``experiments/p5_deepforense.py`` reads them. The
classifiers and ensembles (SVM, random forest, dense network, bagging, boosting,
stacking) are :mod:`dfdetect.models.classical`; the normalisation layer is
:class:`dfdetect.models.layers.ColorNormalization`; the fine-tune / cross-validation
partition is :func:`dfdetect.data.splits.finetune_partition`.
"""

from __future__ import annotations

import dataclasses

from dfdetect.papers import lookup

__all__ = ["DeepForenseSettings", "PAPER_ACCURACY", "SETTINGS", "settings_for"]


@dataclasses.dataclass(frozen=True)
class DeepForenseSettings:
    """What P5 runs with at one scale.

    Attributes:
        backbone: the feature extractor (the paper's ResNet50; Meso-4 on a CPU, where
            it trains in seconds: 64-d features at 64 px).
        finetune_epochs: epochs of fine-tuning the backbone as a classifier before
            extracting features (early stopping may end sooner; Meso-4 needs ~30-40 on
            the cpu benchmark).
        cv_folds: k of the k-fold cross-validation.
        finetune_fraction: identities used to fine-tune, never cross-validated.
        finetune_val: of the fine-tuning identities, the share kept for early stopping.
        learning_rate, patience: fine-tuning's Adam rate and early-stopping patience.
        pca_components: PCA's components at most, in every pipeline (assumed).
        selected_features: features the selection study keeps (assumed).
        selection_pool: importance prefilter before sequential selection.
        tsne_points: points drawn in the t-SNE plot.
        threshold: the fake-probability threshold.
        holdout_method: the benchmark forgery kept for the cross test (as P1, so both
            share one benchmark store).
    """

    backbone: str
    finetune_epochs: int
    cv_folds: int
    finetune_fraction: float = 0.5
    finetune_val: float = 0.1
    learning_rate: float = 1e-3
    patience: int = 8
    pca_components: int = 32
    selected_features: int = 8
    selection_pool: int = 16
    tsne_points: int = 2000
    threshold: float = 0.5
    holdout_method: str = "swap"


#: Per scale; ``paper`` is the paper's own setting (its k is assumed: 5).
SETTINGS: dict[str, DeepForenseSettings] = {
    "smoke": DeepForenseSettings(backbone="meso4", finetune_epochs=1, cv_folds=2),
    "cpu": DeepForenseSettings(backbone="meso4", finetune_epochs=40, cv_folds=5),
    "paper": DeepForenseSettings(backbone="resnet50", finetune_epochs=60, cv_folds=5),
}


def settings_for(scale_name: str) -> DeepForenseSettings:
    """The :data:`SETTINGS` of a scale (ModelError names an unknown one)."""
    return lookup(SETTINGS, scale_name, "P5")


#: The paper's reported accuracy.
PAPER_ACCURACY = 0.875
