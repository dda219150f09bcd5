"""Reload that tells the truth, on the running daemon (`appliance run` as a child process, SIGHUP as systemd
sends it): a changed threshold is applied between frames and audited; a changed setting no running part can take
(`detector.tiles`) is not applied, is audited as `config.needs_restart` and is shown on the console's status;
a threshold below the calibrated floor is refused by a reload (nothing changes, `config.refused`) and by a start.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from accountability_helpers import open_events, provision_device
from daemon_env import OFFICER, PIN, Console, wait_for
from mosquitto_fixtures import free_port
from outbox_helpers import Proc

from appliance.officers.store import OfficerStore
from appliance.runtime.manifest import load_manifest
from appliance.storage import KeyFileProvider


@pytest.fixture
def van(tmp_path, crowd_dir):
    _, cfg_path, _ = provision_device(tmp_path)
    port = free_port()
    base = cfg_path.read_text() + (f'[capture]\nsource = "{crowd_dir}"\nloop = true\nfps = 5.0\n'
                                   f'[console]\nbind = "127.0.0.1"\nport = {port}\n')
    cfg_path.write_text(base)
    data = tmp_path / "data"
    officers = OfficerStore.open(data, KeyFileProvider(data / "keys"))
    officers.add(OFFICER, PIN, display_name="PC 1234 Patel")
    officers.close()
    return cfg_path, base, data, f"http://127.0.0.1:{port}"


def _calibration():
    return load_manifest(None).get("mobilefacenet-int8", "embedder").calibration


def _audit(data) -> list:
    store, audit = open_events(data)
    try:
        assert audit.verify().ok
        return [(r[0], json.loads(r[1])) for r in store.db.conn.execute("SELECT kind, data FROM audit ORDER BY seq")]
    finally:
        store.close()


def test_sighup_applies_what_can_change_and_says_what_needs_a_restart(van):
    cfg_path, base, data, url = van
    cal = _calibration()
    raised = round(cal.threshold + 0.05, 4)
    daemon = Proc([sys.executable, "-m", "appliance", "run", "--no-mqtt", "--config", str(cfg_path)], "daemon")
    console = None
    try:
        daemon.wait_line(r"appliance \S+ running", 120)
        console = Console(url).login()
        status = console.status()["status"]
        assert status["threshold"] == cal.threshold and status["warnings"] == []

        cfg_path.write_text(base + f"[matcher]\nthreshold = {raised}\n[detector]\ntiles = [1, 2]\n")
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_line(r"configuration reloaded", 30)
        status = console.status()["status"]
        assert status["threshold"] == raised  # applied
        assert any("detector.tiles" in w and "restart" in w for w in status["warnings"]), status["warnings"]

        # Below the floor: the whole reload is refused, the running threshold stays.
        cfg_path.write_text(base + f"[matcher]\nthreshold = {cal.floor - 0.01:.4f}\n")
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_line(r"reload refused", 30)
        assert console.status()["status"]["threshold"] == raised

        # The file back as it was started: nothing waits for a restart any more, the banner goes.
        cfg_path.write_text(base)
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: console.status()["status"]["warnings"] == [], 30, "the restart warning to clear")
        assert console.status()["status"]["threshold"] == cal.threshold
    finally:
        if console is not None:
            console.close()
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.proc.wait(30)

    entries = _audit(data)
    kinds = [k for k, _ in entries]
    changed = [d for k, d in entries if k == "config.changed"]
    assert changed[0]["settings"] == {"matcher.threshold": {"from": None, "to": raised}}
    assert ("threshold.changed", {"from": cal.threshold, "to": raised}) in entries
    restart = [d for k, d in entries if k == "config.needs_restart"]
    assert restart == [{"settings": {"detector.tiles": {"running": "auto", "file": [1, 2]}}}]
    refused = [d for k, d in entries if k == "config.refused"]
    assert len(refused) == 1 and "floor" in refused[0]["reason"]
    assert kinds.count("threshold.changed") == 2  # raised, then back to the calibrated one; never below the floor


def test_a_threshold_below_the_floor_stops_the_daemon_at_start(van):
    cfg_path, base, _, _ = van
    cfg_path.write_text(base + f"[matcher]\nthreshold = {_calibration().floor - 0.01:.4f}\n")
    r = subprocess.run([sys.executable, "-m", "appliance", "run", "--no-mqtt", "--no-console", "--config",
                        str(cfg_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "floor" in r.stderr + r.stdout
