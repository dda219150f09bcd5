"""Validate MQTT event payloads against the JSON Schemas in appliance/schemas/ (draft 2020-12).

Each payload names its schema in its `schema` field ("lfr.alert/1" -> appliance/schemas/alert.json).
"""

from __future__ import annotations

from appliance.watchlist.schemas import first_error

# payload "schema" value -> schema file stem; the topic suffix each kind travels on.
SCHEMAS = {
    "lfr.alert/1": "alert",
    "lfr.decision/1": "decision",
    "lfr.status/1": "status",
    "lfr.deployment/1": "deployment",
    "lfr.receipt/1": "receipt",
}
TOPIC_KIND = {"alerts": "lfr.alert/1", "decisions": "lfr.decision/1", "status": "lfr.status/1",
              "deployments": "lfr.deployment/1"}


def payload_error(payload, expected: str | None = None) -> str | None:
    """None if `payload` is a valid event payload (of schema `expected`, if given), else one line why not."""
    if not isinstance(payload, dict):
        return "payload is not a JSON object"
    name = payload.get("schema")
    if expected is not None and name != expected:
        return f"schema is {name!r}, expected {expected!r}"
    if name not in SCHEMAS:
        return f"unknown schema {name!r}"
    return first_error(SCHEMAS[name], payload)


def check_payload(payload: dict, expected: str | None = None) -> dict:
    """Return `payload` if valid, else raise ValueError with one line (a bug: we built an invalid payload)."""
    err = payload_error(payload, expected)
    if err:
        raise ValueError(f"invalid {expected or 'event'} payload: {err}")
    return payload
