"""Nonces of commands already executed, in the events database; owned and migrated by this package."""

from __future__ import annotations

import sqlite_utils

from appliance.storage import Migration, Migrations


def create_command_nonces_table(db: sqlite_utils.Database) -> None:
    # IF NOT EXISTS: an events database from before issue 14 already has the table (its migration 2 made it).
    # A nonce is kept until its command has expired: after that the expiry alone refuses a replay.
    db.conn.execute("""CREATE TABLE IF NOT EXISTS command_nonces (
        nonce TEXT PRIMARY KEY, command_id TEXT NOT NULL, type TEXT NOT NULL, seen_at TEXT NOT NULL,
        expires_at TEXT NOT NULL)""")


COMMAND_NONCES_SCHEMA = Migrations("command_nonces", [Migration(1, "command nonces", create_command_nonces_table)])
