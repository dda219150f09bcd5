"""Capture: camera back-ends behind one small interface, and the newest-frame grabber.

    camera = open_source(config.capture.source, config.capture)
    with LatestFrameGrabber.from_config(camera, config.capture, on_state=report) as grabber:
        while (frame := grabber.get(timeout=1.0)) is not None or not grabber.ended: ...

Back-ends: `opencv` (V4L2, RTSP/HTTP, GStreamer, video files), `folder` (images), `picam` (picamera2,
imported only when chosen). See docs/capture.md.
"""

from appliance.capture.base import Camera, Frame
from appliance.capture.latest import CaptureState, GrabberStats, LatestFrameGrabber, StateChange
from appliance.capture.sources import open_source

__all__ = ["Camera", "CaptureState", "Frame", "GrabberStats", "LatestFrameGrabber", "StateChange", "open_source"]
