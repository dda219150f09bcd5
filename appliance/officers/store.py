"""The officers database (officers.db, SQLCipher): accounts the console logs in against.

Its own database, not a table in the events database, so officer accounts can be managed (and erased) apart
from the alert history, and neither schema waits on the other.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from appliance.errors import ApplianceError
from appliance.officers.pins import hash_pin, rehash_if_needed, verify_pin
from appliance.storage import KeyProvider, Migration, Migrations, open_db, write_transaction
from appliance.storage.databases import OFFICERS, db_path
from appliance.timeutil import now_iso

_OFFICER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


def _v1(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE officers (
            id TEXT PRIMARY KEY,
            display_name TEXT NOT NULL,
            pin_hash TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_login_at TEXT
        );
        """
    )


MIGRATIONS = Migrations("officers", [Migration(1, "officers", _v1)])


def _now() -> str:
    return now_iso()  # older rows say +00:00 and to the second; both read with appliance.timeutil.parse_time


def check_officer_id(officer_id: str) -> str:
    if not _OFFICER_ID.match(officer_id or ""):
        raise ApplianceError(
            f"bad officer id {officer_id!r}: 1 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return officer_id


@dataclass(frozen=True)
class Officer:
    id: str
    display_name: str
    active: bool
    created_at: str
    last_login_at: str | None


def _officer(row: dict) -> Officer:
    return Officer(row["id"], row["display_name"], bool(row["active"]), row["created_at"], row["last_login_at"])


class OfficerStore:
    """Thread-safe (one connection, one lock). PINs go in, only hashes are stored."""

    def __init__(self, db: sqlite_utils.Database, path: Path | None = None):
        self.db = db
        self.path = path
        self._lock = threading.RLock()

    @classmethod
    def open(cls, data_dir: Path, key_provider: KeyProvider, *, create: bool = True) -> OfficerStore:
        path = db_path(data_dir, OFFICERS)
        return cls(open_db(path, key_provider, migrations=MIGRATIONS, create=create), path)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _row(self, officer_id: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM officers WHERE id = ?", [officer_id]))
        return rows[0] if rows else None

    def add(self, officer_id: str, pin: str, *, display_name: str | None = None, replace: bool = False) -> Officer:
        """Create an officer (or, with `replace`, set a new PIN and re-enable an existing one)."""
        check_officer_id(officer_id)
        pin_hash = hash_pin(pin)  # raises PinError before anything is written
        now = _now()
        with self._lock, write_transaction(self.db):
            row = self._row(officer_id)
            if row is not None and not replace:
                raise ApplianceError(f"officer {officer_id} already exists (use --reset to set a new PIN)")
            if row is None:
                self.db.execute(
                    "INSERT INTO officers (id, display_name, pin_hash, active, created_at, updated_at) "
                    "VALUES (?, ?, ?, 1, ?, ?)",
                    [officer_id, display_name or officer_id, pin_hash, now, now],
                )
            else:
                self.db.execute(
                    "UPDATE officers SET pin_hash = ?, active = 1, updated_at = ?, display_name = ? WHERE id = ?",
                    [pin_hash, now, display_name or row["display_name"], officer_id],
                )
            return _officer(self._row(officer_id))

    def disable(self, officer_id: str) -> Officer:
        with self._lock, write_transaction(self.db):
            if self._row(officer_id) is None:
                raise ApplianceError(f"no officer {officer_id}")
            self.db.execute("UPDATE officers SET active = 0, updated_at = ? WHERE id = ?", [_now(), officer_id])
            return _officer(self._row(officer_id))

    def get(self, officer_id: str) -> Officer | None:
        with self._lock:
            row = self._row(officer_id)
        return _officer(row) if row else None

    def is_active(self, officer_id: str) -> bool:
        o = self.get(officer_id)
        return bool(o and o.active)

    def list(self) -> list[Officer]:
        with self._lock:
            return [_officer(r) for r in self.db.query("SELECT * FROM officers ORDER BY id")]

    def verify(self, officer_id: str, pin: str) -> Officer | None:
        """The officer if the id exists, is active and the PIN matches; None otherwise (same cost either way)."""
        with self._lock:
            row = self._row(officer_id) if _OFFICER_ID.match(officer_id or "") else None
        ok = verify_pin(row["pin_hash"] if row else None, pin)
        if not ok or not row["active"]:
            return None
        with self._lock, write_transaction(self.db):
            updates = {"last_login_at": _now()}
            new_hash = rehash_if_needed(row["pin_hash"], pin)
            if new_hash:
                updates["pin_hash"] = new_hash
            sets = ", ".join(f"{k} = ?" for k in updates)
            self.db.execute(f"UPDATE officers SET {sets} WHERE id = ?", [*updates.values(), officer_id])
            return _officer(self._row(officer_id))
