#!/usr/bin/env python
"""Compute efficiency: achieved FLOP/s of a training step and of inference, divided by the
machine's dense float32 matmul peak measured in the same run.

Models, at ``cpu`` scale: Xception (P1's single-backbone classifier), InceptionV3 (P2's
transfer model, every layer trainable), Meso-4 (P1/P5) at P1's ``image_size`` px and the
scale's batch (``dfdetect.scales``); the P3 model (Xception + CBAM + bidirectional
ConvLSTM2D) on clips of P3's ``frames`` x ``size`` px, batch 2 (the paper's).

**FLOPs are counted from the layer shapes** (:func:`count_flops`): one eager forward pass
records every layer's concrete input and output shape, and each convolution, depthwise
convolution, dense layer, recurrent layer (per time step) and CBAM block contributes
2 x its multiply-adds. Element-wise work (batch norm, activations, pooling) is not
counted, as is usual. A training step is counted as 3 x the forward FLOPs (the backward
pass computes the gradients of the inputs and of the weights, each costing about one
forward pass). TensorFlow's profiler (``tf.compat.v1.profiler`` on a frozen concrete
function) was tried first: it counts Conv2D only here (no DepthwiseConv2dNative,
MatMul, or anything inside the ConvLSTM's while loop), so it undercounts Xception and
the P3 model (on Conv2D-only Meso-4 it reports 2.5 % more than this counter).

**Peak**: the best of several ``tf.linalg.matmul`` of two n x n float32 matrices
(n = 1024 and 2048, 2 n^3 FLOPs each), sampled before every model and at the end; the
best is kept. Times are
the best of several repeats for both the peak and the models (on a shared machine the
slow repeats measure the neighbours), after a warm-up call that traces the function.
Because the machine is shared, the same ratio is also given per CPU second
(``*_cpu_time_efficiency``: FLOPs per CPU second of the process, all threads, over the
matmul's FLOPs per CPU second), which the neighbours' load does not change; it does not
see a model that leaves a core idle, and it counts threads spinning while they wait.

**What limits it**: single convolutions at the shapes these models run at ``cpu`` scale
(few channels at 64 px, 728 channels on 4 x 4 maps, depthwise, one ConvLSTM step) are
timed alone (``kernel_*_vs_peak_efficiency``): a model cannot beat its kernels.

Training uses ``dfdetect.training.compile_model`` (Adam, the head's loss), i.e. what the
experiments run: Keras' ``jit_compile="auto"``, which is off on a CPU-only machine
(see ``tf_options.py`` for the measurement that keeps it off).

Run: ``python benchmarks/compute_efficiency.py`` (writes
``results/bench/compute_efficiency.csv``; headline: Xception's training-step efficiency).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (Figure, base_argparser, best, finish, mark_start,  # noqa: E402
                               timed, timed_cpu)

NAME = "compute_efficiency"
MODELS = ("xception", "inceptionv3", "meso4", "p3")
#: Clips per batch for the P3 model (the paper's batch 2).
P3_BATCH = 2
#: FLOP categories of :func:`count_flops`.
CATEGORIES = ("conv", "depthwise", "dense", "recurrent", "attention")


# --------------------------------------------------------------------------- FLOPs

def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _shape(x) -> tuple[int, ...]:
    return tuple(int(d) for d in x.shape)


def layer_flops(layer, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> dict[str, int]:
    """Forward FLOPs (2 x multiply-adds) of one call of ``layer`` with these shapes.

    Returns ``{category: flops}``; ``{}`` for layers whose work is element-wise or that
    are containers (their inner layers are counted on their own calls).
    """
    import keras

    kind = type(layer).__name__
    layers = keras.layers
    if kind == "FoldedTimeDistributed":
        return {}  # calls its inner model's layers on the folded batch: counted there
    if isinstance(layer, layers.TimeDistributed):
        # Keras 3 runs the inner layer with ``layer.call`` per step (not hooked).
        folded_in = (in_shape[0] * in_shape[1],) + in_shape[2:]
        folded_out = (out_shape[0] * out_shape[1],) + out_shape[2:]
        return layer_flops(layer.layer, folded_in, folded_out)
    if isinstance(layer, layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        cin = in_shape[-1]
        mult = layer.depth_multiplier
        positions = _prod(out_shape[:-1])
        return {"depthwise": 2 * positions * cin * mult * kh * kw,
                "conv": 2 * positions * cin * mult * out_shape[-1]}
    if isinstance(layer, layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return {"depthwise": 2 * _prod(out_shape) * kh * kw}
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D)):
        groups = getattr(layer, "groups", 1) or 1
        return {"conv": 2 * _prod(out_shape) * _prod(layer.kernel_size) * in_shape[-1] // groups}
    if isinstance(layer, layers.Dense):
        return {"dense": 2 * _prod(in_shape) * layer.units}
    if isinstance(layer, layers.ConvLSTM2D):
        cell = layer.cell
        filters = cell.filters
        batch, steps = in_shape[0], in_shape[1]
        spatial = out_shape[-3:-1]
        per_step = (2 * _prod(spatial) * 4 * filters * _prod(cell.kernel_size)
                    * (in_shape[-1] + filters))
        return {"recurrent": batch * steps * per_step}
    if isinstance(layer, (layers.LSTM, layers.GRU, layers.SimpleRNN)):
        units = layer.units
        gates = {"LSTM": 4, "GRU": 3}.get(kind, 1)
        batch, steps, features = in_shape[0], in_shape[1], in_shape[-1]
        return {"recurrent": batch * steps * 2 * gates * units * (features + units)}
    if kind == "CBAM":
        batch, height, width, channels = in_shape
        hidden = int(layer.mlp_w0.shape[-1])
        kernel = _prod(layer.spatial_kernel_weight.shape[:2])
        mlp = 2 * 2 * batch * 2 * channels * hidden  # two pooled vectors, two matmuls each
        return {"attention": mlp + 2 * batch * height * width * kernel * 2}
    return {}


def count_flops(model, x) -> dict[str, int]:
    """Forward FLOPs of ``model`` on input ``x``, by category (see the module docstring).

    Runs one eager forward pass (inference mode) with every ``Layer.__call__``
    recorded, so nested models, size-free backbones and wrappers all see concrete
    shapes. Returns ``{category: flops}`` for :data:`CATEGORIES` plus ``total`` and
    ``layers`` (layer calls that did counted work).
    """
    import keras
    from keras.src.layers.layer import Layer

    calls = []
    original = Layer.__call__

    def recording(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        first = args[0] if args else next(iter(kwargs.values()))
        if hasattr(first, "shape") and hasattr(out, "shape"):
            calls.append((self, _shape(first), _shape(out)))
        return out

    Layer.__call__ = recording
    try:
        model(keras.ops.convert_to_tensor(x), training=False)
    finally:
        Layer.__call__ = original
    totals = dict.fromkeys(CATEGORIES, 0)
    counted = 0
    for layer, in_shape, out_shape in calls:
        parts = layer_flops(layer, in_shape, out_shape)
        if parts:
            counted += 1
        for key, value in parts.items():
            totals[key] += int(value)
    totals["total"] = sum(totals[c] for c in CATEGORIES)
    totals["layers"] = counted
    return totals


# --------------------------------------------------------------------------- peak

def matmul_peak(sizes=(1024, 2048), repeats: int = 12) -> tuple[float, float]:
    """Dense float32 ``tf.linalg.matmul`` of two n x n matrices for each n of ``sizes``:
    (best FLOP/s of wall time, best FLOPs per CPU second of the process).

    Short multiplications (1024: ~2 GFLOP) catch the moments the shared cores are free,
    as the kernels and model steps timed against this peak do.
    """
    import tensorflow as tf

    wall, per_cpu = 0.0, 0.0
    for n in sizes:
        a = tf.random.normal((n, n), dtype=tf.float32)
        b = tf.random.normal((n, n), dtype=tf.float32)
        matmul = tf.function(lambda p, q: tf.linalg.matmul(p, q))

        def run():
            matmul(a, b).numpy()  # .numpy() waits for the result

        times, cpu = timed_cpu(run, repeats, warmup=1)
        wall = max(wall, 2.0 * n ** 3 / best(times))
        per_cpu = max(per_cpu, 2.0 * n ** 3 / cpu)
    return wall, per_cpu


#: Single kernels at shapes these models run at ``cpu`` scale (forward only):
#: name -> (kind, batch, height/width, in channels, out channels or depth multiplier, kernel).
KERNELS = {
    "conv3x3_64px_32ch": ("conv", 32, 64, 16, 32, 3),     # Meso-4 / stems: few channels
    "conv3x3_16px_128ch": ("conv", 32, 16, 128, 128, 3),  # mid-size maps
    "pointwise_4px_728ch": ("conv", 32, 4, 728, 728, 1),  # Xception middle flow at 64 px
    "depthwise_4px_728ch": ("depthwise", 32, 4, 728, 1, 3),
    "convlstm_step_2px": ("conv", 2, 2, 2048 + 64, 256, 3),  # one ConvLSTM step (P3)
}


def kernel_rate(kind: str, batch: int, side: int, cin: int, cout: int, k: int,
                repeats: int = 20) -> float:
    """Achieved FLOP/s of one convolution (``conv``) or depthwise convolution."""
    import tensorflow as tf

    x = tf.random.normal((batch, side, side, cin))
    if kind == "depthwise":
        w = tf.random.normal((k, k, cin, cout))
        fn = tf.function(lambda a: tf.nn.depthwise_conv2d(a, w, [1, 1, 1, 1], "SAME"))
        flops = 2 * batch * side * side * cin * cout * k * k
    else:
        w = tf.random.normal((k, k, cin, cout))
        fn = tf.function(lambda a: tf.nn.conv2d(a, w, 1, "SAME"))
        flops = 2 * batch * side * side * cout * k * k * cin
    return flops / best(timed(lambda: fn(x).numpy(), repeats, warmup=2))


# --------------------------------------------------------------------------- models

def build(name: str, image_size: int, video_size: int, frames: int, batch: int):
    """``(model, x, y)``: a compiled cpu-scale model and one batch of random inputs."""
    import numpy as np

    from dfdetect import training
    from dfdetect.models import registry

    rng = np.random.default_rng(0)
    image = (image_size, image_size, 3)
    if name == "xception":
        model = registry.build_model("fusion", backbones=["xception"], input_shape=image)
    elif name == "inceptionv3":
        model = registry.build_model("inception_transfer", unfreeze="top50", input_shape=image)
        for layer in model._flatten_layers():  # a full training step: every layer trains
            layer.trainable = True
    elif name == "meso4":
        model = registry.build_model("meso4", input_shape=image)
    elif name == "p3":
        model = registry.build_model("convlstm_cbam", frames=frames, size=video_size)
    else:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    training.compile_model(model)
    shape = model.input_shape[1:]
    x = rng.random((batch, *shape), dtype=np.float32)
    if training.output_kind(model) == "sigmoid":
        y = rng.integers(0, 2, (batch, 1)).astype(np.float32)
    else:
        y = rng.integers(0, 2, (batch,)).astype(np.int32)
    return model, x, y


def measure_model(name: str, image_size: int = 64, video_size: int = 64, frames: int = 8,
                  batch: int = 32, train_repeats: int = 3, infer_repeats: int = 5) -> dict:
    """Times one model's training step and inference batch and counts its FLOPs.

    Returns:
        ``flops`` (forward, per batch, by category), ``batch`` (samples per step),
        ``train_seconds`` and ``infer_seconds`` (best repeat), ``trace_seconds`` (first
        training step: tracing and graph building).
    """
    import keras

    keras.utils.clear_session(free_memory=True)
    keras.utils.set_random_seed(0)
    samples = P3_BATCH if name == "p3" else batch
    model, x, y = build(name, image_size, video_size, frames, samples)
    flops = count_flops(model, x)
    start = time.perf_counter()
    model.train_on_batch(x, y)
    trace = time.perf_counter() - start
    train, train_cpu = timed_cpu(lambda: model.train_on_batch(x, y), train_repeats, warmup=1)
    infer, infer_cpu = timed_cpu(lambda: model.predict_on_batch(x), infer_repeats, warmup=1)
    return {"flops": flops, "batch": samples, "train_seconds": best(train),
            "infer_seconds": best(infer), "train_cpu_seconds": train_cpu,
            "infer_cpu_seconds": infer_cpu, "trace_seconds": trace}


def figures_for(name: str, result: dict, peak: float, cpu_peak: float) -> list[Figure]:
    """The CSV rows of one model's measurement (``peak``: FLOP/s of wall time;
    ``cpu_peak``: FLOPs per CPU second)."""
    fwd = result["flops"]["total"]
    train_rate = 3 * fwd / result["train_seconds"]
    infer_rate = fwd / result["infer_seconds"]
    unit = "clips" if name == "p3" else "images"
    rows = [
        Figure(f"{name}_forward_flop_per_sample", fwd / result["batch"], "FLOP"),
        Figure(f"{name}_train_step_flop", 3 * fwd, "FLOP"),
        Figure(f"{name}_train_step_seconds", result["train_seconds"], "s"),
        Figure(f"{name}_train_{unit}_per_s", result["batch"] / result["train_seconds"],
               f"{unit}/s"),
        Figure(f"{name}_inference_{unit}_per_s", result["batch"] / result["infer_seconds"],
               f"{unit}/s"),
        Figure(f"{name}_train_flop_per_s", train_rate, "FLOP/s"),
        Figure(f"{name}_inference_flop_per_s", infer_rate, "FLOP/s"),
        Figure(f"{name}_train_vs_peak_efficiency", train_rate / peak, "ratio"),
        Figure(f"{name}_inference_vs_peak_efficiency", infer_rate / peak, "ratio"),
        Figure(f"{name}_train_vs_peak_cpu_time_efficiency",
               3 * fwd / result["train_cpu_seconds"] / cpu_peak, "ratio"),
        Figure(f"{name}_inference_vs_peak_cpu_time_efficiency",
               fwd / result["infer_cpu_seconds"] / cpu_peak, "ratio"),
        Figure(f"{name}_depthwise_flop_share", result["flops"]["depthwise"] / fwd, "ratio"),
        Figure(f"{name}_recurrent_flop_share", result["flops"]["recurrent"] / fwd, "ratio"),
        Figure(f"{name}_counted_layers", result["flops"]["layers"], "layers"),
        Figure(f"{name}_ms_per_counted_layer_train",
               1000 * result["train_seconds"] / max(result["flops"]["layers"], 1), "ms"),
        Figure(f"{name}_first_step_seconds", result["trace_seconds"], "s"),
    ]
    return rows


def measure(models=MODELS, image_size: int | None = None, video_size: int | None = None,
            frames: int | None = None, batch: int | None = None, matmul_n=(1024, 2048),
            train_repeats: int = 3, infer_repeats: int = 5, kernels=None,
            log=print) -> list[Figure]:
    """Every figure of this benchmark (defaults: the ``cpu`` scale).

    ``kernels``: ``{name: spec}`` of single kernels to time (default :data:`KERNELS`).
    """
    from dfdetect.papers import convlstm_cbam, fusion
    from dfdetect.scales import get_scale

    scale, p3 = get_scale("cpu"), convlstm_cbam.settings_for("cpu")
    image_size = image_size or fusion.settings_for("cpu").image_size
    video_size = video_size or p3.size
    frames = frames or p3.frames
    batch = batch or scale.batch_size
    # The peak is sampled before every model and at the end, and the best kept: on a
    # shared machine any one sample may coincide with a neighbour's burst.
    peaks = [matmul_peak(matmul_n)]
    log(f"matmul peak: {peaks[0][0] / 1e9:.1f} GFLOP/s")
    results = {}
    for name in models:
        started = time.perf_counter()
        results[name] = measure_model(name, image_size, video_size, frames, batch,
                                      train_repeats, infer_repeats)
        log(f"{name}: {time.perf_counter() - started:.0f} s")
        peaks.append(matmul_peak(matmul_n))
    kernels = {name: kernel_rate(*spec)
               for name, spec in (KERNELS if kernels is None else kernels).items()}
    peaks.append(matmul_peak(matmul_n))
    peak = max(p for p, _ in peaks)
    cpu_peak = max(c for _, c in peaks)
    log(f"matmul peak samples: {', '.join(f'{p / 1e9:.1f}' for p, _ in peaks)} GFLOP/s")
    figures = [Figure("matmul_peak_flop_per_s", peak, "FLOP/s"),
               Figure("matmul_peak_worst_vs_best", min(p for p, _ in peaks) / peak, "ratio"),
               Figure("matmul_peak_flop_per_cpu_second", cpu_peak, "FLOP/CPU-s")]
    figures += [Figure(f"kernel_{name}_vs_peak_efficiency", rate / peak, "ratio")
                for name, rate in kernels.items()]
    for name, result in results.items():
        figures += figures_for(name, result, peak, cpu_peak)
    return figures


def main(argv=None) -> int:
    parser = base_argparser(__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {','.join(MODELS)}")
    args = parser.parse_args(argv)
    mark_start()
    models = [m for m in args.models.split(",") if m]
    figures = measure(models)
    headline = f"{models[0]}_train_vs_peak_efficiency"
    finish(NAME, figures, headline, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
