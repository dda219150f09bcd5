"""The storage layer on real SQLCipher: encrypted at rest, clear errors for wrong/missing keys, migrations."""

import shutil
import sqlite3
import subprocess

import pytest

from appliance.errors import StorageError
from appliance.storage import (
    EnvKeyProvider,
    KeyFileProvider,
    Migration,
    Migrations,
    erase_db,
    open_db,
    schema_version,
)

M1 = Migration(1, "people", lambda db: db["people"].create({"id": int, "name": str}, pk="id"))
M2 = Migration(2, "people.age", lambda db: db["people"].add_column("age", int))
MIGRATIONS = Migrations("demo", [M1, M2])


def test_roundtrip_and_migrations(tmp_path):
    kp = KeyFileProvider(tmp_path / "keys")
    db = open_db(tmp_path / "demo.db", kp, migrations=Migrations("demo", [M1]))
    assert schema_version(db) == 1
    db["people"].insert({"id": 1, "name": "Ada"})
    db.close()
    db = open_db(tmp_path / "demo.db", kp, migrations=MIGRATIONS)
    assert schema_version(db) == 2
    assert db["people"].get(1) == {"id": 1, "name": "Ada", "age": None}
    assert [r["name"] for r in db["_migrations"].rows] == ["people", "people.age"]
    assert (tmp_path / "demo.db").stat().st_mode & 0o077 == 0
    db.close()


def test_plain_sqlite_cannot_read(tmp_path):
    db = open_db(tmp_path / "demo.db", KeyFileProvider(tmp_path / "keys"), migrations=MIGRATIONS)
    db["people"].insert({"id": 1, "name": "Unmistakable Name"})
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    raw = (tmp_path / "demo.db").read_bytes()
    assert b"Unmistakable" not in raw and not raw.startswith(b"SQLite format 3")
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        sqlite3.connect(tmp_path / "demo.db").execute("SELECT * FROM sqlite_master").fetchall()
    if shutil.which("sqlite3"):
        r = subprocess.run(["sqlite3", str(tmp_path / "demo.db"), ".tables"], capture_output=True, text=True)
        assert r.returncode != 0 and "not a database" in r.stderr


def test_wrong_key_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("K1", "11" * 32)
    monkeypatch.setenv("K2", "22" * 32)
    open_db(tmp_path / "demo.db", EnvKeyProvider("K1"), migrations=MIGRATIONS).close()
    with pytest.raises(StorageError) as e:
        open_db(tmp_path / "demo.db", EnvKeyProvider("K2"), migrations=MIGRATIONS)
    msg = str(e.value)
    assert "wrong key" in msg and "K2" in msg and "\n" not in msg
    assert "file is not a database" not in msg


def test_missing_key_one_clear_line(tmp_path):
    kp = KeyFileProvider(tmp_path / "keys")
    open_db(tmp_path / "demo.db", kp, migrations=MIGRATIONS).close()
    (tmp_path / "keys" / "demo.key").unlink()
    with pytest.raises(StorageError, match="key is missing"):
        open_db(tmp_path / "demo.db", kp, migrations=MIGRATIONS)


def test_plain_sqlite_file_is_named(tmp_path):
    sqlite3.connect(tmp_path / "demo.db").execute("CREATE TABLE t (x)").connection.commit()
    kp = KeyFileProvider(tmp_path / "keys")
    (tmp_path / "keys").mkdir()
    kp.key("demo", create=True)
    with pytest.raises(StorageError, match="plain, unencrypted SQLite"):
        open_db(tmp_path / "demo.db", kp)


def test_newer_schema_refused(tmp_path):
    kp = KeyFileProvider(tmp_path / "keys")
    open_db(tmp_path / "demo.db", kp, migrations=MIGRATIONS).close()
    with pytest.raises(StorageError, match="newer than this software"):
        open_db(tmp_path / "demo.db", kp, migrations=Migrations("demo", [M1]))


def test_other_kind_refused(tmp_path):
    kp = KeyFileProvider(tmp_path / "keys")
    open_db(tmp_path / "demo.db", kp, migrations=MIGRATIONS).close()
    with pytest.raises(StorageError, match="not a 'events' one"):
        open_db(tmp_path / "demo.db", kp, migrations=Migrations("events", [M1]))


def test_failed_migration_leaves_old_version(tmp_path):
    kp = KeyFileProvider(tmp_path / "keys")
    open_db(tmp_path / "demo.db", kp, migrations=Migrations("demo", [M1])).close()

    def broken(db):
        db["people"].add_column("age", int)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        open_db(tmp_path / "demo.db", kp, migrations=Migrations("demo", [M1, Migration(2, "broken", broken)]))
    db = open_db(tmp_path / "demo.db", kp, migrations=Migrations("demo", [M1]))
    assert schema_version(db) == 1 and "age" not in db["people"].columns_dict


def test_crypto_erase(tmp_path):
    kp = KeyFileProvider(tmp_path / "keys")
    open_db(tmp_path / "demo.db", kp, migrations=MIGRATIONS).close()
    done = erase_db(tmp_path / "demo.db", kp)
    assert done[0].startswith("destroyed")
    assert not (tmp_path / "demo.db").exists() and not kp.has_key("demo")
    # a fresh, empty database can be provisioned afterwards
    db = open_db(tmp_path / "demo.db", kp, migrations=MIGRATIONS)
    assert db["people"].count == 0
