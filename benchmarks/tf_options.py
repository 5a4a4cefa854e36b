#!/usr/bin/env python
"""TensorFlow's speed options, tried on one model: P1's Xception classifier at ``cpu``
scale (64 px, batch 32), the backbone that dominates the experiments' compute (P1, P3).

Variants of a training step and an inference batch, each timed the same way as
``compute_efficiency.py`` (best of several repeats after a warm-up call):

- ``default``: what the experiments run (``dfdetect.training.compile_model``: Keras'
  ``jit_compile="auto"``, which Keras resolves to *off* on a machine without a GPU;
  oneDNN on, TensorFlow's default on x86);
- ``xla``: ``jit_compile=True`` (XLA-compiled train and predict functions);
- ``onednn_off``: ``TF_ENABLE_ONEDNN_OPTS=0`` (in a child process: it is read when
  TensorFlow is imported);
- ``bf16``: the ``mixed_bfloat16`` policy (Keras mixed precision; ``mixed_float16`` is
  the GPU form and only pays on GPUs with tensor cores, which this machine has not).

Each variant's speed is reported relative to ``default`` (``>1`` = faster). The
experiments keep ``default`` unless a variant is faster; mixed precision also changes
the numbers the papers' tables are compared with, so it stays an opt-in even when it
is faster. tf.data autotune is decided in ``input_pipeline.py``.

Run: ``python benchmarks/tf_options.py`` (headline: ``xla_vs_default_train_speed``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (Figure, base_argparser, best, finish, mark_start,  # noqa: E402
                               run_child, timed)

NAME = "tf_options"
VARIANTS = ("default", "xla", "onednn_off", "bf16")
#: What ``make bench`` runs (bf16 is an opt-in precision change, measured on request:
#: ``--variants default,bf16``; ENVIRONMENT.md has its numbers at 128 px).
DEFAULT_VARIANTS = ("default", "xla", "onednn_off")


def time_variant(variant: str, model_name: str = "xception", size: int = 64, batch: int = 32,
                 repeats: int = 3) -> dict:
    """Times one variant in this process: ``{"train": s, "infer": s, "first_step": s}``."""
    import keras
    import numpy as np

    from benchmarks.compute_efficiency import build

    keras.utils.clear_session(free_memory=True)
    keras.utils.set_random_seed(0)
    policy = keras.mixed_precision.global_policy()
    if variant == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model, x, y = build(model_name, size, size, 4, batch)
        if variant == "xla":
            model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"],
                          jit_compile=True)
            repeats = 1  # an XLA step on this CPU is ~10x slower: one repeat tells
    finally:
        keras.mixed_precision.set_global_policy(policy)
    start = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - start
    # The first step above was the warm-up (tracing / compiling).
    train = best(timed(lambda: model.train_on_batch(x, y), repeats, warmup=0))
    infer = best(timed(lambda: model.predict_on_batch(x), repeats + 1, warmup=1))
    out = np.asarray(model.predict_on_batch(x[:2]), dtype=np.float32)
    return {"train": train, "infer": infer, "first_step": first,
            "finite": bool(np.all(np.isfinite(out)))}


def time_in_child(variant: str, env_extra: dict, **kwargs) -> dict:
    """:func:`time_variant` in a child process with extra environment variables."""
    env = {**os.environ, **env_extra}
    args = json.dumps(kwargs)
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r}); "
            "from benchmarks.tf_options import time_variant; "
            f"print('RESULT' + json.dumps(time_variant({variant!r}, **json.loads({args!r}))))")
    status, _, output = run_child([sys.executable, "-c", code], env=env)
    lines = [line for line in output.splitlines() if line.startswith("RESULT")]
    if status != 0 or not lines:
        raise RuntimeError(f"variant {variant} failed (exit {status}):\n{output[-2000:]}")
    return json.loads(lines[-1][len("RESULT"):])


def measure(variants=VARIANTS, model_name: str = "xception", size: int = 64, batch: int = 32,
            repeats: int = 3, log=print) -> list[Figure]:
    """Every figure of this benchmark."""
    kwargs = {"model_name": model_name, "size": size, "batch": batch, "repeats": repeats}
    results = {}
    for variant in variants:
        if variant == "onednn_off":
            results[variant] = time_in_child("default", {"TF_ENABLE_ONEDNN_OPTS": "0"},
                                             **kwargs)
        else:
            results[variant] = time_variant(variant, **kwargs)
        r = results[variant]
        log(f"{variant}: train step {r['train']:.3f} s, inference {r['infer']:.3f} s, "
            f"first step {r['first_step']:.1f} s")
    base = results["default"]
    figures = []
    for variant, r in results.items():
        figures += [Figure(f"{variant}_train_step_seconds", r["train"], "s"),
                    Figure(f"{variant}_inference_seconds", r["infer"], "s"),
                    Figure(f"{variant}_first_step_seconds", r["first_step"], "s")]
    for variant, r in results.items():
        if variant == "default":
            continue
        figures += [Figure(f"{variant}_vs_default_train_speed", base["train"] / r["train"], "x"),
                    Figure(f"{variant}_vs_default_inference_speed",
                           base["infer"] / r["infer"], "x")]
    faster = [v for v in ("xla", "onednn_off") if v in results
              and results[v]["train"] < base["train"]]
    # 1 = the default (what the experiments run) is the fastest exact-precision choice.
    figures.append(Figure("default_kept", 0.0 if faster else 1.0, "bool"))
    if "xla" in results:
        # Headline last.
        head = next(f for f in figures if f.figure == "xla_vs_default_train_speed")
        figures.remove(head)
        figures.append(head)
    return figures


def main(argv=None) -> int:
    parser = base_argparser(__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"comma-separated subset of {','.join(VARIANTS)}")
    args = parser.parse_args(argv)
    mark_start()
    figures = measure([v for v in args.variants.split(",") if v])
    headline = figures[-1].figure
    finish(NAME, figures, headline, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
