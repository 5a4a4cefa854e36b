"""face_recognition's two calls dfdetect needs, on dlib and face_recognition_models alone.

Why: PyPI's ``face-recognition`` depends on ``dlib``, whose sdist compiles for about
10 minutes (no wheel for current Pythons). ``pip install dfdetect`` therefore depends on
the prebuilt ``dlib-bin`` wheel (same ``import dlib``) and ``face-recognition-models``
instead, and :mod:`dfdetect.data.faces` falls back to this module when
``face_recognition`` itself is not installed. The pinned ``requirements.txt`` still
installs face_recognition (through ``tools/dlib-shim``); the results are identical
(``tests/data/test_face_api.py``).

Adapted from face_recognition 1.3.0 ``api.py`` (MIT licence, Copyright (c) 2017 Adam
Geitgey): ``face_locations`` and ``face_landmarks(model="large")`` with the same
arguments and the same output.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=None)
def _models():
    """dlib's detectors and the 68-point predictor (loaded once: 1-4 s)."""
    # deferred: dlib and its model files load in 1-4 s; box arithmetic must not wait
    import dlib
    import face_recognition_models as frm

    return {
        "hog": dlib.get_frontal_face_detector(),
        "cnn": dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location()),
        "large": dlib.shape_predictor(frm.pose_predictor_model_location()),
    }


def _css(rect, shape) -> tuple:
    """A dlib rectangle as ``(top, right, bottom, left)``, trimmed to the image."""
    return (max(rect.top(), 0), min(rect.right(), shape[1]), min(rect.bottom(), shape[0]),
            max(rect.left(), 0))


def face_locations(img: np.ndarray, number_of_times_to_upsample: int = 1,
                   model: str = "hog") -> list[tuple]:
    """Face boxes as ``(top, right, bottom, left)``, like ``face_recognition.face_locations``.

    Args:
        img: RGB (or grey) uint8 image.
        number_of_times_to_upsample: dlib upsampling passes (finds smaller faces).
        model: ``"hog"`` or ``"cnn"``.
    """
    found = _models()["cnn" if model == "cnn" else "hog"](img, number_of_times_to_upsample)
    return [_css(f.rect if model == "cnn" else f, img.shape) for f in found]


def face_landmarks(face_image: np.ndarray, face_locations=None,
                   model: str = "large") -> list[dict]:
    """The 68 landmarks grouped as ``face_recognition.face_landmarks`` groups them.

    Args:
        face_image: RGB uint8 image.
        face_locations: boxes ``(top, right, bottom, left)``; default: HOG detection.
        model: only ``"large"`` (68 points) is provided.
    """
    import dlib  # deferred: see _models

    if model != "large":
        raise ValueError("dfdetect's face_api provides only the 68-point 'large' model")
    boxes = (face_locations if face_locations is not None
             else globals()["face_locations"](face_image))
    predictor = _models()["large"]
    out = []
    for top, right, bottom, left in boxes:
        shape = predictor(face_image, dlib.rectangle(left, top, right, bottom))
        p = [(q.x, q.y) for q in shape.parts()]
        out.append({
            "chin": p[0:17], "left_eyebrow": p[17:22], "right_eyebrow": p[22:27],
            "nose_bridge": p[27:31], "nose_tip": p[31:36], "left_eye": p[36:42],
            "right_eye": p[42:48],
            "top_lip": p[48:55] + [p[64], p[63], p[62], p[61], p[60]],
            "bottom_lip": p[54:60] + [p[48], p[60], p[67], p[66], p[65], p[64]],
        })
    return out
