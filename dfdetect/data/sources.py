"""Dataset adapters: a dataset folder on disk -> a sorted list of :class:`Sample` rows.

One adapter per layout (see SPEC.md, "Data that the papers used"):

- ``ffpp``: FaceForensics++ (``original_sequences/`` + ``manipulated_sequences/``,
  official ``train/val/test.json`` splits of [target, source] pairs).
- ``celebdf``: Celeb-DF v2 (``Celeb-real/``, ``YouTube-real/``, ``Celeb-synthesis/``,
  ``List_of_testing_videos.txt`` whose label **1 means real**).
- ``openforensics``: the face-crop release ``{Train,Validation,Test}/{Real,Fake}/``.
- ``dfdc``: ``dfdc_train_part_K/metadata.json`` (one part or a folder of parts).
- ``folder``: ``real/`` + ``fake/``, optionally under ``train/ val/ test/``, a flat
  folder of files named ``..._real_...`` / ``..._fake_...`` (:func:`parse_name`, the
  names ``dfdetect evaluate`` reads), or a flat folder / single file with an explicit
  label.

Adapters only list files; they never open a video or an image. Labels: 1 = fake, 0 = real.
Where a layout names who is in a video (FaceForensics++'s ``000_003``, Celeb-DF's
``id0_id16_0000``, DFDC's ``original``), the adapter records it in
:attr:`SampleList.identities`, so splits made later keep a person out of two splits.
A layout that does not match raises :class:`DataError` naming the folder or file and
what was expected. Files a dataset's own metadata promises but that are missing on disk
are skipped and counted in :attr:`SampleList.skipped`, not fatal.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Callable, Iterable

from dfdetect.data.sample import SPLITS, Sample
from dfdetect.errors import DataError

__all__ = [
    "ADAPTERS",
    "IMAGE_EXTENSIONS",
    "UNSUPPORTED_IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "SampleList",
    "discover",
    "discover_celebdf",
    "discover_dfdc",
    "discover_ffpp",
    "discover_folder",
    "discover_openforensics",
    "is_image",
    "is_video",
    "KNOWN_METHODS",
    "LABEL_WORDS",
    "SOURCE_METHODS",
    "method_token",
    "parse_name",
]

log = logging.getLogger(__name__)

#: Video containers OpenCV opens here (the one list: predict, evaluate and the dataset
#: adapters all read it).
VIDEO_EXTENSIONS = frozenset((".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg",
                              ".mpeg", ".wmv", ".flv", ".3gp", ".ts", ".mts"))
#: Image formats OpenCV decodes here.
IMAGE_EXTENSIONS = frozenset((".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".webp",
                              ".tif", ".tiff", ".gif", ".avif", ".ppm", ".pgm", ".pbm",
                              ".pnm"))
#: Image formats a user may well hand us but OpenCV cannot read: reported, not ignored.
UNSUPPORTED_IMAGE_EXTENSIONS = frozenset((".heic", ".heif", ".svg", ".psd", ".jxl", ".dng",
                                          ".cr2", ".cr3", ".nef", ".arw", ".raw", ".ico",
                                          ".eps", ".pdf", ".xcf"))

FFPP_COMPRESSIONS = ("raw", "c23", "c40")
CELEBDF_REAL_FOLDERS = ("Celeb-real", "YouTube-real")
CELEBDF_FAKE_FOLDER = "Celeb-synthesis"
CELEBDF_TEST_LIST = "List_of_testing_videos.txt"

# Folder names some releases use for a split, lower-cased -> our split name.
_SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test",
}


class SampleList(list):
    """A list of :class:`Sample` that also reports what was skipped.

    Attributes:
        skipped: reason -> count of entries left out (e.g. ``{"missing": 3}`` when a
            dataset's metadata lists files that are not on disk).
        skipped_paths: the paths left out, for a report.
        notes: what the adapter did that the user should be told (e.g. splits left
            empty for want of split files), one line each.
        identities: sample path -> the people (``<source>/<id>``) its video shows, where
            the layout names them; a path not in it shows no one known (its video is
            its own group, :func:`dfdetect.data.splits.split_groups`).
    """

    def __init__(self, samples: Iterable[Sample] = ()):
        super().__init__(samples)
        self.skipped: dict[str, int] = {}
        self.skipped_paths: list[str] = []
        self.notes: list[str] = []
        self.identities: dict[str, tuple[str, ...]] = {}

    def skip(self, reason: str, path: str | os.PathLike) -> None:
        """Counts one entry left out for ``reason``."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self.skipped_paths.append(os.fspath(path))

    @property
    def n_skipped(self) -> int:
        """Total number of entries left out."""
        return sum(self.skipped.values())


# --------------------------------------------------------------------------- helpers

def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a video extension (case-insensitive; the file is not opened)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_image(path: str | os.PathLike) -> bool:
    """Whether ``path`` has an image extension (case-insensitive; the file is not opened)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _is_media(path: Path) -> bool:
    return is_video(path) or is_image(path)


def _root(root: str | os.PathLike) -> Path:
    # Absolute paths keep a manifest valid whatever the working directory later is.
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
    if not path.exists():
        raise DataError("does not exist", path)
    return path


def _child_dir(parent: Path, name: str) -> Path | None:
    """``parent/name`` as a directory, matching the name case-insensitively."""
    exact = parent / name
    if exact.is_dir():
        return exact
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return None
    for entry in entries:
        if entry.name.lower() == name.lower() and entry.is_dir():
            return entry
    return None


def _files(folder: Path, keep: Callable[[Path], bool]) -> list[Path]:
    """Non-hidden files directly in ``folder`` accepted by ``keep``, sorted by name."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as err:
        raise DataError(f"cannot list folder: {err.strerror or err}", folder) from None
    return [p for p in entries if not p.name.startswith(".") and p.is_file() and keep(p)]


def _finish(samples: SampleList, root: Path, expected: str) -> SampleList:
    if not samples:
        raise DataError(f"no samples found: expected {expected}", root)
    samples.sort(key=lambda s: (s.path, s.video_id))
    if samples.skipped:
        log.warning("%s: skipped %d entries (%s)", root, samples.n_skipped,
                    ", ".join(f"{k}: {v}" for k, v in sorted(samples.skipped.items())))
    return samples


def _parse_label(label: str | int | None, where: Path) -> int | None:
    if label is None:
        return None
    text = str(label).strip().lower()
    if text in ("fake", "1"):
        return 1
    if text in ("real", "0"):
        return 0
    raise DataError(f"label must be 'real' or 'fake', got {label!r}", where)


def _read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise DataError(f"bad JSON at line {err.lineno} column {err.colno}: {err.msg}",
                        path) from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read: {err}", path) from None


# --------------------------------------------------------------------------- names

#: Manipulation names as FaceForensics++ spells them (matched case-insensitively).
KNOWN_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter",
                 "DeepFakeDetection")
#: Sources whose fakes come from one method that their file names do not spell out.
SOURCE_METHODS = {"celebdf": "Celeb-synthesis", "dfdc": "DFDC"}
LABEL_WORDS = {"real": 0, "fake": 1}
_CAPITALISED = re.compile(r"^[A-Z][A-Za-z0-9-]*$")


def method_token(token: str | None) -> str | None:
    """A manipulation name spelled by ``token``, canonical when known, else ``None``."""
    if not token:
        return None
    for known in KNOWN_METHODS:
        if token.lower() == known.lower():
            return known
    # Other tools' names are capitalised too (StyleGAN, DeepFaceLab); dataset ids
    # (DFDC's "acxnxvbsxk", Celeb-DF's "id0") are not.
    return token if _CAPITALISED.match(token) else None


def parse_name(path: str | os.PathLike) -> tuple[int | None, str | None, str | None]:
    """``(label, source, method)`` from a file name like ``ffpp_fake_Face2Face_481_469.mp4``.

    The label is the first ``_``-separated token equal to ``real`` or ``fake``
    (any case); the source the name's first token when the label token comes second
    (``<source>_<real|fake>_...``, lower-cased), else ``None``; the method ``real``
    for reals, else the token after ``fake`` when it names a method
    (:data:`KNOWN_METHODS` or capitalised), else the source's only method
    (:data:`SOURCE_METHODS`), else ``None``. Anything not found is ``None``.
    """
    stem = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    tokens = stem.split("_")
    for position, token in enumerate(tokens):
        label = LABEL_WORDS.get(token.lower())
        if label is None:
            continue
        source = tokens[position - 1].lower() if position == 1 and tokens[0] else None
        if label == 0:
            return 0, source, "real"
        after = tokens[position + 1] if position + 1 < len(tokens) else None
        method = method_token(after) or SOURCE_METHODS.get(source or "")
        return 1, source, method
    return None, None, None


# --------------------------------------------------------------------------- FF++

def _ffpp_split_files(root: Path, splits_dir: str | os.PathLike | None,
                      notes: list[str]) -> dict[str, Path]:
    """The official split files: all three, or none (with a note saying so).

    Raises:
        DataError: a splits folder (``splits_dir``, or ``<root>/splits/``) that lacks one
            of ``train.json``, ``val.json``, ``test.json``: some videos would silently
            get no split.
    """
    folder = Path(os.path.abspath(os.fspath(splits_dir))) if splits_dir is not None \
        else root / "splits"
    if splits_dir is None and not folder.is_dir():
        notes.append(f"no {folder} folder with FaceForensics++'s train.json, val.json and "
                     "test.json: the official splits are not used")
        return {}
    found = {s: folder / f"{s}.json" for s in SPLITS}
    for path in found.values():
        if not path.is_file():
            have = ", ".join(p.name for p in found.values() if p.is_file()) or "none"
            raise DataError(f"FaceForensics++ split file missing (the folder holds {have}): "
                            "expected train.json, val.json and test.json (lists of "
                            "[target, source] pairs); add it, or remove the folder to "
                            "crop without splits", path)
    return found


def _ffpp_pairs(split_files: dict[str, Path]) -> dict[str, dict]:
    """Split files -> {"ids": {NNN: split}, "pairs": {(a, b): split}}."""
    ids: dict[str, str] = {}
    pairs: dict[tuple[str, str], str] = {}
    origin: dict[str, Path] = {}
    for split, path in split_files.items():
        data = _read_json(path)
        if not isinstance(data, list):
            raise DataError("expected a JSON list of [target, source] pairs", path)
        for i, pair in enumerate(data):
            if (not isinstance(pair, list) or len(pair) != 2
                    or not all(isinstance(v, str) and v for v in pair)):
                raise DataError(f"entry {i} is {pair!r}: expected a pair of video ids "
                                'like ["071", "054"]', path)
            for vid in pair:
                if ids.setdefault(vid, split) != split:
                    raise DataError(f"video {vid} is in both {origin[vid].name} and "
                                    f"{path.name}", path)
                origin[vid] = path
            a, b = pair
            pairs[(a, b)] = pairs[(b, a)] = split
    return {"ids": ids, "pairs": pairs}


def _ffpp_fake_split(stem: str, split_info: dict) -> str:
    parts = stem.split("_")
    if len(parts) == 2:
        return split_info["pairs"].get((parts[0], parts[1]), "")
    return ""


def _ffpp_methods(methods: str | Iterable[str] | None) -> list[str] | None:
    if methods is None:
        return None
    if isinstance(methods, str):
        methods = methods.split(",")
    names = [m.strip() for m in methods if m and m.strip()]
    return names or None


def discover_ffpp(root: str | os.PathLike, compression: str = "c23",
                  methods: str | Iterable[str] | None = None,
                  splits_dir: str | os.PathLike | None = None) -> SampleList:
    """FaceForensics++: originals (label 0) and every manipulation method (label 1).

    Args:
        root: the folder holding ``original_sequences/`` and ``manipulated_sequences/``.
        compression: ``raw``, ``c23`` or ``c40`` (the folder level below the method).
        methods: manipulation folder names to keep (case-insensitive; a list or a
            comma-separated string); ``None`` keeps every one found. The DeepFakeDetection
            reals (``original_sequences/actors/``) are kept only when ``methods`` is
            ``None`` or names a DeepFakeDetection folder.
        splits_dir: folder with the official ``train.json``, ``val.json``, ``test.json``;
            by default ``<root>/splits/`` is used if present, else every split is ``""``
            (and the list's ``notes`` say so). A folder missing one of them is refused.

    Returns:
        Samples with video_id ``NNN`` for YouTube reals, ``actors__<stem>`` for actor
        reals and ``<Method>__TTT_SSS`` for fakes; method is the folder name.

    Raises:
        DataError: not an FF++ root, an unknown method, a bad split file, no videos.
    """
    root = _root(root)
    expected = f"original_sequences/youtube/{compression}/videos/"
    if not root.is_dir():
        raise DataError(f"not a FaceForensics++ root: expected a folder with {expected}", root)
    samples = SampleList()
    split_info = _ffpp_pairs(_ffpp_split_files(root, splits_dir, samples.notes))
    wanted = _ffpp_methods(methods)

    originals = _child_dir(root, "original_sequences")
    manipulated = _child_dir(root, "manipulated_sequences")
    youtube = _ffpp_videos_dir(originals, "youtube", compression)
    method_dirs: dict[str, Path] = {}
    if manipulated is not None:
        for entry in sorted(manipulated.iterdir()):
            videos = _ffpp_videos_dir(manipulated, entry.name, compression) \
                if entry.is_dir() else None
            if videos is not None:
                method_dirs[entry.name] = videos
    if youtube is None and not method_dirs:
        found = _ffpp_found_compressions(root)
        hint = f" (found compressions: {', '.join(found)})" if found else ""
        raise DataError(f"not a FaceForensics++ root: expected {expected}{hint}", root)

    if wanted is not None:
        by_lower = {name.lower(): name for name in method_dirs}
        missing = [m for m in wanted if m.lower() not in by_lower]
        if missing:
            raise DataError(
                f"method {missing[0]} not found: expected manipulated_sequences/"
                f"{missing[0]}/{compression}/videos/ (found: {', '.join(method_dirs) or 'none'})",
                root)
        keep = {by_lower[m.lower()] for m in wanted}
        method_dirs = {k: v for k, v in method_dirs.items() if k in keep}

    if youtube is not None:
        for path in _files(youtube, is_video):
            samples.append(Sample(str(path), 0, path.stem,
                                  split_info["ids"].get(path.stem, ""), "ffpp", "real"))
            samples.identities[str(path)] = (f"ffpp/{path.stem}",)
    with_dfd = wanted is None or any(m.lower().startswith("deepfakedetection") for m in wanted)
    actors = _ffpp_videos_dir(originals, "actors", compression)
    if actors is not None and with_dfd:
        for path in _files(actors, is_video):
            # DeepFakeDetection is outside the official splits.
            samples.append(Sample(str(path), 0, f"actors__{path.stem}", "", "ffpp", "real"))
            samples.identities[str(path)] = _ffpp_identities(path.stem)
    for method, videos in method_dirs.items():
        for path in _files(videos, is_video):
            samples.append(Sample(str(path), 1, f"{method}__{path.stem}",
                                  _ffpp_fake_split(path.stem, split_info), "ffpp", method))
            samples.identities[str(path)] = _ffpp_identities(path.stem)
    return _finish(samples, root, f"videos (*.mp4) in {expected} or "
                                  f"manipulated_sequences/<method>/{compression}/videos/")


def _ffpp_identities(stem: str) -> tuple[str, ...]:
    """Who a FaceForensics++ video shows: ``000_003`` (target 000, source 003) -> both
    YouTube ids; DeepFakeDetection's ``01__scene`` and ``01_02__scene__ID`` -> actors."""
    head, actors, _ = stem.partition("__")
    prefix = "ffpp/actor" if actors else "ffpp/"
    return tuple(f"{prefix}{part}" for part in head.split("_") if part)


def _ffpp_videos_dir(parent: Path | None, name: str, compression: str) -> Path | None:
    if parent is None:
        return None
    folder = _child_dir(parent, name)
    if folder is not None:
        folder = _child_dir(folder, compression)
    if folder is not None:
        folder = _child_dir(folder, "videos")
    return folder


def _ffpp_found_compressions(root: Path) -> list[str]:
    found = set()
    for comp in FFPP_COMPRESSIONS:
        if list(root.glob(f"*_sequences/*/{comp}/videos")):
            found.add(comp)
    return sorted(found)


# --------------------------------------------------------------------------- Celeb-DF

def _celebdf_test_list(list_path: Path) -> dict[tuple[str, str], int]:
    """Parses the test list -> {(folder lower-cased, file name): our label}.

    Each line's label is checked against the folder it names (fake only in
    ``Celeb-synthesis/``), which catches a list read with the wrong convention.
    """
    entries: dict[tuple[str, str], int] = {}
    try:
        lines = list_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read: {err}", list_path) from None
    fake_key = CELEBDF_FAKE_FOLDER.lower()
    known = {f.lower() for f in (*CELEBDF_REAL_FOLDERS, CELEBDF_FAKE_FOLDER)}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{list_path}:{lineno}"
        fields = line.split()
        if len(fields) != 2 or fields[0] not in ("0", "1"):
            raise DataError(f"expected '<0|1> <folder>/<file>.mp4', got {line.strip()!r}",
                            where)
        theirs, entry = int(fields[0]), fields[1].replace("\\", "/")
        if entry.count("/") != 1:
            raise DataError(f"expected '<folder>/<file>.mp4', got {entry!r}", where)
        folder, name = entry.split("/")
        if folder.lower() not in known:
            raise DataError(f"unknown folder {folder!r}: expected one of "
                            f"{', '.join((*CELEBDF_REAL_FOLDERS, CELEBDF_FAKE_FOLDER))}",
                            where)
        # Celeb-DF writes 1 for real; ours is 1 for fake.
        ours = 1 - theirs
        folder_label = 1 if folder.lower() == fake_key else 0
        if ours != folder_label:
            raise DataError(
                f"label {theirs} ({'real' if theirs == 1 else 'fake'} in Celeb-DF's convention, "
                f"where 1 = real) contradicts {entry}, which is in a "
                f"{'fake' if folder_label else 'real'} folder", where)
        entries[(folder.lower(), name)] = ours
    if not entries:
        raise DataError("empty test list: expected lines '<0|1> <folder>/<file>.mp4'",
                        list_path)
    return entries


def discover_celebdf(root: str | os.PathLike) -> SampleList:
    """Celeb-DF (v2): ``Celeb-real/`` + ``YouTube-real/`` (label 0), ``Celeb-synthesis/`` (1).

    Videos listed in ``List_of_testing_videos.txt`` are split ``test``, the others
    ``train``; without that file every split is ``""``. The list's labels (1 = real) are
    flipped to ours and must agree with the folder each video is in. Listed videos
    absent from disk are skipped and counted (``skipped["missing"]``).

    Args:
        root: the Celeb-DF folder.

    Returns:
        Samples with video_id ``<folder>__<stem>``; method ``celeb-synthesis`` for fakes.

    Raises:
        DataError: not a Celeb-DF root, a malformed or contradictory test-list line.
    """
    root = _root(root)
    expected = "Celeb-real/, YouTube-real/ and Celeb-synthesis/"
    if not root.is_dir():
        raise DataError(f"not a Celeb-DF root: expected a folder with {expected}", root)
    folders = {name: _child_dir(root, name)
               for name in (*CELEBDF_REAL_FOLDERS, CELEBDF_FAKE_FOLDER)}
    folders = {name: path for name, path in folders.items() if path is not None}
    if not folders:
        raise DataError(f"not a Celeb-DF root: expected {expected}", root)

    list_path = root / CELEBDF_TEST_LIST
    tests = _celebdf_test_list(list_path) if list_path.is_file() else None
    if tests is None:
        log.warning("%s: no %s; Celeb-DF splits left empty", root, CELEBDF_TEST_LIST)

    samples = SampleList()
    on_disk: set[tuple[str, str]] = set()
    for name, folder in folders.items():
        fake = name == CELEBDF_FAKE_FOLDER
        for path in _files(folder, is_video):
            key = (name.lower(), path.name)
            on_disk.add(key)
            split = "" if tests is None else ("test" if key in tests else "train")
            samples.append(Sample(str(path), int(fake), f"{name}__{path.stem}", split,
                                  "celebdf", "celeb-synthesis" if fake else "real"))
            # Celeb-real id0_0000 shows id0; Celeb-synthesis id0_id16_0000 shows id0 and
            # id16; YouTube-real names no one.
            people = tuple(f"celebdf/{t}" for t in path.stem.split("_")
                           if re.fullmatch(r"id\d+", t))
            if people:
                samples.identities[str(path)] = people
    for key in sorted(set(tests or ()) - on_disk):
        samples.skip("missing", root / key[0] / key[1])
    return _finish(samples, root, f"videos (*.mp4) in {expected}")


# --------------------------------------------------------------------------- OpenForensics

def discover_openforensics(root: str | os.PathLike) -> SampleList:
    """OpenForensics face-crop release: ``{Train,Validation,Test}/{Real,Fake}/*.jpg|png``.

    Folder names match case-insensitively; ``Validation`` maps to split ``val``. Each
    image is its own sample (there are no videos).

    Args:
        root: the folder holding ``Train/``, ``Validation/`` and ``Test/``.

    Returns:
        Samples with video_id ``<split folder>__<class folder>__<stem>`` (lower-cased
        folder names, since the release reuses stems across splits); method
        ``openforensics`` for fakes.

    Raises:
        DataError: no split folder, a split folder without ``Real/`` or ``Fake/``, no images.
    """
    root = _root(root)
    expected = "Train/, Validation/ and Test/, each with Real/ and Fake/ images"
    if not root.is_dir():
        raise DataError(f"not an OpenForensics root: expected a folder with {expected}", root)
    split_dirs = [(entry, _SPLIT_ALIASES[entry.name.lower()])
                  for entry in sorted(root.iterdir())
                  if entry.is_dir() and entry.name.lower() in _SPLIT_ALIASES]
    if not split_dirs:
        raise DataError(f"not an OpenForensics root: expected {expected}", root)
    samples = SampleList()
    for split_dir, split in split_dirs:
        classes = [(c, lab) for c, lab in ((_child_dir(split_dir, "Real"), 0),
                                           (_child_dir(split_dir, "Fake"), 1)) if c]
        if not classes:
            raise DataError("expected Real/ and Fake/ subfolders", split_dir)
        for folder, label in classes:
            for path in _files(folder, is_image):
                vid = f"{split_dir.name.lower()}__{folder.name.lower()}__{path.stem}"
                samples.append(Sample(str(path), label, vid, split, "openforensics",
                                      "openforensics" if label else "real"))
    return _finish(samples, root, f"images (*.jpg, *.png) in {expected}")


# --------------------------------------------------------------------------- DFDC

def _dfdc_parts(root: Path) -> list[Path]:
    if (root / "metadata.json").is_file():
        return [root]
    return [entry for entry in sorted(root.iterdir())
            if entry.is_dir() and (entry / "metadata.json").is_file()]


def _inside(folder: Path, name: str, listed_in: Path) -> Path:
    """``folder / name``, refused when ``name`` leaves ``folder``.

    A metadata file is data, not code: an entry such as ``../../home/me/x.mp4`` or an
    absolute path must not pull a file from outside the dataset into a store. The check
    is on the normalised path (not on symlinks resolved), so a dataset whose videos are
    symlinks into another disk still works.

    Raises:
        DataError: an absolute name, or one that climbs out of ``folder``.
    """
    if not isinstance(name, str) or not name or os.path.isabs(name) or "\0" in name:
        raise DataError(f"entry {name!r} is not a file name inside the dataset folder",
                        listed_in)
    full = os.path.normpath(os.path.join(folder, name))
    base = os.path.normpath(folder)
    if os.path.commonpath([full, base]) != base:
        raise DataError(f"entry {name!r} points outside the dataset folder {folder}; "
                        "refusing to read it (fix metadata.json)", listed_in)
    return Path(full)


def discover_dfdc(root: str | os.PathLike) -> SampleList:
    """DFDC training parts: ``<part>/metadata.json`` mapping file -> label/split/original.

    Args:
        root: one part folder (holding ``metadata.json``) or a folder of parts.

    Returns:
        Samples with video_id ``<part>__<stem>``, method ``dfdc`` for fakes; split
        from the metadata (``train``/``val``/``test``, ``validation`` -> ``val``, anything
        else ``""``). Entries whose file is missing are skipped and counted
        (``skipped["missing"]``).

    Raises:
        DataError: no ``metadata.json``, bad JSON, an entry without a REAL/FAKE label,
            an entry whose path leaves the dataset folder, or no video on disk at all.
    """
    root = _root(root)
    expected = "metadata.json or dfdc_train_part_*/metadata.json"
    if not root.is_dir():
        raise DataError(f"not a DFDC root: expected a folder with {expected}", root)
    parts = _dfdc_parts(root)
    if not parts:
        raise DataError(f"not a DFDC root: expected {expected}", root)
    samples = SampleList()
    for part in parts:
        meta_path = part / "metadata.json"
        meta = _read_json(meta_path)
        if not isinstance(meta, dict):
            raise DataError('expected a JSON object {"<file>.mp4": {"label": ...}}', meta_path)
        for name in sorted(meta):
            entry = meta[name]
            label = entry.get("label") if isinstance(entry, dict) else None
            if not isinstance(label, str) or label.upper() not in ("REAL", "FAKE"):
                raise DataError(f"entry {name!r}: expected label REAL or FAKE, got {label!r}",
                                meta_path)
            path = _inside(part, name, meta_path)
            if not path.is_file():
                samples.skip("missing", path)
                continue
            fake = label.upper() == "FAKE"
            split = _SPLIT_ALIASES.get(str(entry.get("split", "")).strip().lower(), "")
            samples.append(Sample(str(path), int(fake), f"{part.name}__{Path(name).stem}",
                                  split, "dfdc", "dfdc" if fake else "real"))
            # A fake shows the person of the real video it was made from.
            original = entry.get("original") if fake else name
            if isinstance(original, str) and original:
                samples.identities[str(path)] = (f"dfdc/{Path(original).stem}",)
    return _finish(samples, root, f"videos listed in {expected}")


# --------------------------------------------------------------------------- folder

_FOLDER_EXPECTED = ("real/ and fake/ folders (optionally under train/ val/ test/) of "
                    "images or videos")


def discover_folder(root: str | os.PathLike, label: str | int | None = None,
                    method: str = "fake") -> SampleList:
    """Any folder of images or videos.

    Accepted layouts, tried in this order:

    1. a single file, with ``label``;
    2. ``real/`` and/or ``fake/`` (label from the folder), and/or ``train/``, ``val/``
       (or ``validation/``), ``test/`` each holding ``real/`` and/or ``fake/`` (split
       from the folder; ``""`` for the top-level ``real/`` ``fake/``);
    3. a flat folder of media files, with ``label``;
    4. a flat folder of media files named ``..._real_...`` / ``..._fake_...``
       (:func:`parse_name`: ``ffpp_fake_Face2Face_000_003.mp4``), without ``label``:
       each file's label from its name (a fake's method too, when the name gives one);
       files whose names give none are left out, and counted in a note.

    Folder names match case-insensitively; only files directly inside are read (no
    recursion); hidden files and other extensions are ignored.

    Args:
        root: the file or folder.
        label: ``"real"`` or ``"fake"`` for a single file or a flat folder; must be
            ``None`` for the ``real/`` + ``fake/`` layouts.
        method: method name given to fakes (default ``"fake"``).

    Returns:
        Samples with video_id = the file's stem.

    Raises:
        DataError: an unsupported file, a flat folder without ``label``, a label given
            to a labelled layout, two files with the same stem, no media found.
    """
    root = _root(root)
    value = _parse_label(label, root)
    samples = SampleList()
    if root.is_file():
        if value is None:
            raise DataError("a single file needs a label: pass --label real or --label fake",
                            root)
        if not _is_media(root):
            raise DataError("not an image or a video: expected one of "
                            + " ".join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)), root)
        samples.append(_folder_sample(root, value, "", method))
        return _finish(samples, root, "an image or a video")

    labelled = _folder_labelled_dirs(root)
    if labelled:
        if value is not None:
            raise DataError("has real/ or fake/ folders that give labels; --label applies only "
                            "to a flat folder or a single file", root)
        for folder, lab, split in labelled:
            for path in _files(folder, _is_media):
                samples.append(_folder_sample(path, lab, split, method))
    elif value is None:
        files = _files(root, _is_media)
        named = [(path, parse_name(path)) for path in files]
        unnamed = [path for path, (lab, _, _) in named if lab is None]
        if len(unnamed) == len(files):
            raise DataError("a flat folder has no labels: pass --label real or --label fake, "
                            f"use {_FOLDER_EXPECTED}, or name the files <name>_real_... / "
                            "<name>_fake_...", root)
        for path, (lab, _, name_method) in named:
            if lab is not None:
                samples.append(_folder_sample(path, lab, "", name_method or method))
        if unnamed:
            samples.notes.append(f"{len(unnamed)} files without _real_ or _fake_ in their "
                                 f"name were left out (e.g. {unnamed[0]}): rename them, or "
                                 "crop them on their own with --label")
    else:
        for path in _files(root, _is_media):
            samples.append(_folder_sample(path, value, "", method))
    _check_unique_stems(samples)
    return _finish(samples, root, _FOLDER_EXPECTED if labelled else
                   "image or video files (" + " ".join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))
                   + ")")


def _folder_labelled_dirs(root: Path) -> list[tuple[Path, int, str]]:
    found = []
    bases = [(root, "")]
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and entry.name.lower() in _SPLIT_ALIASES:
            bases.append((entry, _SPLIT_ALIASES[entry.name.lower()]))
    for base, split in bases:
        for name, lab in (("real", 0), ("fake", 1)):
            folder = _child_dir(base, name)
            if folder is not None:
                found.append((folder, lab, split))
    return found


def _folder_sample(path: Path, label: int, split: str, method: str) -> Sample:
    return Sample(str(path), label, path.stem, split, "folder", method if label else "real")


def _check_unique_stems(samples: list[Sample]) -> None:
    seen: dict[str, str] = {}
    for sample in samples:
        other = seen.setdefault(sample.video_id, sample.path)
        if other != sample.path:
            first, second = sorted((other, sample.path))
            raise DataError(f"same file stem {sample.video_id!r} as {second}; video ids must "
                            "be unique, rename one", first)


# --------------------------------------------------------------------------- dispatch

ADAPTERS: dict[str, Callable[..., SampleList]] = {
    "ffpp": discover_ffpp,
    "celebdf": discover_celebdf,
    "openforensics": discover_openforensics,
    "dfdc": discover_dfdc,
    "folder": discover_folder,
}

_SAFE_SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def discover(root: str | os.PathLike, layout: str, label: str | int | None = None,
             source: str | None = None, **options) -> SampleList:
    """Lists a dataset's samples with the adapter for ``layout``.

    Args:
        root: dataset folder (or, for ``folder``, a single file).
        layout: one of :data:`ADAPTERS` (``ffpp``, ``celebdf``, ``openforensics``,
            ``dfdc``, ``folder``).
        label: ``"real"``/``"fake"``, only for the ``folder`` layout's flat folder or file.
        source: overrides the samples' ``source`` name (e.g. to keep two ``folder``
            datasets apart in one store); must be safe as a directory name.
        **options: adapter keyword arguments (``compression``, ``methods``,
            ``splits_dir`` for ``ffpp``; ``method`` for ``folder``).

    Returns:
        A :class:`SampleList` sorted by path (deterministic), with ``skipped`` counts.

    Raises:
        DataError: unknown layout, a label for a layout that has its own, or the
            adapter's errors.
    """
    if layout not in ADAPTERS:
        raise DataError(f"unknown layout {layout!r}: expected one of {', '.join(ADAPTERS)}",
                        root)
    if layout == "folder":
        options["label"] = label
    elif label is not None:
        raise DataError(f"--label applies only to the folder layout; {layout} gives its "
                        "own labels", root)
    samples = ADAPTERS[layout](root, **options)
    if source is not None:
        if not _SAFE_SOURCE.match(source):
            raise DataError(f"source name {source!r} must be letters, digits, '.', '_' or '-'",
                            root)
        renamed = SampleList(Sample(s.path, s.label, s.video_id, s.split, source, s.method)
                             for s in samples)
        renamed.skipped, renamed.skipped_paths = samples.skipped, samples.skipped_paths
        renamed.notes, renamed.identities = samples.notes, samples.identities
        samples = renamed
    return samples
