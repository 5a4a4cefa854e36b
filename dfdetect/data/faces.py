"""Detect faces (face_recognition), keep the largest, crop a square 1.3x its side.

Boxes are :class:`Box` ``(top, right, bottom, left)`` in pixels, the order
face_recognition uses, with ``bottom``/``right`` exclusive so ``image[top:bottom,
left:right]`` is the box. ``Box`` is a NamedTuple, so it can be passed straight to
``face_recognition.face_landmarks(face_locations=[box])``.

Landmarks: :func:`face_landmarks` fits dlib's 68 points in a box, :func:`find_landmarks`
finds them in a photo or a tight crop, and :func:`landmark_problem` says why a fit is not
a face (far from :data:`LANDMARK_TEMPLATE`, or outside the image).

A frame without a face is reported as ``[]`` / ``None``, never as an exception.
face_recognition (and its dlib models, 1-4 s to load) is imported on first use, so the
box arithmetic and :func:`load_image` stay cheap to import; HOG detection calls the
dlib detector face_recognition itself uses, so it never loads those models.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import NamedTuple, Sequence

import cv2
import numpy as np

from dfdetect.data import face_api
from dfdetect.data.video import resize_max_side
from dfdetect.errors import DataError, DfdetectError
from dfdetect.io import env_number, quiet_stderr

__all__ = ["Box", "LANDMARK_GROUPS", "LANDMARK_TEMPLATE", "TIGHT_CROP_MAX_SIDE", "crop_face",
           "detect_faces", "detect_small_faces", "face_landmarks", "find_landmarks",
           "inset_box", "landmark_problem", "largest_face", "load_image", "merge_boxes",
           "pyramid_levels_to_skip", "square_box"]

DETECTORS = ("hog", "cnn")

# face_recognition's named groups, in the order they cover iBUG's 68 points.
LANDMARK_GROUPS = ("chin", "left_eyebrow", "right_eyebrow", "nose_bridge", "nose_tip",
                   "left_eye", "right_eye", "top_lip", "bottom_lip")


class Box(NamedTuple):
    """A face box in pixels, face_recognition's order; ``bottom``/``right`` exclusive."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(self.width, 0) * max(self.height, 0)


def _face_recognition():
    """face_recognition when installed, else dfdetect's own copy of the two calls used.

    ``pip install dfdetect`` does not pull face_recognition (its ``dlib`` requirement
    compiles for ~10 minutes); :mod:`dfdetect.data.face_api` gives the same answers from
    the prebuilt ``dlib-bin`` and ``face-recognition-models``.
    """
    if importlib.util.find_spec("face_recognition") is None:
        return face_api
    try:
        import face_recognition  # deferred: it loads dlib's models (1-4 s)
    except (ImportError, SystemExit) as err:
        # face_recognition calls quit() when face_recognition_models fails to import
        # (setuptools >= 82 dropped the pkg_resources it needs).
        raise DfdetectError("face_recognition cannot load its models (install "
                            "face_recognition_models and setuptools<81): "
                            f"{type(err).__name__}") from None
    return face_recognition


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """A C-contiguous HxWx3 uint8 copy-or-view of ``image`` (gray and RGBA accepted)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise DataError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise DataError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    return np.ascontiguousarray(image)


#: Faces are searched on frames downscaled to this longest side (boxes mapped back to
#: the full frame): the one value the store, the benchmark and predict all use.
DETECT_MAX_SIDE = 640
#: FaceForensics++'s crop: a square of 1.3x the face's larger side, centred.
CROP_SCALE = 1.3
#: The smallest face crop side in pixels: stores refuse a smaller ``--size``, and with
#: detection off a frame whose centre square is smaller holds no face (a 1x1 image).
MIN_CROP_SIDE = 8


def detect_faces(rgb: np.ndarray, model: str = "hog", max_side: int | None = DETECT_MAX_SIDE,
                 upsample: int = 1, min_face: float | None = None,
                 small_faces: bool = True) -> list[Box]:
    """Finds faces with face_recognition on a downscaled copy, boxes in full resolution.

    Args:
        rgb: HxWx3 uint8 RGB image (gray / RGBA accepted).
        model: ``"hog"`` (CPU, ~0.1 s per 640 px frame) or ``"cnn"`` (dlib MMOD, ~60x
            slower on CPU).
        max_side: detection runs on a copy whose longest side is at most this
            (``None``: full resolution). Boxes are mapped back to ``rgb``'s pixels.
        upsample: face_recognition's ``number_of_times_to_upsample`` (finds smaller faces,
            costs ~4x per step).
        min_face: ``hog`` only: do not search for faces smaller than about this many
            pixels (of the detection copy). dlib's finest pyramid levels, which only
            hold such faces, are skipped (:func:`pyramid_levels_to_skip`); the levels
            that are scanned are bit-identical to dlib's own, so the boxes are the full
            scan's (within a pixel of rounding) for every face at least this large.
            A smaller face is still found: down to ~2/3 of ``min_face`` by the coarser
            window, with a looser box; below that by the full scan, which runs whenever
            the reduced one finds nothing. ``None``: the full scan.
        small_faces: when the downscaled copy shows no face and the image is larger
            than ``max_side``, search again at higher resolution
            (:func:`detect_small_faces`): a 1080p frame with an 80-px face, or a large
            photo with a small one. Costs nothing when the first pass finds a face.

    Returns:
        Boxes sorted largest first; ``[]`` when there is no face.
    """
    if model not in DETECTORS:
        raise DataError(f"unknown face detector {model!r}: expected one of "
                        f"{', '.join(DETECTORS)}")
    rgb = _as_rgb(rgb)
    boxes = _detect_at(rgb, max_side, model, upsample, pyramid_levels_to_skip(min_face, upsample))
    if boxes or not small_faces or max_side is None or max(rgb.shape[:2]) <= max_side:
        return boxes
    return detect_small_faces(rgb, model=model, upsample=upsample, first_side=max_side)


def _detect_at(rgb: np.ndarray, max_side: int | None, model: str, upsample: int,
               skip: int = 0) -> list[Box]:
    """One detector pass on ``rgb`` downscaled to ``max_side``; boxes in ``rgb``'s pixels."""
    height, width = rgb.shape[:2]
    small = np.ascontiguousarray(resize_max_side(rgb, max_side))
    sy, sx = height / small.shape[0], width / small.shape[1]
    if model == "hog":
        found = _hog_locations(small, upsample, skip)
    else:
        found = _face_recognition().face_locations(
            small, number_of_times_to_upsample=upsample, model=model)
    boxes = []
    for top, right, bottom, left in found:
        box = Box(top=max(0, int(round(top * sy))), right=min(width, int(round(right * sx))),
                  bottom=min(height, int(round(bottom * sy))), left=max(0, int(round(left * sx))))
        if box.area > 0:
            boxes.append(box)
    return sorted(boxes, key=lambda b: b.area, reverse=True)


# The small-face fallback. dlib's HOG window is 80 px, so with one upsampling step the
# smallest face it finds is ~40 px of the image it scans: at 640 px that is a 120-px
# face in a 1080p frame and a 500-px face in an 8000-px photo. The second pass sees
# 2.5x more detail (a 1080p face down to ~48 px); very large images are then scanned
# at twice that detail again, cut into tiles so no single detector call (and its HOG
# pyramid) grows with the image.
#: Longest side of the second pass.
FALLBACK_SIDE = 1600
#: Tiles are scanned at this side (pixels of the scaled image).
TILE_SIDE = 1024
#: Tiles overlap by this much (scaled pixels): every face up to this size lies whole in
#: some tile; larger faces are already big enough for the second pass.
TILE_OVERLAP = 256
#: The tile pass runs only when it sees at least this much more detail than the second.
TILE_MIN_GAIN = 1.5


def detect_small_faces(rgb: np.ndarray, model: str = "hog", upsample: int = 1,
                       first_side: int = DETECT_MAX_SIDE, fallback_side: int = FALLBACK_SIDE,
                       tile_side: int = TILE_SIDE, tile_overlap: int = TILE_OVERLAP) -> list[Box]:
    """Searches an image at higher resolution than a first, downscaled pass did.

    1. The whole image at longest side ``max(fallback_side, 2 * first_side)`` (never
       upscaled).
    2. If that finds nothing and the image is at least :data:`TILE_MIN_GAIN` times
       larger: overlapping tiles of the image scaled to twice the second pass's
       resolution (full resolution at most); boxes are mapped back to full-frame
       pixels and duplicates from overlapping tiles merged (:func:`merge_boxes`).

    Cost when there is no face at all (HOG, 2-core CPU shared with a training job):
    0.8 s a 1080p frame (second pass only), 3 s a 4K frame, 5 s an 8000x8000 photo;
    the first pass alone takes ~0.1 s.

    Args:
        rgb: HxWx3 uint8 RGB image.
        model: ``"hog"`` or ``"cnn"``.
        upsample: the detector's upsampling steps, as in :func:`detect_faces`.
        first_side: the longest side the first pass used.
        fallback_side: longest side of the second pass.
        tile_side: tile side, in pixels of the scaled image.
        tile_overlap: overlap of neighbouring tiles, same pixels.

    Returns:
        Boxes in ``rgb``'s pixels, largest first; ``[]`` when there is still no face.
    """
    rgb = _as_rgb(rgb)
    height, width = rgb.shape[:2]
    longest = max(height, width)
    second = min(longest, max(int(fallback_side), 2 * int(first_side)))
    boxes = _detect_at(rgb, second, model, upsample)
    if boxes or longest < TILE_MIN_GAIN * second:
        return boxes
    scale = min(1.0, 2 * second / longest)
    tile = max(1, int(round(tile_side / scale)))  # in full-frame pixels
    overlap = int(round(tile_overlap / scale))
    found = []
    for top in _tile_starts(height, tile, overlap):
        for left in _tile_starts(width, tile, overlap):
            piece = rgb[top:top + tile, left:left + tile]
            for box in _detect_at(piece, tile_side, model, upsample):
                found.append(Box(box.top + top, box.right + left, box.bottom + top,
                                 box.left + left))
    return merge_boxes(found)


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` px overlapping by ``overlap``, covering ``length``.

    The last tile ends exactly at ``length`` (it may overlap its neighbour more).
    """
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def merge_boxes(boxes: Sequence[Sequence[int]], overlap: float = 0.5) -> list[Box]:
    """Drops boxes that mostly lie inside a larger one (the same face seen by two tiles).

    Args:
        boxes: face boxes in one image's pixels.
        overlap: a box is dropped when this share of its own area lies inside a kept,
            larger box (a face cut by a tile's edge is found smaller, inside the whole one).

    Returns:
        The kept boxes, largest first.
    """
    kept: list[Box] = []
    for box in sorted((Box(*b) for b in boxes), key=lambda b: b.area, reverse=True):
        duplicate = False
        for other in kept:
            inter_h = min(box.bottom, other.bottom) - max(box.top, other.top)
            inter_w = min(box.right, other.right) - max(box.left, other.left)
            if inter_h > 0 and inter_w > 0 and inter_h * inter_w >= overlap * box.area:
                duplicate = True
                break
        if not duplicate:
            kept.append(box)
    return kept


# dlib's frontal face detector slides an 80 x 80 window over an image pyramid that
# shrinks by 5/6 per level, starting from the image upsampled 2x per ``upsample``: a
# face of side f pixels is found at the level where it is ~80 px, so the finest levels
# (largest images, most of the cost) only serve small faces.
HOG_WINDOW = 80
HOG_PYRAMID_RATE = 6


def pyramid_levels_to_skip(min_face: float | None, upsample: int = 1) -> int:
    """How many of the HOG detector's finest pyramid levels hold only faces < ``min_face``.

    Level ``k`` of the pyramid is the image scaled by ``2**upsample * (5/6)**k``; its
    80-px window is a face of ``80 / that scale`` pixels in the image. Levels are skipped
    while the next one still finds faces of ``min_face`` pixels.

    Args:
        min_face: smallest face side (pixels) that must still be found; ``None`` or 0:
            skip nothing.
        upsample: the detector's upsampling steps.

    Returns:
        The number of levels that can be skipped (0 when none).
    """
    if not min_face or min_face <= 0:
        return 0
    step = (HOG_PYRAMID_RATE - 1) / HOG_PYRAMID_RATE
    skip = 0
    while HOG_WINDOW / (2 ** upsample * step ** (skip + 1)) <= min_face:
        skip += 1
    return skip


@functools.lru_cache(maxsize=1)
def _hog_detector():
    # face_recognition's own HOG detector (its api.face_detector is this very call), made
    # without importing face_recognition, whose landmark and recognition models take
    # 1-4 s to load in every crop worker and are not needed to find faces.
    import dlib

    return dlib.get_frontal_face_detector()


def _hog_locations(image: np.ndarray, upsample: int, skip: int = 0) -> list[tuple]:
    """face_recognition's HOG ``face_locations``, scanning from pyramid level ``skip``.

    ``skip=0`` is exactly face_recognition's call. Otherwise rebuilds the image dlib scans
    at that level the way dlib does (``pyramid_up`` is a bilinear resize to
    ``pyramid_down(2).rect_up``'s size; each level is ``pyramid_down(6)`` of the
    previous), runs the detector there without upsampling, and maps the boxes back
    through the same pyramids, so a face the full scan finds at a level >= ``skip`` gets
    the same box. Falls back to the full scan when nothing is found. Returns
    ``(top, right, bottom, left)`` tuples trimmed to the image, like face_recognition.
    """
    if not skip:
        return [_css(rect, image.shape) for rect in _hog_detector()(image, upsample)]
    return _hog_skipping_levels(image, upsample, skip)


def _css(rect, shape) -> tuple:
    """A dlib rectangle as face_recognition's ``(top, right, bottom, left)``, trimmed."""
    height, width = shape[:2]
    return (max(rect.top(), 0), min(rect.right(), width), min(rect.bottom(), height),
            max(rect.left(), 0))


def _hog_skipping_levels(image: np.ndarray, upsample: int, skip: int) -> list[tuple]:
    """:func:`_hog_locations` from pyramid level ``skip`` (> 0 for the short cut)."""
    import dlib  # deferred: dlib loads in about a second; see face_api

    detector = _hog_detector()
    up2, down6 = dlib.pyramid_down(2), dlib.pyramid_down(HOG_PYRAMID_RATE)
    upsampled = image
    for _ in range(upsample):
        height, width = upsampled.shape[:2]
        rect = up2.rect_up(dlib.rectangle(0, 0, width - 1, height - 1))
        upsampled = dlib.resize_image(upsampled, rect.bottom() + 1, rect.right() + 1)
    level = upsampled
    for _ in range(skip):
        level = down6(level)
    rects = detector(level, 0)
    if len(rects) == 0:
        rects, skip = detector(upsampled, 0), 0
    found = []
    for rect in rects:
        if skip:
            rect = down6.rect_up(rect, skip)
        if upsample:
            rect = up2.rect_down(rect, upsample)
        found.append(_css(rect, image.shape))
    return found


def largest_face(boxes: Sequence[Sequence[int]]) -> Box | None:
    """The box with the largest area (the first on ties), or ``None`` for no boxes."""
    best = None
    for box in boxes:
        box = Box(*box)
        if best is None or box.area > best.area:
            best = box
    return best


def square_box(box: Sequence[int], image_shape: Sequence[int],
               scale: float = CROP_SCALE) -> Box:
    """The FaceForensics++ crop: a square of ``scale`` x the face's larger side.

    Inside the image this is exactly FaceForensics++'s ``get_boundingbox`` (same integer
    arithmetic: side ``int(max(w, h) * scale)``, centred on ``((l + r) // 2, (t + b) // 2)``).
    At a border the square keeps its side and is shifted back inside the image; only
    when it is larger than the image is its side cut to the image's shorter side.
    (FF++'s code shifts at the top/left borders but shortens the side at the
    bottom/right ones, which can cut off the face; here all four borders behave alike,
    the crop stays square and always contains the face's centre.)

    Args:
        box: the face ``(top, right, bottom, left)``.
        image_shape: ``(height, width, ...)`` of the image.
        scale: side multiplier (1.3 in FaceForensics++).

    Returns:
        The square :class:`Box`, inside the image.
    """
    top, right, bottom, left = (int(v) for v in box)
    height, width = int(image_shape[0]), int(image_shape[1])
    side = min(int(max(right - left, bottom - top) * scale), height, width)
    if side <= 0:
        raise DataError(f"cannot make a square crop of face box {tuple(box)} in a "
                        f"{width}x{height} image")
    cx, cy = (left + right) // 2, (top + bottom) // 2
    x1 = min(max(cx - side // 2, 0), width - side)
    y1 = min(max(cy - side // 2, 0), height - side)
    return Box(top=y1, right=x1 + side, bottom=y1 + side, left=x1)


def crop_face(rgb: np.ndarray, box: Sequence[int], size: int) -> np.ndarray:
    """Cuts ``box`` out of ``rgb`` and resizes it to ``size`` x ``size``.

    Pass a square box (:func:`square_box`): a non-square one is stretched. Shrinking
    uses area interpolation, enlarging bicubic.

    Returns:
        A ``(size, size, 3)`` uint8 RGB array.
    """
    rgb = _as_rgb(rgb)
    top, right, bottom, left = (int(v) for v in box)
    top, left = max(top, 0), max(left, 0)
    bottom, right = min(bottom, rgb.shape[0]), min(right, rgb.shape[1])
    if bottom <= top or right <= left:
        raise DataError(f"face box {tuple(box)} is empty inside the "
                        f"{rgb.shape[1]}x{rgb.shape[0]} image")
    patch = rgb[top:bottom, left:right]
    shrink = patch.shape[0] >= size and patch.shape[1] >= size
    out = cv2.resize(patch, (int(size), int(size)),
                     interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return np.ascontiguousarray(out, dtype=np.uint8)


def inset_box(image_shape: Sequence[int], inset: float = 0.08) -> Box:
    """The whole image shrunk by ``inset`` of its size on every side.

    For tight face crops (e.g. 200 px UTKFace chips, or a store's crops) pass this as the
    face box of :func:`face_landmarks`: the detector often misses faces that fill the
    frame, while dlib's landmark model fits them well from this box.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    dy, dx = int(round(height * inset)), int(round(width * inset))
    return Box(top=dy, right=width - dx, bottom=height - dy, left=dx)


def face_landmarks(rgb: np.ndarray, box: Sequence[int] | None = None,
                   model: str = "hog") -> np.ndarray | None:
    """The 68 iBUG/dlib landmarks of one face, as ``(68, 2)`` float ``(x, y)`` pixels.

    Args:
        rgb: HxWx3 uint8 RGB image.
        box: the face box; ``None`` detects faces and uses the largest. For a tight face
            crop pass :func:`inset_box` of the image.
        model: detector used when ``box`` is ``None``.

    Returns:
        Points in dlib's order (0-16 jaw, 17-26 brows, 27-35 nose, 36-47 eyes, 48-67
        mouth), or ``None`` when no face is found.
    """
    rgb = _as_rgb(rgb)
    if box is None:
        box = largest_face(detect_faces(rgb, model=model))
        if box is None:
            return None
    box = Box(*(int(v) for v in box))
    found = _face_recognition().face_landmarks(rgb, face_locations=[tuple(box)],
                                               model="large")
    if not found:
        return None
    groups = found[0]
    top, bottom = groups["top_lip"], groups["bottom_lip"]
    # face_recognition splits the mouth into two overlapping 12-point lips; undo it:
    # top_lip = 48..54, 64, 63, 62, 61, 60; bottom_lip = 54..59, 48, 60, 67, 66, 65, 64.
    mouth = top[0:7] + bottom[1:6] + top[11:6:-1] + bottom[10:7:-1]
    points = [p for name in LANDMARK_GROUPS[:7] for p in groups[name]] + mouth
    return np.asarray(points, dtype=np.float64).reshape(68, 2)


#: Median face_recognition landmarks of real crops (mirrored to be symmetric), in
#: :func:`face_landmarks`' order; unit = distance between the eye centres, origin = midpoint
#: between the eyes, y pointing down (image coordinates). A fit far from it is garbage
#: (:func:`landmark_problem`); the benchmark's drawn faces start from it.
LANDMARK_TEMPLATE = np.array([
    (-1.126, 0.023), (-1.105, 0.311), (-1.066, 0.594), (-1.017, 0.873),
    (-0.917, 1.138), (-0.748, 1.368), (-0.529, 1.554), (-0.278, 1.705),
    (0.000, 1.749), (0.278, 1.705), (0.529, 1.554), (0.748, 1.368),
    (0.917, 1.138), (1.017, 0.873), (1.066, 0.594), (1.105, 0.311),
    (1.126, 0.023), (-0.933, -0.198), (-0.790, -0.328), (-0.589, -0.367),
    (-0.384, -0.340), (-0.189, -0.266), (0.189, -0.266), (0.384, -0.340),
    (0.589, -0.367), (0.790, -0.328), (0.933, -0.198), (0.000, -0.028),
    (0.000, 0.160), (0.000, 0.346), (0.000, 0.538), (-0.223, 0.668),
    (-0.114, 0.705), (0.000, 0.735), (0.114, 0.705), (0.223, 0.668),
    (-0.695, 0.002), (-0.570, -0.071), (-0.424, -0.066), (-0.296, 0.033),
    (-0.435, 0.053), (-0.580, 0.050), (0.296, 0.033), (0.424, -0.066),
    (0.570, -0.071), (0.695, 0.002), (0.580, 0.050), (0.435, 0.053),
    (-0.466, 0.979), (-0.294, 0.923), (-0.122, 0.899), (0.000, 0.927),
    (0.122, 0.899), (0.294, 0.923), (0.466, 0.979), (0.298, 1.152),
    (0.131, 1.224), (0.000, 1.237), (-0.131, 1.224), (-0.298, 1.152),
    (-0.396, 0.992), (-0.122, 0.992), (0.000, 1.009), (0.122, 0.992),
    (0.396, 0.992), (0.125, 1.090), (0.000, 1.101), (-0.125, 1.090),
])
#: Images at most this big are taken as tight face crops by :func:`find_landmarks`.
TIGHT_CROP_MAX_SIDE = 400


def landmark_problem(landmarks: np.ndarray | None, image_shape) -> str | None:
    """Why a landmark fit is unusable, or ``None`` when it looks like a face.

    Checks the 68 points against :data:`LANDMARK_TEMPLATE` after a similarity alignment
    (a garbage fit is far from it), and that the face lies inside the image (a chin
    below the crop gives a squashed fit).
    """
    if landmarks is None:
        return "no face found"
    lm = np.asarray(landmarks, np.float64)
    h, w = image_shape[:2]
    if not np.isfinite(lm).all():
        return "landmarks are not finite"
    lo, hi = lm.min(0), lm.max(0)
    if lo[0] < -0.04 * w or lo[1] < -0.04 * h or hi[0] > 1.04 * w or hi[1] > 1.04 * h:
        return "face extends beyond the image"
    a = lm - lm.mean(0)
    b = LANDMARK_TEMPLATE - LANDMARK_TEMPLATE.mean(0)
    # similarity Procrustes of the template onto the fit
    u, s, vt = np.linalg.svd(b.T @ a)
    r = u @ vt
    scale = s.sum() / (b ** 2).sum()
    resid = np.sqrt((((b @ r) * scale - a) ** 2).sum(1)).mean() / max(scale, 1e-9)
    if resid > 0.2:
        return f"implausible landmark fit (residual {resid:.2f} eye distances)"
    if scale * 2.2 < 24:
        return "face smaller than 24 pixels"
    return None


def find_landmarks(rgb: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """The landmarks of a face photo, or ``(None, why not)``.

    An image of at most :data:`TIGHT_CROP_MAX_SIDE` px is a tight crop: HOG rarely fires
    when the face fills the frame, so it looks at a padded copy only to confirm a face is
    there, and the fit uses the whole image (:func:`inset_box`). A larger one is searched
    for its largest face. Either fit must pass :func:`landmark_problem`.
    """
    h, w = rgb.shape[:2]
    if max(h, w) <= TIGHT_CROP_MAX_SIDE:
        pad = int(round(0.3 * max(h, w)))
        padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        if not detect_faces(padded, model="hog", max_side=None, upsample=0):
            return None, "no face detected"
        lm = face_landmarks(rgb, inset_box(rgb.shape, 0.08))
    else:
        lm = face_landmarks(rgb)
    problem = landmark_problem(lm, rgb.shape)
    return (lm if problem is None else None), problem


# A decompression bomb (a small PNG that decodes to 40000 x 40000) is refused from its
# header before any pixel is decoded. 2**27 pixels is ~400 MB as RGB: a 12000 x 11000
# photo still loads. DFDETECT_MAX_PIXELS raises or lowers it.
DEFAULT_MAX_PIXELS = 2 ** 27


def max_pixels() -> int:
    """The largest image (width x height) :func:`load_image` decodes.

    Raises:
        DataError: ``DFDETECT_MAX_PIXELS`` is set but not a positive whole number.
    """
    return int(env_number("DFDETECT_MAX_PIXELS", DEFAULT_MAX_PIXELS, minimum=1, whole=True))


def _refuse_huge_image(path: str) -> None:
    """Reads only the image header (Pillow, lazily) and refuses one that is too large.

    Formats Pillow does not know are left to OpenCV's decoder.
    """
    from PIL import Image, UnidentifiedImageError  # deferred: Pillow only reads headers here

    limit = max_pixels()
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # we judge, not Pillow
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    if width * height > limit:
        raise DataError(f"image is {width} x {height} = {width * height:,} pixels, over the "
                        f"limit of {limit:,}: shrink it, or raise DFDETECT_MAX_PIXELS if "
                        "you trust it", path)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as HxWx3 uint8 RGB (gray, 16-bit and alpha are converted).

    Raises:
        DataError: missing, empty, undecodable, or larger than :func:`max_pixels` (one
            line naming it).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError("no such file", path)
    if os.path.isdir(path):
        raise DataError("is a folder, not an image file", path)
    if os.path.getsize(path) == 0:
        raise DataError("empty file (0 bytes), not an image", path)
    _refuse_huge_image(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise DataError(f"cannot read: {err.strerror or err}", path) from None
    try:
        # libpng prints "Not enough image data" itself; the DataError below says it once.
        with quiet_stderr():
            bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as err:  # OpenCV's own limits: its assertion text is not a message
        raise DataError("cannot decode as an image (OpenCV refused it: "
                        f"{' '.join(str(err).split())[-120:]})", path) from None
    if bgr is None:
        raise DataError("cannot decode as an image: unsupported format or corrupt file",
                        path)
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
