"""Box geometry, downscaled detection and tracked re-detection."""
import cv2
import numpy as np
import pytest
from dflite import paths
from dflite.data.faces import HaarConfig, crop_square, detect_faces, detect_near, expand_box, iou
from dflite.data.video import read_frames


@pytest.mark.parametrize("box,frame", [((10, 10, 20, 30), (100, 100)), ((0, 0, 90, 50), (100, 120)),
                                       ((80, 70, 30, 30), (100, 100)), ((-5, 40, 50, 50), (60, 200))])
def test_expand_box_is_square_inside_the_frame(box, frame):
    x, y, w, h = expand_box(box, 1.3, frame)
    assert w == h <= min(frame)
    assert 0 <= x and 0 <= y and x + w <= frame[1] and y + h <= frame[0]
    if 1.3 * max(box[2:]) <= min(frame):
        assert w == round(1.3 * max(box[2:]))


def test_crop_square_size_and_content():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[40:60, 90:110] = 255
    crop = crop_square(frame, (90, 40, 20, 20), factor=1.0, size=16)
    assert crop.shape == (16, 16, 3) and crop.min() == 255


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def _face_frame(tiny_set):
    return read_frames(tiny_set.ffpp_root / "original_sequences/youtube/c23/videos/000.mp4", [0])[0]


def test_downscaled_detection_returns_full_frame_boxes(tiny_set):
    frame = _face_frame(tiny_set)
    big = cv2.resize(frame, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    full = detect_faces(frame, HaarConfig(min_size=24))
    small = detect_faces(big, HaarConfig(min_size=96, max_side=frame.shape[0]))
    assert len(full) and len(small)
    assert iou(small[0] / 4, full[0]) > 0.8


def test_detect_near_finds_the_face_around_the_previous_box_and_falls_back(tiny_set):
    frame = _face_frame(tiny_set)
    whole = detect_faces(frame, HaarConfig(min_size=24))[0]
    near = detect_near(frame, whole, HaarConfig(min_size=24))
    assert iou(near[0], whole) > 0.7
    # A stale box far from the face: nothing there, so it falls back to the whole frame.
    far = detect_near(frame, np.array([0, 0, 20, 20]), HaarConfig(min_size=24))
    assert iou(far[0], whole) > 0.7


def test_missing_cascade_message(monkeypatch):
    from dflite.data import faces

    faces.load_cascade.cache_clear()
    monkeypatch.setattr(faces.cv2.data, "haarcascades", str(paths.ROOT / "nowhere") + "/")
    with pytest.raises(RuntimeError, match="opencv-python-headless>=4.10,<5"):
        faces.load_cascade()
    faces.load_cascade.cache_clear()
