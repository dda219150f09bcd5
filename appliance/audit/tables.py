"""The audit chain's table in the events database, owned and migrated by this package (storage.migrate_part)."""

from __future__ import annotations

import sqlite_utils

from appliance.storage import Migration, Migrations


def create_audit_table(db: sqlite_utils.Database) -> None:
    # IF NOT EXISTS: an events database from before issue 14 already has the table (its migration 2 made it).
    # Append-only by convention AND by trigger: an UPDATE or DELETE through SQL is refused, so a bug cannot
    # rewrite history; someone with the key and a hex editor still can, which is what the chain detects.
    db.conn.execute("""CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY, at TEXT NOT NULL, device_id TEXT NOT NULL, kind TEXT NOT NULL,
        actor TEXT NOT NULL, data TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL,
        key_id TEXT NOT NULL, sig TEXT NOT NULL)""")
    db.conn.execute("CREATE INDEX IF NOT EXISTS audit_at ON audit (at)")
    db.conn.execute("""CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""")
    db.conn.execute("""CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""")


AUDIT_SCHEMA = Migrations("audit", [Migration(1, "audit chain", create_audit_table)])
