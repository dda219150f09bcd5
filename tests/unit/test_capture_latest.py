"""LatestFrameGrabber keeps only the newest frame: a slow consumer skips frames, never falls behind."""

from __future__ import annotations

import threading
import time

import numpy as np

from appliance.capture.base import Camera, Frame
from appliance.capture.latest import CaptureState, LatestFrameGrabber


class TickingCamera(Camera):
    """A camera that makes a tiny frame every `interval` s; finite after `limit` frames if given."""

    def __init__(self, interval: float = 0.005, limit: int | None = None):
        super().__init__("ticking")
        self.interval, self.limit = interval, limit
        self.finite = limit is not None
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        self._open = True

    def read(self) -> Frame | None:
        if self.limit is not None and self._seq + 1 >= self.limit:
            return None
        time.sleep(self.interval)
        return self._frame(np.zeros((4, 4, 3), np.uint8))

    def close(self) -> None:
        self._open = False


def test_slow_consumer_gets_the_newest_frame_and_the_rest_are_dropped():
    with LatestFrameGrabber(TickingCamera(interval=0.005)) as grabber:
        seqs = []
        for _ in range(6):
            frame = grabber.get(timeout=2.0)
            assert frame is not None
            seqs.append(frame.seq)
            time.sleep(0.05)  # the "pipeline" takes ten camera frames' time
            newest = grabber.stats().last_seq
            assert newest > frame.seq  # the camera kept going meanwhile
        stats = grabber.stats()
    gaps = np.diff(seqs)
    assert (gaps > 1).all(), seqs  # seq jumps: we never worked through a backlog
    assert stats.dropped > 0
    assert stats.frames == stats.delivered + stats.dropped + (stats.last_seq > seqs[-1])
    assert 50 < stats.fps < 250  # measured capture rate (nominal 200/s, sleep granularity allowing)


def test_get_never_returns_the_same_frame_twice():
    with LatestFrameGrabber(TickingCamera(interval=0.02)) as grabber:
        seqs = [grabber.get(timeout=2.0).seq for _ in range(5)]
    assert seqs == sorted(set(seqs))


def test_fast_consumer_sees_every_frame_and_drops_none():
    with LatestFrameGrabber(TickingCamera(interval=0.02, limit=10)) as grabber:
        seqs = []
        while (frame := grabber.get(timeout=2.0)) is not None:
            seqs.append(frame.seq)
        assert grabber.state is CaptureState.ENDED
        assert grabber.stats().dropped == 0
    assert seqs == list(range(10))


def test_end_of_a_finite_source_is_ended_not_lost():
    changes = []
    grabber = LatestFrameGrabber(TickingCamera(interval=0.001, limit=3), on_state=changes.append).start()
    deadline = time.monotonic() + 3
    while not grabber.ended and time.monotonic() < deadline:
        time.sleep(0.01)
    assert grabber.get(timeout=0.1) is not None or grabber.stats().delivered == 0
    t0 = time.monotonic()
    while grabber.get(timeout=5.0) is not None:
        pass
    assert time.monotonic() - t0 < 1.0  # get() returns at once after the end, no waiting for the timeout
    grabber.stop()
    states = [(c.old, c.new) for c in changes]
    assert states == [
        (CaptureState.OPENING, CaptureState.RUNNING),
        (CaptureState.RUNNING, CaptureState.ENDED),
        (CaptureState.ENDED, CaptureState.STOPPED),
    ]
    assert not any(c.new is CaptureState.LOST for c in changes)


def test_stop_wakes_a_waiting_consumer_and_closes_the_camera():
    camera = TickingCamera(interval=10.0)  # no frame will come in time
    grabber = LatestFrameGrabber(camera).start()
    result = []
    waiter = threading.Thread(target=lambda: result.append(grabber.get(timeout=30)))
    waiter.start()
    time.sleep(0.05)
    grabber.stop(timeout=0.1)
    waiter.join(2.0)
    assert not waiter.is_alive() and result == [None]
    assert grabber.state is CaptureState.STOPPED


def test_get_times_out_with_none():
    with LatestFrameGrabber(TickingCamera(interval=0.4)) as grabber:
        t0 = time.monotonic()
        assert grabber.get(timeout=0.1) is None
        assert 0.09 < time.monotonic() - t0 < 1.0
