"""Console login, logout and the gate: no page, API, image or stream without a live session."""

from __future__ import annotations

import pytest
from console_fakes import ORIGIN, PIN, csrf, login, make_app
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from appliance.console.security import COOKIE, PUBLIC_PATHS


@pytest.fixture
def setup():
    app, events, officers, audit = make_app()
    return TestClient(app), app, events, officers, audit


def every_get_path(app, event_id: str) -> list[str]:
    paths = []
    for r in app.routes:
        if isinstance(r, Route) and "GET" in (r.methods or ()):
            paths.append(r.path.replace("{event_id}", event_id))
        elif isinstance(r, Mount):
            paths += [f"{r.path}/console.js", f"{r.path}/nonexistent.css"]
    return paths


def test_every_route_refuses_an_unauthenticated_request(setup):
    client, app, events, *_ = setup
    a = events.add()
    checked = 0
    for path in every_get_path(app, a["event_id"]):
        if path in PUBLIC_PATHS:
            continue
        r = client.get(path, follow_redirects=False)
        if path.startswith("/api/") or path.startswith("/static/"):
            assert r.status_code == 401, path
            assert r.json() == {"error": "not logged in"}
        else:
            assert r.status_code == 303 and r.headers["location"] == "/login", path
        checked += 1
    for r in app.routes:
        if isinstance(r, Route) and "POST" in (r.methods or ()) and r.path != "/login":
            path = r.path.replace("{event_id}", a["event_id"])
            resp = client.post(path, json={"decision": "reject"}, headers={"Origin": ORIGIN},
                               follow_redirects=False)
            if path.startswith("/api/"):
                assert resp.status_code == 401, path
            else:  # /logout: a page, so back to the login form, with nothing done
                assert resp.status_code == 303 and resp.headers["location"] == "/login", path
            checked += 1
    assert checked >= 12, checked
    assert events.decisions == []
    # A forged or stale cookie is no better than none.
    client.cookies.set(COOKIE, "made-up-token")
    assert client.get(f"/api/alerts/{a['event_id']}/crop.jpg").status_code == 401
    assert client.get("/api/stream").status_code == 401


def test_only_the_login_form_and_its_assets_are_public(setup):
    client, *_ = setup
    assert {"/login", "/static/console.css", "/static/login.js", "/static/favicon.svg"} == PUBLIC_PATHS
    r = client.get("/login")
    assert r.status_code == 200 and 'name="pin"' in r.text
    assert client.get("/static/console.css").status_code == 200


def test_login_sets_a_strict_httponly_cookie_and_opens_the_console(setup):
    client, _, events, _, audit = setup
    r = login(client)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # secure_cookies defaults off (localhost screen)
    assert ("login", "PC1", {"via": "console"}) in audit
    page = client.get("/")
    assert page.status_code == 200 and "PC 1 One" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    a = events.add()
    assert client.get(f"/api/alerts/{a['event_id']}/crop.jpg").content == b"\xff\xd8crop"
    assert client.get(f"/api/alerts/{a['event_id']}/crop.jpg").headers["cache-control"] == "no-store"


def test_secure_cookie_flag():
    app, *_ = make_app(secure_cookies=True)
    r = login(TestClient(app))
    assert "Secure" in r.headers["set-cookie"]


def test_wrong_pin_or_unknown_officer_is_refused_the_same_way(setup):
    client, _, _, _, audit = setup
    for officer_id, pin in (("PC1", "999999"), ("NOBODY", PIN), ("PC1", ""), ("", PIN)):
        r = login(client, officer_id, pin)
        assert r.status_code == 401, (officer_id, pin)
        assert "Wrong officer id or PIN." in r.text
        assert COOKIE not in r.headers.get("set-cookie", "")
    assert client.get("/api/alerts").status_code == 401
    assert [k for k, _, _ in audit].count("login.failed") == 4
    assert all(PIN not in repr(entry) for entry in audit)


def test_disabled_officer_cannot_log_in_and_loses_open_sessions(setup):
    client, _, _, officers, _ = setup
    login(client)
    assert client.get("/api/alerts").status_code == 200
    officers.active["PC1"] = False
    assert client.get("/api/alerts").status_code == 401
    officers.active["PC1"] = True
    assert client.get("/api/alerts").status_code == 401  # the session was ended, not just hidden
    officers.active["PC1"] = False
    assert login(client).status_code == 401


def test_logout_ends_the_session(setup):
    client, *_ = setup
    login(client)
    token = client.cookies.get(COOKIE)
    r = client.post("/logout", headers={"Origin": ORIGIN, "X-CSRF-Token": csrf(client)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    client.cookies.set(COOKIE, token)  # replaying the old cookie does not bring it back
    assert client.get("/api/alerts").status_code == 401


def test_posts_need_same_origin_and_the_csrf_token(setup):
    client, _, events, _, _ = setup
    login(client)
    token = csrf(client)
    a = events.add()
    url = f"/api/alerts/{a['event_id']}/decision"
    body = {"decision": "reject", "note": "not him"}
    evil = {"Origin": "http://evil.example", "X-CSRF-Token": token}
    assert client.post(url, json=body, headers=evil).status_code == 403
    assert client.post(url, json=body, headers={"Origin": ORIGIN}).status_code == 403
    assert client.post(url, json=body, headers={"Origin": ORIGIN, "X-CSRF-Token": "x" + token}).status_code == 403
    assert client.post(url, json=body, headers={"X-CSRF-Token": token}).status_code == 403  # no Origin/Referer
    assert events.decisions == []
    r = client.post(url, json=body, headers={"Origin": ORIGIN, "X-CSRF-Token": token})
    assert r.status_code == 201
    assert r.json()["decision"] == "reject" and r.json()["officer_id"] == "PC1"  # from the session, not the body
    assert len(events.decisions) == 1
    # The login form itself must come from this origin too (login CSRF).
    r = client.post("/login", data={"officer_id": "PC1", "pin": PIN}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403


def test_decision_input_is_checked(setup):
    client, _, events, _, _ = setup
    login(client)
    h = {"Origin": ORIGIN, "X-CSRF-Token": csrf(client)}
    a = events.add()
    url = f"/api/alerts/{a['event_id']}/decision"
    assert client.post(url, json={"decision": "arrest"}, headers=h).status_code == 400
    assert client.post(url, json={"decision": "confirm", "note": "x" * 1001}, headers=h).status_code == 400
    assert client.post(url, content=b"not json", headers=h).status_code == 400
    assert client.post("/api/alerts/nope/decision", json={"decision": "confirm"}, headers=h).status_code == 404
    assert events.decisions == []
    assert client.post(url, json={"decision": "unsure", "note": "  "}, headers=h).status_code == 201
    assert events.decisions[0]["note"] is None
