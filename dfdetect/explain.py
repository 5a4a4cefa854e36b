"""Grad-CAM (Selvaraju et al., 2017) for dfdetect's image and video models.

``grad_cam`` re-runs the model eagerly, layer by layer, under a ``tf.GradientTape``,
and grabs the target layer's output while it is being computed, also when that layer
sits inside a nested backbone (a functional model used as a layer) or inside a
``TimeDistributed``-wrapped backbone. Nothing is rebuilt as a new ``keras.Model``, so
nested backbones never fail with "graph disconnected". A ``TimeDistributed`` layer on
the path to the target runs its inner model once on all frames folded into the batch,
so per-frame heat maps come from one pass.

The class score is the pre-activation of the output layer when it is a Dense (or
Activation) layer with a softmax or sigmoid (as in the Grad-CAM paper; it avoids
vanishing gradients when the prediction saturates), else the output itself.
"""

from __future__ import annotations

import functools
import os
from typing import Sequence

import keras
import matplotlib
import numpy as np
import tensorflow as tf
from keras import ops

from dfdetect import FAKE
from dfdetect.errors import DataError, ModelError
from dfdetect.io import atomic_path

matplotlib.use("Agg")

_SEQUENCE_LAYERS = (keras.layers.RNN, keras.layers.Bidirectional, keras.layers.ConvLSTM1D,
                    keras.layers.ConvLSTM2D, keras.layers.ConvLSTM3D)
_ACTIVATIONS = ("softmax", "sigmoid")


# --------------------------------------------------------------------------- target layer

def _inner_layers(layer) -> list:
    if isinstance(layer, keras.Model):
        return [lay for lay in layer.layers if not isinstance(lay, keras.layers.InputLayer)]
    return []


def find_layer_path(model: keras.Model, layer_name: str) -> list:
    """The chain of layers from a top-level layer of ``model`` down to ``layer_name``.

    Top-level layers win over nested ones; nested models and ``TimeDistributed``
    wrappers are searched depth-first in layer order. A ``TimeDistributed`` layer is
    followed by the layer it wraps in the chain.

    Raises:
        ModelError: no layer of that name anywhere in the model.
    """
    def search(container) -> list | None:
        layers = _inner_layers(container)
        for layer in layers:
            if layer.name == layer_name:
                return [layer]
        for layer in layers:
            if isinstance(layer, keras.layers.TimeDistributed):
                if layer.layer.name == layer_name:
                    return [layer, layer.layer]
                sub = search(layer.layer)
                if sub:
                    return [layer, layer.layer] + sub
            elif isinstance(layer, keras.Model):
                sub = search(layer)
                if sub:
                    return [layer] + sub
        return None

    path = search(model)
    if not path:
        raise ModelError(f"grad_cam: no layer named {layer_name!r} in model {model.name!r} "
                         f"or its nested models")
    return path


def _output_rank(layer) -> int | None:
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError, RuntimeError):
        return None


_STOP = (None, None)  # yielded at the first sequence layer: nothing after it is a candidate


def _candidates(container, prefix: list, extra_rank: int):
    """(path, rank) of every layer in order, nested layers before their container."""
    for layer in _inner_layers(container):
        if isinstance(layer, _SEQUENCE_LAYERS):
            yield _STOP
            return
        path = prefix + [layer]
        nested = None
        if isinstance(layer, keras.layers.TimeDistributed) and isinstance(layer.layer, keras.Model):
            nested = _candidates(layer.layer, path + [layer.layer], extra_rank + 1)
        elif isinstance(layer, keras.Model):
            nested = _candidates(layer, path, extra_rank)
        for sub in nested or ():
            yield sub
            if sub is _STOP:
                return
        rank = _output_rank(layer)
        yield path, None if rank is None else rank + extra_rank


def default_layer_path(model: keras.Model) -> list:
    """The last feature map with the input's rank (4-D image, 5-D video) before any
    sequence (RNN / ConvLSTM / Bidirectional) layer, searching nested backbones too.

    Raises:
        ModelError: the model has no such layer.
    """
    rank = len(model.inputs[0].shape)
    best = None
    for path, r in _candidates(model, [], 0):
        if path is None:  # _STOP
            break
        if r == rank:
            best = path
    if best is None:
        raise ModelError(f"grad_cam: model {model.name!r} has no {rank}-D feature map "
                         f"before its sequence/pooling layers; pass layer_name=")
    return best


# --------------------------------------------------------------------------- re-tracing

class _Capture:
    """Holds the target activation and how to unfold it to (N, [F,] h, w, c)."""

    def __init__(self, tape: tf.GradientTape):
        self.tape = tape
        self.tensor = None
        self.folds: list[int] = []  # frame counts of TimeDistributed wrappers entered


def _final_operation(model: keras.Model):
    if isinstance(model, keras.Sequential):
        return model.layers[-1]
    return model.outputs[0]._keras_history.operation


def _logits_call(layer):
    """Callable returning the layer's pre-softmax/sigmoid output, or None."""
    if isinstance(layer, keras.layers.Activation):
        if getattr(layer.activation, "__name__", "") in _ACTIVATIONS:
            return lambda x, **kwargs: x
    if isinstance(layer, keras.layers.Dense):
        if getattr(layer.activation, "__name__", "") in _ACTIVATIONS:
            def linear(x, **kwargs):
                y = ops.matmul(ops.cast(x, layer.compute_dtype), layer.kernel)
                return y + layer.bias if layer.use_bias else y
            return linear
    return None


def _run_model(model, x, path: list, capture: _Capture, top: bool = False):
    """Run ``model`` eagerly on ``x``, diverting the first layer of ``path``."""
    final = _final_operation(model) if top else None

    def operation_fn(op):
        if path and op is path[0]:
            return functools.partial(_run_layer, op, path=path, capture=capture)
        if op is final:
            return _logits_call(op) or op
        return op

    if isinstance(model, keras.Sequential):
        for layer in model.layers:
            x = operation_fn(layer)(x)
        return x
    # Functional._run_through_graph (Keras 3.x) is what Functional.call itself runs; its
    # operation_fn hook is the one place that can divert a node without rebuilding the
    # graph. tests/test_explain.py pins the behaviour if a Keras upgrade changes it.
    if not hasattr(model, "_run_through_graph"):
        raise ModelError(f"grad_cam needs a functional or Sequential model; {model.name!r} "
                         f"is a subclassed model")
    return model._run_through_graph(x, operation_fn=operation_fn)


def _run_layer(layer, *args, path: list, capture: _Capture, **kwargs):
    rest = path[1:]
    if not rest:  # the target itself
        out = layer(*args, **kwargs)
        capture.tape.watch(out)
        capture.tensor = out
        return out
    x = args[0]
    if isinstance(layer, keras.layers.TimeDistributed):
        shape = ops.shape(x)
        capture.folds.append(int(x.shape[1]))
        folded = ops.reshape(x, (-1,) + tuple(x.shape[2:]))
        inner = rest[0]
        if len(rest) == 1:
            y = _run_layer(inner, folded, path=rest, capture=capture)
        else:
            y = _run_model(inner, folded, rest[1:], capture)
        return ops.reshape(y, (shape[0], shape[1]) + tuple(y.shape[1:]))
    if isinstance(layer, keras.Model):
        return _run_model(layer, x, rest, capture)
    raise ModelError(f"grad_cam: cannot look inside layer {layer.name!r}")


def _class_score(outputs, class_index: int):
    outputs = ops.reshape(outputs, (ops.shape(outputs)[0], -1))
    if outputs.shape[-1] == 1:
        z = outputs[:, 0]
        return z if class_index == FAKE else -z
    return outputs[:, class_index]


def _cam_batch(model, x: np.ndarray, path: list, class_index: int) -> np.ndarray:
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        capture = _Capture(tape)
        outputs = _run_model(model, tf.convert_to_tensor(x), path, capture, top=True)
        score = ops.sum(_class_score(outputs, class_index))
    if capture.tensor is None:
        raise ModelError(f"grad_cam: layer {path[-1].name!r} was not reached by the forward pass")
    grads = tape.gradient(score, capture.tensor)
    acts = np.asarray(capture.tensor, dtype=np.float32)
    if grads is None:  # the score does not depend on the layer
        grads = np.zeros_like(acts)
    grads = np.asarray(grads, dtype=np.float32)
    if acts.ndim != 4 and not (acts.ndim == 5 and not capture.folds):
        raise ModelError(f"grad_cam: layer {path[-1].name!r} gives shape {acts.shape[1:]}, "
                         f"not a (height, width, channels) feature map")
    if capture.folds:  # (N*F, h, w, c) -> (N, F, h, w, c)
        acts = acts.reshape((len(x), -1) + acts.shape[1:])
        grads = grads.reshape(acts.shape)
    weights = grads.mean(axis=(-3, -2), keepdims=True)          # alpha_k per map
    cam = np.maximum((weights * acts).sum(axis=-1), 0.0)        # ReLU(sum_k alpha_k A^k)
    peak = cam.max(axis=(-2, -1), keepdims=True)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1.0), 0.0).astype(np.float32)


def _resize(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    flat = maps.reshape((-1,) + maps.shape[-2:] + (1,))
    resized = tf.image.resize(flat, (height, width), method="bilinear").numpy()[..., 0]
    return np.clip(resized, 0.0, 1.0).reshape(maps.shape[:-2] + (height, width))


def grad_cam(model: keras.Model, inputs, layer_name: str | None = None,
             class_index: int | None = None, batch_size: int = 4) -> np.ndarray:
    """Grad-CAM heat maps, one per image or per video frame, in [0, 1].

    Args:
        model: a functional or Sequential image model ((N, H, W, 3) input) or video
            model ((N, F, H, W, 3) input) with a 1-unit sigmoid or 2-unit softmax head.
        inputs: a batch in the model's input layout and value range.
        layer_name: target layer, anywhere in the model (also inside nested backbones
            or TimeDistributed backbones). Default: the last 4-D (image) or 5-D (video)
            feature map before the sequence/pooling layers (see ``default_layer_path``).
        class_index: class to explain; default 1 (fake). For a sigmoid head 0 explains
            "real" (the negated logit).
        batch_size: samples per forward/backward pass.

    Returns:
        float32 array (N, H, W) for images or (N, F, H, W) for videos; each map is
        normalised by its own maximum (all zeros when no location supports the class).

    Raises:
        ModelError: bad inputs for the model, unknown layer, or an unusable target.
    """
    x = np.asarray(inputs, dtype=np.float32)
    rank = len(model.inputs[0].shape)
    if rank not in (4, 5):
        raise ModelError(f"grad_cam: model {model.name!r} takes rank-{rank} input; "
                         f"expected images (N, H, W, C) or clips (N, F, H, W, C)")
    expected = tuple(model.inputs[0].shape[1:])
    if x.ndim != rank or any(e is not None and e != s for e, s in zip(expected, x.shape[1:])):
        raise ModelError(f"grad_cam: inputs of shape {x.shape} do not fit model "
                         f"{model.name!r} (expects (N, {', '.join(map(str, expected))}))")
    units = int(model.outputs[0].shape[-1])
    cls = FAKE if class_index is None else int(class_index)
    if not 0 <= cls < max(units, 2):
        raise ModelError(f"grad_cam: class_index {class_index} out of range for {units} outputs")
    path = find_layer_path(model, layer_name) if layer_name else default_layer_path(model)
    height, width = x.shape[-3], x.shape[-2]
    maps = [_cam_batch(model, x[i:i + batch_size], path, cls)
            for i in range(0, len(x), max(1, int(batch_size)))]
    cams = np.concatenate(maps) if maps else np.zeros(x.shape[:-1], np.float32)
    if cams.ndim != rank - 1:
        raise ModelError(f"grad_cam: layer {path[-1].name!r} gives {cams.ndim - 1}-D maps "
                         f"for a rank-{rank} input; choose a per-frame feature map")
    return _resize(cams, height, width).astype(np.float32)


# --------------------------------------------------------------------------- pictures

def _as_unit_rgb(image) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.ndim != 3 or img.shape[-1] not in (1, 3):
        raise DataError(f"expected an (H, W, 3) image, got shape {img.shape}")
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    img = img.astype(np.float32)
    return np.clip(img / 255.0 if img.max(initial=0.0) > 1.0 else img, 0.0, 1.0)


def _fit_heat(heat, shape) -> np.ndarray:
    h = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0.0, 1.0)
    if h.ndim != 2:
        raise DataError(f"expected an (H, W) heat map, got shape {h.shape}")
    if h.shape != tuple(shape):
        h = _resize(h, shape[0], shape[1])
    return h


def overlay(image, heat, alpha: float = 0.4) -> np.ndarray:
    """Blend a heat map (jet colormap) over an image.

    Args:
        image: (H, W, 3) RGB, uint8 or float in [0, 1].
        heat: (h, w) values in [0, 1]; resized to the image if needed.
        alpha: weight of the colored heat map.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    img = _as_unit_rgb(image)
    colored = matplotlib.colormaps["jet"](_fit_heat(heat, img.shape[:2]))[..., :3]
    blend = (1.0 - alpha) * img + alpha * colored
    return np.round(np.clip(blend, 0.0, 1.0) * 255.0).astype(np.uint8)


def save_gradcam_grid(path: str | os.PathLike, frames, heats,
                      title: str | None = None, masks=None, score: float | None = None,
                      frame_labels: Sequence | None = None) -> str:
    """Save a PNG grid: one row per frame, columns input | heat map | overlay.

    Args:
        path: output .png (parent folders are created).
        frames: (F, H, W, 3) frames (or one (H, W, 3) image).
        heats: (F, H, W) heat maps in [0, 1] (or one (H, W) map), each normalised by
            its own maximum as :func:`grad_cam` returns them; a colour bar says so.
        title: optional figure title.
        masks: optional forgery masks, (F, H, W), one (H, W) for every frame, or None;
            outlined in white on the input and the overlay.
        score: optional P(fake) of the clip or image, added to the title.
        frame_labels: the frames' numbers in their video (row labels "frame <n>");
            default 0, 1, 2... (positions in the clip).

    Returns:
        The path written.
    """
    # deferred: matplotlib (0.5 s) only for the saved grid, never for the heat maps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frames = np.asarray(frames)
    heats = np.asarray(heats)
    if frames.ndim == 3:
        frames, heats = frames[None], heats[None]
    if frames.ndim != 4 or heats.ndim != 3 or len(frames) != len(heats) or not len(frames):
        raise DataError(f"save_gradcam_grid: need frames (F, H, W, 3) and heats (F, H, W); "
                        f"got {frames.shape} and {heats.shape}")
    rows = len(frames)
    labels = list(frame_labels) if frame_labels is not None else list(range(rows))
    if len(labels) != rows:
        raise DataError(f"save_gradcam_grid: {len(labels)} frame labels for {rows} frames")
    mask_stack = None
    if masks is not None:
        m = np.asarray(masks)
        mask_stack = np.broadcast_to(m, (rows, *m.shape[-2:])) if m.ndim == 2 else m
        if mask_stack.ndim != 3 or len(mask_stack) != rows:
            raise DataError(f"save_gradcam_grid: masks of shape {m.shape} for {rows} frames")
    heading = title or ""
    if score is not None and np.isfinite(score):
        heading = (heading + ("\n" if heading else "")) + f"model's P(fake) {float(score):.3f}"
    # tight_layout makes room for the suptitle itself; head_in only sizes the figure
    head_in, foot_in = (0.1 + 0.17 * (heading.count("\n") + 1) if heading else 0.15), 0.95
    height = 1.8 * rows + head_in + foot_in
    fig = Figure(figsize=(6.0, height))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 3, squeeze=False)
    image = None
    for r in range(rows):
        img = _as_unit_rgb(frames[r])
        heat = _fit_heat(heats[r], img.shape[:2])
        for c, (picture, kw) in enumerate(((img, {}),
                                           (heat, {"cmap": "jet", "vmin": 0.0, "vmax": 1.0}),
                                           (overlay(img, heat), {}))):
            shown = axes[r, c].imshow(picture, **kw)
            if c == 1:
                image = shown
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if mask_stack is not None and c != 1:
                mask = _fit_heat(np.asarray(mask_stack[r], np.float32) > 0, img.shape[:2])
                if 0.0 < mask.mean() < 1.0:
                    axes[r, c].contour(mask, levels=[0.5], colors="white", linewidths=1.2)
        axes[r, 0].set_ylabel(f"frame {labels[r]}", fontsize=8)
    for c, name in enumerate(("input", "Grad-CAM", "overlay")):
        axes[0, c].set_title(name, fontsize=9)
    if heading:
        fig.suptitle(heading, fontsize=10)
    fig.tight_layout(rect=(0, foot_in / height, 1, 1))
    cax = fig.add_axes((0.12, 0.45 / height, 0.76, 0.12 / height))
    bar = fig.colorbar(image, cax=cax, orientation="horizontal")
    bar.ax.tick_params(labelsize=7)
    bar.set_label("Grad-CAM, each frame scaled to its own maximum"
                  + ("; white line: forgery mask" if mask_stack is not None else ""),
                  fontsize=7.5)

    path = os.fspath(path)
    with atomic_path(path) as tmp:  # the temp is removed if the write fails
        fig.savefig(tmp, dpi=100, format="png")
    return path


def mask_mass(heat, mask) -> float:
    """Fraction of the heat-map mass inside a binary mask: sum(heat * mask) / sum(heat).

    Args:
        heat: non-negative heat map(s), e.g. (H, W) or (F, H, W).
        mask: same shape, or broadcastable to it (one (H, W) mask for every frame);
            nonzero = inside.

    Returns:
        A float in [0, 1]; NaN when the heat map has no mass at all.

    Raises:
        DataError: shapes do not match or the heat map has negative values.
    """
    h = np.asarray(heat, dtype=np.float64)
    m = np.asarray(mask) > 0
    try:
        m = np.broadcast_to(m, h.shape)
    except ValueError:
        raise DataError(f"mask_mass: mask of shape {m.shape} does not match heat map "
                        f"{h.shape}") from None
    if (h < 0).any():
        raise DataError("mask_mass: heat map has negative values")
    total = h.sum()
    if total <= 0:
        return float("nan")
    return float(h[m].sum() / total)


__all__ = ["grad_cam", "overlay", "save_gradcam_grid", "mask_mass",
           "find_layer_path", "default_layer_path"]
