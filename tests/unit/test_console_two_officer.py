"""Two-officer confirmation on the console: each alert carries where it stands, from every officer's decisions."""

from __future__ import annotations

from console_fakes import ORIGIN, csrf, login, make_app
from starlette.testclient import TestClient


def officer(app, officer_id):
    c = TestClient(app)
    assert login(c, officer_id).status_code == 303
    return c, {"Origin": ORIGIN, "X-CSRF-Token": csrf(c)}


def decide(client, headers, alert_id, decision):
    r = client.post(f"/api/alerts/{alert_id}/decision", json={"decision": decision}, headers=headers)
    assert r.status_code == 201
    return r.json()["outcome"]


def test_two_officers_must_confirm():
    app, events, *_ = make_app(two_officer=True)
    (c1, h1), (c2, h2) = officer(app, "PC1"), officer(app, "PC2")
    a = events.add()
    assert c1.get("/api/alerts").json()["alerts"][0]["outcome"]["state"] == "pending"
    assert 'name="two-officer" content="on"' in c1.get("/").text
    assert decide(c1, h1, a["event_id"], "confirm")["state"] == "awaiting_second"
    assert decide(c1, h1, a["event_id"], "confirm")["state"] == "awaiting_second"  # the same officer twice
    out = decide(c2, h2, a["event_id"], "confirm")
    assert out["state"] == "confirmed" and sorted(out["confirmed_by"]) == ["PC1", "PC2"]
    listed = c2.get(f"/api/alerts/{a['event_id']}").json()
    assert listed["outcome"]["state"] == "confirmed" and len(listed["decisions"]) == 3

    b = events.add()
    decide(c1, h1, b["event_id"], "confirm")
    assert decide(c2, h2, b["event_id"], "reject")["state"] == "disputed"


def test_one_officer_mode_the_latest_decision_counts():
    app, events, *_ = make_app()
    c1, h1 = officer(app, "PC1")
    a = events.add()
    assert 'name="two-officer" content="off"' in c1.get("/").text
    assert decide(c1, h1, a["event_id"], "unsure")["state"] == "unsure"
    assert decide(c1, h1, a["event_id"], "confirm")["state"] == "confirmed"


def test_decisions_reach_open_pages_with_the_outcome():
    app, events, *_ = make_app(two_officer=True)
    sent = []
    app.state.hub.publish = lambda event, data: sent.append((event, data))
    c1, h1 = officer(app, "PC1")
    a = events.add()
    decide(c1, h1, a["event_id"], "confirm")
    assert [e for e, _ in sent] == ["alert", "decision"]
    assert sent[0][1]["outcome"]["state"] == "pending"
    assert sent[1][1]["outcome"] == {"state": "awaiting_second", "confirmed_by": ["PC1"], "rejected_by": [],
                                     "two_officer": True}
