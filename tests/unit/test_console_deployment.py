"""Starting and ending a deployment from the console: the logged-in officer authorises, bad input is refused."""

from __future__ import annotations

import pytest
from console_fakes import ORIGIN, csrf, login, make_app
from starlette.testclient import TestClient

from appliance.deployments import record as rec
from appliance.deployments.record import DeploymentError, MatchingContext
from appliance.watchlist.timeutil import utcnow

FORM = {"purpose": "Find wanted people at the market", "location": "High Street", "dpia": "DPIA-2026-07",
        "hours": 4}


class FakeManager:
    """Keeps the real record validation (record.build_record) without a database."""

    def __init__(self) -> None:
        self.active: dict | None = None
        self.ended: list[dict] = []
        self.ctx = MatchingContext("wl", 3, "ab" * 32, 5, 0.61, "m", "cd" * 32)

    def start(self, req, *, source):
        if self.active is not None:
            raise DeploymentError(f"deployment {self.active['id']} is active; end it first")
        self.active = rec.build_record(req, self.ctx, now=utcnow(), source=source, max_hours=12)
        return self.active

    def end(self, reason, *, by, deployment_id=None):
        if self.active is None:
            return None
        record = rec.ended(self.active, reason=reason, by=by, at=utcnow())
        self.active = None
        self.ended.append(record)
        return record


@pytest.fixture
def setup():
    app, _events, _officers, audit = make_app()
    manager = FakeManager()
    app.state.backend.deployments = manager
    client = TestClient(app)
    return client, manager, audit


def post(client, path, body, token):
    return client.post(path, json=body, headers={"Origin": ORIGIN, "X-CSRF-Token": token})


def test_refused_without_a_session_or_csrf_token(setup):
    client, manager, _ = setup
    for path in ("/api/deployment/start", "/api/deployment/end"):
        r = client.post(path, json=FORM, headers={"Origin": ORIGIN})
        assert r.status_code == 401 and r.json() == {"error": "not logged in"}
    login(client)
    r = post(client, "/api/deployment/start", FORM, "wrong-token")
    assert r.status_code == 403
    r = client.post("/api/deployment/start", json=FORM,
                    headers={"Origin": "http://evil.example", "X-CSRF-Token": csrf(client)})
    assert r.status_code == 403
    assert manager.active is None


@pytest.mark.parametrize(("change", "message"), [
    ({"purpose": ""}, "purpose is required"),
    ({"location": None}, "location is required"),
    ({"dpia": "   "}, "dpia is required"),
    ({"hours": 0}, "hours must be a number"),
    ({"hours": "4"}, "hours must be a number"),
    ({"hours": 13}, "more than 12 hours"),
    ({"lat": 51.5}, "both latitude and longitude"),
    ({"lat": "x", "lon": 0.1}, "lat must be a number"),
    ({"lat": 95.0, "lon": 0.1}, "not a place on Earth"),
    ({"purpose": "x" * 1001}, "longer than 1000"),
])
def test_bad_input_is_refused_with_a_clear_400(setup, change, message):
    client, manager, _ = setup
    login(client)
    r = post(client, "/api/deployment/start", {**FORM, **change}, csrf(client))
    assert r.status_code == 400 and message in r.json()["error"], r.json()
    assert manager.active is None


def test_not_json_is_a_400(setup):
    client, _, _ = setup
    login(client)
    r = client.post("/api/deployment/start", content=b"nope",
                    headers={"Origin": ORIGIN, "X-CSRF-Token": csrf(client), "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json() == {"error": "expected a JSON body"}


def test_start_then_end_records_the_logged_in_officer(setup):
    client, manager, _ = setup
    login(client, "PC2")
    token = csrf(client)
    r = post(client, "/api/deployment/start", {**FORM, "lat": 51.5, "lon": -0.12}, token)
    assert r.status_code == 201, r.json()
    d = r.json()["deployment"]
    assert d["authorised_by"] == "PC2" and d["source"] == "console" and d["dpia_ref"] == "DPIA-2026-07"
    assert d["location"] == {"text": "High Street", "lat": 51.5, "lon": -0.12}
    again = post(client, "/api/deployment/start", FORM, token)
    assert again.status_code == 400 and "end it first" in again.json()["error"]
    r = post(client, "/api/deployment/end", {}, token)
    assert r.status_code == 200
    assert r.json()["deployment"]["ended_by"] == "PC2" and r.json()["deployment"]["end_reason"] == "officer"
    assert manager.active is None and len(manager.ended) == 1
    r = post(client, "/api/deployment/end", {}, token)
    assert r.status_code == 409 and r.json() == {"error": "no deployment is active"}



def test_the_console_leaves_auditing_to_the_manager(setup):
    # The manager's start and end are audited by the audit chain's write hook; a second entry would double them.
    client, _, audit = setup
    login(client)
    token = csrf(client)
    assert post(client, "/api/deployment/start", FORM, token).status_code == 201
    assert post(client, "/api/deployment/end", {}, token).status_code == 200
    assert [k for k, _, _ in audit if k.startswith("deployment")] == []


def test_hidden_without_a_manager():
    app, *_ = make_app()
    client = TestClient(app)
    login(client)
    assert 'name="deployments" content="off"' in client.get("/").text
    r = post(client, "/api/deployment/start", FORM, csrf(client))
    assert r.status_code == 404
