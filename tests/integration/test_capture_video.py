"""A real mp4 written by cv2.VideoWriter plays through the OpenCV back-end and the grabber."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from appliance.capture import CaptureState, LatestFrameGrabber, open_source
from appliance.capture.opencv import OpenCVCamera
from appliance.errors import CaptureError

N_FRAMES, FPS, SIZE = 20, 25.0, (160, 120)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    assert writer.isOpened()
    for i in range(N_FRAMES):
        image = np.full((SIZE[1], SIZE[0], 3), 40, np.uint8)
        x = 5 + i * 6  # a white square walks right: frame order is visible in the pixels
        image[40:80, x : x + 30] = 255
        writer.write(image)
    writer.release()
    return path


def _square_x(image: np.ndarray) -> int:
    cols = np.where(image[60, :, 1] > 150)[0]
    return int(cols[0])


def test_video_file_plays_every_frame_in_order_then_ends(clip):
    camera = open_source(str(clip), pace=False)
    assert isinstance(camera, OpenCVCamera) and camera.kind == "file" and camera.finite
    frames = []
    with camera:
        while (frame := camera.read()) is not None:
            frames.append(frame)
        assert camera.read() is None  # the end stays the end
    assert len(frames) == N_FRAMES
    assert [f.seq for f in frames] == list(range(N_FRAMES))
    assert frames[0].image.shape == (SIZE[1], SIZE[0], 3) and frames[0].image.dtype == np.uint8
    xs = [_square_x(f.image) for f in frames]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 100


def test_paced_video_plays_at_its_own_frame_rate(clip):
    with open_source(str(clip), pace=True) as camera:
        stamps = [camera.read().monotonic for _ in range(11)]
    assert 0.38 <= stamps[-1] - stamps[0] < 0.9  # 10 intervals at 25 fps = 0.4 s


def test_looped_video_restarts(clip):
    with open_source(str(clip), loop=True, pace=False) as camera:
        frames = [camera.read() for _ in range(N_FRAMES + 3)]
    assert frames[-1].seq == N_FRAMES + 2
    assert _square_x(frames[N_FRAMES].image) == _square_x(frames[0].image)


def test_grabber_reports_end_of_file_as_ended(clip):
    changes = []
    with LatestFrameGrabber(open_source(str(clip), pace=True), on_state=changes.append) as grabber:
        seqs = []
        while (frame := grabber.get(timeout=2.0)) is not None:
            seqs.append(frame.seq)
        assert grabber.state is CaptureState.ENDED
    assert seqs[-1] == N_FRAMES - 1
    assert CaptureState.LOST not in [c.new for c in changes]


def test_a_file_that_is_not_a_video_cannot_be_opened(tmp_path):
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("this is not a video")
    camera = open_source(str(bogus))
    with pytest.raises(CaptureError, match="cannot open"):
        camera.open()


def test_an_absent_v4l2_device_is_a_capture_error_not_a_crash():
    camera = open_source("v4l2:/dev/video99")
    with pytest.raises(CaptureError, match="cannot open"):
        camera.open()
