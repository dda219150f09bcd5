"""The real daemon under a real notify socket: READY=1, then WATCHDOG=1 only while frames are processed.

The test plays systemd's part. It binds the AF_UNIX datagram socket that systemd would pass as
$NOTIFY_SOCKET, sets $WATCHDOG_USEC as `WatchdogSec=` does, and starts `appliance run` (a child process, with
systemd-python's sd_notify where installed) on a network camera: MJPEG over HTTP through the real
OpenCV/FFmpeg path. Then it freezes the camera on purpose: the connection stays open and no frame comes, as
with a hung IP camera or a wedged driver. The daemon must stop petting and say which stage stalled; systemd
would then SIGABRT and restart it (Restart=on-failure), which this test does itself once a whole
WATCHDOG_USEC passes without a pet, and checks that the daemon dies of it. A short stall that ends in time
must resume the pets, with STATUS=running.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from accountability_helpers import provision_device
from mosquitto_fixtures import free_port
from outbox_helpers import Proc

WATCHDOG_S = 4.0  # WatchdogSec= for the test (the shipped unit says 30 s): pets every 2 s


class FreezableMjpegCamera:
    """An MJPEG stream on 127.0.0.1 that can freeze (connection open, no frames) and thaw."""

    def __init__(self, crowd_image: Path):
        frame = cv2.resize(cv2.imread(str(crowd_image)), (640, 360))
        self.jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
        self.flowing = threading.Event()
        self.flowing.set()
        self.frames_sent = 0
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while True:
                        camera.flowing.wait()  # frozen: hold the connection, send nothing
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(camera.jpeg)}\r\n\r\n"
                        self.wfile.write(head.encode() + camera.jpeg + b"\r\n")
                        camera.frames_sent += 1
                        time.sleep(0.1)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.flowing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class NotifySocket:
    """systemd's end of sd_notify: a bound datagram socket; every message with its arrival time."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def pets(self, since: float = 0.0) -> list[float]:
        return [t for t, m in list(self.messages) if m.get("WATCHDOG") == "1" and t >= since]

    def statuses(self, since: float = 0.0) -> list[str]:
        return [m["STATUS"] for t, m in list(self.messages) if "STATUS" in m and t >= since]

    def wait(self, pred, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = pred()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; got {self.messages[-10:]}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def camera(crowd_dir):
    cam = FreezableMjpegCamera(crowd_dir / "13.jpg")
    yield cam
    cam.close()


@pytest.fixture
def daemon(tmp_path, tls_broker, camera, monkeypatch):
    _, cfg_path, _ = provision_device(tmp_path, n_subjects=0)
    mqtt = tls_broker.mqtt_config("van-01")
    cfg_path.write_text(
        cfg_path.read_text()
        + f'[capture]\nsource = "{camera.url}"\nfps = 10\nwidth = 640\nheight = 360\n'
        + "[mqtt]\n" + "".join(f'{k} = "{v}"\n' for k, v in mqtt.items())
        + f'[console]\nbind = "127.0.0.1"\nport = {free_port()}\n')
    notify = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    monkeypatch.setenv("WATCHDOG_USEC", str(int(WATCHDOG_S * 1e6)))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    proc = Proc([sys.executable, "-m", "appliance", "run", "--config", str(cfg_path)], "daemon")
    yield proc, notify
    if proc.proc.poll() is None:
        proc.proc.terminate()
        proc.proc.wait(timeout=30)
    notify.close()


def test_ready_then_pets_only_while_frames_flow(daemon, camera):
    proc, notify = daemon
    ready = notify.wait(lambda: [m for _, m in notify.messages if m.get("READY") == "1"], 120, "READY=1")
    assert ready[0]["STATUS"].startswith("running"), ready  # degraded: no watchlist, and says so
    assert "degraded" in ready[0]["STATUS"] and "watchlist" in ready[0]["STATUS"]

    # Frames flow: a pet every WATCHDOG_USEC/2.
    t0 = time.monotonic()
    notify.wait(lambda: len(notify.pets(t0)) >= 3, 20, "three pets while frames flow")
    gaps = np.diff(notify.pets(t0))
    assert gaps.max() < WATCHDOG_S, gaps

    # A short stall (under WatchdogSec): the pets pause, the status names the stage, then all resumes.
    camera.flowing.clear()
    frozen = time.monotonic()
    notify.wait(lambda: any(s.startswith("stalled: frames") for s in notify.statuses(frozen)), 10,
                "STATUS=stalled: frames")
    camera.flowing.set()
    thawed = time.monotonic()
    notify.wait(lambda: notify.pets(thawed), 20, "pets again after the camera came back")
    assert "running" in notify.statuses(thawed)
    assert proc.proc.poll() is None

    # Frozen for good: no pet for a whole WATCHDOG_USEC. systemd would abort it now; so does the test.
    # The first tick after the freeze may still pet for a frame processed just before it (on a loaded machine
    # the frame loop lags); from the first tick that finds no progress on, there must be none.
    camera.flowing.clear()
    frozen = time.monotonic()
    notify.wait(lambda: any(s.startswith("stalled: frames") for s in notify.statuses(frozen)), 2 * WATCHDOG_S,
                "STATUS=stalled: frames after the camera froze for good")
    quiet_from = time.monotonic()
    time.sleep(WATCHDOG_S + 1.0)
    assert notify.pets(quiet_from) == [], "the watchdog kept petting a daemon whose camera is frozen"
    last_pet = max(notify.pets(), default=0.0)
    assert time.monotonic() - last_pet > WATCHDOG_S, "systemd would not have seen the watchdog expire"
    stalled = [s for s in notify.statuses(frozen) if s.startswith("stalled: frames")]
    assert stalled and "last" in stalled[-1], stalled  # "stalled: frames (last 3.2s ago)"
    assert proc.proc.poll() is None, "the daemon must not exit by itself: systemd decides"
    os.kill(proc.proc.pid, signal.SIGABRT)  # what systemd does when WatchdogSec= expires
    assert proc.proc.wait(timeout=30) == -signal.SIGABRT
    assert any("watchdog: no progress from frames" in line for line in proc.lines)
