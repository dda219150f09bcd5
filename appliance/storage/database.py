"""Open a SQLCipher database through sqlite-utils, with one clear line when the key is wrong or missing."""

from __future__ import annotations

import os
from pathlib import Path

import sqlcipher3
import sqlite_utils

from appliance.errors import KeyMaterialError, StorageError
from appliance.storage.keyprovider import KeyProvider
from appliance.storage.migrations import Migrations, migrate

_PLAIN_SQLITE_MAGIC = b"SQLite format 3\x00"
# Files SQLite may keep beside a database; all of them hold (encrypted) pages and go with a crypto-erase.
_SIDE_FILES = ("-wal", "-shm", "-journal")


def database_files(path: Path) -> list[Path]:
    path = Path(path)
    return [path] + [path.with_name(path.name + s) for s in _SIDE_FILES]


def _label(path: Path, label: str | None) -> str:
    return label or Path(path).stem


def open_db(
    path: Path,
    key_provider: KeyProvider,
    *,
    migrations: Migrations | None = None,
    label: str | None = None,
    create: bool = True,
) -> sqlite_utils.Database:
    """Open (or create) the encrypted database at `path` and migrate it; returns a sqlite_utils.Database.

    The key is the provider's key for `label` (default: the file's stem). A new database gets a new key
    (provisioning); an existing database whose key is gone or different is refused with one line.
    The connection may be used from several threads; callers serialise writes.
    """
    path = Path(path)
    label = _label(path, label)
    exists = path.exists() and path.stat().st_size > 0
    if not exists and not create:
        raise StorageError(f"no database at {path}")
    if exists and not key_provider.has_key(label):
        raise StorageError(
            f"cannot open {path}: its key is missing ({key_provider.describe(label)}); "
            "it was erased or never provisioned on this device"
        )
    try:
        key = key_provider.key(label, create=not exists)
    except KeyMaterialError as e:
        raise StorageError(f"cannot open {path}: {e}") from None
    if not exists:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = sqlcipher3.connect(str(path), check_same_thread=False, timeout=30)
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")  # its own stderr lines would bury ours
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.DatabaseError:
        conn.close()
        raise StorageError(_why_unreadable(path, key_provider.describe(label))) from None
    if not exists:
        os.chmod(path, 0o600)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")  # a committed watchlist or alert survives a power cut
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA secure_delete = ON")  # deleted rows (removed subjects) are overwritten, not left behind
    db = sqlite_utils.Database(conn)
    if migrations is not None:
        try:
            migrate(db, migrations)
        except BaseException:
            db.close()
            raise
    return db


def _why_unreadable(path: Path, key_origin: str) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        return f"cannot open {path}: {e.strerror}"
    if head == _PLAIN_SQLITE_MAGIC:
        return f"cannot open {path}: it is a plain, unencrypted SQLite file, not an appliance database"
    return f"cannot open {path}: wrong key ({key_origin}) or not an appliance database"


def erase_db(path: Path, key_provider: KeyProvider, *, label: str | None = None) -> list[str]:
    """Crypto-erase: destroy the database's key first (that alone makes it unreadable), then its files."""
    path = Path(path)
    done = [key_provider.destroy(_label(path, label))]
    for p in database_files(path):
        if p.exists():
            p.unlink()
            done.append(f"deleted {p}")
    return done
