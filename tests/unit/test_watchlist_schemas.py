"""The watchlist's JSON Schemas are valid and say what the docs say (ack, header, status, entry, subjects)."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from appliance.watchlist.schemas import SCHEMA_DIR, first_error

NAMES = ["watchlist_ack", "watchlist_bundle_header", "watchlist_entry", "watchlist_state", "watchlist_status",
         "watchlist_subjects"]
H = "a" * 64


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid(name):
    Draft202012Validator.check_schema(json.loads((SCHEMA_DIR / f"{name}.json").read_text()))


def ack(**kw):
    a = {"schema": "watchlist_ack/1", "device": "van-01", "time": "2026-01-01T00:00:00Z", "status": "applied",
         "transfer_id": "b" * 32, "bundle_sha256": H, "watchlist_id": "wl", "version": 3, "watchlist_sha256": H,
         "reason": None, "detail": None,
         "active": {"watchlist_id": "wl", "version": 3, "watchlist_sha256": H, "subjects": 5,
                    "expires_at": "2026-02-01T00:00:00Z"}}
    a.update(kw)
    return a


def test_ack_examples():
    assert first_error("watchlist_ack", ack()) is None
    assert first_error("watchlist_ack", ack(status="refused", reason="replay", detail="v3 again")) is None
    assert first_error("watchlist_ack", ack(status="refused", reason="because", detail="x")) is not None
    assert first_error("watchlist_ack", ack(active=None, watchlist_id=None, version=None)) is None
    missing = ack()
    del missing["reason"]
    assert first_error("watchlist_ack", missing) == "missing reason"
    assert "unknown field" in first_error("watchlist_ack", ack(extra=1))


def test_entry_schema_requires_the_accountability_fields():
    entry = {"id": "S-1", "display_name": "A", "category": "w", "legal_basis": "b", "image_source": "c",
             "expires_at": "2030-01-01T00:00:00Z"}
    assert first_error("watchlist_entry", entry) is None
    for f in ("category", "legal_basis", "image_source", "expires_at"):
        e = dict(entry)
        del e[f]
        assert first_error("watchlist_entry", e) == f"missing {f}"
