"""Versioned schema migrations, one ordered list per database.

Each migration runs in its own transaction together with the bump of `PRAGMA user_version` and a row in
`_migrations`, so a crash leaves the schema at the old or the new version, never between. A database
written by newer software (a higher version than we know) is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlite_utils

from appliance.errors import StorageError
from appliance.storage.transactions import write_transaction


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[sqlite_utils.Database], None]


class Migrations:
    """The ordered migrations of one kind of database (`name`, e.g. "watchlist" or "events")."""

    def __init__(self, name: str, migrations: Sequence[Migration]):
        versions = [m.version for m in migrations]
        if versions != list(range(1, len(migrations) + 1)):
            raise ValueError(f"migrations of {name} must be numbered 1..n in order, got {versions}")
        self.name = name
        self.migrations = list(migrations)

    @property
    def latest(self) -> int:
        return len(self.migrations)


def schema_version(db: sqlite_utils.Database) -> int:
    return int(db.conn.execute("PRAGMA user_version").fetchone()[0])


def _kind(db: sqlite_utils.Database) -> str | None:
    if "_migrations" not in db.table_names():
        return None
    row = db.conn.execute("SELECT database FROM _migrations ORDER BY version LIMIT 1").fetchone()
    return row[0] if row else None


def migrate(db: sqlite_utils.Database, migrations: Migrations, target: int | None = None) -> int:
    """Bring `db` up to `target` (default: latest). Returns the version it is at afterwards."""
    target = migrations.latest if target is None else target
    current = schema_version(db)
    kind = _kind(db)
    if kind is not None and kind != migrations.name:
        raise StorageError(f"this is a {kind!r} database, not a {migrations.name!r} one")
    if current > migrations.latest:
        raise StorageError(
            f"the {migrations.name} database is at schema version {current}, newer than this software knows "
            f"({migrations.latest}); upgrade the appliance"
        )
    for m in migrations.migrations[current:target]:
        with write_transaction(db):
            if "_migrations" not in db.table_names():
                db.conn.execute(
                    "CREATE TABLE _migrations (version INTEGER PRIMARY KEY, database TEXT NOT NULL, "
                    "name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
            m.apply(db)
            db.conn.execute(
                "INSERT INTO _migrations (version, database, name, applied_at) VALUES (?, ?, ?, ?)",
                (m.version, migrations.name, m.name, datetime.now(timezone.utc).isoformat(timespec="seconds")),
            )
            # user_version lives in the database header and is covered by the same transaction.
            db.conn.execute(f"PRAGMA user_version = {int(m.version)}")
    return schema_version(db)
