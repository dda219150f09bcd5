"""Helpers for the outbox/receiver integration tests: a stand-in van and the control-room receiver, each a
real process (python -m appliance.events.burst / appliance control listen), with their output lines."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from appliance.control.store import ControlStore, default_keys_dir, open_control_db
from appliance.events.store import EventStore
from appliance.keys.keypairs import generate_control_room
from appliance.storage import KeyFileProvider


class Proc:
    """A child process whose merged stdout/stderr lines are collected by a thread (waitable)."""

    def __init__(self, args: list[str], name: str):
        self.name = name
        self.lines: list[str] = []
        self._cond = threading.Condition()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, pattern: str, timeout: float) -> str:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if rx.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    tail = "\n".join(self.lines[-30:])
                    raise AssertionError(f"{self.name}: no line matching {pattern!r} within {timeout} s; "
                                         f"exit {self.proc.poll()}; last lines:\n{tail}")
                self._cond.wait(min(left, 0.2))

    def kill(self) -> None:
        """SIGKILL by PID: no clean-up code of the child runs."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)

    def terminate(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not stop on SIGTERM") from None
        self._reader.join(5)
        return rc


def receipt_keys(broker) -> Path:
    """The control room's Ed25519 pair for this broker's tests: the receiver signs receipts with it and the
    stand-in vans pin its public half (lfr.receipt/2)."""
    d = broker.workdir / "control-room-keys"
    if not (d / "control-room.ed25519.key").exists():
        generate_control_room(d)
    return d


def van(broker, data: Path, *, count: int, interval: float = 0.03, device: str = "van-01",
        receipt_timeout: float = 2.0, extra: tuple[str, ...] = ()) -> Proc:
    pinned = receipt_keys(broker) / "control-room.ed25519.pub"
    return Proc([sys.executable, "-m", "appliance.events.burst", "--data-dir", str(data), "--device", device,
                 "--broker", broker.url, "--ca", str(broker.ca), "--cert", str(broker.cert(device)),
                 "--key", str(broker.key(device)), "--count", str(count), "--interval", str(interval),
                 "--receipt-timeout", str(receipt_timeout), "--retry-max", "1", "--control-room-key", str(pinned),
                 *extra], f"van {device}")


def receiver(broker, db: Path, keys: Path | None = None, client_id: str | None = None,
             signing_key: Path | None = None) -> Proc:
    """signing_key: the control room's key the van pins (default: receipt_keys(broker))."""
    client_id = client_id or f"cr-{uuid.uuid4().hex[:8]}"  # a fresh persistent session per test
    signing_key = signing_key or receipt_keys(broker) / "control-room.ed25519.key"
    args = [sys.executable, "-m", "appliance", "control", "listen", "--broker", broker.control_url, "--db", str(db),
            "--ca", str(broker.ca), "--cert", str(broker.cert("control-room")), "--key",
            str(broker.key("control-room")), "--client-id", client_id, "--signing-key", str(signing_key)]
    if keys is not None:
        args += ["--db-keys", str(keys)]
    p = Proc(args, "receiver")
    p.wait_line(r"listening on ", 20)
    return p


def kill_broker(broker) -> None:
    """SIGKILL the broker by PID: it has no chance to save its in-memory state."""
    os.kill(broker.proc.pid, signal.SIGKILL)
    broker.proc.wait(10)
    broker.proc = None


def van_outbox(data: Path) -> list[dict]:
    store = EventStore.open(data, KeyFileProvider(data / "keys"), create=False)
    try:
        return store.outbox(limit=100000)
    finally:
        store.close()


def control_arrivals(db: Path, keys: Path | None, device: str) -> list[dict]:
    """keys None: the receiver's default key folder (appliance control listen encrypts by default)."""
    store = ControlStore(open_control_db(db, KeyFileProvider(keys or default_keys_dir(db))))
    try:
        return store.arrivals(device)
    finally:
        store.close()


def check_exactly_once_in_order(outbox: list[dict], arrivals: list[dict], printed: list[str]) -> int:
    """Every outbox event arrived exactly once, in the van's outbox order, and was printed exactly once."""
    expected = [r["event_id"] for r in outbox]
    got = [a["event_id"] for a in arrivals]
    missing = set(expected) - set(got)
    assert not missing, f"{len(missing)} of {len(expected)} events never arrived"
    assert len(got) == len(set(got)), "an event was stored twice"
    assert got == expected, "events arrived out of the van's order"
    assert [a["seq"] for a in arrivals] == [r["id"] for r in outbox]
    for eid in expected:
        n = sum(1 for line in printed if len(line.split()) > 3 and line.split()[2] in ("alert", "decision")
                and line.split()[3] == eid)
        assert n == 1, f"event {eid} printed {n} times"
    return len(expected)
