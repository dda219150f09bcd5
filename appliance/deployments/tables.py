"""The deployments table in the events database (created by the events database's migration 2)."""

from __future__ import annotations

import sqlite_utils


def create_deployments_table(db: sqlite_utils.Database) -> None:
    # `record` is the JSON record as published (deployment.json's `deployment` object); the columns beside
    # it are what queries need. `counts` holds counts only (faces seen, skipped...), never who.
    db.conn.execute("""CREATE TABLE deployments (
        id TEXT PRIMARY KEY, record TEXT NOT NULL, starts_at TEXT NOT NULL, planned_end TEXT NOT NULL,
        ended_at TEXT, end_reason TEXT, ended_by TEXT, counts TEXT NOT NULL DEFAULT '{}')""")
    db.conn.execute("CREATE INDEX deployments_open ON deployments (ended_at, starts_at)")
