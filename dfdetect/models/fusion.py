"""P1: feature-level fusion of CNN backbones (Nurgozhin 2025, section 2.3).

One shared input feeds every backbone; their pooled feature vectors are joined by
``keras.layers.Concatenate`` and classified by Dense(256, relu) -> Dropout(0.5) ->
Dense(1, sigmoid) = P(fake). With a single backbone the same head makes the paper's
single-model baseline, so singles and fusions differ only in their features.

A configuration is named by its backbones joined with ``+`` in the paper's order,
e.g. ``"xception+densenet121"``; :data:`PAPER_CONFIGS` lists the paper's eleven.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
from keras import layers

from dfdetect.errors import ModelError
from dfdetect.models.backbones import BACKBONES, build_backbone, feature_dim

#: The paper's configurations, in the order of its Tables 3.1-3.4 (4 singles, 6 pairs),
#: then the Meso + DenseNet-121 + Xception triple that section 2.3 describes (it has
#: no row in the tables).
PAPER_CONFIGS: tuple[str, ...] = (
    "xception",
    "densenet121",
    "resnet50",
    "meso4",
    "meso4+resnet50",
    "meso4+densenet121",
    "meso4+xception",
    "xception+resnet50",
    "xception+densenet121",
    "resnet50+densenet121",
    "meso4+densenet121+xception",
)

# The tables call a single DenseNet "DenseNet-121" but write "DenseNet" inside a
# combination; everything else keeps one name.
_SINGLE_NAMES = {
    "xception": "Xception",
    "densenet121": "DenseNet-121",
    "resnet50": "ResNet",
    "inceptionv3": "InceptionV3",
    "meso4": "Mesonet",
    "mesoinception4": "MesoInception-4",
}
_COMBO_NAMES = {**_SINGLE_NAMES, "densenet121": "DenseNet"}


def parse_config(backbones: Sequence[str] | str) -> tuple[str, ...]:
    """Backbone names of a configuration.

    Args:
        backbones: a list of backbone names or a ``+``-joined string such as
            ``"xception+densenet121"`` (case and spaces ignored).

    Returns:
        The names, lower-cased, in the given order.

    Raises:
        ModelError: empty, unknown or repeated names.
    """
    parts = backbones.split("+") if isinstance(backbones, str) else list(backbones)
    names = tuple(str(p).strip().lower() for p in parts)
    if not names or any(not n for n in names):
        raise ModelError(f"empty backbone name in configuration {backbones!r}; "
                         f"valid backbones: {', '.join(BACKBONES)}")
    unknown = [n for n in names if n not in BACKBONES]
    if unknown:
        raise ModelError(f"unknown backbone {unknown[0]!r} in configuration {backbones!r}; "
                         f"valid backbones: {', '.join(BACKBONES)}")
    if len(set(names)) != len(names):
        raise ModelError(f"configuration {backbones!r} repeats a backbone")
    return names


def config_name(backbones: Sequence[str] | str) -> str:
    """Canonical ``+``-joined name of a configuration (e.g. for file names and CSV rows)."""
    return "+".join(parse_config(backbones))


def display_name(config: Sequence[str] | str) -> str:
    """The paper's label for a configuration.

    Args:
        config: as for :func:`parse_config`.

    Returns:
        E.g. ``"Xception"``, ``"DenseNet-121"``, ``"Mesonet + ResNet"``,
        ``"Xception + DenseNet"``, ``"Mesonet + DenseNet + Xception"``.
    """
    names = parse_config(config)
    if len(names) == 1:
        return _SINGLE_NAMES[names[0]]
    return " + ".join(_COMBO_NAMES[n] for n in names)


def build_fusion_model(backbones: Sequence[str] | str,
                       input_shape: Sequence[int] = (256, 256, 3),
                       weights: str | os.PathLike | None | dict = None,
                       freeze: bool = False,
                       head_units: int = 256,
                       dropout: float = 0.5,
                       name: str | None = None) -> keras.Model:
    """The fused classifier of one configuration.

    Args:
        backbones: backbone names (list, or ``+``-joined string); one name gives
            the single-model baseline with the same head.
        input_shape: (height, width, 3) of images scaled to [0, 1].
        weights: ``None`` (train from scratch, the report's text), ``"imagenet"``
            (the report's listing; applies to every Keras-application backbone, the
            Meso ones stay randomly initialised), or a dict ``{backbone: weights}``
            for per-backbone choices (a local file path, ``"imagenet"`` or ``None``).
        freeze: freeze every backbone so only the head trains (the report's listing).
        head_units: width of the Dense ReLU layer (256 in the paper).
        dropout: dropout rate before the output (0.5 in the paper).
        name: model name; default ``fusion_<backbone>_<backbone>...``.

    Returns:
        A model (batch, h, w, 3) -> (batch, 1) = P(fake). Backbone sub-models are
        named ``<backbone>_features``; the head layers ``fusion_concat`` (only with
        more than one backbone), ``fusion_dense``, ``fusion_dropout`` and
        ``prediction``.

    Raises:
        ModelError: unknown backbone names or bad arguments.
        WeightsUnavailableError: ImageNet weights cannot be downloaded here, or a
            weights file is missing.
    """
    names = parse_config(backbones)
    if isinstance(weights, dict):
        per_backbone = {str(k).strip().lower(): v for k, v in weights.items()}
        extra = sorted(set(per_backbone) - set(names))
        if extra:
            raise ModelError(f"weights given for {extra}, which are not in configuration "
                             f"{'+'.join(names)}")
    else:
        if weights not in (None, "imagenet") and len(names) > 1:
            raise ModelError(f"one weights file cannot serve {'+'.join(names)}; pass a dict "
                             "{backbone: path}", path=weights)
        per_backbone = {n: weights for n in names}
        if weights == "imagenet":
            # MesoNet has no ImageNet weights: "pretrained" means the Keras applications.
            per_backbone.update({n: None for n in names if n.startswith("meso")})
    if not (isinstance(head_units, int) and head_units > 0):
        raise ModelError(f"head_units must be a positive integer, got {head_units!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ModelError(f"dropout must be in [0, 1), got {dropout!r}")

    inputs = keras.Input(tuple(input_shape), name="image")
    features = []
    for n in names:
        backbone = build_backbone(n, input_shape, weights=per_backbone.get(n),
                                  trainable=not freeze)
        features.append(backbone(inputs))
    if len(features) > 1:
        x = layers.Concatenate(axis=-1, name="fusion_concat")(features)
    else:
        x = features[0]
    x = layers.Dense(head_units, activation="relu", name="fusion_dense")(x)
    x = layers.Dropout(dropout, name="fusion_dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="prediction")(x)
    return keras.Model(inputs, outputs, name=name or "fusion_" + "_".join(names))


def fused_feature_dim(backbones: Sequence[str] | str,
                      input_shape: Sequence[int] = (256, 256, 3)) -> int:
    """Width of the concatenated feature vector of a configuration (e.g. 3072 for
    xception+densenet121)."""
    return sum(feature_dim(n, input_shape) for n in parse_config(backbones))
