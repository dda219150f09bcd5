"""`appliance control listen` refuses bad input with one line and exit status 2, never a stack trace."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", "control", "listen", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("args", "message"), [
    (["--broker", "http://x", "--db", "c.db"], "broker URL 'http://x' must look like mqtts://host:port"),
    (["--broker", "mqtts://127.0.0.1:1", "--db", "c.db"], "needs --ca, --cert and --key"),
    (["--broker", "mqtt://127.0.0.1:1", "--db", "c.db"], "cannot reach the broker at 127.0.0.1:1"),
    (["--broker", "mqtt://127.0.0.1:1", "--db", "enc.db"], "its key is missing (key file enc.db.keys/enc.key)"),
    (["--broker", "mqtt://127.0.0.1:1", "--db", "enc.db", "--plain-db"],
     "file is not a database (encrypted? give --db-keys)"),
    (["--broker", "mqtt://127.0.0.1:1", "--db", "plain.db", "--db-keys", "keys"], "its key is missing"),
    (["--broker", "mqtt://127.0.0.1:1", "--db", "c.db", "--crop-days", "0"], "--crop-days must be more than 0"),
], ids=["url", "tls-files", "unreachable", "encrypted-without-key", "encrypted-as-plain", "plain-with-key",
        "crop-days"])
def test_refusals_are_one_line(tmp_path, args, message):
    (tmp_path / "enc.db").write_bytes(bytes(range(256)) * 16)
    import sqlite3

    sqlite3.connect(tmp_path / "plain.db").execute("CREATE TABLE t (x)").connection.close()
    r = _run(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("appliance control: error: ") and message in lines[0], r.stderr
