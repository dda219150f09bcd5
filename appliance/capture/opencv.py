"""OpenCV back-end: a V4L2 device, an RTSP/HTTP stream, a GStreamer pipeline, or a video file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from appliance.capture.base import Camera, Frame, Pacer
from appliance.errors import CaptureError

log = logging.getLogger(__name__)

Kind = Literal["v4l2", "url", "gst", "file"]

# A network stream that stops answering must not block the capture thread forever.
NETWORK_TIMEOUT_MS = 5000


def has_gstreamer() -> bool:
    """Whether this OpenCV build can open GStreamer pipelines (the pip wheels cannot; Jetson's OpenCV can)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


class OpenCVCamera(Camera):
    """Frames through `cv2.VideoCapture`.

    `target` is a device path or index (v4l2), a URL, a GStreamer pipeline ending in appsink, or a file.
    A video file is finite: its end returns None from `read()`; with `loop` it starts again instead.
    With `pace`, a file is read at its own frame rate, like a live camera.
    """

    def __init__(
        self,
        target: str | int,
        kind: Kind,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        loop: bool = False,
        pace: bool = False,
        name: str | None = None,
    ):
        super().__init__(name or (f"{kind}:{target}" if kind in ("v4l2", "gst") else str(target)))
        self.target = target
        self.kind: Kind = kind
        self.width, self.height, self.fps = width, height, fps
        self.loop = loop
        self.pace = pace
        self.finite = kind == "file" and not loop
        self._cap: cv2.VideoCapture | None = None
        self._pacer: Pacer | None = None

    @property
    def is_open(self) -> bool:
        return self._cap is not None

    def _capture(self) -> cv2.VideoCapture:
        if self.kind == "v4l2":
            return cv2.VideoCapture(self.target, cv2.CAP_V4L2)
        if self.kind == "gst":
            return cv2.VideoCapture(str(self.target), cv2.CAP_GSTREAMER)
        if self.kind == "url":
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, NETWORK_TIMEOUT_MS]
            params += [cv2.CAP_PROP_READ_TIMEOUT_MSEC, NETWORK_TIMEOUT_MS]
            return cv2.VideoCapture(str(self.target), cv2.CAP_FFMPEG, params)
        return cv2.VideoCapture(str(self.target))

    def open(self) -> None:
        self.close()
        if self.kind == "file" and not Path(str(self.target)).is_file():
            raise CaptureError(f"{self.name}: video file not found")
        cap = self._capture()
        if not cap.isOpened():
            cap.release()
            raise CaptureError(f"{self.name}: cannot open ({self._hint()})")
        if self.kind == "v4l2":
            # USB cameras deliver 1080p at full rate only as MJPEG; a camera without it ignores the request.
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
            # Keep the driver's queue short: we want the newest frame, not a backlog.
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if self.kind in ("v4l2", "url"):
            if self.width and self.height:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.fps:
                cap.set(cv2.CAP_PROP_FPS, self.fps)
        self._cap = cap
        if self.pace and self.kind == "file":
            native = cap.get(cv2.CAP_PROP_FPS)
            self._pacer = Pacer(native if 0 < native <= 240 else (self.fps or 30.0))
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        log.debug("%s: opened at %dx%d, %.1f fps", self.name, w, h, cap.get(cv2.CAP_PROP_FPS))

    def _hint(self) -> str:
        return {
            "v4l2": "is the camera plugged in and is the device readable by this user (group video)?",
            "url": "is the stream reachable, and are the address and credentials right?",
            "gst": "check the pipeline with gst-launch-1.0; it must end in appsink",
            "file": "not a video format this OpenCV build can decode",
        }[self.kind]

    def read(self) -> Frame | None:
        if self._cap is None:
            raise CaptureError(f"{self.name}: read before open")
        ok, image = self._cap.read()
        if not ok and self.kind == "file" and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._cap.read()
        if not ok or image is None:
            if self.finite:
                return None
            raise CaptureError(f"{self.name}: no frame (camera lost or stream ended)")
        if self._pacer is not None:
            self._pacer.wait()
        if image.ndim == 2:  # some GStreamer/V4L2 formats arrive as grey
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        return self._frame(np.ascontiguousarray(image))

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            try:
                cap.release()
            except Exception:  # releasing a dead device must not raise
                log.debug("%s: release failed", self.name, exc_info=True)
