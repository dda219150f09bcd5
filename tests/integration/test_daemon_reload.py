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
from pathlib import Path

import pytest
from accountability_helpers import open_events, provision_device
from daemon_env import OFFICER, PIN, Console, wait_for
from mosquitto_fixtures import free_port
from outbox_helpers import Proc

from appliance.officers.store import OfficerStore
from appliance.runtime.manifest import load_manifest
from appliance.storage import KeyFileProvider

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras: make install")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _console_page(browser, url):
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(url)
    page.fill("#officer_id", OFFICER)
    for digit in PIN:
        page.click(f'#keypad button[data-key="{digit}"]')
    page.click("#keypad .key-ok")
    return page


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


def test_sighup_applies_what_can_change_and_says_what_needs_a_restart(van, browser):
    from playwright.sync_api import expect

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
        page = _console_page(browser, url)  # the officer's screen shows it as the technician's banner
        banner = page.locator("#pipeline-warning")
        expect(banner).to_be_visible(timeout=10000)
        expect(banner).to_contain_text("detector.tiles")
        expect(banner).to_contain_text("restart")

        # Below the floor: the whole reload is refused, the running threshold stays.
        cfg_path.write_text(base + f"[matcher]\nthreshold = {cal.floor - 0.01:.4f}\n")
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_line(r"reload refused", 30)
        assert console.status()["status"]["threshold"] == raised

        # The file back as it was started: nothing waits for a restart any more, the banner goes.
        cfg_path.write_text(base)
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: console.status()["status"]["warnings"] == [], 30, "the restart warning to clear")
        expect(banner).to_be_hidden(timeout=10000)
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
