"""The events store on real SQLCipher: an alert/decision and its outbox row are written in one transaction
(all or nothing), listeners hear only committed events, the console's queries and counters, concurrent use
from several threads, crops NULL-able by retention, and nothing readable in the file without the key."""

from __future__ import annotations

import json
import threading

import pytest

from appliance.errors import ApplianceError
from appliance.events import Alert, Decision, EventStore
from appliance.events.burst import synthetic_crop
from appliance.events.schemas import TOPIC_KIND, payload_error
from appliance.events.store import EVENTS_MIGRATIONS
from appliance.storage import KeyFileProvider, Migrations, open_db, schema_version
from appliance.storage.database import database_files


def _alert(i: int = 1, **kw) -> Alert:
    base = dict(device_id="van-01", subject_id=f"S-{i:03d}", category="wanted", score=0.7, threshold=0.5,
                track_id=i, model_id="mobilefacenet-int8", watchlist_id="wl-1", watchlist_version=4,
                crop_jpeg=synthetic_crop(i))
    return Alert(**{**base, **kw})


@pytest.fixture()
def store(tmp_path):
    s = EventStore.open(tmp_path / "data", KeyFileProvider(tmp_path / "keys"))
    yield s
    s.close()


def test_alert_and_outbox_row_commit_together_or_not_at_all(store):
    heard = []
    store.subscribe(lambda kind, data: heard.append((kind, data["event_id"])))
    a = _alert()
    store.add_alert(a)
    assert store.outbox()[0]["event_id"] == a.event_id and store.outbox_backlog() == 1
    assert heard == [("alert", a.event_id)]

    def failing_hook(db, kind, obj):
        raise RuntimeError("audit chain unavailable")

    store.add_write_hook(failing_hook)
    b = _alert(2)
    with pytest.raises(RuntimeError):
        store.add_alert(b)
    assert store.alert(b.event_id) is None, "alert row kept without its outbox row"
    assert [r["event_id"] for r in store.outbox()] == [a.event_id]
    assert heard == [("alert", a.event_id)], "a listener heard an event that was rolled back"
    with pytest.raises(ApplianceError, match="no alert"):
        store.add_decision(Decision(device_id="van-01", alert_id=b.event_id, officer_id="PC-1", decision="reject"))


def test_console_queries_counters_and_wire_payloads(store):
    alerts = [_alert(i) for i in range(1, 6)]
    for a in alerts:
        store.add_alert(a)
    decide = [("confirm", 0), ("reject", 1), ("unsure", 2), ("unsure", 3), ("reject", 3)]  # alert 4: latest counts
    for d, i in decide:
        store.add_decision(Decision(device_id="van-01", alert_id=alerts[i].event_id, officer_id="PC-1", decision=d))
    assert store.counters() == {"alerts": 5, "confirmed": 1, "rejected": 2, "unsure": 1, "pending": 1,
                                "rejected_share": 0.5}
    page = store.alerts(limit=3)
    assert [x["event_id"] for x in page] == [a.event_id for a in alerts[::-1][:3]]
    assert "crop_jpeg" not in page[0] and page[0]["has_crop"]
    assert page[1]["latest_decision"]["decision"] == "reject"
    rest = store.alerts(limit=10, before=page[-1]["event_id"])  # exact even within one millisecond
    assert [x["event_id"] for x in rest] == [a.event_id for a in alerts[:2][::-1]]
    assert all(x["created_at"] < page[0]["created_at"] for x in store.alerts(before=page[0]["created_at"]))
    assert store.alert(alerts[0].event_id)["crop_jpeg"] == alerts[0].crop_jpeg
    assert [d["decision"] for d in store.decisions_for(alerts[3].event_id)] == ["unsure", "reject"]
    assert store.get_alert(alerts[2].event_id).crop_jpeg == alerts[2].crop_jpeg
    rows = store.outbox_unsent(limit=100)
    assert [r["topic"] for r in rows] == ["alerts"] * 5 + ["decisions"] * 5
    for r in rows:
        assert payload_error(r["payload"]) is None, payload_error(r["payload"])
    # Retention NULLs the crop in its own column: the wire payload then says so, the outbox holds no copy.
    with store.transaction() as db:
        db.conn.execute("UPDATE alerts SET crop_jpeg = NULL WHERE event_id = ?", (alerts[0].event_id,))
    first = store.outbox_unsent(limit=1)[0]["payload"]
    assert first["crop_jpeg_b64"] is None and payload_error(first) is None
    assert store.alerts(limit=10)[-1]["has_crop"] is False
    store.mark_sent([r["id"] for r in rows[:4]])
    assert store.outbox_backlog() == 6


def test_capture_times_and_looks_are_stored_listed_and_published(store):
    heard = []
    store.subscribe(lambda kind, data: heard.append(data))
    a = _alert(9, looks=2, captured_at="2026-11-26T06:30:01.500Z", first_seen_at="2026-11-26T06:29:58.000Z")
    store.add_alert(a)
    for row in (store.alert(a.event_id, with_crop=False), store.alerts(limit=1)[0], heard[0]):
        assert (row["first_seen_at"], row["captured_at"], row["looks"]) == (a.first_seen_at, a.captured_at, 2)
    assert store.get_alert(a.event_id) == a
    wire = store.outbox_unsent()[0]["payload"]
    assert wire["schema"] == "lfr.alert/2" and payload_error(wire) is None
    assert (wire["first_seen_at"], wire["captured_at"], wire["looks"]) == (a.first_seen_at, a.captured_at, 2)


def test_concurrent_writers_and_readers(store):
    errors = []

    def writer(t):
        try:
            for i in range(25):
                a = _alert(t * 100 + i)
                store.add_alert(a)
                store.add_decision(Decision(device_id="van-01", alert_id=a.event_id, officer_id=f"PC-{t}",
                                            decision="confirm"))
        except Exception as e:
            errors.append(e)

    def reader():
        try:
            for _ in range(50):
                store.alerts(limit=20)
                store.counters()
                store.mark_sent([r["id"] for r in store.outbox_unsent(limit=5)])
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert store.counters()["alerts"] == 100 and store.counters()["confirmed"] == 100
    ids = [r["id"] for r in store.outbox(limit=1000)]
    assert ids == list(range(1, 201)), "outbox sequence has gaps or disorder"


def test_file_is_encrypted(store, tmp_path):
    a = _alert(7, subject_id="S-SECRET-777")
    store.add_alert(a)
    store.close()
    blob = b"".join(p.read_bytes() for p in database_files(tmp_path / "data" / "events.db") if p.exists())
    assert b"S-SECRET-777" not in blob
    assert a.crop_jpeg[:64] not in blob and a.crop_jpeg[-64:] not in blob
    assert b"SQLite format 3" not in blob
    reopened = EventStore.open(tmp_path / "data", KeyFileProvider(tmp_path / "keys"), create=False)
    assert reopened.alert(a.event_id)["subject_id"] == "S-SECRET-777"
    reopened.close()
    store.db = reopened.db  # the fixture closes it again harmlessly


def test_two_processes_writing_the_same_store_wait_for_each_other(tmp_path):
    """The daemon and a CLI command hold separate connections to one events.db. Each write reads first (the
    alert exists? the next outbox id) and then writes; with a deferred BEGIN, a commit by the other connection
    in between made that fail at once with "database is locked". Write transactions are BEGIN IMMEDIATE."""
    daemon = EventStore.open(tmp_path / "data", KeyFileProvider(tmp_path / "keys"))
    cli = EventStore.open(tmp_path / "data", KeyFileProvider(tmp_path / "keys"))
    errors: list[str] = []

    def work(store: EventStore, first: int) -> None:
        for i in range(first, first + 150):
            try:
                a = _alert(i, crop_jpeg=None)
                store.add_alert(a)
                store.add_decision(Decision(device_id="van-01", alert_id=a.event_id, officer_id="PC-1",
                                            decision="reject"))
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(s, n)) for s, n in ((daemon, 1), (cli, 1001))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert len(daemon.outbox(limit=1000)) == 600  # 300 alerts + 300 decisions, each with its outbox row
    finally:
        daemon.close()
        cli.close()


def test_a_database_from_before_the_capture_times_opens_with_its_rows_and_queued_payloads(tmp_path):
    """Schema version 2 (no captured_at / first_seen_at) with an alert still queued as lfr.alert/1: the new
    software migrates it in place, keeps the row and its crop, and publishes the queued payload unchanged."""
    data, keys = tmp_path / "data", KeyFileProvider(tmp_path / "keys")
    old = open_db(data / "events.db", keys, migrations=Migrations("events", EVENTS_MIGRATIONS.migrations[:2]))
    assert schema_version(old) == 2
    a = _alert(3, looks=1)
    v1 = {k: v for k, v in a.to_payload(with_crop=False).items() if k not in ("captured_at", "first_seen_at")}
    v1["schema"] = "lfr.alert/1"
    cols = [k for k in v1 if k not in ("schema", "crop_jpeg_b64")]
    with old.conn:  # what the previous version's add_alert wrote
        old.conn.execute(f"INSERT INTO alerts ({', '.join(cols)}, crop_jpeg) VALUES ({', '.join('?' * len(cols))}, ?)",
                         (*[v1[c] for c in cols], a.crop_jpeg))
        old.conn.execute("INSERT INTO outbox (topic, event_id, payload, created_at) VALUES ('alerts', ?, ?, ?)",
                         (a.event_id, json.dumps(v1, sort_keys=True), a.created_at))
    old.close()

    store = EventStore.open(data, keys)
    try:
        assert schema_version(store.db) == EVENTS_MIGRATIONS.latest == 4  # 4: the outbox without its CHECK (issue 14)
        row = store.alert(a.event_id)
        assert row["crop_jpeg"] == a.crop_jpeg and row["looks"] == 1 and row["subject_id"] == a.subject_id
        assert row["captured_at"] is None and row["first_seen_at"] is None  # not known, not made up
        assert store.get_alert(a.event_id).captured_at is None
        queued = store.outbox_unsent()[0]["payload"]
        assert queued["schema"] == "lfr.alert/1" and "captured_at" not in queued
        assert queued["crop_jpeg_b64"] and payload_error(queued, TOPIC_KIND["alerts"]) is None
        b = _alert(4, looks=2, captured_at="2026-11-26T06:30:01.500Z", first_seen_at="2026-11-26T06:29:58.000Z")
        store.add_alert(b)
        assert [x["captured_at"] for x in store.alerts(limit=10)] == [b.captured_at, None]
    finally:
        store.close()
