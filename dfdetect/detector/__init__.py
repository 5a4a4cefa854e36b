"""Training the shipped default detector on Self-Blended Images of real faces.

One module a step: :mod:`~dfdetect.detector.settings` (every scale's sizes and rates),
:mod:`~dfdetect.detector.pool` (real faces -> cached canvases with landmarks),
:mod:`~dfdetect.detector.pairs` (a real and its fresh SBI blend, with the boundary
map), :mod:`~dfdetect.detector.selection` (the FF++ clips that pick the checkpoint and
threshold), :mod:`~dfdetect.detector.training` (the resumable loop),
:mod:`~dfdetect.detector.ablation` (what each recipe did) and
:mod:`~dfdetect.detector.variants` (how frames become a clip score, chosen on the FF++
clips). The network
itself is :mod:`dfdetect.models.detector`. ``realworld/`` is never training material.
"""

from dfdetect.detector.pairs import (boundary_target, make_pair, training_dataset,
                                     validation_set)
from dfdetect.detector.pool import FacePool, prepare_pool, split_pool
from dfdetect.detector.selection import SelectionSet, load_selection, load_test_clips
from dfdetect.detector.settings import (CONTEXT, CROP_SCALE, DEFAULT_EXPORT, PREDICT_FRAMES,
                                        SCALES, SCRATCH, DetectorScale)
from dfdetect.detector.training import (choose_threshold, train_detector,
                                        write_training_record)

__all__ = ["CONTEXT", "CROP_SCALE", "DEFAULT_EXPORT", "PREDICT_FRAMES", "SCALES", "SCRATCH",
           "DetectorScale", "FacePool", "SelectionSet", "boundary_target", "choose_threshold",
           "load_selection", "load_test_clips", "make_pair", "prepare_pool", "split_pool", "train_detector",
           "training_dataset", "validation_set", "write_training_record"]
