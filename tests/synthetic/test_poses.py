"""The synthetic PoI pose benchmark: files, counts, determinism, skeleton and estimator."""

import numpy as np
import pytest

from dfdetect.data import pose
from dfdetect.synthetic import poses as pb
from dfdetect.errors import DataError
from dfdetect.scales import get_scale

SMOKE = get_scale("smoke")  # build_benchmark takes sizes, not a preset name


@pytest.fixture(scope="module")
def smoke_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("poses") / "bench"
    summary = pb.build_pose_benchmark(out, scale=SMOKE, seed=3)
    return out, summary


def test_smoke_benchmark_counts_and_files(smoke_bench):
    out, summary = smoke_bench
    # smoke: 2 PoIs x 4 real + 4 impersonator videos x 2 movements.
    assert (summary.pois, summary.videos, summary.segments) == (2, 16, 32)
    assert summary.real_segments == summary.fake_segments == 16
    segments, rows = pose.read_segments(out)
    assert segments.shape == (32, 150, 24)
    assert {r["poi"] for r in rows} == {"poi0", "poi1"}
    per_video = {}
    for r in rows:
        per_video.setdefault(r["video_id"], set()).add((r["label"], r["poi"]))
    assert len(per_video) == 16 and all(len(v) == 1 for v in per_video.values())
    fake_methods = {r["method"] for r in rows if r["label"] == 1}
    assert fake_methods and all(m.startswith("impersonator") for m in fake_methods)
    assert {r["method"] for r in rows if r["label"] == 0} == {"real"}
    for vid in per_video:
        _, feats = pose.read_pose_csv(out / "poses" / f"{vid}.pose.csv")
        # Whole movements plus a tail shorter than one.
        assert 300 <= len(feats) < 450
    assert (out / pb.COMPLETE_MARKER).exists() and (out / "people.json").exists()


def test_benchmark_is_reused_and_deterministic(smoke_bench, tmp_path):
    out, _ = smoke_bench
    again = pb.build_pose_benchmark(out, scale=SMOKE, seed=3)
    assert again.reused and again.segments == 32
    same = pb.build_pose_benchmark(tmp_path / "same", scale=SMOKE, seed=3)
    other = pb.build_pose_benchmark(tmp_path / "other", scale=SMOKE, seed=4)
    assert not same.reused
    a, b, c = (pose.read_segments(p)[0] for p in (out, tmp_path / "same", tmp_path / "other"))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_keypoints_look_like_a_real_estimators(smoke_bench):
    segments, _ = pose.read_segments(smoke_bench[0])
    pts = segments.reshape(-1, 12, 2)
    found = (pts != 0).any(-1)
    # Mostly found, but with the zeros a real estimator leaves.
    assert 0.6 < found.mean() < 0.995
    xs, ys = pts[..., 0][found], pts[..., 1][found]
    assert xs.min() >= 0 and xs.max() < pb.FRAME_W and ys.min() >= 0 and ys.max() < pb.FRAME_H
    both = found[:, 2] & found[:, 5]
    # The person's right shoulder faces the camera on the image's left, below the nose.
    assert (pts[both, 2, 0] < pts[both, 5, 0]).all()
    head = found[:, 0] & found[:, 1]
    assert (pts[head, 0, 1] < pts[head, 1, 1]).all()


def _style(**overrides):
    values = {k: 0.5 for k in pb.STYLE_KEYS}
    for key, value in overrides.items():
        lo, hi = pb.STYLE_RANGES[key]
        values[key] = (value - lo) / (hi - lo)
    return pb.Style(tuple(values[k] for k in pb.STYLE_KEYS), "shrug")


def _wrist_motion(points, name):
    k = pose.KEYPOINT_NAMES.index(name)
    return np.abs(np.diff(points[:, k], axis=0)).sum()


def test_preferred_hand_and_gesture_rate_drive_the_skeleton():
    body = pb.random_body(np.random.default_rng(0))
    righty = _style(right_hand=0.9, both_hands=0.0, gesture_rate=1.0)
    lefty = _style(right_hand=0.1, both_hands=0.0, gesture_rate=1.0)
    calm = _style(right_hand=0.9, both_hands=0.0, gesture_rate=0.35, amplitude=0.35)
    r, _ = pb.simulate_movement(body, righty, 900, np.random.default_rng(1))
    le, _ = pb.simulate_movement(body, lefty, 900, np.random.default_rng(1))
    c, _ = pb.simulate_movement(body, calm, 900, np.random.default_rng(1))
    assert _wrist_motion(r, "r_wrist") > 2 * _wrist_motion(r, "l_wrist")
    assert _wrist_motion(le, "l_wrist") > 2 * _wrist_motion(le, "r_wrist")
    assert _wrist_motion(r, "r_wrist") > 2 * _wrist_motion(c, "r_wrist")


def test_impersonator_blend_moves_the_style_towards_the_other_person():
    a, b = _style(gesture_rate=0.4), _style(gesture_rate=1.2)
    assert a.blend(b, 0.0).get("gesture_rate") == pytest.approx(0.4)
    assert a.blend(b, 0.75).get("gesture_rate") == pytest.approx(1.0)


def test_estimator_noise_hides_hidden_points_and_drops_some():
    rng = np.random.default_rng(0)
    points = rng.uniform(100, 600, (300, 12, 2))
    visible = np.ones((300, 12), bool)
    visible[:, 4] = False
    exact = pb.estimator_noise(points, visible, rng, jitter=0.0, dropout=0.0, frame_miss=0.0)
    np.testing.assert_allclose(exact.reshape(300, 12, 2)[:, :4], points[:, :4], atol=1e-3)
    assert not exact.reshape(300, 12, 2)[:, 4].any()
    noisy = pb.estimator_noise(points, visible, rng, jitter=2.0, dropout=0.05, frame_miss=0.0)
    dropped = ~(noisy.reshape(300, 12, 2) != 0).any(-1)
    assert 0.03 < dropped[:, [0, 1, 2, 3, 5]].mean() < 0.5


def test_bad_sizes_are_rejected(tmp_path):
    with pytest.raises(DataError, match="at least one"):
        pb.build_pose_benchmark(tmp_path, scale=SMOKE, videos_per_poi=0)
