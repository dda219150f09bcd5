"""The audit chain's logic on an in-memory database: linking, hashing, signing, and what breaks it."""

from __future__ import annotations

import itertools
import sqlite3

import pytest
import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.audit.chain import GENESIS, AuditSigner, append_entry, iter_entries, verify_chain
from appliance.audit.tables import create_audit_table


@pytest.fixture
def db():
    d = sqlite_utils.Database(sqlite3.connect(":memory:"))
    create_audit_table(d)
    return d


@pytest.fixture
def signer():
    return AuditSigner(Ed25519PrivateKey.generate())


def fill(db, signer, n=5):
    return [append_entry(db, signer, "van-01", "login", f"PC-{i}", {"ok": True, "i": i}) for i in range(n)]


def test_entries_link_to_the_previous_hash(db, signer):
    entries = fill(db, signer)
    assert entries[0].seq == 1 and entries[0].prev == GENESIS
    for a, b in itertools.pairwise(entries):
        assert b.prev == a.hash and b.seq == a.seq + 1
    report = verify_chain(db, signer.public_key)
    assert report.ok and report.checked == 5 and report.last_hash == entries[-1].hash


def test_empty_chain_verifies(db, signer):
    assert verify_chain(db, signer.public_key).ok


def _bypass(db):
    # The tests play the attacker: drop the append-only triggers first.
    db.conn.execute("DROP TRIGGER audit_no_update")
    db.conn.execute("DROP TRIGGER audit_no_delete")


def test_altered_data_names_that_entry(db, signer):
    fill(db, signer)
    _bypass(db)
    db.conn.execute("UPDATE audit SET data = '{\"i\":2,\"ok\":false}' WHERE seq = 3")
    r = verify_chain(db, signer.public_key)
    assert not r.ok and r.first_bad == 3 and "altered" in r.reason
    assert "entry 3" in r.line()


def test_rehashed_entry_fails_on_its_signature(db, signer):
    from appliance.audit.chain import entry_hash

    entries = fill(db, signer)
    _bypass(db)
    e = entries[1]
    body = e.body() | {"actor": "someone-else"}
    db.conn.execute("UPDATE audit SET actor = ?, hash = ? WHERE seq = 2", ("someone-else", entry_hash(body)))
    r = verify_chain(db, signer.public_key)
    # Entry 2 now has a hash nobody signed; entry 3 would also no longer follow it.
    assert not r.ok and r.first_bad == 2 and "signature" in r.reason


def test_deleted_entry_is_a_gap(db, signer):
    fill(db, signer)
    _bypass(db)
    db.conn.execute("DELETE FROM audit WHERE seq = 4")
    r = verify_chain(db, signer.public_key)
    assert not r.ok and r.first_bad == 5 and "jumps" in r.reason


def test_other_key_is_refused(db, signer):
    fill(db, signer, 2)
    other = AuditSigner(Ed25519PrivateKey.generate())
    r = verify_chain(db, other.public_key)
    assert not r.ok and r.first_bad == 1 and "not by this device's key" in r.reason


def test_sql_cannot_update_or_delete(db, signer):
    fill(db, signer, 2)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.conn.execute("UPDATE audit SET actor = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.conn.execute("DELETE FROM audit")


@pytest.mark.parametrize("data", [{"crop_jpeg_b64": "..."}, {"x": {"embedding": [0.1]}}, {"x": [b"\xff\xd8"]},
                                  {"display_name": "A Person"}])
def test_biometric_content_is_refused(db, signer, data):
    with pytest.raises(ValueError, match="refused"):
        append_entry(db, signer, "van-01", "alert", "system", data)
    assert list(iter_entries(db)) == []


def test_time_window(db, signer):
    for i, at in enumerate(["2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z"]):
        append_entry(db, signer, "van-01", "login", "PC", {"i": i}, at=at)
    got = [e.seq for e in iter_entries(db, from_at="2026-01-02", to_at="2026-01-03")]
    assert got == [2]


def test_every_audit_kind_is_documented_and_an_unknown_kind_is_refused():
    from appliance.audit.chain import KINDS, append_entry
    from appliance.paths import PROJECT_ROOT

    doc = (PROJECT_ROOT / "docs" / "audit.md").read_text()
    assert [k for k in KINDS if f"`{k}`" not in doc] == []
    with pytest.raises(ValueError, match=r"not one of audit\.chain\.KINDS"):
        append_entry(None, None, "van-01", "made.up", "system")  # refused before touching the database
