"""Nonces of commands already executed, in the events database (created by its migration 2)."""

from __future__ import annotations

import sqlite_utils


def create_command_nonces_table(db: sqlite_utils.Database) -> None:
    # A nonce is kept until its command has expired: after that the expiry alone refuses a replay.
    db.conn.execute("""CREATE TABLE command_nonces (
        nonce TEXT PRIMARY KEY, command_id TEXT NOT NULL, type TEXT NOT NULL, seen_at TEXT NOT NULL,
        expires_at TEXT NOT NULL)""")
