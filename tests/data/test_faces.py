"""dfdetect.data.faces: detection on real photos, FF++ square boxes, crops, landmarks.

Reads real faces from ../shared/data (photos/obama.jpg, one UTKFace chip).
"""

import cv2
import numpy as np
import pytest

from dfdetect.data import faces
from dfdetect.data.faces import Box
from dfdetect.errors import DataError

CHIP = "faces/100_1_0_20170110183726390.jpg.chip.jpg"


def iou(a, b):
    top, bottom = max(a.top, b.top), min(a.bottom, b.bottom)
    left, right = max(a.left, b.left), min(a.right, b.right)
    inter = max(0, bottom - top) * max(0, right - left)
    return inter / (a.area + b.area - inter)


# --------------------------------------------------------------------------- boxes

def test_box_is_face_recognition_order():
    box = Box(10, 50, 40, 20)
    assert tuple(box) == (10, 50, 40, 20)
    assert (box.width, box.height, box.area) == (30, 30, 900)


def test_largest_face():
    assert faces.largest_face([]) is None
    small, big = Box(0, 10, 10, 0), (5, 60, 45, 20)
    assert faces.largest_face([small, big]) == Box(*big)


@pytest.mark.parametrize("box,shape,expected", [
    # centred: 20 px face -> 26 px square around (50, 50)
    (Box(40, 60, 60, 40), (200, 200), Box(37, 63, 63, 37)),
    # wide face: the larger side (40) sets the square (52)
    (Box(90, 120, 110, 80), (200, 200), Box(74, 126, 126, 74)),
    # top-left corner: the square is shifted inside, keeps its side
    (Box(0, 20, 20, 0), (200, 200), Box(0, 26, 26, 0)),
    # bottom-right corner: likewise (FF++'s code would shorten it to 23 px here)
    (Box(80, 100, 100, 80), (100, 100, 3), Box(74, 100, 100, 74)),
    # one border only: shifted along that axis, still centred on the other
    (Box(40, 200, 60, 180), (100, 200), Box(37, 200, 63, 174)),
    # square larger than the image: cut to the image's shorter side, centred
    (Box(0, 100, 80, 0), (80, 100), Box(0, 90, 80, 10)),
])
def test_square_box(box, shape, expected):
    assert faces.square_box(box, shape) == expected


def test_square_box_always_square_full_size_inside_and_covering_the_centre():
    rng = np.random.default_rng(0)
    for _ in range(500):
        height, width = rng.integers(20, 300, size=2)
        top, bottom = sorted(rng.integers(0, height, size=2))
        left, right = sorted(rng.integers(0, width, size=2))
        if bottom - top < 2 or right - left < 2:
            continue
        sq = faces.square_box((top, right, bottom, left), (height, width))
        assert sq.width == sq.height > 0
        assert 0 <= sq.top and sq.bottom <= height and 0 <= sq.left and sq.right <= width
        assert sq.left <= (left + right) // 2 < sq.right
        assert sq.top <= (top + bottom) // 2 < sq.bottom
        assert sq.width == min(int(max(right - left, bottom - top) * 1.3), height, width)


def test_crop_face_cuts_the_box_and_resizes():
    yy, xx = np.mgrid[0:100, 0:120]
    image = np.stack([xx * 2, yy * 2, np.zeros_like(xx)], axis=-1).astype(np.uint8)
    crop = faces.crop_face(image, Box(10, 70, 50, 30), 20)
    assert crop.shape == (20, 20, 3) and crop.dtype == np.uint8
    # x 30..70 -> red 60..140, y 10..50 -> green 20..100
    assert 55 <= crop[..., 0].min() and crop[..., 0].max() <= 142
    assert 15 <= crop[..., 1].min() and crop[..., 1].max() <= 102
    assert faces.crop_face(image, Box(10, 20, 20, 10), 64).shape == (64, 64, 3)  # upscaling
    with pytest.raises(DataError):
        faces.crop_face(image, Box(200, 300, 250, 250), 20)


# --------------------------------------------------------------------------- images

def test_load_image_rgb_and_gray(tmp_path):
    bgr = np.zeros((12, 16, 3), np.uint8)
    bgr[..., 2] = 255  # red in BGR
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    rgb = faces.load_image(tmp_path / "red.png")
    assert rgb.shape == (12, 16, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [255, 0, 0]
    cv2.imwrite(str(tmp_path / "gray.png"), np.full((5, 7), 9, np.uint8))
    assert faces.load_image(tmp_path / "gray.png").shape == (5, 7, 3)


@pytest.mark.parametrize("name,content,words", [
    ("missing.png", None, "no such file"),
    ("empty.png", b"", "0 bytes"),
    ("text.png", b"hello, not an image\n", "cannot decode"),
    ("half.jpg", "half", "cannot decode"),
])
def test_load_image_errors(tmp_path, name, content, words):
    path = tmp_path / name
    if content == "half":
        ok, data = cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8))
        content = data.tobytes()[:100]
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError) as excinfo:
        faces.load_image(path)
    text = str(excinfo.value)
    assert text.startswith(f"{path}: ") and words in text and "\n" not in text


# --------------------------------------------------------------------------- detection

def test_no_face_is_an_empty_list_not_an_error(tmp_path):
    blank = np.full((120, 160, 3), 127, np.uint8)
    assert faces.detect_faces(blank) == []
    assert faces.largest_face(faces.detect_faces(blank)) is None
    assert faces.face_landmarks(blank) is None
    cv2.imwrite(str(tmp_path / "noface.png"), blank)
    assert faces.detect_faces(faces.load_image(tmp_path / "noface.png")) == []


def test_detect_faces_maps_downscaled_boxes_to_full_resolution(shared_data):
    photo = faces.load_image(shared_data / "photos" / "obama.jpg")
    assert max(photo.shape[:2]) > 640  # so detection really runs on a smaller copy
    full = faces.detect_faces(photo, max_side=None)
    small = faces.detect_faces(photo, max_side=320)
    assert len(full) >= 1 and len(small) >= 1
    assert iou(full[0], small[0]) > 0.6
    face = full[0]
    assert 0 <= face.top < face.bottom <= photo.shape[0]
    assert 0 <= face.left < face.right <= photo.shape[1]


@pytest.mark.parametrize("min_face,skip", [(None, 0), (0, 0), (40, 0), (48, 1), (60, 2),
                                            (70, 3), (100, 5)])
def test_pyramid_levels_to_skip(min_face, skip):
    # level k of the upsampled pyramid holds faces of 80 / (2 * (5/6)**k) px
    assert faces.pyramid_levels_to_skip(min_face, upsample=1) == skip


def _real_frames(shared_data):
    from dfdetect.data.video import read_frames, resize_max_side

    names = ["closeup_d0.mp4", "closeup_pexels_woman.mp4", "upperbody_s18.mp4"]
    return [resize_max_side(rgb, 640) for name in names
            for _, rgb in read_frames(shared_data / "videos" / name, n=2)]


def test_hog_pyramid_rebuilt_exactly_like_dlib(shared_data):
    # skip=0 runs our rebuilt pyramid from its first level: it must be dlib's own
    import face_recognition

    for rgb in _real_frames(shared_data):
        theirs = face_recognition.face_locations(rgb, 1, "hog")
        assert theirs and faces._hog_skipping_levels(rgb, 1, 0) == theirs
        assert faces._hog_locations(rgb, 1) == theirs  # dlib direct, no face_recognition
        assert faces.detect_faces(rgb, max_side=None) == sorted(
            (faces.Box(*b) for b in theirs), key=lambda b: b.area, reverse=True)


def test_min_face_keeps_the_full_scans_boxes_within_a_pixel(shared_data):
    for rgb in _real_frames(shared_data):
        full = faces.detect_faces(rgb, min_face=None)
        fast = faces.detect_faces(rgb, min_face=60)
        assert full and fast
        assert max(abs(a - b) for a, b in zip(full[0], fast[0])) <= 1


@pytest.mark.parametrize("width,same", [(36, True), (46, False)])
def test_min_face_still_finds_a_face_smaller_than_it(shared_data, width, same):
    # 36 px: too small for the levels scanned, so the full-scan fallback finds it, same
    # box; 46 px: the coarsest scanned window (58 px) still fires, with a looser box.
    photo = faces.load_image(shared_data / "photos" / "obama.jpg")
    face = faces.detect_faces(photo)[0]
    scale = width / face.width
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    full = faces.detect_faces(small, min_face=None)
    fast = faces.detect_faces(small, min_face=60)
    assert full and full[0].width < 50 and fast
    if same:
        assert fast[0] == full[0]
    else:
        assert fast[0] != full[0] and iou(fast[0], full[0]) > 0.5


def test_unknown_detector():
    with pytest.raises(DataError):
        faces.detect_faces(np.zeros((10, 10, 3), np.uint8), model="yolo")


# --------------------------------------------------------------------------- landmarks

def test_face_landmarks_in_dlib_order_on_a_tight_crop(shared_data):
    from face_recognition import api

    chip = faces.load_image(shared_data / CHIP)
    box = faces.inset_box(chip.shape)
    assert box == Box(16, 184, 184, 16)
    points = faces.face_landmarks(chip, box)
    assert points.shape == (68, 2) and points.dtype == np.float64
    # identical to dlib's raw 68 points (face_recognition's lip groups undone correctly)
    raw = api._raw_face_landmarks(chip, [tuple(box)], model="large")[0]
    assert np.array_equal(points, [[p.x, p.y] for p in raw.parts()])
    eyes_y, mouth_y = points[36:48, 1].mean(), points[48:68, 1].mean()
    assert eyes_y < points[30, 1] < mouth_y  # eyes above the nose tip above the mouth
    assert points[36:42, 0].mean() < points[42:48, 0].mean()  # image-left eye first


def test_face_landmarks_detects_when_no_box(shared_data):
    photo = faces.load_image(shared_data / "photos" / "obama.jpg")
    points = faces.face_landmarks(photo)
    face = faces.largest_face(faces.detect_faces(photo))
    assert points.shape == (68, 2)
    inside = ((points[:, 0] >= face.left - 20) & (points[:, 0] <= face.right + 20)
              & (points[:, 1] >= face.top - 40) & (points[:, 1] <= face.bottom + 20))
    assert inside.mean() > 0.9


# --------------------------------------------------------------------------- small faces

def _canvas_with_face(shared_data, side: int, face_px: int, at: tuple[int, int]):
    """A ``side`` x ``side`` grey canvas with obama.jpg's face pasted ``face_px`` wide at ``at``.

    Returns the canvas and where the detector's box of the photo's face lands on it.
    """
    photo = faces.load_image(shared_data / "photos" / "obama.jpg")
    face = faces.detect_faces(photo, max_side=None)[0]
    cy, cx = (face.top + face.bottom) // 2, (face.left + face.right) // 2
    half = face.width  # the face with a face-width of context on every side
    top, left = max(0, cy - half), max(0, cx - half)
    scale = face_px / face.width
    patch = cv2.resize(photo[top:cy + half, left:cx + half], None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_AREA)
    canvas = np.full((side, side, 3), 120, np.uint8)
    y, x = at
    canvas[y:y + patch.shape[0], x:x + patch.shape[1]] = patch
    expected = Box(top=y + round((face.top - top) * scale),
                   right=x + round((face.right - left) * scale),
                   bottom=y + round((face.bottom - top) * scale),
                   left=x + round((face.left - left) * scale))
    return canvas, expected


def test_small_face_in_a_large_image_is_found_by_the_fallback(shared_data):
    # 4000 px with a 120-px face: 19 px on the 640-px copy, too small for HOG's window
    canvas, expected = _canvas_with_face(shared_data, 4000, 120, (2600, 1300))
    assert faces.detect_faces(canvas, max_side=640, small_faces=False) == []
    found = faces.detect_faces(canvas, max_side=640)
    assert len(found) == 1 and iou(found[0], expected) > 0.4


def test_tiles_find_a_face_the_second_pass_misses_and_merge_duplicates(shared_data):
    # Small settings so the tile pass runs on a 2000-px canvas: the second pass sees it at
    # 640 px (face 19 px: missed), the tiles at 1280 px (face 38 px), each 1000 canvas
    # px wide, starting at 0, 750 and 1000: the face at 830-890 lies whole in four tiles
    # and must come back once.
    canvas, expected = _canvas_with_face(shared_data, 2000, 60, (800, 800))
    assert 750 < expected.left and expected.right < 1000
    assert faces._detect_at(canvas, 640, "hog", 1) == []
    found = faces.detect_small_faces(canvas, first_side=320, fallback_side=640,
                                     tile_side=640, tile_overlap=160)
    assert len(found) == 1 and iou(found[0], expected) > 0.4


def test_the_fast_path_is_unchanged_when_the_first_pass_finds_a_face(shared_data, monkeypatch):
    photo = faces.load_image(shared_data / "photos" / "obama.jpg")
    before = faces.detect_faces(photo, small_faces=False)

    def never(*args, **kwargs):
        raise AssertionError("the fallback ran although the first pass found a face")

    monkeypatch.setattr(faces, "detect_small_faces", never)
    assert faces.detect_faces(photo) == before and before
    # no face in an image no larger than max_side: nothing finer to look at either
    assert faces.detect_faces(np.full((480, 640, 3), 90, np.uint8)) == []


def test_tile_starts_cover_the_image_and_overlap():
    assert faces._tile_starts(500, 640, 160) == [0]
    starts = faces._tile_starts(2000, 640, 160)
    assert starts[0] == 0 and starts[-1] == 2000 - 640
    assert all(b - a <= 640 - 160 for a, b in zip(starts, starts[1:]))


def test_merge_boxes_keeps_the_larger_of_two_overlapping():
    whole, cut, other = Box(100, 200, 200, 100), Box(100, 160, 190, 100), Box(300, 400, 400, 300)
    assert faces.merge_boxes([cut, whole, other]) == [whole, other]
    assert faces.merge_boxes([]) == []
