"""`open_source()`: from the configured camera URI to a `Camera` back-end.

URI forms (CaptureConfig.source):
  picamera2:N          Pi CSI camera N (picamera2, only on a Pi)
  v4l2:/dev/videoN     a V4L2 device (USB camera); also v4l2:N, /dev/videoN, or a bare index N
  rtsp://... rtsps://  a network stream (OpenCV + FFmpeg)
  http://... https://  an MJPEG/HLS/file URL (OpenCV + FFmpeg)
  gst:PIPELINE         a GStreamer pipeline (needs OpenCV built with GStreamer, e.g. on a Jetson)
  PATH                 a video file, a folder of images, one image, or a glob such as 'frames/*.jpg'
  file:PATH            the same, explicitly
Problems no retry can fix (bad URI, missing file, missing library) raise CaptureError here, at once.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

from appliance.capture.base import Camera, redact
from appliance.capture.folder import IMAGE_SUFFIXES, FolderCamera, list_images
from appliance.capture.opencv import OpenCVCamera, has_gstreamer
from appliance.config import CaptureConfig
from appliance.errors import CaptureError

NETWORK_SCHEMES = ("rtsp", "rtsps", "http", "https")
KNOWN = "picamera2:N, v4l2:/dev/videoN, rtsp://, http(s)://, gst:PIPELINE, a video file, or a folder of images"
# Appended to a GStreamer pipeline that does not end in its own appsink: BGR frames, newest only.
GST_SINK = "videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", re.S)


def open_source(
    uri: str | Path, config: CaptureConfig | None = None, *, loop: bool | None = None, pace: bool | None = None
) -> Camera:
    """The back-end for `uri`, configured but not yet opened (call `.open()`, or hand it to the grabber).

    `loop` and `pace` apply to replay sources (files, folders) and default to the config's values.
    """
    cfg = config or CaptureConfig()
    loop = cfg.loop if loop is None else loop
    pace = cfg.pace if pace is None else pace
    text = str(uri).strip()
    if not text:
        raise CaptureError(f"capture source is empty: expected {KNOWN}")
    live = {"width": cfg.width, "height": cfg.height, "fps": cfg.fps}

    m = _SCHEME.match(text)
    scheme = m.group(1).lower() if m else ""
    rest = m.group(2) if m else ""
    if scheme in ("picamera2", "picam"):
        from appliance.capture.picam import PiCamera  # picamera2 is imported only when chosen

        return PiCamera(_index(rest or "0", text), **live)
    if scheme == "v4l2":
        return _v4l2(rest, text, live)
    if scheme in NETWORK_SCHEMES:
        if not rest.startswith("//") or len(rest) <= 2:
            raise CaptureError(f"capture source '{redact(text)}': expected {scheme}://host[:port]/path")
        return OpenCVCamera(text, "url", **live)
    if scheme == "gst":
        return _gstreamer(rest.strip(), live)
    if scheme == "file":
        return _path(rest, loop=loop, pace=pace, fps=cfg.fps)
    if text.startswith("/dev/") or text.isdigit():
        return _v4l2(text, text, live)
    if Path(text).exists() or glob.has_magic(text):
        return _path(text, loop=loop, pace=pace, fps=cfg.fps)
    if scheme and len(scheme) > 1:  # one letter would be a Windows drive, not a scheme
        raise CaptureError(f"capture source '{redact(text)}': unknown scheme '{scheme}:'; expected {KNOWN}")
    raise CaptureError(f"capture source '{text}': no such file or folder; expected {KNOWN}")


def _index(text: str, uri: str) -> int:
    if not text.strip().isdigit():
        raise CaptureError(f"capture source '{uri}': camera index must be a number such as 0, got '{text}'")
    return int(text)


def _v4l2(rest: str, uri: str, live: dict) -> Camera:
    rest = rest.strip()
    if rest.isdigit():
        return OpenCVCamera(int(rest), "v4l2", name=f"v4l2:{rest}", **live)
    if not rest.startswith("/dev/"):
        raise CaptureError(f"capture source '{uri}': expected v4l2:/dev/videoN or v4l2:N")
    # The device may appear later (USB camera plugged in): the grabber retries, so no existence check here.
    return OpenCVCamera(rest, "v4l2", name=f"v4l2:{rest}", **live)


def _gstreamer(pipeline: str, live: dict) -> Camera:
    if not pipeline:
        raise CaptureError("capture source 'gst:': the GStreamer pipeline is empty")
    if not has_gstreamer():
        raise CaptureError(
            "capture source 'gst:...': this OpenCV build has no GStreamer support (the pip wheels lack it); "
            "use the system python3-opencv in a --system-site-packages venv"
        )
    if "appsink" not in pipeline:
        pipeline = f"{pipeline} ! {GST_SINK}"
    return OpenCVCamera(pipeline, "gst", name="gst:" + pipeline.split("!")[0].strip(), **live)


def _path(text: str, *, loop: bool, pace: bool, fps: float) -> Camera:
    path = Path(text).expanduser()
    if path.is_dir() or (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES) or glob.has_magic(text):
        if not list_images(text):
            raise CaptureError(f"capture source '{text}': no images found (expected .jpg/.png/... files)")
        return FolderCamera(text, fps=fps if pace else None, loop=loop)
    if not path.is_file():
        raise CaptureError(f"capture source '{text}': no such file or folder")
    return OpenCVCamera(str(path), "file", loop=loop, pace=pace, fps=fps)
