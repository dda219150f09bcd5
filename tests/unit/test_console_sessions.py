"""Session expiry (idle and hard maximum) and failed-login throttling, on a fake clock."""

from __future__ import annotations

from console_fakes import PIN, Clock, login, make_app
from starlette.testclient import TestClient

from appliance.console.sessions import LoginThrottle, SessionManager


def test_idle_expiry_counts_only_the_officers_own_actions():
    clock = Clock()
    app, *_ = make_app(clock, session_minutes=10)
    client = TestClient(app)
    login(client)
    clock.t += 9 * 60
    assert client.get("/api/status").status_code == 200  # passive: does not extend the session
    clock.t += 61
    assert client.get("/api/status").status_code == 401


def test_activity_keeps_the_session_alive_until_the_hard_maximum():
    clock = Clock()
    app, *_ = make_app(clock, session_minutes=10, session_max_hours=1)
    client = TestClient(app)
    login(client)
    csrf = client.get("/").text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    for _ in range(5):  # 5 x 9 min = 45 min, each followed by a touch
        clock.t += 9 * 60
        r = client.post("/api/ping", headers={"Origin": "http://testserver", "X-CSRF-Token": csrf})
        assert r.status_code == 200
        assert r.json()["expires_in_s"] == 600
    clock.t += 9 * 60  # 54 min
    r = client.post("/api/ping", headers={"Origin": "http://testserver", "X-CSRF-Token": csrf})
    assert r.json()["expires_in_s"] == 6 * 60  # capped by the hard maximum
    clock.t += 6 * 60
    assert client.get("/api/alerts").status_code == 401
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_session_manager_forgets_tokens_and_stores_only_hashes():
    clock = Clock()
    sm = SessionManager(idle_s=60, max_s=3600, clock=clock)
    token, s = sm.create("PC1", "PC One")
    assert token not in repr(sm._sessions)
    assert sm.get(token) is s and sm.get("other") is None and sm.get(None) is None
    clock.t += 60
    assert sm.get(token) is None and sm.count() == 0
    t1, _ = sm.create("PC1", "x")
    t2, _ = sm.create("PC2", "y")
    assert sm.end_officer("PC1") == 1
    assert sm.get(t1) is None and sm.get(t2) is not None


def test_throttle_locks_an_officer_id_after_repeated_failures_and_doubles():
    clock = Clock()
    th = LoginThrottle(max_failures=3, lockout_s=30, clock=clock)
    assert [th.failure("PC1") for _ in range(2)] == [0, 0]
    assert th.failure("PC1") == 30
    assert th.retry_after("pc1") == 30  # ids are compared case-insensitively
    assert th.retry_after("PC2") == 0  # per officer id
    clock.t += 30
    assert th.retry_after("PC1") == 0
    assert th.failure("PC1") == 60
    clock.t += 60
    assert th.failure("PC1") == 120
    for _ in range(10):
        clock.t += 10_000
        lock = th.failure("PC1")
    assert lock == 30 * 16  # capped
    th.success("PC1")
    assert th.retry_after("PC1") == 0 and th.failure("PC1") == 0


def test_throttle_memory_is_bounded():
    clock = Clock()
    th = LoginThrottle(max_failures=1, lockout_s=1, clock=clock)
    th.MAX_TRACKED = 100
    for i in range(1000):
        th.failure(f"id{i}")
        clock.t += 0.01
    assert len(th._state) <= 100


def test_login_is_refused_while_locked_even_with_the_right_pin():
    clock = Clock()
    app, _, _, audit = make_app(clock, max_failed_logins=3, lockout_s=60)
    client = TestClient(app)
    for _ in range(3):
        assert login(client, pin="999999").status_code == 401
    r = login(client)
    assert r.status_code == 429 and r.headers["retry-after"] == "60"
    assert "Try again in 60 s" in r.text
    assert ("login.failed", "PC1", {"reason": "locked", "retry_after_s": 60}) in audit
    assert login(client, "NOBODY", "999999").status_code == 401  # other ids are not affected
    clock.t += 60
    assert login(client, pin=PIN).status_code == 303
    assert client.get("/api/alerts").status_code == 200
