"""`LatestFrameGrabber`: a capture thread that keeps only the newest frame.

The pipeline takes frames with `get()`; a frame it did not take in time is overwritten (and counted as
dropped), so the pipeline never works on a backlog and its latency does not grow when it is slower than
the camera. A lost camera is reopened with exponential back-off, forever, and reported once per state
change (a callback and one log line), never per frame and never as a crash. The end of a finite source
(a file, a folder) is its own state, distinct from a lost camera.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from appliance.capture.base import Camera, Frame
from appliance.config import CaptureConfig

log = logging.getLogger(__name__)

FPS_WINDOW_S = 2.0  # capture rate is measured over this many seconds


class CaptureState(str, enum.Enum):
    OPENING = "opening"  # first open not yet done
    RUNNING = "running"  # frames are arriving
    LOST = "lost"  # open or read failed (or opened but gave no frame); reopening with back-off
    ENDED = "ended"  # a finite source (file, folder) has no more frames
    STOPPED = "stopped"  # stop() was called


@dataclass(frozen=True)
class StateChange:
    """One transition, as given to the state callback. `reason` carries no frame content."""

    old: CaptureState
    new: CaptureState
    source: str
    reason: str = ""
    attempts: int = 0  # failed reopen attempts before this change (for LOST -> RUNNING)
    outage_s: float = 0.0  # how long the camera was lost (for LOST -> RUNNING)

    @property
    def reconnected(self) -> bool:
        return self.old is CaptureState.LOST and self.new is CaptureState.RUNNING


@dataclass(frozen=True)
class GrabberStats:
    state: CaptureState
    frames: int  # frames read from the camera
    delivered: int  # frames handed to the consumer
    dropped: int  # frames overwritten before the consumer took them
    fps: float  # capture rate over the last FPS_WINDOW_S
    reconnects: int  # LOST -> RUNNING transitions
    last_seq: int  # newest frame's sequence number, -1 before the first


StateCallback = Callable[[StateChange], None]


class Backoff:
    """Waits that double from `initial` up to `maximum`; reset after a success."""

    def __init__(self, initial: float, maximum: float):
        self.initial, self.maximum = initial, max(initial, maximum)
        self.next = initial

    def step(self) -> float:
        delay, self.next = self.next, min(self.next * 2.0, self.maximum)
        return delay

    def reset(self) -> None:
        self.next = self.initial


class LatestFrameGrabber:
    """Reads `camera` on its own thread; `get()` returns the newest frame not yet returned."""

    def __init__(
        self,
        camera: Camera,
        *,
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        on_state: StateCallback | None = None,
    ):
        self.camera = camera
        self.backoff = Backoff(reconnect_initial_s, reconnect_max_s)
        self.on_state = on_state
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = CaptureState.OPENING
        self._newest: Frame | None = None
        self._taken_seq = -1  # seq of the last frame handed out
        self._frames = self._delivered = self._dropped = self._reconnects = 0
        self._times: deque[float] = deque()
        self._lost_since = 0.0
        self._failed_attempts = 0

    @classmethod
    def from_config(
        cls, camera: Camera, config: CaptureConfig, on_state: StateCallback | None = None
    ) -> LatestFrameGrabber:
        return cls(
            camera,
            reconnect_initial_s=config.reconnect_initial_s,
            reconnect_max_s=config.reconnect_max_s,
            on_state=on_state,
        )

    # -- consumer side -------------------------------------------------------------------------------

    def start(self) -> LatestFrameGrabber:
        if self._thread is not None:
            raise RuntimeError("grabber already started")
        self._thread = threading.Thread(target=self._run, name=f"capture {self.camera.name}", daemon=True)
        self._thread.start()
        return self

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not returned before; waits up to `timeout` s. None on timeout, end, or stop."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                frame = self._newest
                if frame is not None and frame.seq > self._taken_seq:
                    self._taken_seq = frame.seq
                    self._delivered += 1
                    return frame
                if self._state in (CaptureState.ENDED, CaptureState.STOPPED):
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close the camera. Safe to call twice."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            # A network read can block for its timeout; the thread is a daemon so exit never hangs.
            self._thread.join(timeout)
        if self._thread is None or not self._thread.is_alive():
            self.camera.close()
        self._set_state(CaptureState.STOPPED, "stop requested")

    def __enter__(self) -> LatestFrameGrabber:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def state(self) -> CaptureState:
        return self._state

    @property
    def ended(self) -> bool:
        return self._state is CaptureState.ENDED

    def stats(self) -> GrabberStats:
        with self._cond:
            return GrabberStats(
                state=self._state,
                frames=self._frames,
                delivered=self._delivered,
                dropped=self._dropped,
                fps=self._fps(),
                reconnects=self._reconnects,
                last_seq=self._newest.seq if self._newest is not None else -1,
            )

    def _fps(self) -> float:
        t = self._times
        if len(t) < 2 or time.monotonic() - t[-1] > FPS_WINDOW_S:
            return 0.0
        return (len(t) - 1) / (t[-1] - t[0]) if t[-1] > t[0] else 0.0

    # -- capture thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self.camera.is_open and not self._open():
                    continue
                if not self._read_one():
                    return
        except Exception as e:  # a bug here must not die silently: report it as a lost camera
            log.exception("capture %s: capture thread failed", self.camera.name)
            self._set_state(CaptureState.LOST, f"capture thread failed: {type(e).__name__}")
        finally:
            self.camera.close()

    def _open(self) -> bool:
        # Success here is not yet "running": a camera (or stream) can accept the open and then deliver
        # nothing. Running, and the back-off reset, wait for the first frame (see _read_one).
        try:
            self.camera.open()
        except Exception as e:
            self._lost(f"open failed: {_one_line(e)}")
            return False
        return True

    def _read_one(self) -> bool:
        """Read and publish one frame. False when the source has ended (thread exits)."""
        try:
            frame = self.camera.read()
        except Exception as e:
            self.camera.close()
            self._lost(f"read failed: {_one_line(e)}")
            return True
        if frame is None:
            if self.camera.finite:
                self._set_state(CaptureState.ENDED, "end of source")
                return False
            self.camera.close()
            self._lost("read returned no frame")
            return True
        if self._state is not CaptureState.RUNNING:
            self.backoff.reset()
            self._set_state(CaptureState.RUNNING, "frames arriving")
            self._failed_attempts = 0
        now = time.monotonic()
        with self._cond:
            if self._newest is not None and self._newest.seq > self._taken_seq:
                self._dropped += 1  # the consumer never saw it: the newest-frame policy at work
            self._newest = frame
            self._frames += 1
            self._times.append(now)
            while self._times and now - self._times[0] > FPS_WINDOW_S:
                self._times.popleft()
            self._cond.notify_all()
        return True

    def _lost(self, reason: str) -> None:
        if self._state is not CaptureState.LOST:
            self._lost_since = time.monotonic()
            self._failed_attempts = 0
            with self._cond:
                self._times.clear()  # a rate measured across an outage would mean nothing
        self._failed_attempts += 1
        self._set_state(CaptureState.LOST, reason)
        self._stop.wait(self.backoff.step())

    def _set_state(self, new: CaptureState, reason: str) -> None:
        with self._cond:
            old = self._state
            if old is new or old is CaptureState.STOPPED:
                return
            self._state = new
            self._cond.notify_all()
        change = StateChange(old, new, self.camera.name, reason)
        if change.reconnected:
            self._reconnects += 1
            change = StateChange(
                old, new, self.camera.name, reason, self._failed_attempts, time.monotonic() - self._lost_since
            )
            log.warning(
                "capture %s: reconnected after %d attempts (%.1f s)",
                self.camera.name, change.attempts, change.outage_s,
            )
        elif new is CaptureState.LOST:
            log.warning("capture %s: lost (%s); reopening with back-off", self.camera.name, reason)
        else:
            log.info("capture %s: %s (%s)", self.camera.name, new.value, reason)
        if self.on_state is not None:
            try:
                self.on_state(change)
            except Exception:  # a broken observer must not stop the camera
                log.exception("capture %s: state callback failed", self.camera.name)


def _one_line(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]
