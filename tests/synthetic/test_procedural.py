"""Procedural faces: shapes, determinism, landmark sanity, motion, and that HOG sees a face."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dfdetect.synthetic import procedural


def face(seed: int, size: int = 128):
    rng = np.random.default_rng(seed)
    return procedural.render_face(procedural.random_identity(rng), procedural.random_view(rng),
                                  size)


def test_render_shape_dtype_and_landmarks_inside():
    img, lm = face(0, 96)
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8
    assert lm.shape == (68, 2)
    assert (lm > 0).all() and (lm < 96).all()
    # a real image, not a flat fill: the face and the background differ
    assert img.std() > 10


def test_same_seed_same_bytes_other_seed_other_face():
    a, la = face(5)
    b, lb = face(5)
    c, _ = face(6)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 10


def test_landmarks_follow_dlib_order_and_pass_the_sanity_check():
    from dfdetect.data.faces import landmark_problem

    for seed in range(6):
        img, lm = face(seed)
        assert landmark_problem(lm, img.shape) is None
        eyes_y = lm[36:48, 1].mean()
        assert lm[19, 1] < eyes_y < lm[30, 1] < lm[51, 1] < lm[57, 1] < lm[8, 1] + 1
        assert lm[0, 0] < lm[8, 0] < lm[16, 0]  # jaw runs from image-left to image-right
        assert lm[36:42, 0].mean() < lm[42:48, 0].mean()


def test_pose_moves_the_landmarks():
    rng = np.random.default_rng(1)
    ident = procedural.random_identity(rng)
    front = procedural.View()
    _, l0 = procedural.render_face(ident, front, 128)
    _, l1 = procedural.render_face(ident, dataclasses.replace(front, yaw=20), 128)
    _, l2 = procedural.render_face(ident, dataclasses.replace(front, roll=15), 128)
    assert np.abs(l1 - l0).max() > 3 and np.abs(l2 - l0).max() > 3
    # rolling the head tilts the line between the eyes
    d = l2[42:48].mean(0) - l2[36:42].mean(0)
    assert abs(np.degrees(np.arctan2(d[1], d[0])) - 15) < 4


def test_expression_opens_the_mouth_and_closes_the_eyes():
    rng = np.random.default_rng(2)
    ident = procedural.random_identity(rng)
    _, closed = procedural.render_face(ident, procedural.View(), 128)
    _, open_ = procedural.render_face(ident, procedural.View(mouth_open=1.0, blink=1.0), 128)
    gap = lambda lm: lm[66, 1] - lm[62, 1]  # noqa: E731
    lid = lambda lm: lm[41, 1] - lm[37, 1]  # noqa: E731
    assert gap(open_) > gap(closed) + 3
    assert lid(open_) < 0.5 * lid(closed)


def test_face_motion_is_smooth_and_amount_zero_is_still():
    rng = np.random.default_rng(3)
    views = procedural.face_motion(rng, 30, amount=1.0)
    assert len(views) == 30
    yaw = np.array([v.yaw for v in views])
    assert np.ptp(yaw) > 0.5 and np.abs(np.diff(yaw)).max() < 4
    still = procedural.face_motion(np.random.default_rng(3), 5, amount=0.0)
    assert all(dataclasses.replace(v, blink=0, grain_seed=0)
               == dataclasses.replace(still[0], blink=0, grain_seed=0)
               for v in still)


def test_a_face_detector_finds_the_drawn_faces():
    pytest.importorskip("face_recognition")
    from dfdetect.data import faces

    found = sum(bool(faces.detect_faces(face(seed, 192)[0], max_side=None)) for seed in range(6))
    assert found >= 5
