"""The deployments table in the events database; owned and migrated by this package (storage.migrate_part)."""

from __future__ import annotations

import sqlite_utils

from appliance.storage import Migration, Migrations


def create_deployments_table(db: sqlite_utils.Database) -> None:
    # IF NOT EXISTS: an events database from before issue 14 already has the table (its migration 2 made it).
    # `record` is the JSON record as published (deployment.json's `deployment` object); the columns beside
    # it are what queries need. `counts` holds counts only (faces seen, skipped...), never who.
    db.conn.execute("""CREATE TABLE IF NOT EXISTS deployments (
        id TEXT PRIMARY KEY, record TEXT NOT NULL, starts_at TEXT NOT NULL, planned_end TEXT NOT NULL,
        ended_at TEXT, end_reason TEXT, ended_by TEXT, counts TEXT NOT NULL DEFAULT '{}')""")
    db.conn.execute("CREATE INDEX IF NOT EXISTS deployments_open ON deployments (ended_at, starts_at)")


DEPLOYMENTS_SCHEMA = Migrations("deployments", [Migration(1, "deployments", create_deployments_table)])
