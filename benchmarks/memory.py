#!/usr/bin/env python
"""Memory: peak resident memory of each ``cpu``-scale experiment, against 8 GiB.

Running every ``cpu`` experiment takes hours, so each is measured on a **slice**: a
child process builds the experiment's largest configuration at ``cpu`` scale, holds the
experiment's data in memory as its run does (decoded crops / clips as tf.data's cache
keeps them, cached features, pose segments), and runs a few training steps and one
inference batch, the point where a Keras run reaches its steady peak (weights, optimizer
slots, gradients and the step's activations all allocated). The peak resident set size
is the child's ``ru_maxrss`` (``wait4``; the per-child form of
``getrusage(RUSAGE_CHILDREN)``). A full run can peak higher than its slice
(evaluation, plots, several configurations in one process), so these are lower bounds
with the margin to 8 GiB as the figure that matters.

Slices (largest configuration of each experiment):

- ``p1``: fusion Meso-4 + DenseNet-121 + Xception, 64 px, batch 32, the image
  benchmark's 3,000 crops decoded in memory;
- ``p2``: the sequence grid's largest head at ``cpu`` scale, LSTM 4 x 1024 (the widest
  of ``dfdetect.papers.ann_comparison.settings_for("cpu").rnn_widths``) over (10, 2048) features, batch
  32, the video benchmark's features in memory;
- ``p3``: Xception + CBAM + bidirectional ConvLSTM2D, 8 frames of 64 px, batch 2,
  200 clips in memory;
- ``p4``: the pose LSTM 2 x 512 over 150 x 24 segments, batch 32;
- ``p5``: Meso-4 fine-tuning at 64 px, batch 32, the crops in memory. Its classical
  models work on 64-d features of at most 3,000 crops (1.5 MB as float64) and are left
  out: fitting the stacking ensemble takes minutes of CPU and adds no memory to speak of.

Run: ``python benchmarks/memory.py`` (headline: ``peak_rss_max_vs_8gib``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (Figure, base_argparser, finish, mark_start,  # noqa: E402
                               run_child)

NAME = "memory"
SLICES = ("p1", "p2", "p3", "p4", "p5")
LIMIT_MIB = 8 * 1024


def _train(model, x, y, steps: int, batch: int) -> None:
    for i in range(steps):
        j = (i * batch) % max(len(x) - batch + 1, 1)
        model.train_on_batch(x[j:j + batch], y[j:j + batch])
    model.predict_on_batch(x[:batch])


def run_slice(name: str, steps: int = 3, tiny: bool = False) -> None:
    """Runs one experiment's slice in this process (see the module docstring).

    ``tiny`` shrinks sizes for tests (the same code path on small inputs).
    """
    import keras
    import numpy as np

    from dfdetect import training
    from dfdetect.models import registry
    from dfdetect.papers import deepforense, fusion
    from dfdetect.scales import get_scale

    scale = get_scale("smoke" if tiny else "cpu")
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    # each image slice at its own paper's input side
    size = {"p1": fusion, "p5": deepforense}.get(name, fusion).settings_for(scale.name).image_size
    batch = scale.batch_size
    crops = scale.benchmark_identities * scale.views_per_identity * 2
    if tiny:
        size, batch, crops, steps = 32, 4, 16, 1
    if name == "p1":
        backbones = ["meso4"] if tiny else ["meso4", "densenet121", "xception"]
        model = registry.build_model("fusion", backbones=backbones, input_shape=(size, size, 3))
        x = rng.random((crops, size, size, 3), dtype=np.float32)
        y = rng.integers(0, 2, (crops, 1)).astype(np.float32)
    elif name == "p2":
        from dfdetect.papers import ann_comparison
        p2 = ann_comparison.settings_for(scale.name)
        widest = max(p2.rnn_widths)
        depth, width, dims = (1, 16, 32) if tiny else (4, widest, 2048)
        model = registry.build_model("rnn_head", cell="lstm", depth=depth, width=width,
                                     input_shape=(p2.sequence_frames, dims))
        x = rng.random((scale.benchmark_videos, p2.sequence_frames, dims), dtype=np.float32)
        y = rng.integers(0, 2, len(x)).astype(np.int32)
    elif name == "p3":
        from dfdetect.papers import convlstm_cbam
        p3 = convlstm_cbam.settings_for(scale.name)
        side = max(p3.size, 32)
        model = registry.build_model("convlstm_cbam", frames=p3.frames, size=side)
        batch = 2
        x = rng.random((scale.benchmark_videos, p3.frames, side, side, 3), dtype=np.float32)
        y = rng.integers(0, 2, len(x)).astype(np.int32)
    elif name == "p4":
        from dfdetect.papers import pose_lstm
        hidden = 16 if tiny else 512
        model = registry.build_model("pose_lstm", hidden=hidden, layers=2, input_shape=(150, 24))
        segments = scale.pose_pois * scale.pose_videos_per_poi * scale.pose_segments_per_video
        x = rng.standard_normal((segments, 150, 24)).astype(np.float32)
        y = rng.integers(0, 2, (len(x), 1)).astype(np.float32)
        batch = pose_lstm.settings_for(scale.name).batch_size if not tiny else batch
    elif name == "p5":
        model = registry.build_model("meso4", input_shape=(size, size, 3))
        x = rng.random((crops, size, size, 3), dtype=np.float32)
        y = rng.integers(0, 2, (crops, 1)).astype(np.float32)
    else:
        raise ValueError(f"unknown slice {name!r}; choose from {', '.join(SLICES)}")
    training.compile_model(model)
    _train(model, x, y, steps, batch)


def measure(slices=SLICES, steps: int = 3, tiny: bool = False, log=print) -> list[Figure]:
    """Runs every slice in its own child process; one peak RSS figure per slice."""
    figures = []
    peaks = {}
    for name in slices:
        argv = [sys.executable, os.path.abspath(__file__), "--slice", name,
                "--steps", str(steps)] + (["--tiny"] if tiny else [])
        code, peak, output = run_child(argv)
        if code != 0:
            raise RuntimeError(f"memory slice {name} failed (exit {code}):\n{output[-2000:]}")
        log(f"{name}: peak RSS {peak:.0f} MiB")
        peaks[name] = peak
        figures.append(Figure(f"{name}_peak_rss", peak, "MiB"))
    worst = max(peaks.values())
    figures.append(Figure("peak_rss_max", worst, "MiB"))
    figures.append(Figure("peak_rss_max_vs_8gib", worst / LIMIT_MIB, "ratio"))
    return figures


def main(argv=None) -> int:
    parser = base_argparser(__doc__.splitlines()[0])
    parser.add_argument("--slice", choices=SLICES, default=None,
                        help="run one slice in this process (what the children do)")
    parser.add_argument("--steps", type=int, default=3, help="training steps per slice")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (tests)")
    args = parser.parse_args(argv)
    if args.slice:
        run_slice(args.slice, args.steps, args.tiny)
        return 0
    mark_start()
    figures = measure(steps=args.steps, tiny=args.tiny)
    finish(NAME, figures, "peak_rss_max_vs_8gib", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
