"""A dfdetect model file's metadata (``dfdetect.json`` inside the ``.keras`` zip), read
without Keras.

``predict`` reads what a model takes (input size, frames, threshold) before TensorFlow
has started, so the first video's frames can be decoded meanwhile; a file that is not a
dfdetect model is refused here in one line, before the slow import.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib

from dfdetect.errors import ModelError

METADATA_NAME = "dfdetect.json"
# What Keras 3 writes into every .keras archive; without them it cannot be loaded.
KERAS_MEMBERS = ("config.json", "model.weights.h5")
DAMAGED = "the .keras file is damaged or incomplete"
REDO = "export or download it again"


def read_metadata(path: str | os.PathLike) -> dict:
    """The dfdetect metadata of an exported model.

    Raises:
        ModelError: the file is missing, not a ``.keras`` archive, not exported by
            dfdetect, or damaged (a member missing or failing its checksum, metadata
            that is not a JSON object) -- one line naming the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelError("model file not found", path)
    if not zipfile.is_zipfile(path):
        raise ModelError("not a .keras model file (expected a Keras v3 zip archive)", path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if METADATA_NAME not in names:
                raise ModelError("a Keras model, but not one exported by dfdetect "
                                 "(no dfdetect.json inside); export it with "
                                 "dfdetect.models.export.export_model", path)
            missing = [m for m in KERAS_MEMBERS if m not in names]
            if missing:
                raise ModelError(f"{DAMAGED}: it has no {' or '.join(missing)} inside; "
                                 f"{REDO}", path)
            # Every member's CRC, now: a flipped byte is one line here instead of a
            # traceback from deep inside Keras' loader.
            bad = archive.testzip()
            if bad is not None:
                raise ModelError(f"{DAMAGED}: member {bad} fails its checksum; {REDO}", path)
            text = archive.read(METADATA_NAME)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error,
            NotImplementedError) as err:
        raise ModelError(f"{DAMAGED} ({' '.join(str(err).split())[:200]}); {REDO}",
                         path) from None
    try:
        meta = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"its dfdetect.json is not valid JSON ({err}); {REDO}", path) from None
    if not isinstance(meta, dict):
        raise ModelError(f"its dfdetect.json holds a {type(meta).__name__}, expected an "
                         f"object of model settings; {REDO}", path)
    return meta
