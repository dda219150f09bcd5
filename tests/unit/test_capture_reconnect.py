"""A lost camera is reopened with growing back-off and reported once per state change, never a crash."""

from __future__ import annotations

import logging
import time

import numpy as np

from appliance.capture.base import Camera, Frame
from appliance.capture.latest import Backoff, CaptureState, LatestFrameGrabber
from appliance.config import CaptureConfig
from appliance.errors import CaptureError


class FlakyCamera(Camera):
    """Opening fails `fail_opens` times, then works; reading fails once after `fail_read_after` frames."""

    def __init__(self, fail_opens: int = 0, fail_read_after: int | None = None, crash: bool = False):
        super().__init__("rtsp://user:pw@flaky/cam")
        self.fail_opens, self.fail_read_after, self.crash = fail_opens, fail_read_after, crash
        self.open_times: list[float] = []
        self._open = False
        self._reads_since_open = 0

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        self.open_times.append(time.monotonic())
        if len(self.open_times) <= self.fail_opens:
            if self.crash:
                raise OSError("device vanished")  # not a CaptureError: the grabber must survive it too
            raise CaptureError(f"{self.name}: cannot open")
        self._open = True
        self._reads_since_open = 0

    def read(self) -> Frame | None:
        if self.fail_read_after is not None and self._reads_since_open >= self.fail_read_after:
            self.fail_read_after = None
            raise CaptureError(f"{self.name}: no frame")
        self._reads_since_open += 1
        time.sleep(0.002)
        return self._frame(np.zeros((2, 2, 3), np.uint8))

    def close(self) -> None:
        self._open = False


def wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.005)
    return cond()


def test_backoff_doubles_up_to_the_maximum_and_resets():
    b = Backoff(0.5, 3.0)
    assert [b.step() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.step() == 0.5


def test_failing_open_is_retried_with_growing_backoff_then_reported_reconnected(caplog):
    camera = FlakyCamera(fail_opens=4)
    changes = []
    config = CaptureConfig(reconnect_initial_s=0.02, reconnect_max_s=0.1)
    caplog.set_level(logging.INFO, logger="appliance.capture")
    with LatestFrameGrabber.from_config(camera, config, on_state=changes.append) as grabber:
        assert grabber.get(timeout=5.0) is not None
        assert grabber.state is CaptureState.RUNNING
    gaps = np.diff(camera.open_times)
    assert len(camera.open_times) == 5
    # waits of 0.02, 0.04, 0.08, 0.1 (capped): each gap is at least its back-off (a constant or
    # missing back-off fails here), and none is far beyond the cap
    for gap, expected in zip(gaps, [0.02, 0.04, 0.08, 0.1], strict=True):
        assert expected * 0.95 <= gap < 1.0
    kinds = [(c.old, c.new) for c in changes]
    assert kinds[:2] == [(CaptureState.OPENING, CaptureState.LOST), (CaptureState.LOST, CaptureState.RUNNING)]
    assert changes[1].reconnected and changes[1].attempts == 4
    # one log line per state change, not per failed attempt, and no password in any of them
    lost_lines = [r for r in caplog.records if "lost" in r.getMessage()]
    assert len(lost_lines) == 1
    assert all("pw" not in r.getMessage() for r in caplog.records)


def test_a_camera_lost_while_running_is_reopened_and_frames_resume():
    camera = FlakyCamera(fail_read_after=5)
    changes = []
    with LatestFrameGrabber(camera, reconnect_initial_s=0.01, on_state=changes.append) as grabber:
        assert wait_for(lambda: grabber.stats().reconnects == 1)
        before = grabber.stats().last_seq
        assert wait_for(lambda: grabber.stats().last_seq > before + 3)  # frames flow again
        frame = grabber.get(timeout=2.0)
    assert [(c.old.value, c.new.value) for c in changes][:3] == [
        ("opening", "running"), ("running", "lost"), ("lost", "running")
    ]
    assert "read failed" in changes[1].reason
    assert frame.seq > 5  # seq keeps counting across the reopen
    assert len(camera.open_times) == 2


def test_unexpected_exceptions_from_a_backend_are_survived():
    camera = FlakyCamera(fail_opens=2, crash=True)
    changes = []
    with LatestFrameGrabber(camera, reconnect_initial_s=0.01, on_state=changes.append) as grabber:
        assert grabber.get(timeout=5.0) is not None
    assert "OSError" not in changes[0].reason and "device vanished" in changes[0].reason


def test_a_broken_state_callback_does_not_stop_capture():
    def explode(change):
        raise RuntimeError("observer bug")

    with LatestFrameGrabber(FlakyCamera(fail_opens=1), reconnect_initial_s=0.01, on_state=explode) as grabber:
        assert grabber.get(timeout=5.0) is not None


def test_stop_interrupts_a_long_backoff():
    camera = FlakyCamera(fail_opens=100)
    grabber = LatestFrameGrabber(camera, reconnect_initial_s=30, reconnect_max_s=30).start()
    assert wait_for(lambda: grabber.state is CaptureState.LOST)
    t0 = time.monotonic()
    grabber.stop()
    assert time.monotonic() - t0 < 1.0
    assert len(camera.open_times) == 1


class SilentCamera(FlakyCamera):
    """Opens fine but delivers nothing for its first `silent_opens` opens (a stream that accepts, then dies)."""

    def __init__(self, silent_opens: int):
        super().__init__()
        self.silent_opens = silent_opens

    def read(self) -> Frame | None:
        if len(self.open_times) <= self.silent_opens:
            raise CaptureError(f"{self.name}: no frame")
        return super().read()


def test_a_camera_that_opens_but_gives_no_frame_is_still_lost_and_backs_off():
    camera = SilentCamera(silent_opens=4)
    changes = []
    with LatestFrameGrabber(camera, reconnect_initial_s=0.02, reconnect_max_s=0.1, on_state=changes.append) as g:
        assert g.get(timeout=5.0) is not None
    # no running/lost flapping on each successful open: running only once frames arrive
    assert [(c.old.value, c.new.value) for c in changes][:2] == [("opening", "lost"), ("lost", "running")]
    gaps = np.diff(camera.open_times)
    for gap, expected in zip(gaps, [0.02, 0.04, 0.08, 0.1], strict=True):
        assert expected * 0.95 <= gap < 1.0  # the back-off grew: it was not reset by the empty opens
