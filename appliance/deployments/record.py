"""A deployment's record: who authorised it, why, where, when, and exactly what it matched with.

Pure logic (no I/O): validating a start request and building the record and the MQTT payload
(appliance/schemas/deployment.json). The record snapshots the watchlist (id, version, hash), the threshold
and the model (id, hash) at the start, so a later change cannot rewrite what a deployment used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from appliance.deployments.types import DeploymentPayload, DeploymentRecord
from appliance.errors import ApplianceError
from appliance.events.models import new_event_id, utc_now_iso
from appliance.events.schemas import check_payload
from appliance.message_kinds import DEPLOYMENT
from appliance.watchlist.timeutil import iso, parse_time

SCHEMA = DEPLOYMENT.schema
END_REASONS = ("planned_end", "officer", "command", "revoked", "superseded")
SOURCES = ("console", "command", "cli")


class DeploymentError(ApplianceError):
    """A deployment cannot be started or ended as asked; the message says why."""


@dataclass(frozen=True)
class DeploymentRequest:
    """What the authorising officer (or the control room's signed command) supplies."""

    authorised_by: str
    purpose: str
    location_text: str
    dpia_ref: str
    planned_end: datetime
    lat: float | None = None
    lon: float | None = None
    starts_at: datetime | None = None  # default: now


@dataclass(frozen=True)
class MatchingContext:
    """What matching would run with, taken at the start: the loaded watchlist, the threshold, the model."""

    watchlist_id: str | None
    watchlist_version: int | None
    watchlist_sha256: str | None
    watchlist_subjects: int
    threshold: float
    model_id: str
    model_sha256: str
    expected_false_alert_rate: float | None = None  # per face seen, for this watchlist size (None: not known)
    extra: dict = field(default_factory=dict)


def _text(value, name: str, max_len: int) -> str:
    v = (value or "").strip() if isinstance(value, str) else ""
    if not v:
        raise DeploymentError(f"{name} is required")
    if len(v) > max_len:
        raise DeploymentError(f"{name} is longer than {max_len} characters")
    return v


def new_deployment_id(now: datetime) -> str:
    return f"D-{now.strftime('%Y%m%d-%H%M')}-{os.urandom(2).hex()}"


def build_record(req: DeploymentRequest, ctx: MatchingContext, *, now: datetime, source: str, max_hours: float,
                 deployment_id: str | None = None, two_officer: bool = False) -> DeploymentRecord:
    """The deployment record (deployment.json's `deployment` object), or DeploymentError with one line.
    two_officer: deployment.two_officer_confirmation, recorded so the control room applies the console's rule."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}")
    authorised_by = _text(req.authorised_by, "the authorising officer", 128)
    purpose = _text(req.purpose, "the purpose", 1000)
    location = _text(req.location_text, "the location", 500)
    dpia = _text(req.dpia_ref, "the DPIA reference", 128)
    if (req.lat is None) != (req.lon is None):
        raise DeploymentError("give both latitude and longitude, or neither")
    if req.lat is not None and not (-90 <= req.lat <= 90 and -180 <= req.lon <= 180):
        raise DeploymentError(f"coordinates {req.lat}, {req.lon} are not a place on Earth")
    starts = req.starts_at or now
    if starts > now + timedelta(minutes=5):
        raise DeploymentError("a deployment starts now; schedule it by starting it at the time")
    if req.planned_end <= now:
        raise DeploymentError(f"the planned end {iso(req.planned_end)} is not in the future")
    if req.planned_end - starts > timedelta(hours=max_hours):
        raise DeploymentError(f"the planned end is more than {max_hours:g} hours after the start "
                              "(deployment.max_hours)")
    if not ctx.watchlist_id or not ctx.watchlist_sha256 or ctx.watchlist_version is None:
        raise DeploymentError("no watchlist is loaded: a deployment needs an approved, signed watchlist")
    if ctx.watchlist_subjects <= 0:
        raise DeploymentError("the loaded watchlist is empty or expired")
    return {
        "id": deployment_id or new_deployment_id(now),
        "authorised_by": authorised_by,
        "source": source,
        "purpose": purpose,
        "location": {"text": location, "lat": req.lat, "lon": req.lon},
        "dpia_ref": dpia,
        "starts_at": iso(starts),
        "planned_end": iso(req.planned_end),
        "watchlist": {"id": ctx.watchlist_id, "version": int(ctx.watchlist_version),
                      "sha256": ctx.watchlist_sha256, "subjects": int(ctx.watchlist_subjects)},
        "threshold": round(float(ctx.threshold), 6),
        "model": {"id": ctx.model_id, "sha256": ctx.model_sha256},
        "expected_false_alert_rate": ctx.expected_false_alert_rate,
        "two_officer_confirmation": bool(two_officer),
        "ended_at": None,
        "end_reason": None,
        "ended_by": None,
    }


def ended(record: DeploymentRecord, *, reason: str, by: str, at: datetime) -> DeploymentRecord:
    if reason not in END_REASONS:
        raise ValueError(f"end reason must be one of {END_REASONS}")
    return {**record, "ended_at": iso(at), "end_reason": reason, "ended_by": by}


def planned_end(record: DeploymentRecord) -> datetime:
    return parse_time(record["planned_end"])


def payload(device_id: str, event: str, record: DeploymentRecord, *, event_id: str | None = None) -> DeploymentPayload:
    """The message for lfr/v1/devices/{device}/deployments (validated against deployment.json)."""
    return check_payload({"schema": SCHEMA, "event_id": event_id or new_event_id(), "created_at": utc_now_iso(),
                          "device_id": device_id, "event": event, "deployment": record}, SCHEMA)
