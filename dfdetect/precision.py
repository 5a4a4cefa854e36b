"""Training precision per machine and model: ``--precision auto|float32|mixed_bfloat16``.

bfloat16 pays on some models and machines and costs on others: measured on 2-core x86
with AMX / AVX-512 BF16, Xception trains 1.2-1.7x faster in ``mixed_bfloat16`` while
EfficientNetB0 (depthwise convolutions) trains 0.6x as fast, and CPUs without bf16
instructions emulate it slowly. So:

* ``float32`` (the default): what the committed results were made with; nothing here
  touches Keras then.
* ``mixed_bfloat16``: Keras' mixed policy for the whole run (bf16 compute, float32
  variables); every trained model's output layer (the final sigmoid / softmax) stays
  float32, and the loss is computed in float32 by Keras.
* ``auto``: every trained model is probed on its first compile: a few training steps in
  each precision, interleaved so load from other jobs hits both alike; bfloat16 is kept
  only when it is supported, more than :data:`MIN_SPEEDUP` faster at the median and
  faster in every round (load noise must not pick it). The probe is cached
  per machine (CPU model, cores) and model in ``<run folder>/precision.json``, which also
  records what each model trained with. On a GPU ``auto`` keeps Keras' own policy.

Two ways in: :func:`configure` + :func:`prepare_model` (run-wide; the experiments and
``dfdetect train`` call them through ``experiment.run_main`` and
``training.compile_model``), and :func:`resolve_precision` with a model builder (one
decision, e.g. for a benchmark). Ground floor: imports only ``dfdetect.io`` and
``dfdetect.errors``; Keras and TensorFlow are imported inside the functions that need
them, so the default path costs nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from dfdetect.errors import DfdetectError
from dfdetect.io import atomic_write_bytes

FLOAT32, BF16 = "float32", "mixed_bfloat16"
#: What ``--precision`` accepts.
CHOICES = ("auto", FLOAT32, BF16)
#: The default: the committed results were trained in float32.
DEFAULT = FLOAT32
#: ``auto`` keeps bfloat16 only above this training speed-up (below it, the precision
#: loss buys too little and a 2-core machine's load noise could flip the choice).
MIN_SPEEDUP = 1.10
#: The probe cache and precision record in a run folder.
CACHE_NAME = "precision.json"
#: CPU flags (Linux ``/proc/cpuinfo``) with native bfloat16 arithmetic.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
#: Input elements of the probe batch (32 images of 128 x 128 x 3, fewer for clips).
PROBE_ELEMENTS = 32 * 128 * 128 * 3


@dataclasses.dataclass
class Decision:
    """Which precision a model trains in, and why.

    Attributes:
        policy: the Keras dtype policy: ``float32`` or ``mixed_bfloat16``.
        choice: what was asked (``auto``, ``float32``, ``mixed_bfloat16``).
        reason: one phrase, e.g. ``"asked"`` or ``"bf16 1.52x faster"``.
        model: the probed model's name ("" when no model was involved).
        float32_img_s, bf16_img_s: probe throughputs (samples/s), None without a probe.
        speedup: ``bf16_img_s / float32_img_s``, None without a probe.
        speedup_min, speedup_max: its range over the probe's rounds (the noise).
        cached: the probe result came from the cache file.
    """

    policy: str
    choice: str
    reason: str
    model: str = ""
    float32_img_s: float | None = None
    bf16_img_s: float | None = None
    speedup: float | None = None
    cached: bool = False
    speedup_min: float | None = None
    speedup_max: float | None = None

    def line(self) -> str:
        """The one line a run prints about its precision."""
        what = f" for {self.model}" if self.model else ""
        text = f"precision: {self.policy}{what} ({self.choice}: {self.reason}"
        if self.speedup is not None:
            text += (f"; float32 {self.float32_img_s:.1f} img/s, bfloat16 "
                     f"{self.bf16_img_s:.1f} img/s{', cached' if self.cached else ''}")
        return text + ")"


def check_choice(choice: str | None) -> str:
    """``choice`` normalised; None means the default.

    Raises:
        DfdetectError: not one of :data:`CHOICES`.
    """
    value = DEFAULT if choice in (None, "") else str(choice).strip().lower()
    aliases = {"bf16": BF16, "bfloat16": BF16, "fp32": FLOAT32}
    value = aliases.get(value, value)
    if value not in CHOICES:
        raise DfdetectError(f"unknown precision {choice!r}; choose one of {', '.join(CHOICES)}")
    return value


# --------------------------------------------------------------------------- machine

def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what platform says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_key() -> str:
    """What a probe result is valid for: the CPU model and the cores this process sees."""
    return f"{cpu_model()}; {os.cpu_count()} cores"


def cpu_flags() -> set[str]:
    """The CPU feature flags (x86 ``flags``, Arm ``Features``); empty off Linux."""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    flags.update(line.split(":", 1)[1].split())
    except OSError:
        pass
    return flags


def bf16_support() -> tuple[bool, str]:
    """Whether this CPU computes bfloat16 natively, and the evidence.

    Without native support TensorFlow emulates bfloat16 on the CPU, which is slower than
    float32: ``auto`` then keeps float32 without probing.
    """
    flags = cpu_flags()
    found = [f for f in BF16_CPU_FLAGS if f in flags]
    if found:
        return True, "CPU has " + "/".join(found)
    if "bf16" in flags:  # Arm v8.6+ (Graviton 3, Apple M2...)
        return True, "CPU has bf16"
    if not flags:
        return False, "CPU flags unknown (no /proc/cpuinfo)"
    return False, f"CPU has no {'/'.join(BF16_CPU_FLAGS)}"


def on_gpu() -> bool:
    """True when TensorFlow sees a GPU (training runs there)."""
    import tensorflow as tf  # deferred: this ground floor never starts TensorFlow itself

    return bool(tf.config.list_physical_devices("GPU"))


# --------------------------------------------------------------------------- policies

def global_policy() -> str:
    """Keras' global dtype policy name."""
    import keras  # deferred: see on_gpu

    return keras.config.dtype_policy().name


def set_policy(policy: str) -> str:
    """Set Keras' global dtype policy (models built afterwards use it).

    Returns:
        The previous policy's name, for restoring it.
    """
    import keras  # deferred: see on_gpu

    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(policy)
    return previous


@contextlib.contextmanager
def policy_scope(policy: str) -> Iterator[str]:
    """Build models under ``policy`` inside the block; the previous policy comes back."""
    previous = set_policy(policy)
    try:
        yield policy
    finally:
        set_policy(previous)


def _layers(model):
    # Every layer, nested ones included (sub-models, the cell inside Bidirectional...).
    return list(model._flatten_layers(include_self=True, recursive=True))


def output_layers(model) -> list:
    """The layers whose outputs are the model's outputs (into nested sub-models)."""
    found, todo = [], list(getattr(model, "outputs", None) or [])
    while todo:
        layer = todo.pop()._keras_history.operation
        if layer in found:
            continue
        found.append(layer)
        if getattr(layer, "outputs", None) and layer is not model:  # a nested model
            todo.extend(layer.outputs)
    return found


def float32_outputs(model) -> list[str]:
    """Make the model's output layers compute in float32 (their inputs are cast up).

    The final sigmoid or softmax in bfloat16 keeps ~3 significant digits: probabilities
    near 0 and 1 round, and the loss and the ROC curves built on them would see it. The
    layers' variables are float32 under either policy, so this changes no weights.

    Returns:
        The names of the layers changed.
    """
    changed = []
    for layer in output_layers(model):
        if layer.dtype_policy.compute_dtype != "float32":
            layer.dtype_policy = FLOAT32
            changed.append(layer.name)
    return changed


def convert_model(model, policy: str) -> None:
    """Switch a built model's layers to ``policy`` in place, output layers kept float32.

    Variables are float32 under both policies, so only the compute dtype changes; the
    next traced train step runs in the new precision. Layers set to another policy on
    purpose (e.g. ``mixed_float16``) are left alone.
    """
    outputs = output_layers(model)
    for layer in _layers(model):
        if layer in outputs:
            continue
        if layer.dtype_policy.name in (FLOAT32, BF16) and layer.dtype_policy.name != policy:
            layer.dtype_policy = policy
    float32_outputs(model)


def model_precision(model) -> str:
    """``mixed_bfloat16`` (or ``mixed_float16``) when any layer computes in it, else float32."""
    for layer in _layers(model):
        dtype = layer.dtype_policy.compute_dtype
        if dtype in ("bfloat16", "float16"):
            return f"mixed_{dtype}"
    return FLOAT32


@contextlib.contextmanager
def saved_as_float32(model) -> Iterator[None]:
    """Inside the block every layer of ``model`` computes in float32; then as before.

    An exported model is saved this way: it runs in float32 wherever it is loaded
    (bfloat16 is emulated, and slow, on CPUs without it); its metadata says what it
    was trained in.
    """
    layers = [(layer, layer.dtype_policy) for layer in _layers(model)
              if layer.dtype_policy.compute_dtype in ("bfloat16", "float16")]
    for layer, _ in layers:
        layer.dtype_policy = FLOAT32
    try:
        yield
    finally:
        for layer, policy in layers:
            layer.dtype_policy = policy


# --------------------------------------------------------------------------- probe

def probe_batch_size(model, largest: int = 32) -> int:
    """Samples per probe step: 32 images of 128 px, fewer for bigger inputs (clips)."""
    elements = 0
    for tensor in model.inputs:
        elements += math.prod(int(d or 64) for d in tensor.shape[1:])
    return max(1, min(largest, PROBE_ELEMENTS // max(1, elements)))


def synthetic_batch(model, batch_size: int):
    """Random inputs in [0, 1] shaped like the model's inputs (values do not change speed)."""
    rng = np.random.default_rng(0)  # its own generator: the run's random state is untouched
    xs = [rng.random((batch_size, *(int(d or 64) for d in t.shape[1:])), dtype=np.float32)
          for t in model.inputs]
    return xs[0] if len(xs) == 1 else xs


def _train_step(model):
    """A traced training step of ``model`` as it is now (its layers' policies are baked in).

    A squared-output loss stands in for the real one (any head, any number of outputs);
    forward, backward and the Adam update cost what they cost in training.
    """
    # deferred: see on_gpu
    import keras
    import tensorflow as tf

    variables = list(model.trainable_variables)
    optimizer = keras.optimizers.Adam(1e-6)
    if variables:
        optimizer.build(variables)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = tf.add_n([tf.reduce_mean(tf.square(tf.cast(o, tf.float32)))
                             for o in tf.nest.flatten(out)])
        if variables:
            optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    return step


def _time_pair(steps: dict, x, warmup: int, timed_steps: int, rounds: int) -> dict:
    """Seconds per step of each traced step function, timed in alternation.

    Each round times ``timed_steps`` steps of one precision, then of the other; the
    order flips every round (ABBA), so a neighbour's load that comes and goes falls on
    both alike. Returns the seconds per step of each, one value per round.
    """
    for step in steps.values():
        for _ in range(warmup):  # the first call traces the graph
            float(step(x))
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            for _ in range(timed_steps):
                float(step(x))  # float(): wait for the step's result
            seconds[name].append((time.perf_counter() - start) / timed_steps)
    return seconds


def probe(models: dict, x, batch_size: int, warmup: int = 2, steps: int = 2,
          rounds: int = 4) -> dict:
    """Training throughput of ``{"float32": model_or_fn, "mixed_bfloat16": ...}``.

    Each value is a built model, or a zero-argument callable that puts a model into that
    precision and returns it (the in-place probe of :func:`probe_model`). Returns
    ``{"float32_img_s", "bf16_img_s", "speedup", "speedup_min", "speedup_max", "batch",
    "steps", "rounds"}``: throughputs from the median round of each precision; the
    speed-up is the median over the rounds of each round's float32 chunk against the
    bfloat16 chunk timed next to it (paired, so load that changes between rounds
    cancels), with its lowest and highest: the probe's noise.
    """
    traced = {}
    for policy in (FLOAT32, BF16):
        item = models[policy]
        model = item() if callable(item) and not hasattr(item, "layers") else item
        traced[policy] = _train_step(model)
        float(traced[policy](x))  # trace now, while the model is in this precision
    per_round = _time_pair(traced, x, max(0, warmup - 1), steps, rounds)
    f32 = batch_size / statistics.median(per_round[FLOAT32])
    bf16 = batch_size / statistics.median(per_round[BF16])
    ratios = [a / b for a, b in zip(per_round[FLOAT32], per_round[BF16])]
    return {"float32_img_s": round(f32, 3), "bf16_img_s": round(bf16, 3),
            "speedup": round(statistics.median(ratios), 4), "speedup_min": round(min(ratios), 4),
            "speedup_max": round(max(ratios), 4), "batch": batch_size, "steps": steps,
            "rounds": rounds}


def probe_model(model, sample_batch=None, **kwargs) -> dict:
    """:func:`probe` on ``model`` itself, switched between precisions in place.

    Every variable (weights, batch-norm statistics, dropout seed states) and every
    layer's policy is put back afterwards, so the run goes on as if no probe had run.
    """
    batch = sample_batch if sample_batch is not None else synthetic_batch(
        model, probe_batch_size(model))
    batch = batch[0] if isinstance(batch, tuple) else batch
    size = int(getattr(batch[0] if isinstance(batch, list) else batch, "shape")[0])
    saved = [v.numpy() for v in model.variables]
    policies = [(layer, layer.dtype_policy) for layer in _layers(model)]

    def to(policy):
        def switch():
            convert_model(model, policy)
            return model
        return switch

    try:
        return probe({FLOAT32: to(FLOAT32), BF16: to(BF16)}, batch, size, **kwargs)
    finally:
        for layer, policy in policies:
            layer.dtype_policy = policy
        for variable, value in zip(model.variables, saved):
            variable.assign(value)


def model_key(model) -> str:
    """What identifies a model in the cache: name, parameters, input shape."""
    shapes = ",".join("x".join(str(d) for d in t.shape[1:]) for t in model.inputs)
    return f"{model.name} ({model.count_params()} parameters, input {shapes})"


# --------------------------------------------------------------------------- cache

def cache_path(cache_dir: str | os.PathLike | None) -> Path | None:
    """``<cache_dir>/precision.json`` (None without a folder)."""
    return None if cache_dir is None else Path(cache_dir) / CACHE_NAME


def read_cache(cache_dir) -> dict:
    """The cache / record file as a dict (empty when missing or unreadable)."""
    path = cache_path(cache_dir)
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # a damaged cache only costs a probe
    return data if isinstance(data, dict) else {}


def update_cache(cache_dir, **sections) -> None:
    """Merge ``sections`` (dicts) into the cache file, written atomically."""
    path = cache_path(cache_dir)
    if path is None:
        return

    data = read_cache(cache_dir)
    for name, entries in sections.items():
        if isinstance(entries, dict):
            data.setdefault(name, {}).update(entries)
        else:
            data[name] = entries
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def _cache_key(key: str) -> str:
    return f"{machine_key()} | {key}"


# --------------------------------------------------------------------------- decide

def resolve_precision(choice: str | None, build_model_fn: Callable | None = None,
                      sample_batch=None, cache_dir: str | os.PathLike | None = None,
                      name: str | None = None, model=None, log: Callable[[str], None] | None = print,
                      warmup: int = 2, steps: int = 2, rounds: int = 4,
                      min_speedup: float = MIN_SPEEDUP) -> Decision:
    """Decide the precision a model trains in (nothing is changed: see :func:`set_policy`).

    Args:
        choice: ``auto``, ``float32`` or ``mixed_bfloat16`` (None: the default).
        build_model_fn: builds the model (called once under each policy for the probe);
            or give ``model`` to probe a built model in place.
        sample_batch: inputs (or ``(inputs, labels)``) of one batch; default random
            inputs shaped like the model's, 32 images of 128 px or fewer for clips.
        cache_dir: the run folder holding ``precision.json`` (None: no cache).
        name: the cache's name for the model (default: name, parameters, input shape).
        log: prints the one-line decision (None: silent).
        warmup, steps, rounds: probe steps per precision before timing, per timed
            chunk, and chunks per precision (4: each precision first in two).
        min_speedup: bfloat16 is kept only above this median speed-up, and only when
            it was faster in every round.
    """
    choice = check_choice(choice)
    decision = _decide(choice, build_model_fn, sample_batch, cache_dir, name, model,
                       warmup, steps, rounds, min_speedup)
    if log is not None:
        log(decision.line())
    return decision


def _decide(choice, build_model_fn, sample_batch, cache_dir, name, model, warmup, steps,
            rounds, min_speedup) -> Decision:
    label = name or (model.name if model is not None else "")
    if choice != "auto":
        return Decision(choice, choice, "asked", label)
    if on_gpu():
        return Decision(global_policy(), "auto", "GPU: Keras' own policy", label)
    supported, why = bf16_support()
    if not supported:
        return Decision(FLOAT32, "auto", why, label)
    if build_model_fn is None and model is None:
        raise DfdetectError("precision auto needs the model to probe (a builder or a model)")
    built = {}
    if model is None:
        with policy_scope(FLOAT32):
            built[FLOAT32] = build_model_fn()
    key = _cache_key(name or model_key(model if model is not None else built[FLOAT32]))
    label = label or (model if model is not None else built[FLOAT32]).name
    cached = read_cache(cache_dir).get("probes", {}).get(key)
    if cached and cached.get("speedup"):
        result, hit = cached, True
    else:
        if model is not None:
            result = probe_model(model, sample_batch, warmup=warmup, steps=steps, rounds=rounds)
        else:
            with policy_scope(BF16):
                built[BF16] = build_model_fn()
            float32_outputs(built[BF16])
            x = sample_batch if sample_batch is not None else synthetic_batch(
                built[FLOAT32], probe_batch_size(built[FLOAT32]))
            x = x[0] if isinstance(x, tuple) else x
            size = int((x[0] if isinstance(x, list) else x).shape[0])
            result = probe(built, x, size, warmup=warmup, steps=steps, rounds=rounds)
        result = {**result, "model": label, "machine": machine_key(),
                  "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                      "%Y-%m-%dT%H:%M:%SZ")}
        update_cache(cache_dir, probes={key: result})
        hit = False
    speedup = float(result["speedup"])
    worst = float(result.get("speedup_min", speedup))
    # bfloat16 must win by > 10 % at the median and win every round: on a shared
    # machine a single lucky round must not pick the slower precision for a long run.
    if speedup <= min_speedup:
        policy, reason = FLOAT32, f"bf16 {speedup:.2f}x, not > {min_speedup:.2f}x"
    elif worst <= 1.0:
        policy, reason = FLOAT32, f"bf16 {speedup:.2f}x but {worst:.2f}x in one round"
    else:
        policy, reason = BF16, f"bf16 {speedup:.2f}x faster"
    return Decision(policy, "auto", reason, label, float(result["float32_img_s"]),
                    float(result["bf16_img_s"]), speedup, hit, worst,
                    float(result.get("speedup_max", speedup)))


# --------------------------------------------------------------------------- run-wide

_RUN = {"choice": DEFAULT, "cache_dir": None, "log": print, "decisions": {}}


def configure(choice: str | None, cache_dir: str | os.PathLike | None = None,
              log: Callable[[str], None] = print) -> str:
    """The precision of this run: every model compiled by ``training.compile_model``.

    ``float32`` (default) changes nothing. ``mixed_bfloat16`` sets Keras' global policy
    now, so models built afterwards use it. ``auto`` leaves models float32 until their
    first compile, where :func:`prepare_model` probes them.

    Args:
        choice: ``auto``, ``float32`` or ``mixed_bfloat16`` (None: the default).
        cache_dir: the run folder (``precision.json``: probe cache and record).
        log: where the one-line choice goes.

    Returns:
        The normalised choice.
    """
    choice = check_choice(choice)
    _RUN.update(choice=choice, cache_dir=cache_dir, log=log, decisions={})
    if choice == FLOAT32:
        if "keras" in sys.modules:  # only undo a policy an earlier run in this process set
            set_policy(FLOAT32)
        return choice
    if choice == BF16:
        set_policy(BF16)
        log("precision: mixed_bfloat16 (asked: bf16 compute, float32 weights, "
            "outputs and loss)")
    else:
        set_policy(FLOAT32)
        log(f"precision: auto (each trained model is probed on its first compile, "
            f"bf16 kept where > {MIN_SPEEDUP:.2f}x and faster every round; cache "
            f"{cache_path(cache_dir) or 'none'})")
    update_cache(cache_dir, requested=choice)
    return choice


def requested() -> str:
    """The run's ``--precision`` (``float32`` unless :func:`configure` said otherwise)."""
    return _RUN["choice"]


def run_key_entry() -> dict:
    """What a run key records of the precision: nothing for the default (float32), so
    the committed runs' keys stay as they were; ``{"precision": ...}`` otherwise."""
    return {} if _RUN["choice"] == DEFAULT else {"precision": _RUN["choice"]}


def prepare_model(model) -> str:
    """Put a freshly built model into the run's precision before it is compiled.

    Returns:
        The policy the model trains in (``float32`` or ``mixed_bfloat16``).
    """
    choice = _RUN["choice"]
    if choice == FLOAT32:
        return FLOAT32
    if choice == BF16:
        float32_outputs(model)
        policy = model_precision(model)
    else:
        key = model_key(model)  # a second compile of the same model is not probed again
        decision = _RUN["decisions"].get(key)
        if decision is None:
            decision = resolve_precision("auto", model=model, cache_dir=_RUN["cache_dir"],
                                         log=_RUN["log"])
            _RUN["decisions"][key] = decision
        if decision.policy in (FLOAT32, BF16):
            convert_model(model, decision.policy)
        else:
            float32_outputs(model)
        policy = model_precision(model)
    update_cache(_RUN["cache_dir"], used={model.name: policy})
    return policy
