"""A real NTP server for tests: chronyd serving this machine's clock on a free UDP port, stopped by PID.

`-x` means chronyd never touches the system clock; `local stratum 8` makes it answer as a synchronised server
with nothing upstream (this sandbox reaches no public NTP). Its command sockets are off (`cmdport 0`,
`bindcmdaddress /`), so `chronyc` on this machine does not mistake it for the device's own NTP daemon. Under
libfaketime (LD_PRELOAD, FAKETIME=+120s) the same chronyd serves a clock two minutes ahead, so the self-test's
measurement can be seen to fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHRONYD = shutil.which("chronyd") or "/usr/sbin/chronyd"
LIBFAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), None)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        s.sendto(b"\x23" + 47 * b"\0", ("127.0.0.1", port))  # SNTP v4 client request
        try:
            return len(s.recv(48)) == 48
        except OSError:
            return False


@contextmanager
def chrony_time_server(folder: Path, *, offset_s: int = 0) -> Iterator[str]:
    """Yield '127.0.0.1:PORT' of a running chronyd; `offset_s` shifts the time it serves (libfaketime)."""
    if not Path(CHRONYD).exists():
        pytest.skip("chronyd missing: apt-get install chrony")
    env = dict(os.environ)
    if offset_s:
        if LIBFAKETIME is None:
            pytest.skip("libfaketime missing: apt-get install faketime")
        # Preloaded into chronyd itself (not the `faketime` wrapper), so the PID we stop is chronyd's.
        env.update(LD_PRELOAD=LIBFAKETIME, FAKETIME=f"{offset_s:+d}s", DONT_FAKE_MONOTONIC="1")
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_udp_port()
    conf = folder / "chrony.conf"
    conf.write_text(
        f"port {port}\nbindaddress 127.0.0.1\ncmdport 0\nbindcmdaddress /\nlocal stratum 8\nallow 127.0.0.1\n"
        f"pidfile {folder / 'chronyd.pid'}\n"
    )
    log = (folder / "chronyd.log").open("wb")
    proc = subprocess.Popen([CHRONYD, "-x", "-d", "-u", "root", "-f", str(conf)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not _answers(port):
            assert proc.poll() is None, (folder / "chronyd.log").read_text()
            assert time.monotonic() < deadline, "chronyd did not answer within 10 s"
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
