"""Every train / val / test / cross split dfdetect makes, in one place.

Each function here is the one way its kind of split is made; the rooms that used to
decide splits themselves (the benchmark builder, the store, the pose data, the
experiments) call these. What must never straddle two splits is the *group*: the
identity when a row has one, else the video (:func:`group_key`), so a face seen in
training is never tested on.

- :func:`assign_identities`: the embedded benchmarks' identities -> split (seeded
  permutation, fixed fractions, every split non-empty when possible);
- :func:`split_rows`: a store's rows by their ``split`` column; rows without one go
  80/10/10 by a hash of their group;
- :func:`train_heldout`: P2's 80/20 (``train`` vs ``val`` + ``test``);
- :func:`finetune_partition`: P5's fine-tune train / fine-tune val / cross-validation
  pool, disjoint by group;
- :func:`split_by_video`: P4's 80/10/10 of pose segments by video, stratified;
- :func:`split_groups` / :func:`assign_groups`: the splits ``dfdetect data crop`` gives a
  dataset that has none (by identity where the layout names one, else by video;
  stratified by class, seeded, recorded in the store);
- :func:`manifest_split`: the rows of one named split.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from typing import Iterable, Mapping, Sequence

import numpy as np

from dfdetect.data.sample import SPLITS

__all__ = ["CROP_SPLIT_FRACTIONS", "CROSS_SPLIT", "SPLIT_FRACTIONS", "SPLIT_FRACTIONS_HOLDOUT",
           "STORE_SPLITS", "assign_groups", "assign_identities", "finetune_partition",
           "group_key", "hash_bucket", "manifest_split", "split_by_video", "split_groups",
           "split_rows", "train_heldout"]

#: The embedded benchmark's held-out-method test split.
CROSS_SPLIT = "cross"
#: Every value a store's ``split`` column may hold ("" = the dataset gave none).
STORE_SPLITS = (*SPLITS, CROSS_SPLIT, "")
#: The embedded benchmarks' identity fractions, without and with a held-out method.
SPLIT_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}
SPLIT_FRACTIONS_HOLDOUT = {"train": 0.60, "val": 0.125, "test": 0.125, CROSS_SPLIT: 0.15}
#: ``dfdetect data crop``'s default train / val / test fractions for a dataset without
#: splits (``--split-ratios``): the experiments' 80/10/10 (:func:`split_rows`).
CROP_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
#: The random-stream tag of :func:`assign_groups` (independent of the benchmark's).
_CROP_SPLIT_TAG = 11
#: The benchmark's random-stream tag for splits (``dfdetect.synthetic.build.TAG["split"]``):
#: the permutation must stay the one every committed benchmark store was built with.
_BENCHMARK_SPLIT_TAG = 5


def hash_bucket(key: str, seed: int, salt: str = "") -> float:
    """A stable number in [0, 1) for ``key``: the same for every run and machine.

    Args:
        key: the group (identity or ``source/video``).
        seed: the run's seed.
        salt: a prefix that makes one caller's buckets independent of another's (P5
            uses ``"p5:"`` so its pool is not the experiments' test split).
    """
    digest = hashlib.sha256(f"{salt}{seed}:{key}".encode()).hexdigest()
    return int(digest[:12], 16) / float(16 ** 12)


def group_key(row: Mapping) -> str:
    """What must not be split across train/val/test: the identity, else the video."""
    return str(row.get("identity") or f"{row.get('source', '')}/{row.get('video_id', '')}")


def assign_identities(identities: Iterable[str], seed: int,
                      holdout: bool = False) -> dict[str, str]:
    """Assign the benchmark's identities to splits (a pure function of the sorted ids
    and the seed).

    Args:
        identities: identity ids.
        seed: the benchmark seed.
        holdout: add the ``cross`` split.

    Returns:
        identity -> split. Every split gets at least one identity when there are enough.
    """
    ids = sorted(identities)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _BENCHMARK_SPLIT_TAG])
    order = rng.permutation(len(ids))
    fractions = SPLIT_FRACTIONS_HOLDOUT if holdout else SPLIT_FRACTIONS
    names = list(fractions)
    n = len(ids)
    counts = [int(math.floor(fractions[s] * n)) for s in names]
    if n >= len(names):
        for i in range(len(names)):
            counts[i] = max(1, counts[i])
    while sum(counts) < n:  # leftovers to train
        counts[0] += 1
    while sum(counts) > n:
        k = int(np.argmax(counts))
        counts[k] -= 1
    out, start = {}, 0
    for name, c in zip(names, counts):
        for j in order[start:start + c]:
            out[ids[j]] = name
        start += c
    return out


def split_rows(rows: Sequence[Mapping], seed: int = 0,
               fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, list]:
    """Rows by split. Rows the dataset left unsplit go 80/10/10 by identity/video hash.

    Every split name present in the manifest is kept (e.g. a benchmark's held-out
    method split), so callers can ask for it by name.

    Args:
        rows: manifest rows.
        seed: the hash seed for unsplit rows.
        fractions: train, val, test fractions for unsplit rows.

    Returns:
        split name -> rows (``train``, ``val`` and ``test`` always present).
    """
    out: dict[str, list] = {"train": [], "val": [], "test": []}
    for row in rows:
        split = row.get("split") or ""
        if not split:
            b = hash_bucket(group_key(row), seed)
            split = "train" if b < fractions[0] else "val" if b < fractions[0] + fractions[1] else "test"
        out.setdefault(split, []).append(row)
    return out


def train_heldout(rows: Sequence[Mapping], seed: int = 0) -> tuple[list, list]:
    """P2's split: ``train``, and ``val`` + ``test`` together as its held-out 20 %.

    The paper had no third split, so validation is on everything not trained on.

    Returns:
        ``(train rows, held-out rows)``.
    """
    splits = split_rows(rows, seed=seed)
    return splits["train"], splits["val"] + splits["test"]


def finetune_partition(rows: Iterable[Mapping], fraction: float, val_fraction: float,
                       seed: int, salt: str = "p5:") -> tuple[list, list, list]:
    """P5's three disjoint parts, by group: fine-tune train, fine-tune val, CV pool.

    Args:
        rows: manifest rows.
        fraction: share of groups used to fine-tune the backbone.
        val_fraction: share of the fine-tune part kept for its validation.
        seed: the hash seed.
        salt: see :func:`hash_bucket`.

    Returns:
        ``(fine-tune train, fine-tune val, cross-validation pool)``.
    """
    tune_train, tune_val, pool = [], [], []
    for row in rows:
        b = hash_bucket(group_key(row), seed, salt)
        if b >= fraction:
            pool.append(row)
        elif b < fraction * val_fraction:
            tune_val.append(row)
        else:
            tune_train.append(row)
    return tune_train, tune_val, pool


def split_by_video(rows: Sequence[Mapping], seed: int = 0,
                   fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                   strata: Sequence[str] = ("poi", "label")) -> dict[str, list[int]]:
    """80/10/10 split of segment rows by video, stratified by PoI and label (P4).

    All movements of a video land in one split. Within each stratum the videos are
    shuffled (seeded) and at least one goes to validation and one to test when the
    stratum has three or more videos, so even tiny data sets have every split.

    Returns:
        split name -> indices into ``rows``.
    """
    rng = np.random.default_rng(seed)
    videos: "OrderedDict[str, tuple]" = OrderedDict()
    for row in rows:
        videos.setdefault(str(row["video_id"]), tuple(str(row.get(s, "")) for s in strata))
    by_stratum: dict[tuple, list[str]] = {}
    for vid, key in videos.items():
        by_stratum.setdefault(key, []).append(vid)
    assign: dict[str, str] = {}
    for key in sorted(by_stratum):
        members = list(by_stratum[key])
        rng.shuffle(members)
        n = len(members)
        n_val = max(1, int(round(n * fractions[1]))) if n >= 3 else 0
        n_test = max(1, int(round(n * fractions[2]))) if n >= 3 else 0
        for i, vid in enumerate(members):
            assign[vid] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for i, row in enumerate(rows):
        out[assign[str(row["video_id"])]].append(i)
    return out


def split_groups(members: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """What must stay in one split: videos that share an identity, transitively.

    A FaceForensics++ fake ``000_003`` holds the faces of videos 000 and 003, so 000,
    003 and every fake made from either form one group; a video with no identity is a
    group of its own.

    Args:
        members: video key -> the identities it shows (empty: none known).

    Returns:
        video key -> its group's name: the smallest identity of the group, or the video
        key itself when it shows none.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]  # path halving
            x = parent[x]
        return x

    for ids in members.values():
        ids = sorted(ids)
        for other in ids[1:]:
            a, b = find(ids[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)  # the smallest name is the root
    return {video: find(min(ids)) if ids else video for video, ids in members.items()}


def _stratum_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """How many of ``n`` groups each split gets: the fractions by largest remainder, then
    one group each where there are enough (train first, then val: training needs both,
    then test), never more than ``n``."""
    exact = [f * n for f in fractions]
    counts = [int(math.floor(x)) for x in exact]
    for i in sorted(range(len(counts)), key=lambda i: counts[i] - exact[i])[:n - sum(counts)]:
        counts[i] += 1
    for i in range(len(counts)):  # every split with a share gets a group while they last
        if counts[i] == 0 and fractions[i] > 0:
            donor = max(range(len(counts)), key=lambda j: counts[j])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[i] = 1
    return counts


def assign_groups(groups: Mapping[str, Iterable[int]], seed: int = 0,
                  fractions: Sequence[float] = CROP_SPLIT_FRACTIONS) -> dict[str, str]:
    """Train / val / test for groups of videos, stratified by the classes they hold.

    The groups of one stratum (real only, fake only, both) are shuffled with ``seed``
    and cut by ``fractions``: a pure function of the group names, their labels and the
    seed, so a resumed crop assigns what it assigned before. Tiny datasets still get
    every class into train and, from two groups a class on, into val (then test from
    three): a detector cannot learn from one class, nor pick its epoch without val.

    Args:
        groups: group name -> the labels (0 real, 1 fake) of its videos.
        seed: the shuffle's seed.
        fractions: train, val, test; each >= 0, summing to 1.

    Returns:
        group name -> ``train``, ``val`` or ``test``.

    Raises:
        ValueError: fractions that are not three numbers >= 0 summing to 1 with train > 0.
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) < 0 or fractions[0] <= 0 \
            or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be three numbers >= 0 (train > 0) summing "
                         f"to 1, got {fractions}")
    strata: dict[tuple[int, ...], list[str]] = {}
    for name, labels in groups.items():
        strata.setdefault(tuple(sorted(set(int(v) for v in labels))), []).append(name)
    out: dict[str, str] = {}
    for key in sorted(strata):
        names = sorted(strata[key])
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _CROP_SPLIT_TAG, *key])
        order = [names[i] for i in rng.permutation(len(names))]
        start = 0
        for split, count in zip(SPLITS, _stratum_counts(len(order), fractions)):
            out.update((name, split) for name in order[start:start + count])
            start += count
    return out


def manifest_split(rows: Iterable[Mapping], split: str | None) -> list[dict]:
    """The rows of one split; ``None``: all rows.

    Args:
        rows: manifest rows.
        split: one of :data:`STORE_SPLITS`: ``train``, ``val``, ``test``, ``cross`` (the
            embedded benchmark's held-out-method test rows) or ``""`` (no split given).

    Raises:
        ValueError: an unknown split name (a typo would otherwise select nothing).
    """
    if split is None:
        return [dict(r) for r in rows]
    if split not in STORE_SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of "
                         f"{', '.join(repr(s) for s in STORE_SPLITS)}")
    return [dict(r) for r in rows if r.get("split", "") == split]
