"""`make demo` works end to end: broker, keys, signed watchlist, daemon, console, and a first alert."""

import socket
import subprocess
import sys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_reaches_its_first_alert_on_the_console(tmp_path, lfw_dir, nasa_dir):
    r = subprocess.run([sys.executable, "-m", "appliance.devtools.demo", "--check", "--dir", str(tmp_path / "demo"),
                        "--port", str(free_port()), "--timeout", "240"], capture_output=True, text=True, timeout=600)
    log = (tmp_path / "demo" / "daemon.log")
    assert r.returncode == 0, r.stdout + r.stderr + (log.read_text()[-3000:] if log.exists() else "")
    assert "first alert on the console" in r.stdout
    daemon_log = log.read_text()
    assert "Traceback" not in daemon_log, daemon_log[-3000:]
    assert "appliance stopped" in daemon_log  # clean shutdown on SIGTERM
