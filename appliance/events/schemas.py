"""Validate MQTT event payloads against the JSON Schemas in appliance/schemas/ (draft 2020-12).

Each payload names its schema in its `schema` field ("lfr.alert/2" -> appliance/schemas/alert.json).

A schema version, once published, is frozen (every schema refuses unknown fields, so adding one is a new
version). Receivers accept every version a device may still have queued in its outbox: an outbox keeps the
payload it committed, and an event waits there for as long as the link is down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from appliance.message_kinds import AUDIT_HEAD, OUTBOX_KINDS, STATUS, schema_files
from appliance.watchlist.schemas import first_error

# payload "schema" value -> schema file stem, for every JSON kind in the registry (appliance/message_kinds.py).
SCHEMAS: dict[str, str] = schema_files()
# The van's event stream, as the control-room receiver takes it: topic suffix -> the schema versions accepted
# there (the current version first, then the older ones still valid).
TOPIC_KIND: dict[str, tuple[str, ...]] = {k.topic: k.accepts for k in (*OUTBOX_KINDS, STATUS, AUDIT_HEAD)}

P = TypeVar("P", bound=Mapping[str, Any])  # a payload: a dict, or a TypedDict that describes one


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


def check_payload(payload: P, expected: str | tuple[str, ...] | None = None) -> P:
    """Return `payload` if valid, else raise ValueError with one line (a bug: we built an invalid payload).
    Typed as what it is given, so a builder's TypedDict (e.g. StatusPayload) comes back as itself."""
    err = payload_error(payload, expected)
    if err:
        raise ValueError(f"invalid {expected or 'event'} payload: {err}")
    return payload
