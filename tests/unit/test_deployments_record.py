"""Deployment records: every field the guidance asks for is required, and the payload meets its schema."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from appliance.deployments.record import (
    DeploymentError,
    DeploymentRequest,
    MatchingContext,
    build_record,
    ended,
    payload,
)
from appliance.events.schemas import payload_error

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
REQ = DeploymentRequest(authorised_by="PC-1234", purpose="Wanted offenders, Oxford St, Friday night economy",
                        location_text="Oxford Street, W1, outside no. 200", dpia_ref="DPIA-2026-041",
                        planned_end=NOW + timedelta(hours=4), lat=51.515, lon=-0.142)
CTX = MatchingContext(watchlist_id="met-wanted", watchlist_version=7, watchlist_sha256="ab" * 32,
                      watchlist_subjects=120, threshold=0.6142, model_id="mobilefacenet-int8",
                      model_sha256="cd" * 32, expected_false_alert_rate=1e-4)


def test_record_has_every_required_field():
    r = build_record(REQ, CTX, now=NOW, source="console", max_hours=12)
    assert r["authorised_by"] == "PC-1234" and r["dpia_ref"] == "DPIA-2026-041"
    assert r["location"] == {"text": "Oxford Street, W1, outside no. 200", "lat": 51.515, "lon": -0.142}
    assert r["starts_at"] == "2026-11-26T09:00:00Z" and r["planned_end"] == "2026-11-26T13:00:00Z"
    assert r["watchlist"] == {"id": "met-wanted", "version": 7, "sha256": "ab" * 32, "subjects": 120}
    assert r["model"] == {"id": "mobilefacenet-int8", "sha256": "cd" * 32} and r["threshold"] == 0.6142
    assert r["id"].startswith("D-20261126-0900-")
    p = payload("van-01", "started", r)
    assert payload_error(p, "lfr.deployment/1") is None


def test_ended_payload_needs_the_end():
    r = build_record(REQ, CTX, now=NOW, source="command", max_hours=12)
    e = ended(r, reason="officer", by="PC-1234", at=NOW + timedelta(hours=1))
    assert e["ended_at"] == "2026-11-26T10:00:00Z" and e["end_reason"] == "officer"
    assert payload_error(payload("van-01", "ended", e), "lfr.deployment/1") is None
    with pytest.raises(ValueError):
        payload("van-01", "ended", r)  # an 'ended' event without ended_at/end_reason is invalid


@pytest.mark.parametrize("change, message", [
    ({"authorised_by": " "}, "authorising officer is required"),
    ({"purpose": ""}, "purpose is required"),
    ({"location_text": ""}, "location is required"),
    ({"dpia_ref": ""}, "DPIA reference is required"),
    ({"planned_end": NOW - timedelta(minutes=1)}, "not in the future"),
    ({"planned_end": NOW + timedelta(hours=13)}, "more than 12 hours"),
    ({"lat": 51.5, "lon": None}, "both latitude and longitude"),
    ({"lat": 95.0, "lon": 0.0}, "not a place on Earth"),
    ({"starts_at": NOW + timedelta(hours=1)}, "starts now"),
])
def test_incomplete_requests_are_refused(change, message):
    with pytest.raises(DeploymentError, match=message):
        build_record(replace(REQ, **change), CTX, now=NOW, source="console", max_hours=12)


@pytest.mark.parametrize("change, message", [
    ({"watchlist_id": None, "watchlist_sha256": None, "watchlist_version": None}, "no watchlist is loaded"),
    ({"watchlist_subjects": 0}, "empty or expired"),
])
def test_no_deployment_without_a_watchlist(change, message):
    with pytest.raises(DeploymentError, match=message):
        build_record(REQ, replace(CTX, **change), now=NOW, source="console", max_hours=12)


def test_expected_rate_only_at_the_calibrated_threshold():
    from types import SimpleNamespace

    from appliance.deployments.context import expected_false_alert_rate
    from appliance.runtime.manifest import Calibration

    spec = SimpleNamespace(calibration=Calibration(threshold=0.6, floor=0.47, target_fpir=0.001, evidence=""),
                           raw={"calibration": {"evidence": {"gallery_size": 1000}}})
    assert expected_false_alert_rate(spec, 0.6, 1000) == pytest.approx(0.001)
    assert expected_false_alert_rate(spec, 0.6, 100) == pytest.approx(1 - 0.999 ** 0.1, rel=1e-3)
    assert expected_false_alert_rate(spec, 0.7, 100) is None  # not measured at this threshold
    assert expected_false_alert_rate(spec, 0.6, 0) is None


def test_the_expected_false_alert_rate_has_an_honest_upper_end():
    """Zero false alarms in the evaluation is not zero: the bound is the exact binomial one, scaled alike."""
    from types import SimpleNamespace

    from appliance.deployments.context import expected_false_alert_rate, expected_false_alert_upper
    from appliance.runtime.manifest import Calibration

    def spec(alarms: int):
        evidence = {"gallery_size": 1000, "non_mated_probes": 500,
                    "groups": {"a": {"false_alarms_at_threshold": alarms}, "b": {"false_alarms_at_threshold": 0}}}
        raw = {"calibration": {"threshold": 0.6, "floor": 0.5, "target_fpir": 1e-3, "evidence": evidence}}
        return SimpleNamespace(calibration=Calibration(0.6, 0.5, 1e-3, evidence), raw=raw)

    rate = expected_false_alert_rate(spec(0), 0.6, 1000)
    upper = expected_false_alert_upper(spec(0), 0.6, 1000)
    assert upper == pytest.approx(1 - 0.025 ** (1 / 500), rel=1e-3) and upper > rate > 0
    assert expected_false_alert_upper(spec(3), 0.6, 1000) > upper  # more alarms seen, a higher bound
    assert expected_false_alert_upper(spec(0), 0.65, 1000) is None  # at another threshold: no figure at all
