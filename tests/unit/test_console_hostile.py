"""Issue 12, the console: bodies capped before they are read, every malformed field a clear 4xx (pydantic
models, appliance/console/bodies.py), and lockouts that spraying officer ids cannot evict."""

from __future__ import annotations

import asyncio

import pytest
from console_fakes import ORIGIN, csrf, login, make_app
from starlette.requests import Request
from starlette.testclient import TestClient
from test_console_deployment import FORM, FakeManager

from appliance.console.bodies import MAX_JSON_BYTES, bounded_body
from appliance.console.sessions import LoginThrottle


@pytest.fixture
def setup():
    app, events, _officers, _audit = make_app()
    app.state.backend.deployments = FakeManager()
    client = TestClient(app)
    login(client)
    return client, events, {"Origin": ORIGIN, "X-CSRF-Token": csrf(client), "Content-Type": "application/json"}


def test_a_huge_body_is_refused_without_being_read(setup):
    client, events, headers = setup
    url = f"/api/alerts/{events.add()['event_id']}/decision"
    r = client.post(url, content=b" " * (64 << 20), headers=headers)
    assert r.status_code == 413 and "larger than" in r.json()["error"]
    r = client.post(url, content=b"{}", headers={**headers, "Content-Length": str(64 << 20)})
    assert r.status_code == 413
    r = client.post("/api/deployment/start", content=b"[" * (MAX_JSON_BYTES + 1), headers=headers)
    assert r.status_code == 413


def test_the_server_stops_reading_at_the_cap():
    """64 MB sent in 1 MB pieces without a Content-Length: reading stops after the first piece."""
    received = {"chunks": 0}

    async def receive():
        received["chunks"] += 1
        return {"type": "http.request", "body": b" " * (1 << 20), "more_body": received["chunks"] < 64}

    request = Request({"type": "http", "method": "POST", "headers": [], "path": "/"}, receive)
    out = asyncio.run(bounded_body(request, MAX_JSON_BYTES))
    assert isinstance(out, str) and "larger than" in out
    assert received["chunks"] == 1


def test_the_login_form_body_is_capped(setup):
    client, _, _ = setup
    r = client.post("/login", content=b"officer_id=PC1&pin=" + b"1" * 100_000,
                    headers={"Origin": ORIGIN, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


@pytest.mark.parametrize("raw, message", [
    (b'{"decision": "reject", "note": "\\ud800"}', "lone surrogate"),
    (b'{"decision": "reject", "note": 5}', "note must be text"),
    (b'{"decision": "reject", "note": "x", "admin": true}', "admin is not a field"),
    (b'{"decision": "maybe"}', "decision must be one of"),
    (b'[1, 2]', "expected a JSON object"),
    (b'{"decision": ' + b"[" * 100 + b"}", "nested"),
])
def test_bad_decisions_are_a_clear_400(setup, raw, message):
    client, events, headers = setup
    a = events.add()
    r = client.post(f"/api/alerts/{a['event_id']}/decision", content=raw, headers=headers)
    assert r.status_code == 400 and message in r.json()["error"], r.json()
    assert events.decisions_for(a["event_id"]) == []


@pytest.mark.parametrize("change, message", [
    ({"hours": 1e308}, "hours must be a number"),
    ({"hours": 10**400}, None),  # not even a float: refused by the parser
    ({"purpose": "x", "extra": 1}, "extra is not a field"),
    ({"lat": float("inf"), "lon": 0.0}, None),
])
def test_absurd_deployment_fields_are_a_clear_400(setup, change, message):
    client, _, headers = setup
    import json

    raw = json.dumps({**FORM, **change}).encode()
    r = client.post("/api/deployment/start", content=raw, headers=headers)
    assert r.status_code == 400, (r.status_code, r.text)
    if message:
        assert message in r.json()["error"]


def test_spraying_ids_cannot_evict_a_lockout():
    t = {"now": 0.0}
    th = LoginThrottle(max_failures=3, lockout_s=60, clock=lambda: t["now"])
    th.MAX_TRACKED = 100
    for _ in range(3):
        th.failure("PC-victim")
    assert th.retry_after("PC-victim") > 0
    for i in range(5000):  # far more ids than the table holds, each locked in turn
        for _ in range(3):
            th.failure(f"spray-{i}")
        t["now"] += 0.001
    assert th.retry_after("PC-victim") > 0, "the lockout was evicted by spraying ids"
    assert len(th._state) <= 101
    # New ids beyond the table share the overflow lockout: spraying does not buy fresh attempts.
    assert th.retry_after("never-seen-before") > 0
