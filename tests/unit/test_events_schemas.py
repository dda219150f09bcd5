"""The MQTT payload schemas (appliance/schemas/*.json, draft 2020-12): each is a valid schema, accepts a real
payload, and refuses what the contract forbids, with one line naming the field."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from appliance.events import Alert
from appliance.events.schemas import SCHEMAS, TOPIC_KIND, payload_error
from appliance.watchlist.schemas import SCHEMA_DIR

UUID = "0b6c4a8e-52f1-4d7c-9a55-2f6f0b3c9d11"
T = "2026-11-26T06:30:00.123Z"

ALERT_V1 = {"schema": "lfr.alert/1", "event_id": UUID, "created_at": T, "device_id": "van-01", "deployment_id": None,
            "subject_id": "S-1", "category": "wanted", "score": 0.6, "threshold": 0.5, "track_id": 3, "looks": 2,
            "model_id": "m", "watchlist_id": "wl", "watchlist_version": 1, "watchlist_sha256": None,
            "crop_jpeg_b64": "/9j/4AAQ"}
ALERT = {**ALERT_V1, "schema": "lfr.alert/2", "captured_at": "2026-11-26T06:29:59.875Z",
         "first_seen_at": "2026-11-26T06:29:57.000Z"}
DECISION = {"schema": "lfr.decision/1", "event_id": UUID, "alert_id": UUID, "created_at": T, "device_id": "van-01",
            "officer_id": "PC-1", "decision": "reject", "note": None}
COUNTERS = {"faces_seen": 10, "alerts": 1, "confirmed": 0, "rejected": 1, "unsure": 0, "pending": 0,
            "rejected_share": 1.0}
STATUS = {"schema": "lfr.status/1", "device_id": "van-01", "time": T, "state": "running", "fps": 24.5,
          "counters": COUNTERS, "watchlist": {"id": "wl", "version": 1, "expires_at": T}, "model_id": "m",
          "deployment_id": "dep-1", "link": {"state": "up", "since": T, "reconnects": 2}, "outbox_backlog": 0}
DEPLOYMENT = {"schema": "lfr.deployment/1", "event_id": UUID, "created_at": T, "device_id": "van-01",
              "event": "started", "deployment": {
                  "id": "dep-1", "authorised_by": "INSP-4", "purpose": "wanted persons, match day",
                  "location": {"text": "Station Road", "lat": 51.5, "lon": -0.1}, "dpia_ref": "DPIA-2026-07",
                  "starts_at": T, "planned_end": T, "watchlist": {"id": "wl", "version": 1, "sha256": "a" * 64},
                  "threshold": 0.52, "model": {"id": "m", "sha256": "b" * 64}}}
RECEIPT = {"schema": "lfr.receipt/1", "device_id": "van-01", "stream_id": "0123456789abcdef", "upto": 5,
           "gap": False, "time": T}
ALERT_NO_CAMERA = {**ALERT, "captured_at": None, "first_seen_at": None, "looks": None}  # e.g. the burst stand-in
GOOD = [ALERT, ALERT_V1, ALERT_NO_CAMERA, DECISION, STATUS, DEPLOYMENT, RECEIPT,
        {"schema": "lfr.status/1", "device_id": "van-01", "time": T, "state": "offline", "detail": "last will"}]


@pytest.mark.parametrize("name", sorted(set(SCHEMAS.values())))
def test_schema_files_are_valid_draft_2020_12(name):
    schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("payload", GOOD, ids=lambda p: f"{p['schema']}-{p.get('state', p.get('event', ''))}")
def test_good_payloads_pass(payload):
    assert payload_error(payload) is None


BAD = [
    (ALERT, {"score": "high"}, "score"),
    (ALERT, {"event_id": "1234"}, "event_id"),
    (ALERT, {"created_at": "26/11/2026 06:30"}, "created_at"),
    (ALERT, {"crop_jpeg_b64": "iVBORw0KGgo="}, "crop_jpeg_b64"),  # a PNG is not the JPEG crop
    (ALERT, {"name": "John Smith"}, "unknown field"),               # no names on the wire
    (ALERT, {"schema": "lfr.alert/3"}, "unknown schema"),
    (ALERT, {"captured_at": "26/11/2026 06:29"}, "captured_at"),
    (ALERT, {"first_seen_at": 1790000000}, "first_seen_at"),
    (ALERT_V1, {"captured_at": T}, "unknown field"),            # version 1 is frozen: new fields make version 2
    (DECISION, {"decision": "arrest"}, "decision"),
    (DECISION, {"officer_id": ""}, "officer_id"),
    (STATUS, {"state": "sleeping"}, "state"),
    (STATUS, {"link": {"state": "up", "bytes": 3}}, "unknown field"),
    (STATUS, {"counters": {**COUNTERS, "rejected_share": 1.5}}, "rejected_share"),
    (DEPLOYMENT, {"event": "ended"}, "missing end"),
    (DEPLOYMENT, {"deployment": {**DEPLOYMENT["deployment"], "location": {"lat": 1}}}, "text"),
    (RECEIPT, {"upto": -1}, "upto"),
]


@pytest.mark.parametrize(("base", "change", "word"), BAD, ids=[f"{b['schema']}-{w}" for b, _, w in BAD])
def test_bad_payloads_refused_naming_the_field(base, change, word):
    err = payload_error({**base, **change})
    assert err is not None and word in err, err


@pytest.mark.parametrize("field", ["event_id", "created_at", "device_id", "crop_jpeg_b64", "threshold",
                                   "captured_at", "first_seen_at", "looks"])
def test_alert_required_fields(field):
    assert payload_error({k: v for k, v in ALERT.items() if k != field}) == f"missing {field}"


def test_alerts_topic_accepts_the_current_and_the_frozen_version():
    assert TOPIC_KIND["alerts"][0] == Alert.from_payload(ALERT).to_payload()["schema"] == "lfr.alert/2"
    assert payload_error(ALERT, TOPIC_KIND["alerts"]) is None and payload_error(ALERT_V1, TOPIC_KIND["alerts"]) is None
    err = payload_error(DECISION, TOPIC_KIND["alerts"])
    assert err == "schema is 'lfr.decision/1', expected 'lfr.alert/2' or 'lfr.alert/1'"


def test_running_status_needs_the_full_picture_offline_does_not():
    assert "missing" in payload_error({k: v for k, v in STATUS.items() if k != "outbox_backlog"})
    assert payload_error({"schema": "lfr.status/1", "device_id": "van-01", "time": T, "state": "offline"}) is None


def test_not_an_object_or_wrong_kind():
    assert payload_error([ALERT]) == "payload is not a JSON object"
    assert "expected 'lfr.decision/1'" in payload_error(ALERT, "lfr.decision/1")
