"""Audit export lines: verifiable with the public key alone; any change, cut or splice is found."""

from __future__ import annotations

import json
import sqlite3

import pytest
import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.audit.chain import AuditSigner, append_entry
from appliance.audit.export import export_lines, verify_export
from appliance.audit.tables import create_audit_table


@pytest.fixture
def setup():
    db = sqlite_utils.Database(sqlite3.connect(":memory:"))
    create_audit_table(db)
    signer = AuditSigner(Ed25519PrivateKey.generate())
    for day in range(1, 6):
        append_entry(db, signer, "van-01", "decision", f"PC-{day}", {"decision": "reject"},
                     at=f"2026-03-0{day}T10:00:00.000Z")
    return db, signer


def test_roundtrip(setup):
    db, signer = setup
    lines = list(export_lines(db, signer, "van-01"))
    assert len(lines) == 6
    r = verify_export(lines, signer.public_key, device_id="van-01")
    assert r.ok and r.entries == 5, r.summary()
    assert "5 entries" in r.summary()


def test_window_and_join(setup):
    db, signer = setup
    a = list(export_lines(db, signer, "van-01", to_at="2026-03-03"))
    b = list(export_lines(db, signer, "van-01", from_at="2026-03-03"))
    ra = verify_export(a, signer.public_key)
    assert ra.ok and ra.entries == 2
    # The second export joins the first one: its first entry follows the first export's last hash.
    assert verify_export(b, signer.public_key, expect_prev=ra.trailer["last_hash"]).ok
    assert not verify_export(b, signer.public_key, expect_prev="0" * 64).ok


def test_changed_line_is_named(setup):
    db, signer = setup
    lines = list(export_lines(db, signer, "van-01"))
    obj = json.loads(lines[2])
    obj["data"]["decision"] = "confirm"
    lines[2] = json.dumps(obj)
    r = verify_export(lines, signer.public_key)
    assert not r.ok and r.line == 3 and r.seq == 3 and "altered" in r.reason


@pytest.mark.parametrize("cut", ["drop_middle", "drop_last_entry", "drop_trailer", "other_key"])
def test_cuts_and_keys(setup, cut):
    db, signer = setup
    lines = list(export_lines(db, signer, "van-01"))
    key = signer.public_key
    if cut == "drop_middle":
        del lines[1]
    elif cut == "drop_last_entry":
        del lines[-2]
    elif cut == "drop_trailer":
        del lines[-1]
    else:
        key = Ed25519PrivateKey.generate().public_key()
    r = verify_export(lines, key)
    assert not r.ok, cut


def test_forged_trailer_count(setup):
    db, signer = setup
    lines = list(export_lines(db, signer, "van-01"))
    t = json.loads(lines[-1])
    t["count"] = 4
    lines[-1] = json.dumps(t)
    r = verify_export(lines, signer.public_key)
    assert not r.ok and "signature" in r.reason
