"""P4 pose data: 33 -> 12 keypoint mapping, OpenPose JSON, z-score, CSV forms, segments,
majority vote, split, and (when .venv-pose exists) MediaPipe on the real videos."""

import json
from pathlib import Path

import numpy as np
import pytest

from dfdetect.data import pose
from dfdetect.errors import DataError

REPO = Path(__file__).resolve().parents[2]
SHARED_VIDEOS = REPO / ".." / "shared" / "data" / "videos"
POSE_PY = REPO / ".venv-pose" / "bin" / "python"
needs_pose_env = pytest.mark.skipif(not POSE_PY.exists(),
                                    reason="no .venv-pose (make pose-env)")


def _landmarks(frames=1):
    """BlazePose landmarks with landmark i at x = (i+1)/40, y = 1 - (i+1)/40, visible."""
    lm = np.zeros((frames, 33, 4))
    i = np.arange(33) + 1
    lm[:, :, 0] = i / 40
    lm[:, :, 1] = 1 - i / 40
    lm[:, :, 3] = 0.99
    return lm


def _xy(features, name):
    k = pose.KEYPOINT_NAMES.index(name)
    return tuple(np.round(features[..., 2 * k:2 * k + 2], 3).tolist())


# ------------------------------------------------------------------- 33 -> 12 mapping

def test_feature_layout_is_the_papers_12_keypoints():
    assert pose.COCO_UPPER_BODY == (0, 1, 2, 3, 4, 5, 6, 7, 14, 15, 16, 17)
    assert len(pose.FEATURE_NAMES) == 24
    assert pose.FEATURE_NAMES[:4] == ("nose_x", "nose_y", "neck_x", "neck_y")


def test_blazepose_to_coco_maps_each_landmark_in_pixels():
    feats = pose.blazepose_to_coco12(_landmarks()[0], width=400, height=200)
    assert feats.shape == (24,)
    expected = {"nose": 0, "r_shoulder": 12, "r_elbow": 14, "r_wrist": 16, "l_shoulder": 11,
                "l_elbow": 13, "l_wrist": 15, "r_eye": 5, "l_eye": 2, "r_ear": 8, "l_ear": 7}
    for name, i in expected.items():
        assert _xy(feats, name) == pytest.approx(((i + 1) / 40 * 400, (1 - (i + 1) / 40) * 200),
                                                 abs=1e-3), name
    # Neck: midpoint of the two shoulders (11, 12), as OpenPose's COCO neck.
    assert _xy(feats, "neck") == pytest.approx((12.5 / 40 * 400, (1 - 12.5 / 40) * 200),
                                               abs=1e-3)


def test_invisible_or_offscreen_points_are_zero_and_neck_needs_both_shoulders():
    lm = _landmarks(3)
    lm[0, 16, 3] = 0.2             # right wrist barely visible
    lm[1, 0, 0] = 1.3              # nose placed outside the image
    lm[2, 11, 3] = 0.1             # left shoulder hidden -> no neck either
    feats = pose.blazepose_to_coco12(lm, 100, 100, visibility=0.5)
    assert feats.shape == (3, 24)
    assert _xy(feats[0], "r_wrist") == (0, 0) and _xy(feats[0], "nose") != (0, 0)
    assert _xy(feats[1], "nose") == (0, 0)
    assert _xy(feats[2], "l_shoulder") == (0, 0) and _xy(feats[2], "neck") == (0, 0)
    assert _xy(feats[2], "r_shoulder") != (0, 0)
    assert pose.detected_counts(feats).tolist() == [11, 11, 10]


def test_frame_without_pose_is_all_zeros():
    lm = _landmarks(2)
    lm[1] = np.nan
    lm[1, :, 3] = 0
    feats = pose.blazepose_to_coco12(lm, 640, 480)
    assert not feats[1].any() and feats[0].all()


def test_blazepose_rejects_wrong_shape():
    with pytest.raises(ValueError):
        pose.blazepose_to_coco12(np.zeros((5, 17, 4)), 10, 10)


# ------------------------------------------------------------------- OpenPose JSON

def _person(n, conf=0.9, offset=0.0):
    flat = []
    for i in range(n):
        flat += [100 + i + offset, 200 + i + offset, conf]
    return {"pose_keypoints_2d": flat}


def test_openpose_coco18_and_body25_pick_the_same_body_parts():
    coco = pose.openpose_people_to_coco12([_person(18)])
    body25 = pose.openpose_people_to_coco12([_person(25)])
    assert [coco[2 * k] - 100 for k in range(12)] == list(pose.COCO_UPPER_BODY)
    assert [body25[2 * k] - 100 for k in range(12)] == [0, 1, 2, 3, 4, 5, 6, 7, 15, 16, 17, 18]


def test_openpose_keeps_most_confident_person_and_zeroes_undetected():
    weak, strong = _person(18, 0.2, offset=1000), _person(18, 0.8)
    strong["pose_keypoints_2d"][4 * 3 + 2] = 0.0  # right wrist undetected
    feats = pose.openpose_people_to_coco12([weak, strong])
    assert _xy(feats, "nose") == (100, 200)
    assert _xy(feats, "r_wrist") == (0, 0)
    assert not pose.openpose_people_to_coco12([]).any()
    with pytest.raises(ValueError):
        pose.openpose_people_to_coco12([{"pose_keypoints_2d": [1.0] * 30}])


def test_read_openpose_json_orders_frames_and_reports_bad_files(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for frame in (10, 2, 0):  # written out of order; numbering decides
        (folder / f"clip_{frame:012d}_keypoints.json").write_text(
            json.dumps({"version": 1.3, "people": [_person(25, offset=frame)]}))
    feats = pose.read_openpose_json(folder)
    assert feats.shape == (3, 24)
    assert feats[:, 0].tolist() == [100, 102, 110]
    (folder / "clip_000000000011_keypoints.json").write_text("{not json")
    with pytest.raises(DataError, match="clip_000000000011_keypoints.json"):
        pose.read_openpose_json(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no \\*_keypoints.json"):
        pose.read_openpose_json(tmp_path / "empty")


def test_extract_openpose_then_relabel_into_one_dataset(tmp_path):
    sources = []
    for name, frames in (("real1", 320), ("fake1", 160), ("short", 40)):
        folder = tmp_path / "json" / name
        folder.mkdir(parents=True)
        for f in range(frames):
            (folder / f"{name}_{f:012d}_keypoints.json").write_text(
                json.dumps({"people": [_person(18, offset=f % 7)] if f % 50 else []}))
        sources.append(folder)
    out = tmp_path / "out"
    real = pose.extract_poses(sources[::2], out, backend="openpose")
    assert [v.segments for v in real] == [2, 0]
    assert real[0].with_pose == 320 - 7 and real[0].error == ""
    pose.update_dataset(out, real, label=0, poi="p")
    fake = pose.extract_poses(sources[1:2], out, backend="openpose")
    assert pose.update_dataset(out, fake, label=1, poi="p") == (3, 3)
    segments, rows = pose.read_segments(out)
    assert segments.shape == (3, 150, 24)
    assert [(r["video_id"], r["label"], r["start_frame"]) for r in rows] == [
        ("real1", 0, "0"), ("real1", 0, "150"), ("fake1", 1, "0")]
    # The tidy per-video CSV holds every frame, the frames without people as zeros.
    vid, feats = pose.read_pose_csv(out / "poses" / "real1.pose.csv")
    assert vid == "real1" and feats.shape == (320, 24) and not feats[50].any()


def test_extract_reports_missing_inputs_and_duplicate_names(tmp_path):
    res = pose.extract_poses([tmp_path / "nope"], tmp_path / "o", backend="openpose",
                             log=lambda _: None)
    assert res[0].error == "input not found"
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "b" / "x").mkdir(parents=True)
    with pytest.raises(DataError, match="both named 'x'"):
        pose.extract_poses([tmp_path / "a" / "x", tmp_path / "b" / "x"], tmp_path / "o",
                           backend="openpose")


# ------------------------------------------------------------------- z-score

def test_zscore_per_segment_and_feature_with_nan_to_zero():
    rng = np.random.default_rng(0)
    seg = rng.normal(50, 9, (2, 150, 24)).astype(np.float32)
    seg[0, :, 8:10] = 0.0          # a wrist never detected: sigma 0 -> NaN -> 0
    seg[1] = seg[1] * 3 + 100      # another segment's scale and offset do not leak in
    z = pose.zscore_segments(seg)
    assert z.dtype == np.float32 and np.isfinite(z).all()
    assert (z[0, :, 8:10] == 0).all()
    varying = np.delete(z[0], [8, 9], axis=1)
    np.testing.assert_allclose(varying.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(varying.std(0), 1, atol=1e-4)
    np.testing.assert_allclose(z[1], pose.zscore_segments(seg[1]), atol=1e-5)
    np.testing.assert_allclose(z[1], pose.zscore_segments((seg[1] - 100) / 3), atol=1e-4)


def test_zscore_of_nan_input_is_zero():
    seg = np.full((150, 24), np.nan, np.float32)
    seg[:, 0] = np.arange(150)
    z = pose.zscore_segments(seg)
    assert np.isfinite(z).all() and (z[:, 1:] == 0).all() and z[:, 0].std() > 0.99


# ------------------------------------------------------------------- CSV forms, segments

def test_segment_cuts_consecutive_movements_and_drops_the_tail():
    feats = np.arange(340 * 24, dtype=np.float32).reshape(340, 24)
    segs = pose.segment(feats)
    assert segs.shape == (2, 150, 24)
    np.testing.assert_array_equal(segs[1, 0], feats[150])
    assert pose.segment(feats[:149]).shape == (0, 150, 24)
    assert pose.segment(feats, stride=75).shape == (3, 150, 24)


def test_segments_csv_round_trip_150_rows_a_movement(tmp_path):
    rng = np.random.default_rng(1)
    segs = np.round(rng.uniform(0, 1280, (3, 150, 24)), 2).astype(np.float32)
    segs[1, 10:20, 4:8] = 0.0
    labels = [{"label": 0, "video_id": "a", "start_frame": 0, "poi": "p", "method": "real"},
              {"label": 0, "video_id": "a", "start_frame": 150, "poi": "p", "method": "real"},
              {"label": 1, "video_id": "b", "start_frame": 0, "poi": "p", "method": "x,y"}]
    seg_path, lab_path = pose.write_segments(tmp_path, segs, labels)
    lines = seg_path.read_text().splitlines()
    assert len(lines) == 1 + 3 * 150 and lines[0].split(",") == list(pose.FEATURE_NAMES)
    assert all(len(line.split(",")) == 24 for line in lines)
    back, rows = pose.read_segments(tmp_path)
    np.testing.assert_allclose(back, segs, atol=0.006)
    assert [r["label"] for r in rows] == [0, 0, 1]
    assert [r["video_id"] for r in rows] == ["a", "a", "b"]
    assert len(lab_path.read_text().splitlines()) == 4


def test_read_segments_accepts_the_papers_bare_files(tmp_path):
    segs = np.ones((2, 150, 24), np.float32)
    np.savetxt(tmp_path / "segments.csv", segs.reshape(-1, 24), delimiter=",", fmt="%.1f")
    (tmp_path / "labels.csv").write_text("1\n0\n")
    back, rows = pose.read_segments(tmp_path)
    assert back.shape == (2, 150, 24)
    assert [(r["label"], r["video_id"]) for r in rows] == [(1, "segment-0"), (0, "segment-1")]


@pytest.mark.parametrize("rows,labels,match", [
    (299, "1\n0\n", "not a multiple of 150"),
    (300, "1\n", "1 labels for 2 movements"),
    (300, "1\n2\n", "label '2' is not 0 or 1"),
])
def test_read_segments_rejects_malformed_files(tmp_path, rows, labels, match):
    np.savetxt(tmp_path / "segments.csv", np.ones((rows, 24)), delimiter=",")
    (tmp_path / "labels.csv").write_text(labels)
    with pytest.raises(DataError, match=match):
        pose.read_segments(tmp_path)


def test_read_segments_names_missing_file(tmp_path):
    with pytest.raises(DataError, match="segments.csv"):
        pose.read_segments(tmp_path)


def test_tidy_pose_csv_round_trip(tmp_path):
    feats = np.zeros((4, 24), np.float32)
    feats[1, :6] = [10.5, 20.25, 30, 40, 50, 60]
    pose.write_pose_csv(tmp_path / "v.pose.csv", "v", feats, fps=25)
    vid, back = pose.read_pose_csv(tmp_path / "v.pose.csv")
    header, second = (tmp_path / "v.pose.csv").read_text().splitlines()[:3:2]
    assert header.split(",")[:4] == ["video_id", "frame", "time_s", "detected"]
    assert second.split(",")[:4] == ["v", "1", "0.040", "3"]
    assert vid == "v"
    np.testing.assert_allclose(back, feats, atol=0.006)


# ------------------------------------------------------------------- votes and splits

def test_majority_vote_real_only_when_real_outnumbers_fake():
    assert pose.majority_vote(fake_votes=1, real_votes=2) == 0
    assert pose.majority_vote(fake_votes=2, real_votes=1) == 1
    assert pose.majority_vote(fake_votes=2, real_votes=2) == 1  # tie -> fake
    assert pose.majority_vote(fake_votes=0, real_votes=0) == 1


def test_video_verdicts_group_segments_and_break_ties_as_fake():
    vids = ["a", "a", "b", "b", "c", "c", "c"]
    scores = [0.1, 0.9, 0.2, 0.3, 0.5, 0.6, 0.1]  # a: tie; b: real; c: 2 of 3 fake (0.5 is fake)
    verdicts = pose.video_verdicts(vids, scores, labels=[1, 1, 0, 0, 1, 1, 1])
    assert [(v.video_id, v.segments, v.fake_votes, v.verdict) for v in verdicts] == [
        ("a", 2, 1, 1), ("b", 2, 0, 0), ("c", 3, 2, 1)]
    assert all((v.fake_fraction >= 0.5) == bool(v.verdict) for v in verdicts)
    assert verdicts[1].mean_score == pytest.approx(0.25)
    with pytest.raises(ValueError, match="both real and fake"):
        pose.video_verdicts(["a", "a"], [0.1, 0.2], labels=[0, 1])


def test_split_by_video_is_stratified_disjoint_and_deterministic():
    rows = [{"video_id": f"{p}-{lab}-{v}", "label": lab, "poi": p}
            for p in ("p0", "p1") for lab in (0, 1) for v in range(10) for _ in range(3)]
    splits = pose.split_by_video(rows, seed=4)
    assert splits == pose.split_by_video(rows, seed=4)
    assert splits != pose.split_by_video(rows, seed=5)
    where = {}
    for name, idx in splits.items():
        for i in idx:
            where.setdefault(rows[i]["video_id"], set()).add(name)
    assert all(len(s) == 1 for s in where.values())
    for name, idx in splits.items():
        assert {rows[i]["label"] for i in idx} == {0, 1}
    n_videos = {name: len({rows[i]["video_id"] for i in idx}) for name, idx in splits.items()}
    assert n_videos == {"train": 32, "val": 4, "test": 4}


# ------------------------------------------------------------------- MediaPipe backend

def test_missing_pose_environment_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="make pose-env"):
        pose.pose_python(tmp_path / "no-python")


@needs_pose_env
def test_mediapipe_finds_the_upper_body_in_a_real_video(tmp_path):
    video = (SHARED_VIDEOS / "upperbody_s13.mp4").resolve()
    if not video.exists():
        pytest.fail(f"{video} is missing: CI clones the repo with shared/ beside it")
    res = pose.extract_poses([video, tmp_path / "missing.mp4"], tmp_path, python=POSE_PY,
                             log=lambda _: None)
    ok, missing = res
    assert missing.error == "input not found"
    assert ok.error == "" and ok.frames > 100
    assert ok.fraction >= 0.95
    _, feats = pose.read_pose_csv(ok.pose_csv)
    # Head and shoulders in view: the person's right shoulder on the image's left.
    head = [pose.KEYPOINT_NAMES.index(n) for n in ("nose", "neck", "r_shoulder", "l_shoulder")]
    pts = feats.reshape(-1, 12, 2)
    assert (pts[:, head] != 0).all(-1).mean() >= 0.95
    assert (pts[:, 2, 0] < pts[:, 5, 0]).mean() > 0.95
    landmarks, meta = pose.read_blazepose_csv(tmp_path / "raw" / "upperbody_s13.blazepose.csv")
    assert landmarks.shape == (ok.frames, 33, 4) and meta["width"] > 0


@needs_pose_env
def test_mediapipe_runner_reports_an_unreadable_video_and_goes_on(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    reports = pose.run_mediapipe([bad], tmp_path / "raw", python=POSE_PY)
    assert "cannot open" in reports[str(bad)]["error"]


# ------------------------------------------------------------------- `dfdetect pose extract`

def _pose_cli():
    import argparse

    from dfdetect.pose_cli import add_pose_parser

    parser = argparse.ArgumentParser(prog="dfdetect")
    add_pose_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_pose_extract_command_writes_the_dataset_and_checks_detection(tmp_path, capsys):
    folder = tmp_path / "speech"
    folder.mkdir()
    for f in range(200):  # a pose in 180 of 200 frames: 90 %
        people = [_person(18, offset=f % 5)] if f % 10 else []
        (folder / f"speech_{f:012d}_keypoints.json").write_text(json.dumps({"people": people}))
    out = tmp_path / "out"
    args = _pose_cli().parse_args(["pose", "extract", str(folder), "--backend", "openpose",
                                   "--out", str(out), "--label", "fake", "--poi", "p"])
    assert args.func(args) == 0
    assert "pose in 180 (90.0 %)" in capsys.readouterr().out
    segments, rows = pose.read_segments(out)
    assert segments.shape == (1, 150, 24) and rows[0]["label"] == 1 and rows[0]["poi"] == "p"
    strict = _pose_cli().parse_args(["pose", "extract", str(folder), "--backend", "openpose",
                                     "--out", str(out), "--min-detected", "0.95"])
    assert strict.func(strict) == 1
    assert "only 90.0 % of frames" in capsys.readouterr().out
    # Re-extracting without --label keeps the label recorded before.
    assert pose.read_segments(out)[1][0]["label"] == 1


def test_blazepose_csv_contract_between_runner_and_reader(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("mp_runner", REPO / "tools" / "mediapipe_pose.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)  # only the standard library at import time
    assert tuple(runner.columns()) == pose.blazepose_columns()
    lm = _landmarks(2)
    rows = [",".join(runner.columns())]
    rows.append(",".join(["0", "0", "30", "640", "480", "1", *map(str, lm[0].ravel())]))
    rows.append(",".join(["1", "0.033", "30", "640", "480", "0"] + [""] * 132))
    (tmp_path / "v.blazepose.csv").write_text("\n".join(rows) + "\n")
    landmarks, meta = pose.read_blazepose_csv(tmp_path / "v.blazepose.csv")
    assert meta == {"width": 640.0, "height": 480.0, "fps": 30.0, "detected": 1}
    feats = pose.blazepose_to_coco12(landmarks, meta["width"], meta["height"])
    assert pose.detected_counts(feats).tolist() == [12, 0]
    (tmp_path / "bad.csv").write_text(rows[0] + "\n1,2,3\n")
    with pytest.raises(DataError, match="line 2 has 3 values"):
        pose.read_blazepose_csv(tmp_path / "bad.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="unexpected header"):
        pose.read_blazepose_csv(tmp_path / "other.csv")
