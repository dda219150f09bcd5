"""In-memory stand-ins for the console's unit tests of pure logic (auth, sessions, throttling, stream).

The integration tests use the real SQLCipher stores; these only keep the unit tests fast.
"""

from __future__ import annotations

import uuid

from appliance.config import ConsoleConfig
from appliance.console import ConsoleBackend, create_app
from appliance.officers.pins import hash_pin, verify_pin

ORIGIN = "http://testserver"
PIN = "135792"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeOfficers:
    def __init__(self) -> None:
        self.hashes = {"PC1": hash_pin(PIN), "PC2": hash_pin(PIN)}
        self.active = {"PC1": True, "PC2": True}

    def verify(self, officer_id, pin):
        ok = verify_pin(self.hashes.get(officer_id), pin)
        if ok and self.active[officer_id]:
            return type("Officer", (), {"id": officer_id, "display_name": f"PC {officer_id[2:]} One"})()
        return None

    def is_active(self, officer_id):
        return self.active.get(officer_id, False)


class FakeEvents:
    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}
        self.decisions: list[dict] = []
        self.listeners = []
        self.sent = 0  # outbox rows acknowledged by the broker (an alert and a decision are one row each)

    def add(self, subject_id="S-1") -> dict:
        a = {"event_id": str(uuid.uuid4()), "created_at": f"2026-11-26T07:00:{len(self.rows):02d}.000Z",
             "device_id": "van-01", "deployment_id": None, "subject_id": subject_id, "category": "wanted",
             "score": 0.61, "threshold": 0.42, "track_id": 1, "looks": 2, "model_id": "m",
             "watchlist_id": "wl", "watchlist_version": 1, "crop_jpeg": b"\xff\xd8crop", "latest_decision": None}
        self.rows[a["event_id"]] = a
        for cb in self.listeners:
            cb("alert", {k: v for k, v in a.items() if k != "crop_jpeg"} | {"has_crop": True})
        return a

    def alerts(self, limit=50, before=None):
        rows = sorted(self.rows.values(), key=lambda a: a["created_at"], reverse=True)
        if before in self.rows:  # keyset, as the real store: below the cursor alert
            rows = [a for a in rows if a["created_at"] < self.rows[before]["created_at"]]
        elif before is not None:
            rows = [a for a in rows if a["created_at"] < before]
        return rows[:limit]

    def alert(self, event_id):
        return self.rows.get(event_id)

    def decisions_for(self, alert_id):
        return [d for d in self.decisions if d["alert_id"] == alert_id]

    def counters(self):
        return {"alerts": len(self.rows), "confirmed": 0, "rejected": 0, "unsure": 0, "pending": len(self.rows),
                "rejected_share": None}

    def outbox_backlog(self):
        return len(self.rows) + len(self.decisions) - self.sent

    def subscribe(self, cb):
        self.listeners.append(cb)
        return lambda: self.listeners.remove(cb)

    def decide(self, alert_id, officer_id, decision, note):
        d = {"event_id": str(uuid.uuid4()), "alert_id": alert_id, "created_at": "2026-11-26T07:01:00.000Z",
             "device_id": "van-01", "officer_id": officer_id, "decision": decision, "note": note}
        self.decisions.append(d)
        for cb in self.listeners:
            cb("decision", d)
        return d


class FakeWatchlist:
    def subject(self, subject_id):
        return {"id": subject_id, "display_name": "Test Person", "category": "wanted", "notes": "n"}

    def reference_photo(self, subject_id):
        return b"\xff\xd8ref"


def make_app(clock=None, two_officer=False, **config):
    events, officers = FakeEvents(), FakeOfficers()
    audit: list[tuple[str, str, dict]] = []
    backend = ConsoleBackend(
        events=events, watchlist=FakeWatchlist(), officers=officers,
        status=lambda: {"camera_fps": 25.0, "faces_seen": 7, "broker": "connected", "outbox_backlog": 0},
        decide=events.decide, config=ConsoleConfig(**config), audit=lambda k, a, d: audit.append((k, a, d)),
        device_id="van-01", two_officer=two_officer,
    )
    app = create_app(backend, clock=clock or Clock())
    return app, events, officers, audit


def login(client, officer_id="PC1", pin=PIN):
    return client.post("/login", data={"officer_id": officer_id, "pin": pin}, headers={"Origin": ORIGIN},
                       follow_redirects=False)


def csrf(client) -> str:
    page = client.get("/").text
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
