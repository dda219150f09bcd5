"""The alerts API pages back with a keyset cursor (`before`), refuses a bad cursor with one line, and the
decision and status answers carry numbered outbox readings (what the page's sending notice follows)."""

from __future__ import annotations

from console_fakes import ORIGIN, csrf, login, make_app
from starlette.testclient import TestClient


def logged_in(app):
    c = TestClient(app)
    assert login(c).status_code == 303
    return c, {"Origin": ORIGIN, "X-CSRF-Token": csrf(c)}


def test_older_alerts_page_by_cursor_until_the_start():
    app, events, *_ = make_app()
    added = [events.add()["event_id"] for _ in range(7)]
    c, _ = logged_in(app)
    seen, before, pages = [], None, []
    while True:
        q = "/api/alerts?limit=3" + (f"&before={before}" if before else "")
        body = c.get(q).json()
        ids = [a["event_id"] for a in body["alerts"]]
        pages.append((len(ids), body["more"]))
        seen += ids
        if not body["more"]:
            break
        before = ids[-1]  # the last alert shown is the cursor
    assert pages == [(3, True), (3, True), (1, False)]
    assert seen == added[::-1]  # newest first, each alert once, none left out


def test_a_full_last_page_says_there_is_nothing_older():
    app, events, *_ = make_app()
    for _ in range(4):
        events.add()
    c, _ = logged_in(app)
    assert c.get("/api/alerts?limit=4").json()["more"] is False
    assert c.get("/api/alerts?limit=3").json()["more"] is True


def test_a_bad_cursor_is_refused_with_one_line():
    app, events, *_ = make_app()
    events.add()
    c, _ = logged_in(app)
    for bad in ("yesterday", "' OR 1=1 --", "12345678-1234"):
        r = c.get("/api/alerts", params={"before": bad})
        assert r.status_code == 400, bad
        assert "before must be" in r.json()["error"] and "\n" not in r.json()["error"]
    r = c.get("/api/alerts", params={"before": "2026-11-26T07:00:01.000Z"})  # a time is a cursor too
    assert r.status_code == 200 and len(r.json()["alerts"]) == 1


def test_paging_needs_a_session():
    app, events, *_ = make_app()
    a = events.add()
    r = TestClient(app).get(f"/api/alerts?before={a['event_id']}", follow_redirects=False)
    assert r.status_code == 401


def test_outbox_readings_are_numbered_after_the_decision():
    app, events, *_ = make_app()
    a = events.add()
    c, headers = logged_in(app)
    before = c.get("/api/status").json()["outbox"]
    assert before["backlog"] == 1

    body = c.post(f"/api/alerts/{a['event_id']}/decision", json={"decision": "reject"}, headers=headers).json()
    # Read after the decision's commit: it counts the decision's own row.
    assert body["outbox"]["backlog"] == 2 and body["outbox"]["seq"] > before["seq"]

    published = []
    hub = app.state.hub
    hub.clients = lambda: 1
    hub.publish = lambda event, data: published.append((event, data))
    events.sent = 2
    for cb in events.listeners:  # the publisher marked the rows sent: the store tells its subscribers
        cb("outbox", {"backlog": 0})
    assert published == [("outbox", {"seq": body["outbox"]["seq"] + 1, "backlog": 0})]
    later = c.get("/api/status").json()["outbox"]
    assert later == {"seq": body["outbox"]["seq"] + 2, "backlog": 0}
