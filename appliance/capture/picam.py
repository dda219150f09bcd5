"""picamera2 back-end for the Raspberry Pi CSI camera.

picamera2 (and libcamera under it) exist only on a Pi, installed by apt, so the module is imported when
this source is chosen, never at package import. Off a Pi, choosing it gives one clear line.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from appliance.capture.base import Camera, Frame
from appliance.errors import CaptureError

log = logging.getLogger(__name__)

NOT_INSTALLED = (
    "picamera2 is not installed: this source needs a Raspberry Pi with python3-picamera2 (apt) "
    "in a --system-site-packages venv"
)
READ_TIMEOUT_S = 2.0  # a CSI camera that delivers nothing for this long is lost


def import_picamera2() -> Any:
    """The Picamera2 class, or CaptureError with the one-line reason it is unavailable."""
    try:
        from picamera2 import Picamera2  # type: ignore[import-not-found]
    except ImportError:
        raise CaptureError(NOT_INSTALLED) from None
    except Exception as e:  # libcamera present but broken: still one line, not a trace
        raise CaptureError(f"picamera2 cannot be loaded: {type(e).__name__}: {e}") from None
    return Picamera2


class PiCamera(Camera):
    """Frames from a Pi CSI camera at the requested size and rate, as BGR arrays."""

    def __init__(self, index: int = 0, *, width: int = 1920, height: int = 1080, fps: float = 30.0):
        super().__init__(f"picamera2:{index}")
        self._Picamera2 = import_picamera2()
        self.index, self.width, self.height, self.fps = index, width, height, fps
        self._cam: Any = None

    @property
    def is_open(self) -> bool:
        return self._cam is not None

    def open(self) -> None:
        self.close()
        try:
            cameras = self._Picamera2.global_camera_info()
        except Exception as e:
            raise CaptureError(f"{self.name}: libcamera cannot list cameras: {e}") from None
        if self.index >= len(cameras):
            raise CaptureError(
                f"{self.name}: no such camera ({len(cameras)} found; check the ribbon cable and "
                "camera_auto_detect in /boot/firmware/config.txt)"
            )
        frame_us = int(1_000_000 / self.fps)
        try:
            cam = self._Picamera2(self.index)
            # libcamera's "RGB888" is B,G,R in memory: exactly OpenCV's BGR, no conversion needed.
            config = cam.create_video_configuration(
                main={"size": (self.width, self.height), "format": "RGB888"},
                controls={"FrameDurationLimits": (frame_us, frame_us)},
            )
            cam.configure(config)
            cam.start()
        except Exception as e:
            raise CaptureError(f"{self.name}: cannot start: {e}") from None
        self._cam = cam

    def read(self) -> Frame | None:
        if self._cam is None:
            raise CaptureError(f"{self.name}: read before open")
        try:
            try:
                image = self._cam.capture_array("main", wait=READ_TIMEOUT_S)
            except TypeError:  # picamera2 older than 0.3.17 has no wait argument
                image = self._cam.capture_array("main")
        except Exception as e:
            raise CaptureError(f"{self.name}: no frame ({type(e).__name__})") from None
        return self._frame(np.ascontiguousarray(image[:, :, :3]))

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is None:
            return
        for step in (cam.stop, cam.close):
            try:
                step()
            except Exception:
                log.debug("%s: %s failed", self.name, step.__name__, exc_info=True)
