"""The Sample contract shared by every room (see DESIGN.md)."""

from __future__ import annotations

import dataclasses

SAMPLE_FIELDS = ("path", "label", "video_id", "split", "source", "method")
SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class Sample:
    """One image or video of a dataset.

    Attributes:
        path: file on disk (image or video).
        label: 1 fake, 0 real.
        video_id: identifier unique within ``source`` (a file stem for folder layouts).
        split: ``train``, ``val``, ``test`` or ``""`` when the dataset gives none.
        source: dataset name (``ffpp``, ``celebdf``, ``openforensics``, ``dfdc``, ``folder``...).
        method: manipulation name, or ``"real"``.
    """

    path: str
    label: int
    video_id: str
    split: str
    source: str
    method: str

    def as_row(self) -> dict:
        """The sample as a flat dict with the contract's column names."""
        return dataclasses.asdict(self)
