"""Each paper's home holds the paper's own settings at ``paper`` scale: the values of
``../shared/SPEC.md`` (quoted beside each assertion, and looked up in SPEC.md itself
when the file is there)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dfdetect import scales
from dfdetect.papers import ann_comparison, convlstm_cbam, deepforense, fusion, pose_lstm

SPEC = Path(__file__).resolve().parents[1] / ".." / "shared" / "SPEC.md"


def spec_says(*phrases: str) -> None:
    """Every phrase appears in SPEC.md (whitespace-normalised), when SPEC.md exists."""
    if not SPEC.is_file():
        return
    text = " ".join(SPEC.read_text().split())
    for phrase in phrases:
        assert " ".join(phrase.split()) in text, f"SPEC.md no longer says {phrase!r}"


@pytest.mark.parametrize("module", [fusion, ann_comparison, convlstm_cbam, pose_lstm,
                                    deepforense])
def test_every_paper_has_frozen_settings_for_every_scale(module):
    assert set(module.SETTINGS) == set(scales.SCALE_NAMES)
    for settings in module.SETTINGS.values():
        assert dataclasses.is_dataclass(settings)
        with pytest.raises(dataclasses.FrozenInstanceError):
            settings.__setattr__(dataclasses.fields(settings)[0].name, None)


def test_scale_keeps_only_what_every_paper_shares():
    names = {f.name for f in dataclasses.fields(scales.Scale)}
    for paper_only in ("fusion_epochs", "fusion_head_epochs", "pose_epochs",
                       "pose_batch_size", "pose_optimizer", "p5_finetune_epochs", "cv_folds",
                       "epochs", "p2_frames", "p3_frames"):
        assert paper_only not in names


def test_each_paper_names_its_own_input_sizes():
    """One source per setting: a paper's input size is its own, so changing P1's cannot
    change P5's; the benchmark's stores hold what every paper reads (at most its frames)."""
    for name in scales.SCALE_NAMES:
        scale = scales.get_scale(name)
        assert fusion.settings_for(name).image_size > 0
        assert deepforense.settings_for(name).image_size > 0
        assert ann_comparison.settings_for(name).frame_size > 0
        assert convlstm_cbam.settings_for(name).size > 0
        assert ann_comparison.settings_for(name).sequence_frames <= scale.video_frames
        assert convlstm_cbam.settings_for(name).frames <= scale.video_frames


def test_p1_fusion_paper_settings():
    paper = fusion.settings_for("paper")
    spec_says("Assumed: Adam 1e-3, binary cross-entropy, halve LR every 5 epochs, patience 5.",
              "rotation up to 15 degrees, zoom 20 %, brightness +-20 %",
              "Paper: Xception 0.8833 acc; Xception+DenseNet best, 0.8963 acc, AUC 0.93;",
              "cross-dataset Xception+DenseNet 0.8578.")
    assert (paper.learning_rate, paper.decay_factor, paper.decay_every, paper.patience) == \
        (1e-3, 0.5, 5, 5)
    assert (paper.rotation_degrees, paper.zoom, paper.brightness) == (15.0, 0.2, 0.2)
    assert fusion.PAPER_ACC_AUC["xception"][0] == 0.8833
    assert fusion.PAPER_ACC_AUC["xception+densenet121"][:3] == (0.8963, 0.93, 0.8578)


def test_p2_ann_comparison_paper_settings():
    paper = ann_comparison.settings_for("paper")
    spec_says("**40 evenly spaced frames per video**",
              "Every configuration: 60 epochs, **10 repeats**",
              "InceptionV3 transfer (299x299", "depth 1,2,3,4 x width 128, 512, 1024, 2048")
    assert paper.cnn_frames == paper.inception_frames == 40
    assert paper.cnn_epochs == paper.inception_epochs == paper.sequence_epochs == 60
    assert scales.get_scale("paper").repeats == 10
    assert paper.sequence_frames == 40 and paper.frame_size == 240
    assert paper.inception_size == 299
    assert paper.rnn_widths == (128, 512, 1024, 2048)
    assert paper.learning_rate == 1e-3  # assumed (the paper names no optimizer)
    assert ann_comparison.PAPER_TABLE_3["InceptionV3"]["A_v"] == 0.7434


def test_p3_convlstm_cbam_paper_settings():
    paper = convlstm_cbam.settings_for("paper")
    spec_says("Training: Adam lr 1e-4, beta1 0.9, beta2 0.999, batch 2, cross-entropy.",
              "Paper: AUC 98.9, acc 93.5, P 98.9, R 88.0, F1 93.1.",
              "Xception+LSTM (AUC 89.7, acc 69.5) and Xception+ConvLSTM (AUC 88.6, acc 85.0)",
              "F = 30 frames, 240x240x3")
    assert (paper.learning_rate, paper.beta_1, paper.beta_2, paper.batch_size) == \
        (1e-4, 0.9, 0.999, 2)
    assert (paper.frames, paper.size) == (30, 240)
    assert convlstm_cbam.PAPER["convlstm_cbam"] == {
        "AUC": 0.989, "Accuracy": 0.935, "Precision": 0.989, "Recall": 0.880, "F1": 0.931}
    assert convlstm_cbam.PAPER["xception_lstm"] == {"AUC": 0.897, "Accuracy": 0.695}
    assert convlstm_cbam.PAPER["xception_convlstm"] == {"AUC": 0.886, "Accuracy": 0.850}


def test_p4_pose_lstm_paper_settings():
    from dfdetect.models import sequence

    paper = pose_lstm.settings_for("paper")
    spec_says("input 24, hidden 512, 2 layers, dropout 0.5 between layers",
              "Adam lr 1e-2, step decay x0.5 every 30 epochs,",
              "weight decay 1e-4 (L2), gradient clipping max-norm 0.25, batch 1, 200 epochs",
              "Table 4: 2x512 -> 94.39 %, 2x256 -> 91.24 %, 3x128 -> 86.62 %.",
              "SGD 1e-3, SGD 1e-4, Adam 1e-3.")
    assert (paper.hidden, paper.layers, paper.dropout, paper.l2) == (512, 2, 0.5, 1e-4)
    assert (paper.epochs, paper.batch_size, paper.optimizer) == (200, 1, "adam-1e-2")
    assert sequence.POSE_OPTIMIZERS[paper.optimizer] == ("adam", 1e-2)
    assert sequence.POSE_LR_DECAY == (30, 0.5) and sequence.POSE_CLIPNORM == 0.25
    assert pose_lstm.PAPER_TABLE_4 == {"lstm-2x512": 0.9439, "lstm-2x256": 0.9124,
                                       "lstm-3x128": 0.8662}
    assert pose_lstm.FIG8_OPTIMIZERS == ("sgd-1e-3", "sgd-1e-4", "adam-1e-3")


def test_p5_deepforense_paper_settings():
    paper = deepforense.settings_for("paper")
    spec_says("pretrained ResNet/VGG", "k-fold cross-validation", "Paper: 0.875 acc.")
    assert paper.backbone == "resnet50"
    assert paper.cv_folds == 5  # assumed: the paper says k-fold without k
    assert deepforense.PAPER_ACCURACY == 0.875
