"""A face onto the working canvas: the crop geometry and the PNG files every embedded
benchmark sample shares.

Every sample, real or fake, is a square crop of 1.2-1.45x the landmark box
(:data:`MARGIN`, with a random shift of up to :data:`SHIFT` of its side: no fixed
alignment gives the label away), warped onto a working canvas of 1-1.25x the output side
(:data:`WORK_SCALE`) where the forgery is made.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from dfdetect.errors import DataError
from dfdetect.io import atomic_write_bytes
from dfdetect.synthetic import forge

MARGIN = (1.2, 1.45)  # crop side / landmark-box side (FaceForensics++ uses 1.3)


SHIFT = 0.05  # crop centre jitter, fraction of the crop side


WORK_SCALE = (1.0, 1.25)  # working canvas side / output side


_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 3]


def crop_affine(landmarks: np.ndarray, image_shape, rng: np.random.Generator, work: int,
                margin: tuple[float, float] = MARGIN, shift: float = SHIFT) -> np.ndarray:
    """The 2x3 affine map from an image to a ``work x work`` square face crop.

    The square is ``margin`` (random in the range) times the landmark box, centred on it
    with a random shift of up to ``shift`` of its side, and kept inside the image (a
    tight crop whose face fills the frame gets a random 88-100 % window of the image).
    """
    lm = np.asarray(landmarks, np.float64)
    h, w = int(image_shape[0]), int(image_shape[1])
    side = forge.face_size(lm) * rng.uniform(*margin)
    limit = min(h, w)
    if side > limit:
        side = limit * rng.uniform(0.88, 1.0)
    c = forge.face_centre(lm) + rng.uniform(-shift, shift, 2) * side
    x0 = float(np.clip(c[0] - side / 2, 0, w - side))
    y0 = float(np.clip(c[1] - side / 2, 0, h - side))
    s = work / side
    return np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float64)


def warp(image: np.ndarray, m: np.ndarray, work: int) -> np.ndarray:
    """Apply a crop affine; large reductions are pre-shrunk with area averaging."""
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
    if scale < 0.7:
        f = scale / 0.95
        small = cv2.resize(image, (max(1, round(image.shape[1] * f)),
                                   max(1, round(image.shape[0] * f))), interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / image.shape[1], small.shape[0] / image.shape[0]
        m = m @ np.array([[1 / fx, 0, 0], [0, 1 / fy, 0], [0, 0, 1]])
        image = small
    return cv2.warpAffine(image, m, (work, work), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points mapped by a 2x3 affine."""
    return np.asarray(pts, np.float64) @ m[:, :2].T + m[:, 2]


def mask_png(mask: np.ndarray, size: int) -> np.ndarray:
    """A [0, 1] mask as the ``size`` px 8-bit image the store keeps."""
    m = cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(np.round(m * 255), 0, 255).astype(np.uint8)


def write_png(path: Path, array: np.ndarray) -> None:
    """An RGB or grey array as a PNG file, atomically."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", array, _PNG)
    if not ok:
        raise DataError("PNG encoding failed", path)

    atomic_write_bytes(path, data.tobytes(), fsync=False)  # no temp left behind on a full disk
