"""Versioned schema migrations, one ordered list per database.

Each migration runs in its own transaction together with the bump of `PRAGMA user_version` and a row in
`_migrations`, so a crash leaves the schema at the old or the new version, never between. A database
written by newer software (a higher version than we know) is refused rather than guessed at.

A database may also hold *parts*: tables that belong to another package than the database's own (the audit
chain, deployments, legal holds and command nonces live in the events database beside the events they account
for). Each part has its own ordered `Migrations`, applied by `migrate_part` and versioned in `_schema_parts`,
so the database's own migrations never import the packages that use it (issue 14).
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


def part_version(db: sqlite_utils.Database, name: str) -> int:
    if "_schema_parts" not in db.table_names():
        return 0
    row = db.conn.execute("SELECT version FROM _schema_parts WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def migrate_part(db: sqlite_utils.Database, part: Migrations) -> int:
    """Bring the tables of `part` inside `db` up to date; the version is the part's own, not the database's.
    Idempotent and cheap when nothing is to do (one SELECT), so a package may call it whenever it opens its
    tables. Returns the part's version afterwards."""
    current = part_version(db, part.name)
    if current > part.latest:
        raise StorageError(
            f"the {part.name} tables are at schema version {current}, newer than this software knows "
            f"({part.latest}); upgrade the appliance"
        )
    for m in part.migrations[current:]:
        with write_transaction(db):
            if part_version(db, part.name) >= m.version:  # another connection (the CLI beside the daemon) did it
                continue
            db.conn.execute("CREATE TABLE IF NOT EXISTS _schema_parts (name TEXT PRIMARY KEY, "
                            "version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
            m.apply(db)
            db.conn.execute(
                "INSERT INTO _schema_parts (name, version, applied_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET version = excluded.version, applied_at = excluded.applied_at",
                (part.name, m.version, datetime.now(timezone.utc).isoformat(timespec="seconds")),
            )
    return part_version(db, part.name)
