"""Validate MQTT event payloads against the JSON Schemas in appliance/schemas/ (draft 2020-12).

Each payload names its schema in its `schema` field ("lfr.alert/2" -> appliance/schemas/alert.json).

A schema version, once published, is frozen (every schema refuses unknown fields, so adding one is a new
version). Receivers accept every version a device may still have queued in its outbox: an outbox keeps the
payload it committed, and an event waits there for as long as the link is down.
"""

from __future__ import annotations

from appliance.watchlist.schemas import first_error

# payload "schema" value -> schema file stem; the topic suffix each kind travels on.
SCHEMAS = {
    "lfr.alert/2": "alert",
    "lfr.alert/1": "alert_v1",  # frozen: before captured_at and first_seen_at
    "lfr.decision/1": "decision",
    "lfr.status/1": "status",
    "lfr.deployment/1": "deployment",
    "lfr.receipt/2": "receipt",  # signed by the control room (appliance/events/receipts.py)
    "lfr.receipt/1": "receipt_v1",  # frozen: unsigned
    "lfr.audit_head/1": "audit_head",
}
# What a receiver accepts on each topic: the current version first, then the older ones still valid.
TOPIC_KIND: dict[str, tuple[str, ...]] = {
    "alerts": ("lfr.alert/2", "lfr.alert/1"),
    "decisions": ("lfr.decision/1",),
    "status": ("lfr.status/1",),
    "deployments": ("lfr.deployment/1",),
    "audit/head": ("lfr.audit_head/1",),
}


def payload_error(payload, expected: str | tuple[str, ...] | None = None) -> str | None:
    """None if `payload` is a valid event payload (of schema `expected`, or one of them, if given), else one
    line why not."""
    if not isinstance(payload, dict):
        return "payload is not a JSON object"
    name = payload.get("schema")
    accepted = (expected,) if isinstance(expected, str) else expected
    if accepted is not None and name not in accepted:
        return f"schema is {name!r}, expected {' or '.join(repr(a) for a in accepted)}"
    if name not in SCHEMAS:
        return f"unknown schema {name!r}"
    return first_error(SCHEMAS[name], payload)


def check_payload(payload: dict, expected: str | tuple[str, ...] | None = None) -> dict:
    """Return `payload` if valid, else raise ValueError with one line (a bug: we built an invalid payload)."""
    err = payload_error(payload, expected)
    if err:
        raise ValueError(f"invalid {expected or 'event'} payload: {err}")
    return payload
