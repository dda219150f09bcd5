"""The console over a long deployment, in Chromium (Playwright) on the real console and SQLCipher stores:

- older alerts are reached page by page ("Show older alerts", keyset cursor `before=`), and an undecided alert
  is never left behind the paging, however far back it is;
- the notice about sending a decision to the control room follows the real outbox (a real TLS Mosquitto and
  the real publisher): it stays while the link is down and clears once the broker has acknowledged it;
- a long deployment purpose can be read in full, at the van screen's 1280x800 and at a narrow 800 px.

Saves screenshots in the test's tmp dir (UPDATE_SCREENSHOTS=1 also copies them to docs/img/).
"""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

from console_env import OFFICER, PIN, build_env
from test_console_browser import browser, shot  # noqa: F401  (the browser fixture: /usr/bin/chromium)

from appliance.events import Decision
from appliance.events.models import iso_ms
from appliance.events.publisher import OutboxPublisher
from appliance.watchlist.timeutil import utcnow

SUBJECT_IDS = ("S-001", "S-002", "S-003")
PURPOSE = ("Locate people wanted on warrant for serious violent offences, and missing vulnerable people "
           "reported in the last 14 days, among the crowds of the Saturday market and the football match at "
           "the Harbour Stadium; authorised after the stabbings of 2 and 9 November (briefing note BN-2026-311, "
           "section 4: why live facial recognition is necessary and proportionate here)")

# Every queue thumbnail inside the queue's visible box has loaded.
SHOWN_THUMBNAILS_LOADED = """() => {
  const box = document.querySelector('.queue-scroll').getBoundingClientRect();
  return [...document.querySelectorAll('#queue li img')]
    .filter((i) => { const r = i.getBoundingClientRect(); return r.bottom > box.top && r.top < box.bottom; })
    .every((i) => i.complete && i.naturalWidth > 0);
}"""


def open_console(browser, url: str, width: int = 1280, height: int = 800):  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1,
                                  has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url + "login")
    page.fill("#officer_id", OFFICER)
    for digit in PIN:
        page.click(f'#keypad button[data-key="{digit}"]')
    page.click("#keypad .key-ok")
    page.wait_for_url(url)
    return context, page, errors


def queue_ids(page) -> list[str]:
    return page.eval_on_selector_all("#queue li", "lis => lis.map(li => li.dataset.id)")


def test_officer_pages_back_and_no_undecided_alert_is_left_behind(tmp_path, nasa_dir, pipeline, browser):  # noqa: F811
    from playwright.sync_api import expect

    env = build_env(tmp_path, nasa_dir, pipeline)
    try:
        # A long shift: 261 alerts over 5 hours, all decided but one, 101st from the newest: beyond the first
        # page of 50. Six share one millisecond across a page boundary (the cursor must not skip or repeat).
        start = utcnow() - timedelta(hours=5)
        stamps = [iso_ms(start + timedelta(seconds=60 * i)) for i in range(261)]
        for i in range(5, 11):
            stamps[i] = stamps[5]
        undecided = None
        for i, stamp in enumerate(stamps):
            a = env.add_alert(SUBJECT_IDS[i % 3], track_id=i, created_at=stamp)
            if i == 160:
                undecided = a
                continue
            env.events.add_decision(Decision(device_id="van-01", alert_id=a.event_id, officer_id="PC0777",
                                             decision="reject", note=None))
        stored = [a["event_id"] for a in env.events.alerts(1000)]
        assert len(stored) == 261 and stored.index(undecided.event_id) == 100

        url = env.server.url
        context, page, errors = open_console(browser, url)
        pages: list[dict] = []
        page.on("request", lambda r: pages.append(parse_qs(urlparse(r.url).query))
                if urlparse(r.url).path == "/api/alerts" else None)
        page.reload()
        # The undecided alert is loaded, counted and put in front of the officer, although it is not on the
        # newest page: the page fetched older pages until it had every alert the store counts as undecided.
        expect(page.locator("#q-pending")).to_have_text("· 1 to review", timeout=8000)
        expect(page.locator("#queue li.selected")).to_have_attribute("data-id", undecided.event_id)
        expect(page.locator("#queue li.selected .st")).to_have_text("TO REVIEW")
        expect(page.locator("#a-history li")).to_have_text(["No decision yet. The alert is only a suggestion "
                                                            "until an officer decides."])
        expect(page.locator("#a-seen")).to_be_hidden()  # stored without frame times: nothing made up
        loaded = queue_ids(page)
        assert undecided.event_id in loaded and len(loaded) < 261
        assert loaded == stored[:len(loaded)]  # newest first, a contiguous run from the newest
        expect(page.locator("#q-older")).to_be_visible()
        expect(page.locator("#q-older")).to_contain_text(f"({261 - len(loaded)} more)")
        page.locator("#q-older").scroll_into_view_if_needed()  # the end of the queue: the paging button
        page.wait_for_function(SHOWN_THUMBNAILS_LOADED)  # thumbnails load lazily, as rows scroll into view
        shot(page, tmp_path, "console-older.png")

        # "Show older alerts" until the start of the list: every alert once, in the store's order.
        while page.locator("#q-older").is_visible():
            n = len(queue_ids(page))
            page.click("#q-older")
            expect(page.locator("#queue li")).not_to_have_count(n)
        expect(page.locator("#q-end")).to_have_text("All alerts shown · 261")
        assert queue_ids(page) == stored
        # Keyset paging: after the newest page every request names the last alert shown as its cursor.
        shown = 0
        for q in pages:
            assert q.get("before") == ([stored[shown - 1]] if shown else None), (shown, q)
            shown = min(shown + int(q["limit"][0]), len(stored))
        assert len(pages) >= 3 and shown == len(stored)

        # A new alert still arrives on top, after all that paging; nothing loaded is dropped.
        live = env.add_alert("S-002", track_id=999)
        expect(page.locator("#queue li").first).to_have_attribute("data-id", live.event_id, timeout=2000)
        expect(page.locator("#queue li")).to_have_count(262)
        expect(page.locator("#q-pending")).to_have_text("· 2 to review")
        # The undecided alert was on screen: the new one waits in the queue, it does not take the screen.
        expect(page.locator("#queue li.selected")).to_have_attribute("data-id", undecided.event_id)

        # The cursor is checked, and paging is for a logged-in officer only.
        assert context.request.get(url + "api/alerts?before=yesterday").status == 400
        assert context.request.get(url + f"api/alerts?before={undecided.event_id}").ok
        page.click("#logout")
        page.wait_for_url(url + "login")
        assert context.request.get(url + f"api/alerts?before={undecided.event_id}").status == 401
        assert errors == [], errors
        context.close()
    finally:
        env.close()


def test_sending_notice_follows_the_outbox(tmp_path, nasa_dir, pipeline, browser, tls_broker):  # noqa: F811
    from playwright.sync_api import expect

    env = build_env(tmp_path, nasa_dir, pipeline)
    env.publisher = OutboxPublisher(env.events, tls_broker.settings("van-01", "van-01-events"), "van-01",
                                    receipts=False, retry_max_s=1.0).start()
    try:
        assert env.publisher.wait_link(True, 15)
        first, second = env.add_alert("S-001", track_id=1), env.add_alert("S-002", track_id=2)
        assert env.events.wait_sent(10)
        context, page, errors = open_console(browser, env.server.url)
        expect(page.locator("#st-outbox .v")).to_have_text("0 events", timeout=5000)
        note = page.locator("#send-note")

        # The link is down: the decision is recorded and waits. The notice says so for as long as it waits
        # (not for a fixed 4 s), and the strip counts the waiting event.
        tls_broker.stop()
        assert env.publisher.wait_link(False, 10)
        expect(page.locator("#st-broker .v")).to_have_text("DOWN · queuing", timeout=5000)
        page.click(f'#queue li[data-id="{first.event_id}"]')
        page.click('.actions [data-decision="confirm"]')
        page.click("#d-record")
        expect(note).to_contain_text("Confirmed · recorded on this device · control room link down")
        expect(page.locator("#st-outbox .v")).to_have_text("1 event")
        page.wait_for_timeout(6000)
        expect(note).to_be_visible()
        expect(note).to_contain_text("link down")
        assert env.events.outbox_backlog() == 1
        shot(page, tmp_path, "console-waiting.png")

        # The broker is back: the publisher sends, the broker acknowledges, the notice says "sent" and goes.
        tls_broker.start()
        assert env.events.wait_sent(30), f"backlog {env.events.outbox_backlog()}"
        t_sent = time.monotonic()
        expect(note).to_contain_text("Confirmed · sent to the control room", timeout=3000)
        print(f"notice said sent {1000 * (time.monotonic() - t_sent):.0f} ms after the outbox was empty")
        expect(page.locator("#st-outbox .v")).to_have_text("0 events")
        expect(note).to_be_hidden(timeout=5000)

        # With the link up the outbox empties in milliseconds: "sending" must not linger after that.
        expect(page.locator("#st-broker .v")).to_have_text("connected", timeout=5000)
        page.click(f'#queue li[data-id="{second.event_id}"]')
        page.click('.actions [data-decision="reject"]')
        page.click("#d-record")
        expect(page.locator("#decide-dialog")).to_be_hidden()
        assert env.events.wait_sent(10)
        expect(note).to_contain_text("Rejected · sent to the control room", timeout=1500)
        expect(note).to_be_hidden(timeout=4000)
        assert errors == [], errors
        context.close()
    finally:
        env.close()


def test_a_long_purpose_can_be_read_in_full(tmp_path, nasa_dir, pipeline, browser):  # noqa: F811
    from playwright.sync_api import expect

    env = build_env(tmp_path, nasa_dir, pipeline, deployments=True)
    try:
        env.add_alert("S-002", track_id=3)
        for width, height in ((1280, 800), (800, 800), (800, 1280)):
            context, page, errors = open_console(browser, env.server.url, width, height)
            if width == 1280:  # the officer starts it from the console, with a purpose of 363 characters
                page.click("#dep-start")
                page.fill("#s-purpose", PURPOSE)
                page.fill("#s-location", "Harbour Stadium and Market Square, Portside")
                page.fill("#s-dpia", "DPIA-2026-07")
                page.click("#s-submit")
                expect(page.locator("#start-dialog")).to_be_hidden()
            strip = page.locator("#st-deployment")
            expect(strip.locator(".v")).to_contain_text(PURPOSE[:20], timeout=5000)

            # The strip shows the beginning, the rest is one tap away, for touch, keyboard and screen reader.
            assert strip.evaluate("e => e.tagName") == "BUTTON"
            assert PURPOSE in strip.get_attribute("title")
            assert PURPOSE in strip.locator(".v").text_content()
            strip.click()
            dialog = page.locator("#dep-dialog")
            expect(dialog).to_be_visible()
            expect(page.locator("#dd-purpose")).to_have_text(PURPOSE)
            expect(page.locator("#dd-by")).to_have_text(OFFICER)
            box = page.locator("#dd-purpose").bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, box  # wrapped, not cut at the side
            assert page.locator("#dd-purpose").evaluate("e => e.scrollWidth <= e.clientWidth")
            shot(page, tmp_path, f"console-deployment{'' if width == 1280 else f'-{width}x{height}'}.png")
            page.click("#dd-close")
            expect(dialog).to_be_hidden()
            page.locator("#dep-details").click()  # the same from the Deployment panel
            expect(page.locator("#dd-purpose")).to_have_text(PURPOSE)
            page.keyboard.press("Escape")
            expect(dialog).to_be_hidden()

            # The layout holds: nothing wider than the screen, the strip on screen, every value in its cell
            # (the long purpose takes at most two lines), the decision buttons reachable and full size.
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            sbox = strip.bounding_box()
            assert sbox["x"] >= 0 and sbox["x"] + sbox["width"] <= width and sbox["height"] <= 80, sbox
            assert strip.locator(".v").evaluate("e => e.scrollHeight > e.clientHeight")  # clamped, not spilling
            for cell in page.locator(".strip .cell").all():
                c = cell.bounding_box()
                assert c["x"] >= 0 and c["x"] + c["width"] <= width + 0.5, (cell.get_attribute("id"), c)
            panel = page.locator("#dep-text").bounding_box()
            assert panel["height"] <= 2 * 17 * 1.4, panel  # two lines in the side panel
            for name in ("confirm", "reject", "unsure"):
                b = page.locator(f'.actions [data-decision="{name}"]').bounding_box()
                assert b["height"] >= 64 and b["x"] >= 0 and b["x"] + b["width"] <= width, (name, b)
                if height == 800:  # the van screen: no scrolling to decide
                    assert b["y"] + b["height"] <= height, (name, b)
            shot(page, tmp_path, {(1280, 800): "console-long-purpose.png", (800, 800): "console-narrow-800x800.png",
                                  (800, 1280): "console-narrow.png"}[width, height])
            assert errors == [], errors
            context.close()
    finally:
        env.close()
