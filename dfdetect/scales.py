"""Scale presets: ``smoke`` (tests), ``cpu`` (2 cores, minutes) and ``paper`` (GPU).

A scale only shrinks data size, image size, frames, epochs and repeats; the paper's
settings themselves (grids, optimisers, heads) live in the experiment scripts. The same
code path runs at every scale.
"""

from __future__ import annotations

import dataclasses

from dfdetect.errors import DfdetectError


@dataclasses.dataclass(frozen=True)
class Scale:
    """Sizes for one scale. Fields are grouped by the benchmark/experiment that uses them.

    Attributes:
        name: ``smoke``, ``cpu`` or ``paper``.
        image_size: side of square face crops for image models (P1, P5, P2 custom CNN).
        benchmark_identities: identities drawn for the image benchmark; each identity
            gives one real and one fake crop per view.
        views_per_identity: crops per identity (pose / lighting / crop jitter).
        video_size: side of frames in the video benchmark (P2 sequences, P3).
        p2_frames: frames per video for P2 (paper 40).
        p3_frames: frames per clip for P3 (paper 30).
        benchmark_videos: videos in the video benchmark (half real, half fake).
        epochs: maximum training epochs (early stopping may end sooner).
        repeats: repeats of each configuration (P2: paper 10).
        batch_size: training batch size for image models.
        pose_pois: persons of interest in the pose benchmark (P4).
        pose_segments_per_video: 150-frame segments per pose video (P4).
        pose_videos_per_poi: real videos per person of interest (P4).
        pose_epochs: P4 training epochs (paper 200; the best validation epoch is kept).
        pose_batch_size: P4 batch size (paper 1; larger on a CPU, where batch 1 through
            a 512 x 2 LSTM over 150 steps is far too slow).
        cv_folds: k of k-fold cross-validation (P5).
        fusion_epochs: P1's maximum epochs of a model trained end to end: the four
            single backbones (and, with ``--bases scratch``, every fusion).
        fusion_head_epochs: P1's maximum epochs of a fusion head on the frozen bases of
            the trained single models (``--bases singles``, the default): only the head
            learns, so a few epochs suffice.
        pose_optimizer: P4's main optimizer (Table 4, Table 5): the paper's Adam 1e-2 at
            its batch 1; with the larger CPU batch, stacked LSTMs diverge at 1e-2 and
            oscillate at 1e-3, so ``cpu`` and ``smoke`` use Adam 3e-4 (measured on the
            cpu pose benchmark, one PoI, batch 16, 8 epochs: 2x512 validation accuracy
            0.50 / 0.47-0.88 swinging / 0.78 steady; 2x256 at 1e-2: 0.50).
        p5_finetune_epochs: P5's backbone fine-tuning before feature extraction (early
            stopping may end sooner; Meso-4 needs ~30-40 epochs on the cpu benchmark).
    """

    name: str
    image_size: int
    benchmark_identities: int
    views_per_identity: int
    video_size: int
    p2_frames: int
    p3_frames: int
    benchmark_videos: int
    epochs: int
    repeats: int
    batch_size: int
    pose_pois: int
    pose_segments_per_video: int
    pose_videos_per_poi: int
    pose_epochs: int
    pose_batch_size: int
    cv_folds: int
    p5_finetune_epochs: int
    fusion_epochs: int
    fusion_head_epochs: int
    pose_optimizer: str


SCALES = {
    "smoke": Scale(
        name="smoke", image_size=64, benchmark_identities=24, views_per_identity=1,
        video_size=64, p2_frames=4, p3_frames=4, benchmark_videos=12,
        epochs=1, repeats=1, batch_size=16,
        pose_pois=2, pose_segments_per_video=2, pose_videos_per_poi=4, cv_folds=2,
        pose_epochs=1, pose_batch_size=8, p5_finetune_epochs=1, fusion_epochs=1,
        fusion_head_epochs=1, pose_optimizer="adam-3e-4",
    ),
    "cpu": Scale(
        name="cpu", image_size=64, benchmark_identities=1500, views_per_identity=1,
        video_size=64, p2_frames=10, p3_frames=8, benchmark_videos=200,
        epochs=8, repeats=3, batch_size=32,
        pose_pois=3, pose_segments_per_video=4, pose_videos_per_poi=40, cv_folds=5,
        pose_epochs=20, pose_batch_size=16, p5_finetune_epochs=40, fusion_epochs=8,
        fusion_head_epochs=3, pose_optimizer="adam-3e-4",
    ),
    "paper": Scale(
        name="paper", image_size=256, benchmark_identities=20000, views_per_identity=4,
        video_size=240, p2_frames=40, p3_frames=30, benchmark_videos=1000,
        epochs=60, repeats=10, batch_size=32,
        pose_pois=5, pose_segments_per_video=6, pose_videos_per_poi=60, cv_folds=5,
        pose_epochs=200, pose_batch_size=1, p5_finetune_epochs=60, fusion_epochs=60,
        fusion_head_epochs=20, pose_optimizer="adam-1e-2",
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
