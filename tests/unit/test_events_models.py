"""Alert and Decision payloads: valid against their JSON Schemas, crop as base64 only in the alert payload,
round trip through from_payload (version 2, and version 1 as still queued in old outboxes), no crop in repr,
decisions limited to confirm/reject/unsure."""

from __future__ import annotations

import base64
import dataclasses
import re
import uuid

import pytest

from appliance.events import Alert, Decision
from appliance.events.models import epoch_iso
from appliance.events.schemas import TOPIC_KIND, payload_error

CROP = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"


def _alert(**kw) -> Alert:
    base = dict(device_id="van-01", subject_id="S-001", category="wanted", score=0.71234567, threshold=0.52,
                track_id=17, model_id="mobilefacenet-int8", watchlist_id="wl-x", watchlist_version=5, crop_jpeg=CROP,
                deployment_id="dep-1", looks=3, watchlist_sha256="ab" * 32,
                captured_at="2026-11-26T06:29:58.250Z", first_seen_at="2026-11-26T06:29:55.000Z")
    return Alert(**{**base, **kw})


def test_alert_payload_is_valid_and_carries_the_crop_as_base64():
    a = _alert()
    p = a.to_payload()
    assert payload_error(p, "lfr.alert/2") is None
    assert p["schema"] == "lfr.alert/2" and uuid.UUID(p["event_id"]).version == 4
    assert (p["first_seen_at"], p["captured_at"], p["looks"]) == (a.first_seen_at, a.captured_at, 3)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", p["created_at"])
    assert base64.b64decode(p["crop_jpeg_b64"]) == CROP
    assert a.to_payload(with_crop=False)["crop_jpeg_b64"] is None
    assert Alert.from_payload(p) == dataclasses.replace(a, score=0.712346)  # 6 decimals on the wire


def test_alert_without_deployment_or_crop_is_valid():
    p = _alert(deployment_id=None, crop_jpeg=None, looks=None, watchlist_sha256=None).to_payload()
    assert payload_error(p) is None and p["crop_jpeg_b64"] is None


def test_alert_not_raised_from_a_camera_frame_says_so_with_nulls():
    p = _alert(captured_at=None, first_seen_at=None).to_payload()
    assert payload_error(p) is None and p["captured_at"] is None and p["first_seen_at"] is None


def test_version_1_alert_from_an_old_outbox_is_accepted_and_read_without_times():
    p = _alert().to_payload()
    v1 = {k: v for k, v in p.items() if k not in ("captured_at", "first_seen_at")} | {"schema": "lfr.alert/1"}
    assert payload_error(v1, TOPIC_KIND["alerts"]) is None and payload_error(p, TOPIC_KIND["alerts"]) is None
    a = Alert.from_payload(v1)
    assert a.captured_at is None and a.first_seen_at is None and a.looks == 3 and a.event_id == p["event_id"]


def test_frame_times_become_utc_milliseconds():
    assert epoch_iso(1_790_000_000.1234) == "2026-09-21T14:13:20.123Z"
    assert payload_error(_alert(captured_at=epoch_iso(0.0)).to_payload()) is None
    with pytest.raises(ValueError, match="captured_at"):
        _alert(captured_at="26/11/2026 06:30").to_payload()


def test_invalid_alert_fields_are_refused_when_building_the_payload():
    with pytest.raises(ValueError, match="score"):
        _alert(score=1.5).to_payload()
    with pytest.raises(ValueError, match="device_id"):
        _alert(device_id="van 01/#").to_payload()


def test_repr_never_shows_the_crop():
    assert "crop" not in repr(_alert()) and "\\xff" not in repr(_alert())


def test_event_ids_are_unique():
    assert len({_alert().event_id for _ in range(200)}) == 200


def test_decision_payload_and_values():
    d = Decision(device_id="van-01", alert_id=_alert().event_id, officer_id="PC-1", decision="unsure", note="  ")
    p = d.to_payload()
    assert payload_error(p, "lfr.decision/1") is None and p["note"] is None
    assert Decision.from_payload(p) == d
    with pytest.raises(ValueError, match="confirm, reject, unsure"):
        Decision(device_id="van-01", alert_id=d.alert_id, officer_id="PC-1", decision="arrest")
