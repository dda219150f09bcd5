"""A network camera that goes away is reopened with back-off through the real OpenCV/FFmpeg path.

The "camera" is a local HTTP server streaming MJPEG (multipart/x-mixed-replace), as many IP cameras do;
stopping it is the van losing its camera, starting it again on the same port is the camera coming back.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from appliance.capture import CaptureState, LatestFrameGrabber, open_source


class MjpegCamera:
    """An endless 25 fps MJPEG stream on 127.0.0.1:port that can be switched off and on."""

    def __init__(self, port: int):
        self.port = port
        self.off = threading.Event()
        self.httpd: ThreadingHTTPServer | None = None

    def start(self) -> None:
        off = self.off
        off.clear()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not off.is_set():
                        image = np.full((120, 160, 3), (i * 7) % 200, np.uint8)
                        jpg = cv2.imencode(".jpg", image)[1].tobytes()
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}\r\n\r\n"
                        self.wfile.write(head.encode() + jpg + b"\r\n")
                        i += 1
                        time.sleep(0.04)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.off.set()  # streaming handlers end their responses: the client sees the stream die
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)
    return cond()


def test_lost_network_camera_is_reconnected_with_backoff():
    camera_server = MjpegCamera(free_port())
    camera_server.start()
    changes = []
    camera = open_source(f"http://user:secret@127.0.0.1:{camera_server.port}/video.mjpg")
    assert not camera.finite  # a stream's end is a lost camera, not the end of a replay
    assert "secret" not in camera.name
    grabber = LatestFrameGrabber(camera, reconnect_initial_s=0.05, reconnect_max_s=0.4, on_state=changes.append)
    try:
        grabber.start()
        assert grabber.get(timeout=10) is not None
        assert wait_for(lambda: grabber.stats().frames >= 5, 10)  # a live stream at its own rate
        camera_server.stop()
        assert wait_for(lambda: grabber.state is CaptureState.LOST, 10)
        time.sleep(1.0)  # reopening is refused meanwhile (back-off 0.05, 0.1, 0.2, 0.4, 0.4 ...)
        assert grabber.state is CaptureState.LOST
        seq_before = grabber.stats().last_seq
        camera_server.start()
        assert wait_for(lambda: grabber.stats().reconnects == 1, 10)
        frame = grabber.get(timeout=5)
        assert frame is not None and frame.seq > seq_before  # seq keeps counting across the outage
        assert wait_for(lambda: 15 < grabber.stats().fps < 35, 3)  # measured rate of the 25 fps stream
    finally:
        grabber.stop()
        camera_server.stop()
    kinds = [(c.old.value, c.new.value) for c in changes]
    assert kinds == [("opening", "running"), ("running", "lost"), ("lost", "running"), ("running", "stopped")]
    assert changes[2].reconnected and 3 <= changes[2].attempts <= 10
    assert 1.0 <= changes[2].outage_s < 5.0
