"""A local TLS Mosquitto configured from deploy/mosquitto/ (the deployed config and ACL), for integration
tests, `make bench` and demos. Not used on a van.

    broker = TlsBroker(workdir); broker.start()
    s = broker.settings("van-01")        # MqttSettings: TLS, client certificate with CN van-01
    broker.stop(); broker.start()        # restart on the same port (persistence kept)

Client certificates exist for TlsBroker.CLIENTS; `broker.issue(name)` makes another. The broker runs on a
free port on 127.0.0.1 and is started and stopped by its PID (never by name).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from appliance.paths import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy" / "mosquitto"
ISSUE = DEPLOY / "issue-cert.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def issue(pki: Path, *args: str) -> None:
    subprocess.run([str(ISSUE), args[0], str(pki), *args[1:]], check=True, capture_output=True, text=True)


CONTROL_ROOM = "control-room"
CONTROL_CA_DIR = "control-room-ca"  # the control room's client certificates come from their own CA


def make_pki(pki: Path, clients: list[str]) -> Path:
    """The van CA (pki/ca.crt, the server certificate, van client certificates) and the control room's CA
    (pki/control-room-ca/ca.crt and the control-room client certificate)."""
    issue(pki, "ca")
    issue(pki, "server", "localhost", "127.0.0.1")
    issue(pki / CONTROL_CA_DIR, "ca")
    for c in clients:
        issue(pki / CONTROL_CA_DIR if c == CONTROL_ROOM else pki, "client", c)
    return pki


def broker_config(pki: Path, workdir: Path, port: int, control_port: int) -> str:
    """deploy/mosquitto/mosquitto.conf with the paths and the ports of this test run substituted."""
    text = (DEPLOY / "mosquitto.conf").read_text()
    subs = {
        "persistence_location": (f"{workdir}/", 1),
        "listener 8883": (f"{port} 127.0.0.1", 1),
        "listener 8884": (f"{control_port} 127.0.0.1", 1),
        "cafile /etc/mosquitto/certs/ca.crt": (str(pki / "ca.crt"), 1),
        "cafile /etc/mosquitto/certs/control-room-ca.crt": (str(pki / CONTROL_CA_DIR / "ca.crt"), 1),
        "certfile": (str(pki / "server.crt"), 2),
        "keyfile": (str(pki / "server.key"), 2),
        "acl_file": (str(DEPLOY / "lfr.acl"), 1),
    }
    for key, (value, times) in subs.items():
        name = key.split()[0]
        text, n = re.subn(rf"(?m)^{re.escape(key)}([ \t].*)?$", f"{name} {value}", text)
        assert n == times, f"{key!r} found {n} times in mosquitto.conf, expected {times}"
    # Stay the current user (as root, mosquitto would otherwise switch to 'mosquitto' and lose the keys).
    text += f"\nuser {pwd.getpwuid(os.geteuid()).pw_name}\nlog_dest stdout\nlog_type error\nlog_type warning\n"
    text += "log_type notice\nlog_type information\n"
    return text


class TlsBroker:
    CLIENTS = ("control-room", "van-01", "van-02")

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.pki = make_pki(self.workdir / "pki", list(self.CLIENTS))
        self.port = free_port()
        self.control_port = free_port()
        self.host = "127.0.0.1"
        self.conf = self.workdir / "mosquitto.conf"
        self.conf.write_text(broker_config(self.pki, self.workdir, self.port, self.control_port))
        self.log = self.workdir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The vans' listener."""
        return f"mqtts://{self.host}:{self.port}"

    @property
    def control_url(self) -> str:
        """The control room's listener (its client certificates come from their own CA)."""
        return f"mqtts://{self.host}:{self.control_port}"

    def url_for(self, name: str) -> str:
        return self.control_url if name == CONTROL_ROOM else self.url

    @property
    def ca(self) -> Path:
        return self.pki / "ca.crt"

    def _dir(self, name: str) -> Path:
        return self.pki / CONTROL_CA_DIR if name == CONTROL_ROOM else self.pki

    def cert(self, name: str) -> Path:
        return self._dir(name) / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self._dir(name) / f"{name}.key"

    def issue(self, name: str) -> None:
        if not self.cert(name).exists():
            issue(self._dir(name), "client", name)

    def settings(self, name: str, client_id: str | None = None, **kw):
        """MqttSettings for client `name` on its listener (the control room's, or the vans'). On the vans'
        listener the broker uses the certificate's CN as the client id, whatever `client_id` says."""
        from appliance.sync.mqtt import MqttSettings

        self.issue(name)
        return MqttSettings.from_url(self.url_for(name), client_id or name, ca_file=self.ca,
                                     cert_file=self.cert(name), key_file=self.key(name), **kw)

    def mqtt_config(self, name: str) -> dict:
        """The [mqtt] section of an appliance config for client `name`."""
        self.issue(name)
        return {"broker": self.url_for(name), "ca_file": str(self.ca), "cert_file": str(self.cert(name)),
                "key_file": str(self.key(name))}

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None, "broker already running"
        logf = open(self.log, "ab")  # noqa: SIM115 - kept open for the broker's lifetime
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            try:
                for port in (self.port, self.control_port):
                    with socket.create_connection((self.host, port), timeout=0.2):
                        pass
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None



def missing_tools() -> list[str]:
    return [t for t in ("mosquitto", "openssl") if shutil.which(t) is None]
