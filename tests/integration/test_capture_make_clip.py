"""make_clip builds a replay video that OpenCV plays back, with the photos panning and zooming."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from appliance.capture import open_source
from appliance.devtools.make_clip import make_clip
from appliance.errors import ApplianceError
from appliance.paths import shared_data_dir


def _photo(path, colour):
    image = np.full((300, 400, 3), 90, np.uint8)
    cv2.rectangle(image, (150, 100), (250, 200), colour, -1)  # a 100x100 "face" in the middle
    cv2.imwrite(str(path), image)
    return path


def _square(frame: np.ndarray, channel: int) -> tuple[int, float]:
    """Width and centre x of the bright square in one colour channel."""
    mask = frame[:, :, channel] > 180
    cols = np.where(mask.any(axis=0))[0]
    return int(cols[-1] - cols[0] + 1), float(cols.mean())


def _read_all(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def test_clip_plays_back_with_the_right_size_length_and_motion(tmp_path):
    photos = [_photo(tmp_path / "a.png", (0, 0, 255)), _photo(tmp_path / "b.png", (255, 0, 0))]
    info = make_clip(photos, tmp_path / "out" / "clip.mp4", size=(320, 240), seconds=2, fps=10, seed=3)
    frames = _read_all(info.path)
    assert len(frames) == info.frames == 20
    assert frames[0].shape == (240, 320, 3)
    assert [(s.first_frame, s.last_frame) for s in info.segments] == [(0, 9), (10, 19)]
    for seg, channel in zip(info.segments, (2, 0), strict=True):
        w0, x0 = _square(frames[seg.first_frame], channel)
        w1, x1 = _square(frames[seg.last_frame], channel)
        # the square's size follows the zoom (within codec blur), so faces change scale
        assert w1 / w0 == pytest.approx(seg.zoom_end / seg.zoom_start, rel=0.15)
        assert min(w0, w1) < 0.6 * 100 * 240 / 300  # at the far end it is smaller than in the photo
        assert abs(x1 - x0) > 2 or abs(w1 - w0) > 10  # and it moves


def test_same_seed_same_clip_and_it_replays_through_open_source(tmp_path):
    photo = _photo(tmp_path / "a.png", (0, 255, 0))
    a = make_clip([photo], tmp_path / "a.mp4", size=(160, 120), seconds=1, fps=5, seed=7)
    b = make_clip([photo], tmp_path / "b.mp4", size=(160, 120), seconds=1, fps=5, seed=7)
    assert a.segments == b.segments
    with open_source(str(a.path), pace=False) as camera:
        seqs = []
        while (frame := camera.read()) is not None:
            seqs.append(frame.seq)
    assert seqs == list(range(5))


def test_bad_input_is_one_clear_error(tmp_path):
    with pytest.raises(ApplianceError, match="cannot read image"):
        make_clip([tmp_path / "missing.jpg"], tmp_path / "x.mp4", size=(160, 120), seconds=1, fps=5)
    assert not (tmp_path / "x.mp4").exists()  # no half-written clip left behind
    with pytest.raises(ApplianceError, match="need at least 3 frames"):
        make_clip([tmp_path / "a.jpg"] * 3, tmp_path / "x.mp4", size=(160, 120), seconds=0.2, fps=5)


def test_command_line(tmp_path):
    photo = _photo(tmp_path / "a.png", (0, 0, 255))
    cmd = [sys.executable, "-m", "appliance.devtools.make_clip", "--out", str(tmp_path / "c.mp4"),
           "--size", "160x120", "--seconds", "1", "--fps", "4", str(photo)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "4 frames" in done.stdout and len(_read_all(tmp_path / "c.mp4")) == 4
    bad = subprocess.run([*cmd[:5], "--size", "big", *cmd[7:]], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "make_clip: error: size 'big' is not WIDTHxHEIGHT, e.g. 1280x720"


def test_clip_from_the_shared_photos(tmp_path):
    data = shared_data_dir()
    photos = sorted((data / "crowd").glob("*.jpg"))[:2] + sorted((data / "nasa").glob("*/portrait.jpg"))[:2]
    if len(photos) < 4:
        pytest.skip(f"shared test data not found at {data} (set APPLIANCE_SHARED)")
    info = make_clip(photos, tmp_path / "street.mp4", size=(640, 360), seconds=2, fps=6)
    frames = _read_all(info.path)
    assert len(frames) == 12 and frames[0].shape == (360, 640, 3)
    assert len({s.image for s in info.segments}) == 4


def test_motion_stays_within_street_speeds(tmp_path):
    from appliance.devtools.make_clip import MAX_PAN_PER_S, MAX_ZOOM_PER_S

    photos = [_photo(tmp_path / f"{i}.png", (0, 0, 255)) for i in range(6)]
    info = make_clip(photos, tmp_path / "s.mp4", size=(320, 240), seconds=6, fps=5, seed=11)
    for seg in info.segments:
        seconds = (seg.last_frame - seg.first_frame + 1) / info.fps
        assert abs(np.log(seg.zoom_end / seg.zoom_start)) <= np.log(MAX_ZOOM_PER_S) * seconds + 1e-9
        (s0, c0), (s1, c1) = seg.view(seg.first_frame), seg.view(seg.last_frame)
        travel_px = np.linalg.norm(c1 - c0) * np.sqrt(s0 * s1)
        assert travel_px <= MAX_PAN_PER_S * info.width * seconds + 1e-6
    # the mapping back to the photo is exact: the square's centre (200, 150) is found where it is drawn
    frames = _read_all(info.path)
    _, x = _square(frames[3], 2)
    rows = np.where((frames[3][:, :, 2] > 180).any(axis=1))[0]
    back = info.to_photo(3, [x, rows.mean()])
    assert np.allclose(back, [200, 150], atol=6 / info.segment_at(3).view(3)[0])
