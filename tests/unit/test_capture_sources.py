"""open_source(): each URI form picks its back-end; a bad URI is one clear CaptureError, at once."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from appliance.capture.folder import FolderCamera
from appliance.capture.opencv import OpenCVCamera, has_gstreamer
from appliance.capture.sources import open_source
from appliance.config import CaptureConfig
from appliance.errors import CaptureError


@pytest.fixture
def images(tmp_path):
    for i in (1, 2, 10):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((8, 8, 3), i, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


@pytest.mark.parametrize(
    ("uri", "target", "kind"),
    [
        ("v4l2:/dev/video3", "/dev/video3", "v4l2"),
        ("v4l2:2", 2, "v4l2"),
        ("/dev/video0", "/dev/video0", "v4l2"),
        ("1", 1, "v4l2"),
        ("rtsp://cam.local:554/stream1", "rtsp://cam.local:554/stream1", "url"),
        ("https://example.org/live.m3u8", "https://example.org/live.m3u8", "url"),
    ],
)
def test_live_uris_pick_the_opencv_backend(uri, target, kind):
    cam = open_source(uri, CaptureConfig(width=1280, height=720, fps=15))
    assert isinstance(cam, OpenCVCamera)
    assert (cam.target, cam.kind) == (target, kind)
    assert (cam.width, cam.height, cam.fps) == (1280, 720, 15)
    assert not cam.finite and not cam.is_open  # configured, not opened


def test_password_in_a_stream_url_never_reaches_the_name():
    cam = open_source("rtsp://admin:s3cret@10.0.0.5/h264")
    assert "s3cret" not in cam.name and "admin:***@10.0.0.5" in cam.name


def test_folder_glob_and_single_image_are_replay_sources(images):
    folder = open_source(str(images), pace=False)
    assert isinstance(folder, FolderCamera) and folder.finite
    folder.open()
    assert [p.name for p in folder.files] == ["f1.png", "f2.png", "f10.png"]  # natural order, images only
    one = open_source(f"file:{images / 'f2.png'}", loop=True)
    assert isinstance(one, FolderCamera) and not one.finite
    pattern = open_source(str(images / "f1*.png"))
    pattern.open()
    assert [p.name for p in pattern.files] == ["f1.png", "f10.png"]


def test_pace_follows_the_config_fps(images):
    assert open_source(str(images), CaptureConfig(fps=12.5, pace=True)).fps == 12.5
    assert open_source(str(images), CaptureConfig(pace=True), pace=False).fps is None


def test_a_video_file_is_finite_unless_looped(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0")  # open_source only classifies; decoding is the integration test's job
    assert open_source(str(clip)).finite
    assert not open_source(str(clip), loop=True).finite


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("ftp://host/video", "unknown scheme 'ftp:'"),
        ("picamera2:front", "camera index must be a number"),
        ("v4l2:video0", "expected v4l2:/dev/videoN"),
        ("rtsp:", "expected rtsp://host"),
        ("gst:", "pipeline is empty"),
        ("/nonexistent/clip.mp4", "no such file or folder"),
        ("file:/nonexistent/frames", "no such file or folder"),
        ("/nonexistent/*.jpg", "no images found"),
    ],
)
def test_bad_uris_give_one_clear_line(uri, words):
    with pytest.raises(CaptureError) as e:
        open_source(uri)
    assert words in str(e.value)
    assert "\n" not in str(e.value)


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(CaptureError, match="no images found"):
        open_source(str(tmp_path))


def test_gstreamer_without_support_says_so():
    if has_gstreamer():
        cam = open_source("gst:videotestsrc")
        assert "appsink" in cam.target  # a sink is added so frames reach OpenCV
    else:
        with pytest.raises(CaptureError, match="no GStreamer support"):
            open_source("gst:videotestsrc ! appsink")


def test_password_is_redacted_in_errors_too():
    with pytest.raises(CaptureError) as e:
        open_source("mms://user:pw123@host/x")
    assert "pw123" not in str(e.value)
