"""Legal holds in the events database (created by the events database's migration 2)."""

from __future__ import annotations

import sqlite_utils


def create_legal_holds_table(db: sqlite_utils.Database) -> None:
    # A held alert keeps its crop past the retention period until the hold is lifted.
    db.conn.execute("""CREATE TABLE legal_holds (
        alert_id TEXT PRIMARY KEY REFERENCES alerts(event_id), held_by TEXT NOT NULL, reason TEXT NOT NULL,
        held_at TEXT NOT NULL)""")
