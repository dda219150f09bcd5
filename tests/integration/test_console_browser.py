"""The console in a real browser (Chromium via Playwright) at the van screen's 1280x800: log in on the
keypad, an alert pushed live after the page loaded, a decision recorded and shown in the history, the
counters updated, logout, and refusals without a session. Saves screenshots (see docs/console.md)."""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from console_env import OFFICER, PIN, build_env

from appliance.events import Decision
from appliance.events.models import iso_ms
from appliance.paths import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# UPDATE_SCREENSHOTS=1 also writes the screenshots into docs/img/ (for the docs); otherwise only tmp_path.
DOCS_IMG = PROJECT_ROOT / "docs" / "img"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras: make install")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium (it is in .ci/run's apt list)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def shot(page, tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    page.screenshot(path=str(out))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(out, DOCS_IMG / name)
    return out


def test_officer_reviews_a_live_alert_in_the_browser(tmp_path, nasa_dir, pipeline, browser):
    from playwright.sync_api import expect

    env = build_env(tmp_path, nasa_dir, pipeline)
    try:
        url = env.server.url
        # Earlier in the shift: two alerts, already decided by a colleague.
        older = env.add_alert("S-003", track_id=4)
        env.events.add_decision(Decision(device_id="van-01", alert_id=older.event_id, officer_id="PC0777",
                                         decision="confirm", note="Stopped and ID checked"))
        earlier = env.add_alert("S-001", track_id=9)
        env.events.add_decision(Decision(device_id="van-01", alert_id=earlier.event_id, officer_id="PC0777",
                                         decision="reject", note="Similar build, different person"))

        context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1,
                                      has_touch=True)
        page = context.new_page()
        console_errors: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        offsite: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(url.rstrip("/")) else offsite.append(r.url))

        # Without a session: the page sends the browser to the login form, the API refuses.
        page.goto(url)
        expect(page).to_have_url(url + "login")
        assert context.request.get(url + "api/alerts").status == 401
        assert context.request.get(url + f"api/alerts/{older.event_id}/crop.jpg").status == 401
        assert context.request.get(url + "api/stream").status == 401
        shot(page, tmp_path, "console-login.png")

        # Log in with the on-screen keypad, as on the van's touch screen.
        page.fill("#officer_id", OFFICER)
        for digit in PIN:
            page.click(f'#keypad button[data-key="{digit}"]')
        page.click("#keypad .key-ok")
        expect(page).to_have_url(url)
        expect(page.locator("#st-live .v")).to_have_text("live", timeout=5000)
        expect(page.locator("#st-broker .v")).to_have_text("connected")
        expect(page.locator("#st-deployment .v")).to_contain_text("Op. Harbour · ends")
        expect(page.locator("#c-alerts")).to_have_text("2")

        # A watchlist subject appears on camera: the alert is pushed to the open page.
        t0 = time.monotonic()
        now = datetime.now(timezone.utc)
        alert = env.add_alert("S-002", track_id=17, captured_at=iso_ms(now - timedelta(seconds=1)),
                              first_seen_at=iso_ms(now - timedelta(seconds=4)))
        expect(page.locator("#a-name")).to_have_text("Catherine Coleman", timeout=2000)
        latency = time.monotonic() - t0
        print(f"alert on screen {latency * 1000:.0f} ms after it was committed")
        expect(page.locator("#a-category")).to_have_text("missing person")
        # When the face was photographed and since when the person was in view (alerts that carry the times).
        local = page.evaluate("(isos) => isos.map((i) => new Date(i).toLocaleTimeString([], {hour12: false}))",
                              [alert.captured_at, alert.first_seen_at])
        expect(page.locator("#a-seen")).to_have_text(f"photo {local[0]} · in view since {local[1]} · 2 matching looks")
        expect(page.locator("#a-notes")).to_contain_text("Vulnerable")
        expect(page.locator(".suggestion")).to_contain_text("you decide")
        expect(page.locator("#a-score-value")).to_contain_text(f"{alert.score:.2f}")
        expect(page.locator("#a-score-threshold")).to_contain_text(f"{alert.threshold:.2f}")
        expect(page.locator("#queue li.selected .st")).to_have_text("TO REVIEW")
        page.wait_for_function("document.getElementById('crop').complete && "
                               "document.getElementById('crop').naturalWidth > 0 && "
                               "document.getElementById('reference').naturalWidth > 0")
        expect(page.locator("#c-alerts")).to_have_text("3", timeout=4000)
        for name in ("confirm", "reject", "unsure"):
            box = page.locator(f'.actions [data-decision="{name}"]').bounding_box()
            assert box["height"] >= 64 and box["width"] >= 64, (name, box)
        page.wait_for_timeout(300)
        shot(page, tmp_path, "console.png")

        # The officer rejects it, with a note.
        expect(page.locator("#toast")).to_be_hidden(timeout=5000)  # the "new alert" notice goes by itself
        page.click('.actions [data-decision="reject"]')
        expect(page.locator("#decide-dialog")).to_be_visible()
        page.fill("#d-note", "Not her: different ears")
        page.click("#d-record")
        expect(page.locator("#decide-dialog")).to_be_hidden()
        history = page.locator("#a-history li")
        expect(history).to_have_count(1)
        expect(history.first).to_contain_text("Rejected")
        expect(history.first).to_contain_text(f"by {OFFICER}")
        expect(history.first).to_contain_text("Not her: different ears")
        expect(page.locator("#c-rejected")).to_have_text("2", timeout=4000)
        expect(page.locator("#r-measured")).to_have_text("67 %")
        # Recorded, not yet sent (no publisher here): the notice says so, and stays while it is so.
        expect(page.locator("#send-note")).to_contain_text("Rejected · recorded · sending to the control room")

        stored = env.events.decisions_for(alert.event_id)
        assert [(d["officer_id"], d["decision"], d["note"]) for d in stored] == [
            (OFFICER, "reject", "Not her: different ears")]
        unsent = env.events.outbox_unsent()
        assert any(r["event_id"] == stored[0]["event_id"] for r in unsent)
        # The broker acknowledges every waiting row (what the publisher does on PUBACK): the notice says so.
        env.events.mark_sent([r["id"] for r in unsent])
        expect(page.locator("#send-text")).to_have_text("Rejected · sent to the control room", timeout=2000)
        expect(page.locator("#st-outbox .v")).to_have_text("0 events")
        shot(page, tmp_path, "console-decided.png")
        expect(page.locator("#send-note")).to_be_hidden(timeout=4000)

        # The status strip follows the device, pushed over the same stream (no polling).
        env.status.update(broker="down", camera="lost", camera_fps=None)
        expect(page.locator("#st-broker .v")).to_have_text("DOWN · queuing", timeout=4000)
        expect(page.locator("#st-camera .v")).to_have_text("LOST")
        expect(page.locator("#st-broker .v")).to_have_class("v bad")

        # Logging out ends the session for the page and for any request made with its cookie.
        page.click("#logout")
        expect(page).to_have_url(url + "login")
        assert context.request.get(url + "api/alerts").status == 401
        assert offsite == [], offsite  # nothing fetched from anywhere but the device
        assert console_errors == [], console_errors
        context.close()
    finally:
        env.close()


def test_a_changed_pipeline_is_shown_to_the_officer(tmp_path, nasa_dir, pipeline, browser):
    """The daemon's pipeline warning (vision/fingerprint.py) reaches the page as a banner, and goes away."""
    from playwright.sync_api import expect

    env = build_env(tmp_path, nasa_dir, pipeline)
    warning = "pipeline changed since calibration: opencv 4.10.0 (calibrated with 4.11.0)"
    env.status["warnings"] = [warning]
    try:
        page = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1).new_page()
        page.goto(env.server.url)
        page.fill("#officer_id", OFFICER)
        for digit in PIN:
            page.click(f'#keypad button[data-key="{digit}"]')
        page.click("#keypad .key-ok")
        banner = page.locator("#pipeline-warning")
        expect(banner).to_be_visible(timeout=5000)
        expect(banner).to_contain_text(warning)
        expect(banner).to_contain_text("Alerts still need your decision")
        shot(page, tmp_path, "console-pipeline-warning.png")
        env.status["warnings"] = []  # the next status push (every 2 s) clears it
        expect(banner).to_be_hidden(timeout=6000)
    finally:
        env.close()
