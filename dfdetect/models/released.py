"""The papers' authors' released weights, wrapped as dfdetect detectors (reference rows).

The MesoNet authors (Afchar et al., WIFS 2018) released Keras 2 HDF5 weights of Meso-4
and MesoInception-4 trained on their real Deepfake and Face2Face data
(``../shared/weights/mesonet/``, Apache-2.0). They are a reference: a detector trained
on real deepfakes, scored on the same real-world set as ours with the same face
cropping. They are read from where they lie and never copied into this repository.

Their head outputs P(real) (the authors' folders ``df/`` and ``real/`` made class 1
"real"), so :func:`load_mesonet` appends :class:`ComplementProbability` to turn it into
dfdetect's P(fake); the result is an ordinary image model that
:mod:`dfdetect.predict` and :mod:`dfdetect.evaluate` score like any exported one.
"""

from __future__ import annotations

import os

import keras

from dfdetect.errors import ModelError
from dfdetect.models.export import export_model
from dfdetect.models.meso import build_meso4, build_mesoinception4

__all__ = ["ComplementProbability", "MESONET_FRAMES", "MESONET_SIZE", "export_mesonet",
           "load_mesonet"]

#: The released weights take 256 x 256 RGB crops in [0, 1].
MESONET_SIZE = 256
#: Frames a video the weights' README measured with (16 evenly spaced).
MESONET_FRAMES = 16


@keras.saving.register_keras_serializable(package="dfdetect")
class ComplementProbability(keras.layers.Layer):
    """``1 - p``: turns a head that scores P(real) into one that scores P(fake).

    A named, registered layer rather than a Lambda, so a model that uses it saves and
    loads back in Keras' safe mode.
    """

    def call(self, inputs):
        return 1.0 - inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def load_mesonet(path: str | os.PathLike) -> tuple[keras.Model, dict]:
    """The authors' Meso-4 (or MesoInception-4) with their weights, scoring P(fake).

    The architecture is chosen from the file name (``MesoInception*`` or Meso-4), built
    at 256 x 256 x 3 with :mod:`dfdetect.models.meso` (the authors' layer order, so
    Keras' HDF5 loader matches layer for layer), and the output is wrapped as ``1 - p``.

    Args:
        path: one of the released ``.h5`` weight files (e.g. ``Meso4_DF.h5``).

    Returns:
        ``(model, meta)`` in the form :func:`dfdetect.predict.load_detector` returns:
        image kind, 256-px input, values in [0, 1], threshold 0.5, 16 frames a video.

    Raises:
        ModelError: the file is missing or does not hold weights for this architecture.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelError("MesoNet weights file not found", path)
    stem = os.path.splitext(os.path.basename(path))[0]
    inception = "inception" in stem.lower()
    base = (build_mesoinception4 if inception else build_meso4)(
        (MESONET_SIZE, MESONET_SIZE, 3))
    try:
        base.load_weights(path)
    except Exception as err:  # noqa: BLE001  h5py/Keras raise many types; one line for all
        detail = " ".join(str(err).split())[:200]
        raise ModelError(f"cannot load as {'MesoInception-4' if inception else 'Meso-4'} "
                         f"weights (the authors' HDF5 files): {type(err).__name__}: {detail}",
                         path) from None
    output = ComplementProbability(name="p_fake")(base.output)
    model = keras.Model(base.input, output, name=f"mesonet_{stem}")
    meta = {"kind": "image", "input_shape": [MESONET_SIZE, MESONET_SIZE, 3],
            "image_size": MESONET_SIZE, "value_range": [0.0, 1.0], "threshold": 0.5,
            "frames": MESONET_FRAMES, "head": "sigmoid", "model_name": model.name,
            "experiment": "mesonet_released", "config": stem,
            "trained_on": "the MesoNet authors' own Deepfake / Face2Face data",
            "weights_file": path}
    return model, meta


def export_mesonet(path: str | os.PathLike, out: str | os.PathLike) -> str:
    """Writes the wrapped released model as a dfdetect ``.keras`` (for ``dfdetect predict``).

    The file holds the authors' weights: write it outside the repository (or under
    ``results/``, where ``*.keras`` is git-ignored).
    """
    model, meta = load_mesonet(path)
    extra = {k: v for k, v in meta.items()
             if k not in ("kind", "input_shape", "head", "model_name", "value_range")}
    return export_model(model, out, **extra)
