"""One home per paper: its settings, its tables and the logic only it needs.

Each module holds a frozen dataclass of the paper's settings with one instance per
scale (``SETTINGS["smoke" | "cpu" | "paper"]``; ``paper`` is the paper's own setting,
checked against ``../shared/SPEC.md`` by the tests), the paper's tables and reported
numbers, and its library code. ``experiments/*.py`` are the entry points.

- :mod:`dfdetect.papers.fusion`: P1, feature-level fusion of CNNs;
- :mod:`dfdetect.papers.ann_comparison`: P2, comparison of ANNs (custom CNN, InceptionV3
  transfer, LSTM / GRU / MLP grids);
- :mod:`dfdetect.papers.convlstm_cbam`: P3, Xception + CBAM + bidirectional ConvLSTM;
- :mod:`dfdetect.papers.pose_lstm`: P4, the body-language LSTM;
- :mod:`dfdetect.papers.deepforense`: P5, DeepForense (CNN features, classical models).
"""

from __future__ import annotations

from typing import Mapping, TypeVar

from dfdetect.errors import ModelError

T = TypeVar("T")


def lookup(settings: Mapping[str, T], scale_name: str, paper: str) -> T:
    """A paper's settings at one scale: every paper's ``settings_for``.

    Args:
        settings: the paper's ``SETTINGS`` (scale name -> frozen settings).
        scale_name: ``smoke``, ``cpu`` or ``paper``.
        paper: the paper's short name for the message (``P1``...).

    Raises:
        ModelError: an unknown scale (the message lists the known ones).
    """
    try:
        return settings[scale_name]
    except KeyError:
        raise ModelError(f"no {paper} settings for scale {scale_name!r}; "
                         f"known: {', '.join(settings)}") from None
