"""Replaying a folder of real image files: order, seq, timestamps, pacing, looping."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from appliance.capture import CaptureState, LatestFrameGrabber, open_source
from appliance.config import CaptureConfig
from appliance.paths import shared_data_dir


@pytest.fixture
def frames_dir(tmp_path):
    for i in range(12):
        image = np.zeros((48, 64, 3), np.uint8)
        image[:, :, 2] = i * 20  # red channel carries the frame number, to check order and BGR
        cv2.imwrite(str(tmp_path / f"frame_{i}.png"), image)
    return tmp_path


def test_folder_replays_in_order_with_seq_and_timestamps(frames_dir):
    camera = open_source(str(frames_dir), pace=False)
    frames = []
    with camera:
        while (frame := camera.read()) is not None:
            frames.append(frame)
    assert [f.seq for f in frames] == list(range(12))
    assert [int(f.image[0, 0, 2]) for f in frames] == [i * 20 for i in range(12)]  # frame_2 before frame_10
    assert all(f.image.dtype == np.uint8 and f.image.shape == (48, 64, 3) for f in frames)
    mono = [f.monotonic for f in frames]
    assert mono == sorted(mono)
    assert abs(frames[0].timestamp - time.time()) < 60
    assert frames[0].source == str(frames_dir)


def test_paced_replay_comes_at_the_configured_rate(frames_dir):
    camera = open_source(str(frames_dir), CaptureConfig(fps=50, pace=True))
    with camera:
        stamps = [camera.read().monotonic for _ in range(11)]
    elapsed = stamps[-1] - stamps[0]
    assert 0.19 <= elapsed < 0.5  # 10 intervals at 50 fps = 0.2 s


def test_looping_replay_never_ends_and_seq_keeps_counting(frames_dir):
    camera = open_source(str(frames_dir), loop=True, pace=False)
    with camera:
        frames = [camera.read() for _ in range(30)]
    assert [f.seq for f in frames] == list(range(30))
    assert int(frames[12].image[0, 0, 2]) == 0  # back to the first image


def test_an_undecodable_file_is_skipped(frames_dir):
    (frames_dir / "frame_5.png").write_bytes(b"not a png")
    with open_source(str(frames_dir), pace=False) as camera:
        n = 0
        while camera.read() is not None:
            n += 1
    assert n == 11


def test_grabber_over_a_paced_folder_runs_to_the_end(frames_dir):
    camera = open_source(str(frames_dir), CaptureConfig(fps=100, pace=True))
    with LatestFrameGrabber(camera) as grabber:
        got = []
        while (frame := grabber.get(timeout=2.0)) is not None:
            got.append(frame.seq)
        assert grabber.state is CaptureState.ENDED
        stats = grabber.stats()
    assert got == sorted(got) and got[-1] == 11
    assert stats.frames == 12 and stats.delivered + stats.dropped == 12


def test_the_shared_crowd_photos_replay():
    crowd = shared_data_dir() / "crowd"
    if not crowd.is_dir():
        pytest.skip(f"shared test data not found at {crowd} (set APPLIANCE_SHARED)")
    with open_source(str(crowd), pace=False) as camera:
        sizes = []
        while (frame := camera.read()) is not None:
            sizes.append(frame.image.shape)
    assert len(sizes) == len(list(crowd.glob("*.jpg")))
    assert all(s[2] == 3 for s in sizes)
