"""Legal holds in the events database; owned and migrated by this package (storage.migrate_part)."""

from __future__ import annotations

import sqlite_utils

from appliance.storage import Migration, Migrations


def create_legal_holds_table(db: sqlite_utils.Database) -> None:
    # IF NOT EXISTS: an events database from before issue 14 already has the table (its migration 2 made it).
    # A held alert keeps its crop past the retention period until the hold is lifted.
    db.conn.execute("""CREATE TABLE IF NOT EXISTS legal_holds (
        alert_id TEXT PRIMARY KEY REFERENCES alerts(event_id), held_by TEXT NOT NULL, reason TEXT NOT NULL,
        held_at TEXT NOT NULL)""")


LEGAL_HOLDS_SCHEMA = Migrations("legal_holds", [Migration(1, "legal holds", create_legal_holds_table)])
