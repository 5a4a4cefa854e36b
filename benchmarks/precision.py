#!/usr/bin/env python
"""Training speed in float32 vs ``mixed_bfloat16``, and what ``--precision auto`` picks.

For each model the experiments train (Meso-4, P1's Xception classifier, InceptionV3,
EfficientNetB0, the P3 model, the shipped default detector), :func:`dfdetect.precision.
resolve_precision` with ``auto`` builds it once under each policy (output layers
float32) and times training steps of both in alternating rounds in the same process,
so a neighbour's load falls on both alike: exactly the probe an ``auto`` run makes, with
its decision (bfloat16 only where the CPU has it natively, it is > 10 % faster at the
median of the rounds and faster in every round).

Rows per model ``<m>``: ``float32_images_per_s_<m>``, ``bf16_images_per_s_<m>``,
``bf16_speedup_<m>`` (median rounds), ``bf16_speedup_min_<m>`` / ``_max_<m>`` (per
round: the probe's noise), ``auto_picks_bf16_<m>`` (1 = mixed_bfloat16, 0 = float32) and
``auto_vs_float32_worst_round_<m>``: the speed of auto's choice relative to float32 in
the probe's worst round (1 when it keeps float32), i.e. how much slower than float32
``auto`` can be within the probe's noise. Plus ``cpu_has_bf16``.

Sizes: 128 x 128 crops, batch 32 (the P3 model: 4 clips of 8 frames, 32 frames a
step); weights random (speed does not depend on them).

Run: ``python benchmarks/precision.py [--models meso4,xception]`` (headline:
``bf16_speedup_xception``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import Figure, base_argparser, finish, mark_start  # noqa: E402

NAME = "precision"
MODELS = ("meso4", "xception", "inceptionv3", "efficientnetb0", "p3", "default_detector")
SIZE, BATCH = 128, 32
P3_FRAMES, P3_CLIPS = 8, 4


def builder(name: str, size: int = SIZE, frames: int = P3_FRAMES):
    """A zero-argument builder of ``name`` at ``size`` px (the global policy applies)."""
    from dfdetect.models import registry

    shape = (size, size, 3)
    if name == "meso4":
        return lambda: registry.build_model("meso4", input_shape=shape)
    if name in ("xception", "inceptionv3"):
        # P1's single-backbone classifier (the backbone + the fusion head), trained whole.
        return lambda: registry.build_model("fusion", backbones=name, input_shape=shape)
    if name == "efficientnetb0":
        # Not through the registry: a reference network dfdetect does not use, measured
        # beside its own for how bfloat16 fares on a plain Keras application.
        import keras
        return lambda: keras.applications.EfficientNetB0(
            weights=None, input_shape=shape, classes=1, classifier_activation="sigmoid")
    if name == "p3":
        return lambda: registry.build_model("convlstm_cbam", frames=frames, size=size)
    if name == "default_detector":
        # both heads, as `make detector` trains
        return lambda: registry.build_model("default_detector", input_shape=shape)
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def batch_for(name: str, size: int, batch: int, frames: int, clips: int):
    """Random inputs of one training step."""
    import numpy as np

    rng = np.random.default_rng(0)
    if name == "p3":
        return rng.random((clips, frames, size, size, 3), dtype=np.float32)
    return rng.random((batch, size, size, 3), dtype=np.float32)


def measure_model(name: str, size: int = SIZE, batch: int = BATCH, frames: int = P3_FRAMES,
                  clips: int = P3_CLIPS, log=print, **probe) -> dict:
    """``auto``'s decision for one model, with its probe's numbers."""
    import keras

    from dfdetect import precision

    keras.utils.clear_session(free_memory=True)
    start = time.perf_counter()
    decision = precision.resolve_precision(
        "auto", builder(name, size, frames), batch_for(name, size, batch, frames, clips),
        name=f"{name} ({size} px)", log=log, **probe)
    return {"decision": decision, "seconds": time.perf_counter() - start}


def measure(models=MODELS, size: int = SIZE, batch: int = BATCH, frames: int = P3_FRAMES,
            clips: int = P3_CLIPS, log=print, **probe) -> list[Figure]:
    """Every figure of this benchmark (``probe``: warmup / steps / rounds overrides)."""
    from dfdetect import precision

    supported, why = precision.bf16_support()
    log(f"{precision.machine_key()}: {why}")
    if not supported:
        # auto would not probe: force the timing anyway, so the table says how slow
        # emulated bfloat16 is here, and record that auto keeps float32.
        log("timing bf16 anyway (emulated): auto keeps float32 on this machine")
    figures = [Figure("cpu_has_bf16", 1.0 if supported else 0.0, "bool")]
    for name in models:
        if supported:
            result = measure_model(name, size, batch, frames, clips, log, **probe)
        else:
            original = precision.bf16_support
            precision.bf16_support = lambda: (True, "forced by the benchmark")
            try:
                result = measure_model(name, size, batch, frames, clips, log, **probe)
            finally:
                precision.bf16_support = original
        d = result["decision"]
        picks = d.policy == precision.BF16 and supported
        unit = "clips/s" if name == "p3" else "images/s"
        worst = d.speedup_min if picks else 1.0
        figures += [Figure(f"float32_{unit.replace('/', '_per_')}_{name}", d.float32_img_s, unit),
                    Figure(f"bf16_{unit.replace('/', '_per_')}_{name}", d.bf16_img_s, unit),
                    Figure(f"bf16_speedup_min_{name}", d.speedup_min, "x"),
                    Figure(f"bf16_speedup_max_{name}", d.speedup_max, "x"),
                    Figure(f"auto_picks_bf16_{name}", 1.0 if picks else 0.0, "bool"),
                    Figure(f"auto_vs_float32_worst_round_{name}", worst, "x"),
                    Figure(f"probe_seconds_{name}", result["seconds"], "s"),
                    Figure(f"bf16_speedup_{name}", d.speedup, "x")]
    head = next((f for f in figures if f.figure == "bf16_speedup_xception"), figures[-1])
    figures.remove(head)
    return figures + [head]


def main(argv=None) -> int:
    parser = base_argparser(__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternating timed rounds per precision (default 4, as auto)")
    args = parser.parse_args(argv)
    mark_start()
    figures = measure([m for m in args.models.split(",") if m], rounds=args.rounds)
    finish(NAME, figures, figures[-1].figure, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
