"""The one small interface every capture back-end implements, and the frame it produces.

Contract for back-ends:
- `open()` raises `CaptureError` when the source cannot be opened (a retry may succeed later);
- `read()` returns the next `Frame`, returns `None` only at the end of a *finite* source (a file or a
  folder that does not loop), and raises `CaptureError` when a live camera is lost;
- `close()` is idempotent and never raises.
Problems no retry can fix (a bad URI, a missing library) are raised by `open_source()` instead, so the
capture thread never retries them forever.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One camera frame. Lives only in memory."""

    image: np.ndarray  # (H, W, 3) uint8, BGR
    seq: int  # increases by one per frame read from this source (across reopens and loops)
    timestamp: float  # wall clock (time.time()) when the frame was read: for people and events
    monotonic: float  # time.monotonic() at the same moment: for intervals and latency
    source: str  # the camera's name (credentials redacted)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def redact(uri: str) -> str:
    """A URI fit for logs and status messages: any password in it is replaced by ***."""
    return re.sub(r"(://[^/:@\s]*):[^/@\s]*@", r"\1:***@", uri)


class Camera(ABC):
    """A frame source. Not thread-safe: one thread reads it (see `LatestFrameGrabber`)."""

    finite: bool = False  # True for files and non-looping folders: their end is not a lost camera

    def __init__(self, name: str):
        self.name = redact(name)
        self._seq = -1

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def read(self) -> Frame | None: ...

    @abstractmethod
    def close(self) -> None: ...

    @property
    @abstractmethod
    def is_open(self) -> bool: ...

    def _frame(self, image: np.ndarray) -> Frame:
        """Stamp an image as this source's next frame (seq keeps counting across reopens)."""
        self._seq += 1
        return Frame(image=image, seq=self._seq, timestamp=time.time(), monotonic=time.monotonic(), source=self.name)

    def __enter__(self) -> Camera:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Pacer:
    """Sleeps so that replayed frames come at a given rate, like a live camera.

    If the reader falls behind, the schedule restarts from now instead of bursting to catch up.
    """

    def __init__(self, fps: float):
        self.interval = 1.0 / fps
        self._due: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self._due is None or now - self._due > self.interval:
            self._due = now
        elif self._due > now:
            time.sleep(self._due - now)
        self._due += self.interval

    def reset(self) -> None:
        self._due = None
