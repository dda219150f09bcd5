"""End to end (issue 4): the real daemon on a replayed street, a real TLS Mosquitto, the control-room receiver
(`appliance control listen`) and the officer's console in Chromium at the van screen's 1280x800.

The officer logs in; a watchlist subject walks into view; their alert appears on the page within 2 s of the
first frame they are in; the officer rejects it with a note; the decision reaches the receiver over MQTT;
the counters on the page follow. Saves a screenshot (docs/img/e2e-console.png with UPDATE_SCREENSHOTS=1).

How the 2 s is measured. The clip is replayed with `capture.pace = true`, so each frame is read when a live
camera would deliver it. The daemon runs in this process (`Appliance`, exactly what `appliance run` runs)
with one instrument added: the camera's read() is wrapped to note the wall-clock time (`Frame.timestamp`,
time.time()) at which each frame was read. `plan_walkers` says in which frame of the clip the subject
first appears (frame seq == clip index: the clip plays once, from seq 0). On the page, a MutationObserver
notes Date.now() when the subject's name is first rendered in the alert queue. Both are the same machine's
wall clock, so latency = shown_at - read_at[first frame]: everything from the camera to the officer's
eyes (frames dropped while the hot path is busy, detection, tracking, the quality gate, embedding, the
matcher, the alert rule, the encrypted commit, the server-sent event, the page's render). The page must be
open and live before that frame is read, or the measurement would include the login: the test checks it.
"""

from __future__ import annotations

import time

from daemon_env import OFFICER, PIN, make_street, provision_van
from outbox_helpers import receiver
from test_console_browser import browser, shot  # noqa: F401  (the browser fixture: /usr/bin/chromium)

from appliance.control.store import ControlStore, open_control_db
from appliance.storage import KeyFileProvider

SUBJECT = "Alan_Ball"
# Eight people walk past before the subject (about 10 s: the daemon starts and the officer logs in meanwhile).
STREET = ["Abdullah", "Adam_Sandler", "Aaron_Sorkin", "Abdoulaye_Wade", "Adam_Scott", "Abel_Pacheco",
          "Andrei_Mikhnevich", "Aicha_El_Ouafi", "*" + SUBJECT, "Alexander_Rumyantsev", "Alex_Penelas"]
OBSERVER = """(name) => {
  window.__shown = null;
  const q = document.getElementById('queue');
  const check = () => {
    if (window.__shown === null && q.textContent.includes(name)) window.__shown = Date.now();
  };
  new MutationObserver(check).observe(q, {childList: true, subtree: true, characterData: true});
  check();
}"""


def test_officer_sees_and_rejects_a_live_alert_from_the_daemon(tmp_path, tls_broker, pipeline, lfw_dir,
                                                               crowd_dir, browser):  # noqa: F811
    from playwright.sync_api import expect

    from appliance.daemon.service import Appliance

    street = make_street(tmp_path / "street", lfw_dir, crowd_dir, STREET)
    van = provision_van(tmp_path, tls_broker, pipeline, lfw_dir, street)
    van.start_deployment()  # authorised before the daemon starts: it adopts it at start-up
    name = SUBJECT.replace("_", " ")
    first_frame = street.first_frame(SUBJECT)

    read_at: dict[int, float] = {}

    class TimedAppliance(Appliance):
        """The daemon, with the camera's reads timed (the only addition)."""

        def build(self) -> None:
            super().build()
            camera = self.camera.camera
            read = camera.read

            def timed_read():
                frame = read()
                if frame is not None:
                    read_at[frame.seq] = frame.timestamp
                return frame

            camera.read = timed_read

    rx_db, rx_keys = tmp_path / "control.db", tmp_path / "control-keys"
    rx = receiver(tls_broker, rx_db, rx_keys, signing_key=van.root / "control-room" / "control-room.ed25519.key")
    app = TimedAppliance(van.config(), van.config_path)
    context = None
    try:
        app.start()
        url = van.console_url + "/"
        context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1, has_touch=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        # The officer logs in on the keypad.
        page.goto(url)
        expect(page).to_have_url(url + "login")
        page.fill("#officer_id", OFFICER)
        for digit in PIN:
            page.click(f'#keypad button[data-key="{digit}"]')
        page.click("#keypad .key-ok")
        expect(page).to_have_url(url)
        expect(page.locator("#st-live .v")).to_have_text("live", timeout=5000)
        page.evaluate(OBSERVER, name)
        live_at = time.time()
        assert first_frame not in read_at, (
            f"the subject's first frame ({first_frame}) was read before the console was live: the clip needs "
            "more people walking past first")
        expect(page.locator("#c-alerts")).to_have_text("0")

        # The subject walks into view: the alert is pushed to the open page.
        expect(page.locator("#a-name")).to_have_text(name, timeout=30000)
        shown = page.evaluate("window.__shown") / 1000.0
        latency = shown - read_at[first_frame]
        alerts = app.events.alerts(limit=10)
        alert = next(a for a in alerts if a["subject_id"] == van.subjects[SUBJECT])
        print(f"\nsubject {SUBJECT} first in clip frame {first_frame}, read {read_at[first_frame] - live_at:+.2f} s "
              f"after the page was live; alert on the page {latency * 1000:.0f} ms after that frame was read "
              f"(score {alert['score']:.3f} >= {alert['threshold']:.3f}); frames read {len(read_at)}, processed "
              f"{app.counters.snapshot().get('frames', 0)}")
        assert latency < 2.0, f"alert on the page {latency:.2f} s after the subject's first frame"
        assert latency > 0, latency
        expect(page.locator("#queue li.selected .st")).to_have_text("TO REVIEW")
        expect(page.locator("#a-category")).to_have_text("wanted")
        page.wait_for_function("document.getElementById('crop').complete && "
                               "document.getElementById('crop').naturalWidth > 0 && "
                               "document.getElementById('reference').naturalWidth > 0")
        expect(page.locator("#c-alerts")).to_have_text("1", timeout=4000)
        expect(page.locator("#st-broker .v")).to_have_text("connected", timeout=12000)
        rx.wait_line(rf" alert {alert['event_id']} subject {van.subjects[SUBJECT]} ", 20)

        # The officer rejects it, with a note.
        page.click('.actions [data-decision="reject"]')
        expect(page.locator("#decide-dialog")).to_be_visible()
        page.fill("#d-note", "Not him: different ears")
        page.click("#d-record")
        expect(page.locator("#decide-dialog")).to_be_hidden()
        history = page.locator("#a-history li")
        expect(history).to_have_count(1)
        expect(history.first).to_contain_text("Rejected")
        expect(history.first).to_contain_text("Not him: different ears")
        expect(page.locator("#c-rejected")).to_have_text("1", timeout=4000)
        expect(page.locator("#r-measured")).to_have_text("100 %")
        expect(page.locator("#st-outbox .v")).to_have_text("0 events", timeout=12000)
        page.wait_for_timeout(300)
        out = shot(page, tmp_path, "e2e-console.png")

        # The decision reached the control room over MQTT, once, after its alert.
        decision = app.events.decisions_for(alert["event_id"])[0]
        rx.wait_line(rf" decision {decision['event_id']} on alert {alert['event_id']}: reject by {OFFICER} "
                     r"\(with a note\)", 20)
        assert errors == [], errors
    finally:
        if context is not None:
            context.close()
        app.stop()
        rc = rx.terminate()
    assert rc == 0
    store = ControlStore(open_control_db(rx_db, KeyFileProvider(rx_keys)))
    try:
        got = [(a["kind"], a["event_id"]) for a in store.arrivals("van-01") if a["kind"] != "deployment"]
    finally:
        store.close()
    assert got.count(("alert", alert["event_id"])) == 1
    assert got.count(("decision", decision["event_id"])) == 1
    assert got.index(("alert", alert["event_id"])) < got.index(("decision", decision["event_id"]))
    print(f"receiver: {len(got)} alert/decision events from van-01, this alert and its decision once each; "
          f"screenshot {out}")
