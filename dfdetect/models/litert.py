"""A dfdetect model's LiteRT twin: the same network as a ``.tflite`` file, scored without
TensorFlow.

``dfdetect predict`` on one video spends most of a cold start importing TensorFlow and
loading the ``.keras`` archive (several seconds of 2 cores). The LiteRT interpreter
(``ai-edge-litert``) imports in a tenth of a second and loads the converted network in a
few hundredths, and scores the crops to within float rounding of Keras. So a model may
carry a twin beside it -- ``default.keras`` -> ``default.tflite`` and
``default.tflite.json`` -- written by :func:`export_litert`, which checks the two agree on
a probe batch before it writes anything.

The sidecar JSON records the ``.keras`` file's SHA-256: :func:`find_twin` uses a twin only
while its model is the file it was converted from, so a retrained ``default.keras``
is never scored by a stale twin (it falls back to Keras until the twin is written
again). The metadata (input size, threshold) is always the ``.keras`` archive's own,
read without Keras (:mod:`dfdetect.models.metadata`).
"""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np

from dfdetect.errors import ModelError
from dfdetect.io import atomic_write_text, quiet_stderr, sha256_of
from dfdetect.models.metadata import read_metadata

#: What ``dfdetect predict --runtime`` accepts: ``auto`` takes a model's LiteRT twin when
#: it has a current one and ai-edge-litert is installed, else Keras.
RUNTIMES = ("auto", "keras", "litert")
SIDECAR_SUFFIX = ".json"
#: Largest |Keras - LiteRT| on the probe batch that :func:`export_litert` accepts.
TOLERANCE = 1e-4
INSTALL = "pip install ai-edge-litert"


def twin_path(model_path: str | os.PathLike) -> str:
    """``<name>.tflite`` beside ``<name>.keras``."""
    return os.path.splitext(os.fspath(model_path))[0] + ".tflite"


def available() -> bool:
    """Whether the LiteRT interpreter is installed."""
    return importlib.util.find_spec("ai_edge_litert") is not None


def _sidecar(twin: str) -> dict | None:
    try:
        with open(twin + SIDECAR_SUFFIX, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def twin_problem(model_path: str | os.PathLike) -> str | None:
    """Why ``model_path`` cannot be scored through its twin (None: it can)."""
    twin = twin_path(model_path)
    if not os.path.isfile(twin):
        return f"it has no LiteRT twin ({os.path.basename(twin)}; write it with " \
               f"`dfdetect litert {os.path.basename(os.fspath(model_path))}`)"
    side = _sidecar(twin)
    if side is None:
        return f"its twin has no readable {os.path.basename(twin)}{SIDECAR_SUFFIX}; " \
               "write the twin again"
    if side.get("source_sha256") != sha256_of(model_path):
        return "its LiteRT twin was converted from another version of the model; write " \
               "the twin again"
    if not available():
        return f"ai-edge-litert is not installed ({INSTALL})"
    return None


def find_twin(model_path: str | os.PathLike, runtime: str = "auto") -> str | None:
    """The twin ``runtime`` asks for: its path, or None for Keras.

    Raises:
        ModelError: an unknown runtime, or ``litert`` for a model whose twin is missing,
            stale or cannot run here (one line saying which).
    """
    if runtime not in RUNTIMES:
        raise ModelError(f"unknown runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    if runtime == "keras" or not os.path.isfile(model_path):
        return None  # a missing model is load_detector's one-line error, as always
    problem = twin_problem(model_path)
    if problem is None:
        return twin_path(model_path)
    if runtime == "litert":
        raise ModelError(f"--runtime litert: {problem}", os.fspath(model_path))
    return None


class LiteRTModel:
    """A LiteRT interpreter behind the two things predict asks of a Keras model:
    ``input_shape`` and ``predict_on_batch``."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter  # deferred: optional package

        self.path = os.fspath(path)
        try:
            with quiet_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self._interp = Interpreter(model_path=self.path,
                                           num_threads=threads or os.cpu_count() or 1)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ModelError(f"not a LiteRT model ({' '.join(str(err).split())[:160]}); "
                             "write the twin again", self.path) from None
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"a LiteRT twin has one input and one output; this one has "
                             f"{len(inputs)} and {len(outputs)}", self.path)
        self._in, self._out = inputs[0]["index"], outputs[0]["index"]
        self.input_shape = (None, *(int(d) for d in inputs[0]["shape"][1:]))
        self._batch = int(inputs[0]["shape"][0])

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if len(x) != self._batch:
            self._interp.resize_tensor_input(self._in, list(x.shape))
            self._interp.allocate_tensors()
            self._batch = len(x)
        self._interp.set_tensor(self._in, x)
        self._interp.invoke()
        return np.array(self._interp.get_tensor(self._out))


def load_litert(model_path: str | os.PathLike, twin: str | None = None) -> tuple[LiteRTModel, dict]:
    """``(model, meta)``: the twin of ``model_path`` and the ``.keras`` file's metadata.

    Raises:
        ModelError: the metadata is unreadable, the twin cannot be loaded, or it takes
            another input than the metadata says.
    """
    meta = read_metadata(model_path)
    model = LiteRTModel(twin or twin_path(model_path))
    want = tuple(meta.get("input_shape") or ())
    if want and None not in want and tuple(model.input_shape[1:]) != tuple(want):
        raise ModelError(f"the LiteRT twin takes {model.input_shape[1:]}, the model "
                         f"{tuple(want)}; write the twin again", model.path)
    return model, meta


def export_litert(model_path: str | os.PathLike, batch: int = 8, seed: int = 0) -> str:
    """Converts an exported dfdetect model to its LiteRT twin; returns the twin's path.

    The network is converted as it scores (its single output), then both are run on a
    random probe batch: the twin is written only if they agree within
    :data:`TOLERANCE`.

    Raises:
        ModelError: the model is unusable, has several outputs, fails to convert, or
            the twin disagrees with it.
    """
    from dfdetect.models.export import load_exported  # deferred: starts TensorFlow

    model, meta = load_exported(model_path)
    path = os.fspath(model_path)
    if len(model.outputs) != 1:
        raise ModelError(f"the model has {len(model.outputs)} outputs; a LiteRT twin "
                         "holds a scoring network with one", path)
    if not available():
        raise ModelError(f"ai-edge-litert is not installed ({INSTALL}): the twin could "
                         "not be checked", path)
    twin = twin_path(path)
    tmp = twin[:-len(".tflite")] + ".partial.tflite"
    try:
        model.export(tmp, format="litert", verbose=False)
    except Exception as err:  # noqa: BLE001 - the converter raises many kinds
        if os.path.exists(tmp):
            os.remove(tmp)
        raise ModelError(f"LiteRT cannot convert this model ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:200]})", path) from None
    shape = [batch, *(int(d) for d in model.input_shape[1:])]
    lo, hi = (meta.get("value_range") or (0.0, 1.0))[:2]
    x = np.random.default_rng(seed).uniform(lo, hi, shape).astype(np.float32)
    want = np.asarray(model.predict_on_batch(x), np.float64)
    got = np.asarray(LiteRTModel(tmp).predict_on_batch(x), np.float64)
    diff = float(np.max(np.abs(want - got)))
    if got.shape != want.shape or not diff <= TOLERANCE:
        os.remove(tmp)
        raise ModelError(f"the LiteRT conversion scores differently (max difference "
                         f"{diff:.2g} on a probe batch, tolerance {TOLERANCE:g}); not written",
                         path)
    os.replace(tmp, twin)
    atomic_write_text(twin + SIDECAR_SUFFIX, json.dumps({
        "source": os.path.basename(path), "source_sha256": sha256_of(path),
        "format": "litert", "probe_batch": batch, "probe_max_abs_difference": diff},
        indent=2) + "\n")
    return twin
