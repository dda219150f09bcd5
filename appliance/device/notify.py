"""sd_notify(3) for the daemon: READY, STATUS, STOPPING and a watchdog that pets only on real progress.

systemd starts the daemon as `Type=notify` with `WatchdogSec=`. It sets $NOTIFY_SOCKET (a filesystem path or
an abstract socket name starting with '@') and $WATCHDOG_USEC. We use systemd-python's
`systemd.daemon.notify` when it is importable and otherwise send the datagram ourselves; the protocol is one
AF_UNIX datagram of newline-separated KEY=VALUE lines. Without systemd (a developer's shell, tests) every call
is a cheap no-op.

The watchdog is the point: a thread that pets systemd on a timer would keep a hung pipeline alive for ever.
`Watchdog` pets (WATCHDOG=1) at half of WATCHDOG_USEC *only if every required stage reported progress since
the last pet*, so a stalled camera or a deadlocked stage stops the pets and systemd restarts the service.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

try:  # systemd-python is optional: it is sdist-only and compiles against libsystemd-dev on the device.
    from systemd import daemon as _sd_daemon  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the machine
    _sd_daemon = None


def _socket_address(name: str) -> str | bytes:
    # An abstract socket is written '@name' in the environment and addressed with a leading NUL byte.
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    return name


class Notifier:
    """Sends sd_notify messages to $NOTIFY_SOCKET (or to `socket_path` when given, as tests do)."""

    def __init__(self, socket_path: str | None = None, use_systemd_python: bool | None = None):
        self.socket_path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET")
        if use_systemd_python is None:
            # systemd-python reads $NOTIFY_SOCKET itself, so it is used only when we were not given a path.
            use_systemd_python = _sd_daemon is not None and socket_path is None
        self.use_systemd_python = bool(use_systemd_python and _sd_daemon is not None)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.socket_path)

    def notify(self, *assignments: str) -> bool:
        """Send KEY=VALUE lines in one datagram; False when there is no socket or sending failed."""
        if not self.enabled:
            return False
        message = "\n".join(assignments)
        if self.use_systemd_python:
            return bool(_sd_daemon.notify(message))
        try:
            with self._lock, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(_socket_address(self.socket_path))
                s.sendall(message.encode())
            return True
        except OSError as e:
            # Never let a vanished notify socket take the daemon down; systemd will notice the silence.
            log.warning("sd_notify to %s failed: %s", self.socket_path, e)
            return False

    def ready(self, status: str | None = None) -> bool:
        parts = ["READY=1"]
        if status:
            parts.append(f"STATUS={_one_line(status)}")
        return self.notify(*parts)

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        parts = ["STOPPING=1"] + ([f"STATUS={_one_line(status)}"] if status else [])
        return self.notify(*parts)



def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def watchdog_interval_s(environ: dict[str, str] | None = None) -> float | None:
    """systemd's watchdog timeout in seconds, or None when no watchdog is configured for *this* process."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None  # the watchdog belongs to another process (e.g. we are a child)
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 if value > 0 else None


def readiness_status(components: dict[str, bool | str]) -> str:
    """STATUS= text for READY: 'ready' or 'degraded: camera, broker' naming what is not up."""
    down = [name for name, ok in components.items() if ok is not True]
    return "ready" if not down else "degraded: " + ", ".join(down) + " not up"


class Watchdog:
    """Pets systemd only while the pipeline makes progress.

    The daemon calls `progress(stage)` each time a stage completes a unit of work (e.g. `progress("frames")`
    for every processed frame). A timer thread wakes every `interval_s` (half of WATCHDOG_USEC by default)
    and sends WATCHDOG=1 only if every stage in `required` progressed since the previous pet. When one has
    not, it sends no pet and a STATUS= naming the stalled stage; if the stall lasts a whole WATCHDOG_USEC,
    systemd kills and restarts the service (Restart=on-failure).
    """

    def __init__(
        self,
        notifier: Notifier | None = None,
        interval_s: float | None = None,
        required: Iterable[str] = ("frames",),
        clock: Callable[[], float] = time.monotonic,
    ):
        self.notifier = notifier or Notifier()
        timeout = watchdog_interval_s()
        self.interval_s = interval_s if interval_s is not None else (timeout / 2 if timeout else None)
        self.required = tuple(required)
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(self.required, 0)
        self._at_last_pet: dict[str, int] = dict.fromkeys(self.required, 0)
        self._last_seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pets = 0
        self.missed = 0

    @property
    def enabled(self) -> bool:
        return self.interval_s is not None and self.notifier.enabled

    def progress(self, stage: str = "frames", n: int = 1) -> None:
        """Record that `stage` did `n` units of work. Cheap: called on the hot path."""
        with self._lock:
            self._counts[stage] = self._counts.get(stage, 0) + n
            self._last_seen[stage] = self._clock()

    def stalled_stages(self) -> list[str]:
        with self._lock:
            return [s for s in self.required if self._counts.get(s, 0) == self._at_last_pet.get(s, 0)]

    def check(self) -> bool:
        """One tick: pet if every required stage progressed since the last pet; returns whether it did."""
        stalled = self.stalled_stages()
        if stalled:
            self.missed += 1
            now = self._clock()
            ages = ", ".join(
                f"{s} (last {now - self._last_seen[s]:.1f}s ago)" if s in self._last_seen else f"{s} (never)"
                for s in stalled
            )
            log.warning("watchdog: no progress from %s; not petting systemd", ages)
            self.notifier.status(f"stalled: {ages}")
            return False
        with self._lock:
            self._at_last_pet = {s: self._counts.get(s, 0) for s in self.required}
        if self.missed:
            self.notifier.status("running")  # recovered from a short stall before systemd acted
            self.missed = 0
        self.pets += 1
        self.notifier.watchdog()
        return True

    def start(self) -> Watchdog:
        """Start the timer thread (a no-op without systemd's watchdog)."""
        if not self.enabled or self._thread is not None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self.interval_s is not None
        while not self._stop.wait(self.interval_s):
            self.check()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Watchdog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
