"""Every setting of the shipped detector's training, in one place.

A :class:`DetectorScale` names the network (the ImageNet EfficientNet-Lite under the
detector, or the from-scratch residual CNN of the first release), its input side, the
learning rates and how long it trains; :data:`SCALES` holds one per ``--scale``.
"""

from __future__ import annotations

import dataclasses
import os

#: Where the shipped detector lives inside the package.
DEFAULT_EXPORT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "weights", "default.keras")
#: Frames ``predict`` samples per video with the default detector.
PREDICT_FRAMES = 16
#: The predict crop (FaceForensics++): 1.3x the face box. Canvases hold 1.5x that.
CROP_SCALE = 1.3
CONTEXT = 1.5
#: File-name prefixes of the real-deepfake evaluation set (``realworld/``): its FF++ clips
#: may select a checkpoint and threshold, its Celeb-DF / DFDC clips are a test; none of
#: them is ever training material (``pool`` refuses them, ``training`` refuses to select
#: on the test ones).
SELECTION_PREFIX = "ffpp_"
TEST_PREFIXES = ("celebdf_", "dfdc_")
EVALUATION_PREFIXES = (SELECTION_PREFIX, *TEST_PREFIXES)
#: The video-frame share of every run recorded before it was a setting (state.json
#: recipes without ``frame_share``).
OLD_FRAME_SHARE = 0.35
#: What recipes recorded before these settings existed used (state.json without them).
RECIPE_DEFAULTS = {"frame_share": OLD_FRAME_SHARE, "swap_share": 0.0}
#: Backbones the detector can stand on: ``scratch`` is the first release's residual CNN.
BACKBONES = ("lite0", "lite1", "lite2", "scratch")


@dataclasses.dataclass(frozen=True)
class DetectorScale:
    """Sizes and rates of one training scale.

    Attributes:
        name: smoke / cpu / paper.
        size: model input side (divisible by 32).
        canvas: side of the prepared face canvases (the blend is made at this size).
        epochs: planned epochs (the learning-rate schedule spans them).
        steps: optimisation steps per epoch.
        batch_pairs: real + fake pairs per batch (batch = 2x).
        max_photos: photos used at most (None: all).
        frames_per_video: frames taken from each real video.
        val_pairs: validation bases (each gives an SBI pair and a swap pair).
        backbone: ``lite0`` / ``lite1`` / ``lite2`` (ImageNet EfficientNet-Lite) or
            ``scratch`` (the residual CNN, random initialisation).
        lr: peak learning rate of the heads (AdamW, warm-up one epoch, cosine to 2 %).
        backbone_lr: the pretrained backbone's rate as a multiple of ``lr`` (a small
            rate keeps the ImageNet features; 1.0 trains every layer alike).
        weights: the backbone's initial weights: ``imagenet``, a file, or None.
        frame_share: chance that a training pair's base is a real video frame rather
            than a photo (frames are ~10 % of the canvases, but compressed video is
            what users and the FF++ clips hold).
        swap_share: chance that a pair's fake is an identity swap (another training
            face blended in, as Face X-ray's blended images) instead of the face's own
            self-blend; 0 is the SBI recipe. The validation swaps are then no longer a
            forgery never trained on.
    """

    name: str
    size: int
    canvas: int
    epochs: int
    steps: int
    batch_pairs: int
    max_photos: int | None
    frames_per_video: int
    val_pairs: int
    backbone: str = "lite0"
    lr: float = 1e-3
    backbone_lr: float = 0.1
    weights: str | None = "imagenet"
    frame_share: float = OLD_FRAME_SHARE
    swap_share: float = 0.0

    @property
    def builder(self) -> tuple[str, dict]:
        """The registry name and arguments of the training network."""
        shape = (self.size, self.size, 3)
        if self.backbone == "scratch":
            return "default_detector", {"input_shape": shape}
        return "lite_detector", {"variant": self.backbone, "input_shape": shape,
                                 "weights": self.weights}


SCALES = {
    "smoke": DetectorScale("smoke", size=64, canvas=96, epochs=2, steps=2, batch_pairs=4,
                           max_photos=24, frames_per_video=3, val_pairs=8, weights=None),
    "cpu": DetectorScale("cpu", size=128, canvas=224, epochs=8, steps=400, batch_pairs=16,
                         max_photos=None, frames_per_video=60, val_pairs=600),
    # the published SBI recipe's scale for a GPU (EfficientNet-B4 at 380 px there)
    "paper": DetectorScale("paper", size=256, canvas=384, epochs=100, steps=1000,
                           batch_pairs=16, max_photos=None, frames_per_video=120,
                           val_pairs=2000, backbone="lite2"),
}

@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a scale's recipe: the scale with these changes, trained in its own
    run folder, starting from the previous stage's last checkpoint.

    Attributes:
        name: the run folder's name (``build/detector/<scale>/<name>``).
        changes: fields of :class:`DetectorScale` this stage sets.
        stop_after: the stage ends after this epoch, its schedule still spanning
            ``changes["epochs"]`` (None: all of them).
    """

    name: str
    changes: dict
    stop_after: int | None = None

    def scale(self, base: DetectorScale) -> DetectorScale:
        return dataclasses.replace(base, **self.changes)


#: The shipped detector's recipe at cpu scale, as selected on the FF++ clips
#: (``results/detector/ablation.csv``): ImageNet Lite0 learns the blend task at 128 px
#: (canvas 224) with the backbone at a tenth of the heads' rate, its cosine schedule over
#: 8 epochs of 400 steps, the epoch with the best FF++ AUC kept (run r1_lite0_128).
#: Continuing its fourth epoch at 224 px (run r2_lite0_224_from_r1) scored lower on those
#: clips, so no second stage follows; the same recipe at 160 px from ImageNet (run
#: r3_lite0_160) peaked at its first epoch, below r1; video frames as 70 % of the bases
#: (r4_lite0_128_frames, 0.800) and identity swaps as 30 % of the fakes
#: (r5_lite0_128_swaps, 0.793) did not beat it either. A scale listed here runs its stages in order, each in
#: its own folder from the previous stage's last checkpoint.
STAGES = {
    "cpu": (Stage("stage1_128", {"size": 128, "canvas": 224, "lr": 1e-3, "backbone_lr": 0.1,
                                 "epochs": 8, "steps": 400}),),
}


#: The first release's recipe at cpu scale (``--backbone scratch``): the residual CNN
#: from scratch at 128 px, AdamW 1e-3 on every layer, 40 epochs.
SCRATCH = dataclasses.replace(SCALES["cpu"], backbone="scratch", epochs=40, lr=1e-3,
                              backbone_lr=1.0, weights=None)


def scratch_recipe(sc: DetectorScale) -> DetectorScale:
    """``sc`` with the first release's from-scratch network and rates (its 40 epochs at
    cpu scale)."""
    return dataclasses.replace(sc, backbone="scratch", lr=SCRATCH.lr, backbone_lr=1.0,
                               weights=None,
                               epochs=SCRATCH.epochs if sc.name == "cpu" else sc.epochs)
