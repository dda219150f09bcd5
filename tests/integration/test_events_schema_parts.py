"""Issue 14: the accountability packages own their tables in the events database (storage.migrate_part), and the
outbox's topics come from the message-kind registry instead of a CHECK. A database written before that, with
rows in every table, opens with every row kept, the audit triggers still on, and the outbox's sequence going on
where it was (never handing out a number twice, even after the newest rows were pruned)."""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from appliance.audit.tables import AUDIT_SCHEMA
from appliance.daemon.assembly import EVENTS_SCHEMA_PARTS, with_accountability_tables
from appliance.events import EventStore
from appliance.events.store import EVENTS_MIGRATIONS, TOPICS
from appliance.storage import KeyFileProvider, Migration, Migrations, migrate_part, open_db, schema_version
from appliance.storage.migrations import part_version


def _old_v2(db: sqlite_utils.Database) -> None:
    """The events database's migration 2 as it was before issue 14 (frozen here, as the databases out there have it)."""
    c = db.conn
    c.execute("""CREATE TABLE audit (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, device_id TEXT NOT NULL,
        kind TEXT NOT NULL, actor TEXT NOT NULL, data TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL,
        key_id TEXT NOT NULL, sig TEXT NOT NULL)""")
    c.execute("CREATE INDEX audit_at ON audit (at)")
    c.execute("""CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""")
    c.execute("""CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""")
    c.execute("""CREATE TABLE deployments (id TEXT PRIMARY KEY, record TEXT NOT NULL, starts_at TEXT NOT NULL,
        planned_end TEXT NOT NULL, ended_at TEXT, end_reason TEXT, ended_by TEXT, counts TEXT NOT NULL DEFAULT '{}')""")
    c.execute("CREATE INDEX deployments_open ON deployments (ended_at, starts_at)")
    c.execute("""CREATE TABLE legal_holds (alert_id TEXT PRIMARY KEY REFERENCES alerts(event_id),
        held_by TEXT NOT NULL, reason TEXT NOT NULL, held_at TEXT NOT NULL)""")
    c.execute("""CREATE TABLE command_nonces (nonce TEXT PRIMARY KEY, command_id TEXT NOT NULL, type TEXT NOT NULL,
        seen_at TEXT NOT NULL, expires_at TEXT NOT NULL)""")


OLD = Migrations("events", [EVENTS_MIGRATIONS.migrations[0], Migration(2, "old accountability tables", _old_v2),
                            EVENTS_MIGRATIONS.migrations[2]])


def _count(db, table: str) -> int:
    return int(db.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_a_database_from_before_issue_14_keeps_every_row_and_its_outbox_sequence(tmp_path):
    data, keys = tmp_path / "data", KeyFileProvider(tmp_path / "keys")
    old = open_db(data / "events.db", keys, migrations=OLD)
    with old.conn:
        old.conn.execute("INSERT INTO audit VALUES (1, 't', 'van-01', 'login', 'PC-1', '{}', 'p', 'h', 'k', 's')")
        old.conn.execute("INSERT INTO deployments (id, record, starts_at, planned_end) VALUES ('d1', '{}', 't', 't')")
        old.conn.execute("INSERT INTO command_nonces VALUES ('n1', 'c1', 'revoke', 't', 't')")
        for i in range(5):
            old.conn.execute("INSERT INTO outbox (topic, event_id, payload, created_at, sent_at, received_at) "
                             "VALUES ('decisions', ?, '{}', 't', 't', ?)", (f"e{i}", "t" if i < 2 else None))
        old.conn.execute("DELETE FROM outbox WHERE id > 3")  # the newest rows pruned: 4 and 5 were handed out
    # The old outbox refuses a topic not in its CHECK.
    with pytest.raises(Exception, match="CHECK constraint failed"), old.conn:
        old.conn.execute("INSERT INTO outbox (topic, event_id, payload, created_at) VALUES ('x', 'y', '{}', 't')")
    old.close()

    store = with_accountability_tables(EventStore.open(data, keys))
    try:
        db = store.db
        assert schema_version(db) == EVENTS_MIGRATIONS.latest == 4
        assert {p.name: part_version(db, p.name) for p in EVENTS_SCHEMA_PARTS} == {
            "audit": 1, "deployments": 1, "legal_holds": 1, "command_nonces": 1}
        assert [_count(db, t) for t in ("audit", "deployments", "command_nonces", "legal_holds")] == [1, 1, 1, 0]
        assert [(r["id"], r["received_at"]) for r in store.outbox()] == [(1, "t"), (2, "t"), (3, None)]
        with pytest.raises(Exception, match="append-only"), db.conn:  # the triggers came through
            db.conn.execute("UPDATE audit SET actor = 'someone else'")
        with store.transaction():
            assert store.enqueue("decisions", "e-new", {}) == 6  # after the pruned 5, never 4 again
        with pytest.raises(ValueError, match="outbox topic"), store.transaction():  # the registry refuses it
            store.enqueue("status", "e-x", {})
        assert "CHECK" not in db.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'outbox'").fetchone()[0]
    finally:
        store.close()


def test_a_new_database_gets_each_part_once_and_from_whoever_opens_it_first(tmp_path):
    data, keys = tmp_path / "data", KeyFileProvider(tmp_path / "keys")
    store = EventStore.open(data, keys)
    try:
        assert "audit" not in store.db.table_names()  # the events package creates none of the others' tables
        store.ensure_schema(AUDIT_SCHEMA)
        store.ensure_schema(AUDIT_SCHEMA)  # idempotent
        assert "audit" in store.db.table_names() and part_version(store.db, "audit") == 1
        assert set(TOPICS) == {"alerts", "decisions", "deployments"}
    finally:
        store.close()


def test_a_part_newer_than_this_software_is_refused(tmp_path):
    db = sqlite_utils.Database(sqlite3.connect(":memory:"))
    two = Migrations("audit", [*AUDIT_SCHEMA.migrations, Migration(2, "later", lambda d: None)])
    assert migrate_part(db, two) == 2
    from appliance.errors import StorageError

    with pytest.raises(StorageError, match="newer than this software"):
        migrate_part(db, AUDIT_SCHEMA)
