"""Export a trained detector as ``.keras`` with dfdetect's metadata inside the archive.

``predict`` and ``explain`` need to know what a model expects (input size, frames,
preprocessing, head) without the user saying it. The metadata travels inside the
``.keras`` zip as ``dfdetect.json``: Keras ignores unknown archive members, so the file
still loads with ``keras.models.load_model`` (safe mode), and nothing gets separated
from the model when it is copied.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import zipfile

import keras

import dfdetect.models as models_package  # this module's package: _register_all_layers
from dfdetect import precision
from dfdetect.errors import ModelError
from dfdetect.io import atomic_path
# The archive checks live without Keras, so predict reads a model's needs before
# TensorFlow starts; re-exported here, where exporting and loading live.
from dfdetect.models.metadata import (DAMAGED, KERAS_MEMBERS, METADATA_NAME,  # noqa: F401
                                      REDO, read_metadata)

FORMAT_VERSION = 1


def export_model(model: keras.Model, path: str | os.PathLike, **metadata) -> str:
    """Save ``model`` to ``path`` (.keras) with ``metadata`` embedded.

    Metadata always gets ``input_shape``, ``kind`` (``image`` for (H, W, C) inputs,
    ``video`` for (F, H, W, C), ``sequence`` otherwise), ``head`` (``sigmoid`` or
    ``softmax``), ``value_range`` ``[0, 1]``, ``format_version`` and, for a model made by
    ``registry.build_model``, ``builder`` (its registered name and arguments, which
    ``registry.rebuild`` builds again); keyword arguments
    (e.g. ``experiment``, ``config``, ``scale``, ``frames``) are added or override.
    ``precision`` says what the model trained in (``float32`` or ``mixed_bfloat16``);
    the archive itself is always saved in float32, so it runs at full speed on any CPU.
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ModelError("an exported model's file name must end in .keras", path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    shape = [d for d in model.input_shape[1:]]
    kind = {3: "image", 4: "video"}.get(len(shape), "sequence")
    head = "sigmoid" if model.output_shape[-1] == 1 else "softmax"
    meta = {"format_version": FORMAT_VERSION, "input_shape": shape, "kind": kind,
            "head": head, "value_range": [0.0, 1.0], "model_name": model.name,
            "precision": precision.model_precision(model)}
    if kind == "video":
        meta["frames"] = shape[0]
    # Set by registry.build_model (the attribute's name lives there; not imported here so
    # exporting does not load every builder module).
    if getattr(model, "_dfdetect_builder", None):
        meta["builder"] = model._dfdetect_builder
    meta.update(metadata)
    # Temp + rename (the temp removed on failure): a killed or failed export leaves the
    # previous model, never a half-written archive that a rerun would trust.
    with atomic_path(path) as tmp, precision.saved_as_float32(model):
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(METADATA_NAME,
                             json.dumps(meta, indent=2, sort_keys=True, default=str))
    return path


def load_exported(path: str | os.PathLike) -> tuple[keras.Model, dict]:
    """Load an exported model (safe mode) with its metadata.

    Raises:
        ModelError: not a dfdetect model, a damaged archive (truncated weights...), or
            it uses a layer this installation does not know (named in the message).
    """
    meta = read_metadata(path)
    _register_all_layers()
    try:
        model = keras.models.load_model(os.fspath(path), safe_mode=True)
    except (TypeError, ValueError) as err:
        raise ModelError(f"cannot load the model: {_explain_load_error(str(err))}",
                         path) from None
    except Exception as err:  # noqa: BLE001 - h5py, zipfile, zlib: a damaged archive
        # A truncated weights file surfaces as OSError / KeyError from h5py, a bad
        # member as BadZipFile: whatever the library, the user's fix is the same.
        detail = " ".join(str(err).split())[:200] or type(err).__name__
        raise ModelError(f"{DAMAGED} ({type(err).__name__}: {detail}); {REDO}",
                         path) from None
    return model, meta


def _explain_load_error(text: str) -> str:
    """The useful part of Keras' deserialisation error, on one line."""
    text = " ".join(text.split())
    unknown = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
    if unknown:
        name = unknown.group(1)
        registered = re.search(r"'registered_name': '([^']*" + re.escape(name) + r")'", text)
        where = f" (registered as '{registered.group(1)}')" if registered else ""
        return (f"it uses a layer this installation does not know: '{name}'{where}; "
                "import the code that defines it, or use a model exported by dfdetect")
    return text[:300]


def _register_all_layers() -> None:
    # Custom layers register on import; import every model module (models/layers.py
    # holds the augmentation and normalisation layers) so any exported dfdetect model
    # deserialises whichever experiment made it.
    for info in pkgutil.iter_modules(models_package.__path__):
        try:
            importlib.import_module(f"dfdetect.models.{info.name}")
        except ImportError:  # an optional module's dependency is missing
            continue
