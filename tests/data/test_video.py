"""dfdetect.data.video: true frame counts, even sampling, decoding, one-line errors."""

import struct

import cv2
import numpy as np
import pytest

from dfdetect.data import video
from dfdetect.errors import DataError

N_FRAMES, FPS, W, H = 30, 10, 64, 48


def write_video(path, n=N_FRAMES, size=(W, H)):
    """A small mp4v video whose frame i has brightness 8*i and a red square."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, size)
    assert writer.isOpened()
    for i in range(n):
        bgr = np.full((size[1], size[0], 3), 8 * i, np.uint8)
        bgr[4:20, 4:20] = (0, 0, 255)  # red in BGR
        writer.write(bgr)
    writer.release()
    return path


def _atoms(data, start, end):
    i = start
    while i + 8 <= end:
        size, = struct.unpack(">I", data[i:i + 4])
        yield data[i + 4:i + 8], i, size
        i += size


def faststart(data):
    """Moves the moov index before mdat (like ffmpeg -movflags faststart).

    cv2.VideoWriter puts the index last, so cutting its file loses the index and the
    container cannot open; with the index first, a cut file opens, claims every frame
    and decodes only the frames before the cut. Returns (bytes, mdat offset, mdat size).
    """
    top = {kind: (i, size) for kind, i, size in _atoms(data, 0, len(data))}
    moov_at, moov_size = top[b"moov"]
    moov = bytearray(data[moov_at:moov_at + moov_size])

    def shift_chunk_offsets(start, end):
        for kind, i, size in _atoms(moov, start, end):
            if kind in (b"trak", b"mdia", b"minf", b"stbl"):
                shift_chunk_offsets(i + 8, i + size)
            elif kind == b"stco":
                count, = struct.unpack(">I", moov[i + 12:i + 16])
                for k in range(count):
                    at = i + 16 + 4 * k
                    offset, = struct.unpack(">I", moov[at:at + 4])
                    moov[at:at + 4] = struct.pack(">I", offset + moov_size)

    shift_chunk_offsets(8, moov_size)
    mdat_at, mdat_size = top[b"mdat"]
    out = data[:mdat_at] + bytes(moov) + data[mdat_at:moov_at] + data[moov_at + moov_size:]
    return out, mdat_at + moov_size, mdat_size


@pytest.fixture
def clip(tmp_path):
    return write_video(tmp_path / "clip.mp4")


def assert_one_line_error(excinfo, path, *words):
    text = str(excinfo.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: ")
    for word in words:
        assert word in text, text


def test_probe_video_reports_metadata(clip):
    info = video.probe_video(clip)
    assert (info.frame_count, info.width, info.height) == (N_FRAMES, W, H)
    assert info.fps == pytest.approx(FPS)
    assert info.duration == pytest.approx(N_FRAMES / FPS)


@pytest.mark.parametrize("total,n,expected", [
    (10, 4, [0, 3, 6, 9]),
    (100, 2, [0, 99]),
    (7, 1, [0]),
    (5, 5, [0, 1, 2, 3, 4]),
    (5, 40, [0, 1, 2, 3, 4]),  # n > total: every frame, once
    (0, 3, []),
])
def test_sample_indices(total, n, expected):
    assert video.sample_indices(total, n).tolist() == expected


def test_sample_indices_are_distinct_sorted_and_in_range():
    for total in range(1, 120):
        for n in range(1, total + 1):
            idx = video.sample_indices(total, n)
            assert len(idx) == n and len(np.unique(idx)) == n
            assert idx[0] == 0 and np.all(np.diff(idx) > 0)
            assert n == 1 or idx[-1] == total - 1


def test_sample_indices_rejects_zero_frames():
    with pytest.raises(ValueError):
        video.sample_indices(10, 0)


def test_read_frames_evenly_spaced_rgb(clip):
    frames = video.read_frames(clip, n=4)
    assert [i for i, _ in frames] == [0, 10, 19, 29]
    for index, rgb in frames:
        assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
        # the right frame: brightness 8*i away from the red square (mp4v is lossy)
        assert abs(float(rgb[30:, 30:].mean()) - 8 * index) < 6
        # RGB order: the square drawn red in BGR reads as red
        r, g, b = rgb[8:16, 8:16].reshape(-1, 3).mean(axis=0)
        assert r > 150 and r > g + 60 and r > b + 60


def test_read_frames_all_and_explicit_indices_with_max_side(clip):
    assert len(video.read_frames(clip)) == N_FRAMES
    assert len(video.read_frames(clip, n=100)) == N_FRAMES
    frames = video.read_frames(clip, indices=[5, 2, 5], max_side=32)
    assert [i for i, _ in frames] == [2, 5]
    assert frames[0][1].shape == (24, 32, 3)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(DataError) as excinfo:
        video.read_frames(path, n=4)
    assert_one_line_error(excinfo, path, "no such file")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(DataError) as excinfo:
        video.probe_video(path)
    assert_one_line_error(excinfo, path, "0 bytes")


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n")
    with pytest.raises(DataError) as excinfo:
        video.read_frames(path, n=4)
    assert_one_line_error(excinfo, path, "text file")


def test_truncated_mp4_without_index_is_unreadable(clip, tmp_path):
    data = clip.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[:len(data) // 2])  # the index (moov) was at the end
    with pytest.raises(DataError) as excinfo:
        video.read_frames(path, n=4)
    assert_one_line_error(excinfo, path, "cannot open")


def test_truncated_mp4_true_count_and_partial_decode(clip, tmp_path):
    data, mdat_at, mdat_size = faststart(clip.read_bytes())
    whole = tmp_path / "fast.mp4"
    whole.write_bytes(data)
    assert video.probe_video(whole).frame_count == N_FRAMES

    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(data[:mdat_at + mdat_size // 2])
    info = video.probe_video(cut)
    assert info.claimed_frame_count == N_FRAMES  # the container lies ...
    assert 0 < info.frame_count < N_FRAMES  # ... the true count does not
    # evenly spaced sampling stays inside the decodable part
    frames = video.read_frames(cut, n=4)
    assert [i for i, _ in frames] == video.sample_indices(info.frame_count, 4).tolist()
    # asking for frames past the cut returns what decoded
    frames = video.read_frames(cut, indices=[0, 1, N_FRAMES - 1])
    assert [i for i, _ in frames] == [0, 1]


def test_truncated_mp4_with_no_frame_left(clip, tmp_path):
    data, mdat_at, _ = faststart(clip.read_bytes())
    path = tmp_path / "header_only.mp4"
    path.write_bytes(data[:mdat_at + 8])
    with pytest.raises(DataError) as excinfo:
        video.read_frames(path, n=4)
    assert_one_line_error(excinfo, path, "decode")


def test_iter_frames_expect_total_same_frames_in_one_pass(clip):
    indices = video.sample_indices(N_FRAMES, 4)
    checked = list(video.iter_frames(clip, indices, expect_total=N_FRAMES))
    plain = list(video.iter_frames(clip, indices))
    assert [i for i, _ in checked] == [i for i, _ in plain] == indices.tolist()
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(checked, plain))
    assert video.probe_video(clip, verify_count=False).frame_count == N_FRAMES


@pytest.mark.parametrize("claimed", [N_FRAMES - 5, N_FRAMES + 5])
def test_iter_frames_expect_total_reports_the_true_count(clip, claimed):
    with pytest.raises(video.FrameCountMismatch) as excinfo:
        list(video.iter_frames(clip, video.sample_indices(claimed, 3), expect_total=claimed))
    assert (excinfo.value.expected, excinfo.value.actual) == (claimed, N_FRAMES)


def test_truncated_mp4_expect_total_counts_the_decodable_frames(clip, tmp_path):
    data, mdat_at, mdat_size = faststart(clip.read_bytes())
    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(data[:mdat_at + mdat_size // 2])
    claimed = video.probe_video(cut, verify_count=False).frame_count
    assert claimed == N_FRAMES  # unverified: what the container says
    with pytest.raises(video.FrameCountMismatch) as excinfo:
        list(video.iter_frames(cut, video.sample_indices(claimed, 4), expect_total=claimed))
    assert excinfo.value.actual == video.probe_video(cut).frame_count < N_FRAMES
