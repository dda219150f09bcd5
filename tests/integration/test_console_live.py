"""The console on the real stores and a real uvicorn server: alerts pushed live, decisions stored and queued
for MQTT, counters, refusals without a session, expiry closing the stream, clean shutdown."""

from __future__ import annotations

import json
import queue
import threading
import time

import httpx
import pytest
from console_env import OFFICER, PIN, build_env

from appliance.audit.chain import iter_entries
from appliance.config import ConsoleConfig


@pytest.fixture
def env(tmp_path, nasa_dir, pipeline):
    e = build_env(tmp_path, nasa_dir, pipeline)
    yield e
    e.close()


def logged_in(env) -> tuple[httpx.Client, dict]:
    origin = env.server.url.rstrip("/")
    c = httpx.Client(base_url=env.server.url, timeout=10)
    r = c.post("/login", data={"officer_id": OFFICER, "pin": PIN}, headers={"Origin": origin})
    assert r.status_code == 303, r.text
    page = c.get("/").text
    token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    return c, {"Origin": origin, "X-CSRF-Token": token}


class Stream:
    """Reads /api/stream in a thread; events land in a queue as (event, data)."""

    def __init__(self, client: httpx.Client):
        self.q: queue.Queue = queue.Queue()
        self.status_code: int | None = None
        self.ended = threading.Event()
        self._t = threading.Thread(target=self._run, args=(client,), daemon=True)
        self._t.start()

    def _run(self, client):
        try:
            with client.stream("GET", "/api/stream", timeout=httpx.Timeout(10, read=30)) as r:
                self.status_code = r.status_code
                event = None
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        self.q.put((event, json.loads(line[6:])))
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def next(self, kind: str, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ev, data = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if ev == kind:
                return data
        raise AssertionError(f"no {kind!r} event within {timeout} s")


def test_alert_pushed_live_decided_stored_and_queued_for_the_control_room(env):
    client, headers = logged_in(env)
    stream = Stream(client)
    first = stream.next("status")
    assert first["status"]["faces_seen"] == 1342 and first["counters"]["alerts"] == 0

    t0 = time.monotonic()
    alert = env.add_alert("S-002")
    pushed = stream.next("alert", timeout=2.0)
    latency = time.monotonic() - t0
    assert pushed["event_id"] == alert.event_id
    assert pushed["subject"]["display_name"] == "Catherine Coleman"
    assert pushed["subject"]["notes"].startswith("Reported missing")
    assert pushed["score"] >= pushed["threshold"]
    assert pushed["crop_url"] and pushed["reference_url"] and pushed["decisions"] == []
    print(f"alert reached the page's stream {latency * 1000:.0f} ms after it was committed")

    crop = client.get(pushed["crop_url"])
    ref = client.get(pushed["reference_url"])
    assert crop.content == alert.crop_jpeg and crop.headers["content-type"] == "image/jpeg"
    assert ref.content == env.watchlist.reference_photo("S-002")
    assert crop.headers["cache-control"] == "no-store"

    r = client.post(f"/api/alerts/{alert.event_id}/decision", json={"decision": "reject", "note": "different nose"},
                    headers=headers)
    assert r.status_code == 201
    decision = r.json()
    assert decision["officer_id"] == OFFICER and decision["decision"] == "reject"
    assert stream.next("decision")["event_id"] == decision["event_id"]

    # Stored in the encrypted events database, and in its outbox for the publisher (QoS 1 to the control room).
    assert [d["event_id"] for d in env.events.decisions_for(alert.event_id)] == [decision["event_id"]]
    unsent = {row["event_id"]: row for row in env.events.outbox_unsent()}
    assert unsent[decision["event_id"]]["topic"] == "decisions"
    assert unsent[decision["event_id"]]["payload"]["note"] == "different nose"

    # The signed audit chain holds the login and the decision, with the officer as the actor.
    entries = [(e.kind, e.actor) for e in iter_entries(env.events.db)]
    assert ("login", OFFICER) in entries and ("decision", OFFICER) in entries
    assert env.audit_log.verify().ok

    full = client.get(f"/api/alerts/{alert.event_id}").json()
    assert [d["decision"] for d in full["decisions"]] == ["reject"] and full["outcome"]["state"] == "rejected"
    counters = client.get("/api/status").json()["counters"]
    assert counters["alerts"] == 1 and counters["rejected"] == 1 and counters["rejected_share"] == 1.0
    pushed_status = stream.next("status", timeout=4)
    assert pushed_status["counters"]["rejected"] == 1
    assert pushed_status["status"]["outbox_backlog"] == 2  # nothing publishes in this test: alert + decision


def test_unauthenticated_requests_are_refused_on_the_real_server(env):
    alert = env.add_alert("S-001")
    anon = httpx.Client(base_url=env.server.url, timeout=10)
    for path in ("/api/alerts", f"/api/alerts/{alert.event_id}", f"/api/alerts/{alert.event_id}/crop.jpg",
                 f"/api/alerts/{alert.event_id}/reference.jpg", "/api/status", "/api/stream", "/static/console.js"):
        r = anon.get(path)
        assert r.status_code == 401, path
        assert b"\xff\xd8" not in r.content
    assert anon.get("/", follow_redirects=False).headers["location"] == "/login"
    r = anon.post(f"/api/alerts/{alert.event_id}/decision", json={"decision": "confirm"},
                  headers={"Origin": env.server.url.rstrip("/")})
    assert r.status_code == 401
    assert env.events.decisions_for(alert.event_id) == []
    r = anon.post("/login", data={"officer_id": OFFICER, "pin": "999999"},
                  headers={"Origin": env.server.url.rstrip("/")})
    assert r.status_code == 401
    assert ("login.failed", OFFICER, {"reason": "wrong id or PIN", "locked_s": 0}) in env.audit


def test_an_expired_session_ends_the_stream(tmp_path, nasa_dir, pipeline):
    env = build_env(tmp_path, nasa_dir, pipeline, console=ConsoleConfig(session_minutes=0.05))  # 3 s idle
    try:
        client, _ = logged_in(env)
        stream = Stream(client)
        stream.next("status")
        stream.next("expired", timeout=8)
        assert stream.ended.wait(3)
        assert client.get("/api/alerts").status_code == 401
    finally:
        env.close()


def test_stopping_the_server_ends_open_streams(tmp_path, nasa_dir, pipeline):
    env = build_env(tmp_path, nasa_dir, pipeline)
    try:
        client, _ = logged_in(env)
        stream = Stream(client)
        stream.next("status")
        t0 = time.monotonic()
        env.server.stop()
        env.server = None
        assert stream.ended.wait(5)
        assert time.monotonic() - t0 < 5
    finally:
        env.close()


def test_a_port_in_use_is_one_clear_error(env):
    from appliance.console import ConsoleBackend, ConsoleServer, create_app
    from appliance.errors import ApplianceError

    other = create_app(ConsoleBackend(events=env.events, watchlist=env.watchlist, officers=env.officers,
                                      status=dict, decide=lambda *a: None))
    with pytest.raises(ApplianceError, match=f"cannot listen on 127.0.0.1:{env.server.port}"):
        ConsoleServer(other, "127.0.0.1", env.server.port).start()
    client, _ = logged_in(env)  # the first server is unaffected
    assert client.get("/api/alerts").status_code == 200
