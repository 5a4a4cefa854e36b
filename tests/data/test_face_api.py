"""dfdetect's fallback for installs without face_recognition gives face_recognition's answers."""

import pytest

from dfdetect.data import face_api, faces

CHIP = "faces/100_1_0_20170110183726390.jpg.chip.jpg"


def test_face_api_matches_face_recognition(shared_data):
    face_recognition = pytest.importorskip("face_recognition")
    photo = faces.resize_max_side(faces.load_image(shared_data / "photos" / "obama.jpg"), 400)
    boxes = face_recognition.face_locations(photo, 1, "hog")
    assert boxes and face_api.face_locations(photo, 1, "hog") == boxes
    chip = faces.load_image(shared_data / CHIP)
    box = [tuple(faces.inset_box(chip.shape))]
    assert face_api.face_landmarks(chip, box) == face_recognition.face_landmarks(chip, box)


def test_faces_fall_back_to_face_api_without_face_recognition(monkeypatch, shared_data):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None
                        if name == "face_recognition" else real_find_spec(name, *a))
    assert faces._face_recognition() is face_api
    chip = faces.load_image(shared_data / CHIP)
    assert faces.face_landmarks(chip, faces.inset_box(chip.shape)).shape == (68, 2)
