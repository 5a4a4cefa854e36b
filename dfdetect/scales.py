"""Scale presets: ``smoke`` (tests), ``cpu`` (2 cores, minutes) and ``paper`` (GPU).

A scale holds only what every paper shares: the embedded benchmarks' sizes (what their
stores hold), repeats and batch size. Each paper's own settings (its input sizes and
frames, epochs, optimizers, grids), with their per-scale values, live in its home under
``dfdetect/papers/``, so changing one paper's size changes no other's. The same code
path runs at every scale.
"""

from __future__ import annotations

import dataclasses

from dfdetect.errors import DfdetectError

#: The scale names, in increasing size (the experiments' ``--scale`` choices).
SCALE_NAMES = ("smoke", "cpu", "paper")


@dataclasses.dataclass(frozen=True)
class Scale:
    """What every paper and benchmark shares at one scale.

    Attributes:
        name: ``smoke``, ``cpu`` or ``paper``.
        image_size: side of the image benchmark's square face crops (P1 and P5 read
            them at their own ``image_size``).
        benchmark_identities: identities drawn for the image benchmark; each identity
            gives one real and one fake crop per view.
        views_per_identity: crops per identity (pose / lighting / crop jitter).
        video_size: side of the video benchmark's frames (P2 and P3 read them at their
            own sizes).
        video_frames: frames per video the video benchmark renders; P2 and P3 take the
            first of them (their own ``sequence_frames`` / ``frames``, at most these).
        benchmark_videos: videos in the video benchmark (half real, half fake).
        repeats: repeats of each configuration (P2: paper 10).
        batch_size: training batch size for image models.
        pose_pois: persons of interest in the pose benchmark (P4).
        pose_segments_per_video: 150-frame segments per pose video (P4).
        pose_videos_per_poi: real videos per person of interest (P4).
        eager: train and predict eagerly (Keras ``run_eagerly``). At smoke scale a
            model takes 2 training steps, and tracing their graph costs more than
            running them (Xception at 64 px: 50 s traced, 8 s eager, on 2 busy cores), so a
            smoke run, there to show that everything works, runs eagerly.
    """

    name: str
    image_size: int
    benchmark_identities: int
    views_per_identity: int
    video_size: int
    video_frames: int
    benchmark_videos: int
    repeats: int
    batch_size: int
    pose_pois: int
    pose_segments_per_video: int
    pose_videos_per_poi: int
    eager: bool = False


SCALES = {
    "smoke": Scale(
        name="smoke", image_size=64, benchmark_identities=24, views_per_identity=1,
        video_size=64, video_frames=4, benchmark_videos=12,
        repeats=1, batch_size=16,
        pose_pois=2, pose_segments_per_video=2, pose_videos_per_poi=4, eager=True,
    ),
    "cpu": Scale(
        name="cpu", image_size=64, benchmark_identities=1500, views_per_identity=1,
        video_size=64, video_frames=10, benchmark_videos=200,
        repeats=3, batch_size=32,
        pose_pois=3, pose_segments_per_video=4, pose_videos_per_poi=40,
    ),
    "paper": Scale(
        name="paper", image_size=256, benchmark_identities=20000, views_per_identity=4,
        video_size=240, video_frames=40, benchmark_videos=1000,
        repeats=10, batch_size=32,
        pose_pois=5, pose_segments_per_video=6, pose_videos_per_poi=60,
    ),
}


def get_scale(name: str) -> Scale:
    """Return the preset called ``name``.

    Raises:
        DfdetectError: for an unknown name, listing the valid ones.
    """
    try:
        return SCALES[name]
    except KeyError:
        raise DfdetectError(
            f"unknown scale {name!r}; choose one of {', '.join(SCALES)}"
        ) from None
