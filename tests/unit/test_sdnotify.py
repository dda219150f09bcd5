"""sd_notify against a real AF_UNIX datagram socket bound by the test, as systemd's would be."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

import pytest

from appliance.device import notify
from appliance.device.notify import Notifier, Watchdog, readiness_status, watchdog_interval_s


class NotifySocket:
    """A bound notify socket that collects datagrams, standing in for systemd's end."""

    def __init__(self, address: str | bytes):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)

    def drain(self, wait_s: float = 0.0) -> list[str]:
        end = time.monotonic() + wait_s
        out: list[str] = []
        while True:
            try:
                out.append(self.sock.recv(4096).decode())
            except TimeoutError:
                if time.monotonic() >= end:
                    return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    sock = NotifySocket(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


@pytest.mark.parametrize("use_systemd_python", [False, True], ids=["socket-fallback", "systemd-python"])
def test_ready_status_watchdog_stopping_arrive_as_datagrams(notify_socket, use_systemd_python):
    if use_systemd_python and notify._sd_daemon is None:
        pytest.skip("systemd-python is not installed here (pip install systemd-python; needs libsystemd-dev)")
    n = Notifier(use_systemd_python=use_systemd_python)
    assert n.enabled and n.use_systemd_python == use_systemd_python
    assert n.ready(status="degraded: broker not up")
    assert n.status("running\n12 fps")
    assert n.watchdog()
    assert n.stopping("shutting down")
    got = notify_socket.drain(0.2)
    assert got == [
        "READY=1\nSTATUS=degraded: broker not up",
        "STATUS=running 12 fps",  # a STATUS is one line: newlines would start new assignments
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=shutting down",
    ]


def test_abstract_socket_name_with_at_sign(monkeypatch):
    name = f"appliance-test-{uuid.uuid4().hex}"
    sock = NotifySocket(b"\0" + name.encode())
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert Notifier(use_systemd_python=False).ready()
        assert sock.drain(0.2) == ["READY=1"]
    finally:
        sock.close()


def test_without_systemd_everything_is_a_quiet_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    n = Notifier()
    assert not n.enabled
    assert n.ready() is False and n.watchdog() is False
    wd = Watchdog(n)
    assert not wd.enabled
    wd.start()  # no thread, no error
    wd.progress("frames")
    wd.stop()


def test_a_vanished_socket_does_not_raise(tmp_path):
    n = Notifier(socket_path=str(tmp_path / "gone.sock"))
    assert n.watchdog() is False


def test_watchdog_interval_comes_from_watchdog_usec_and_pid():
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None  # not ours
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None


def test_readiness_status_names_what_is_down():
    assert readiness_status({"camera": True, "models": True}) == "ready"
    assert readiness_status({"camera": False, "models": True, "broker": "tls error"}) == (
        "degraded: camera, broker not up"
    )


class TinyPipeline:
    """A frame loop that reports progress per frame and can be deadlocked on purpose."""

    def __init__(self, watchdog: Watchdog):
        self.watchdog = watchdog
        self.stage_lock = threading.Lock()  # a stage holding this forever = a deadlocked stage
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            with self.stage_lock:
                time.sleep(0.005)  # "process a frame"
            self.watchdog.progress("frames")


def test_watchdog_pets_while_progressing_and_stops_when_the_pipeline_stalls(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # systemd would restart after 0.2 s without a pet
    wd = Watchdog(Notifier(use_systemd_python=False))
    assert wd.interval_s == pytest.approx(0.1)  # pets at half the timeout
    pipe = TinyPipeline(wd)
    pipe.thread.start()
    with wd:
        healthy = notify_socket.drain(0.65)
        assert healthy.count("WATCHDOG=1") >= 4, healthy
        # Deadlock the stage: frames stop, so pets must stop too.
        pipe.stage_lock.acquire()
        notify_socket.drain(0.15)  # let an in-flight tick (with progress before the lock) pass
        stalled = notify_socket.drain(0.6)
        assert "WATCHDOG=1" not in stalled, stalled
        assert any(m.startswith("STATUS=stalled: frames") for m in stalled), stalled
        # The stage recovers before systemd acts: pets resume and the status says so.
        pipe.stage_lock.release()
        recovered = notify_socket.drain(0.5)
        assert "WATCHDOG=1" in recovered and "STATUS=running" in recovered, recovered
    pipe.stop.set()
    pipe.thread.join()


def test_a_stalled_camera_stops_pets_even_when_other_stages_tick(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    wd = Watchdog(Notifier(use_systemd_python=False), required=("frames", "broker"))
    wd.progress("broker")  # the uplink is alive, but no frame ever arrives
    assert wd.check() is False
    assert wd.stalled_stages() == ["frames"]
    wd.progress("frames")
    wd.progress("broker")
    assert wd.check() is True
    assert wd.check() is False  # no new progress since that pet: no second pet
    msgs = notify_socket.drain(0.2)
    assert msgs.count("WATCHDOG=1") == 1
    assert msgs[0].startswith("STATUS=stalled: frames (never)")
