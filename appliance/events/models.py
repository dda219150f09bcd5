"""The two events an officer's work produces: an Alert (a suggestion for review) and a Decision on it.

`to_payload()` gives the JSON object published on MQTT (contract: appliance/schemas/alert.json and
decision.json); `from_payload()` reads one back (the control-room receiver), of any alert version still
accepted (a version-1 alert has no capture times: they read as None). The live crop travels as base64
in the alert payload only; it never appears in a log line or in `__repr__`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field

from appliance.events.schemas import check_payload
from appliance.events.types import AlertPayload, DecisionPayload
from appliance.message_kinds import ALERT, DECISION
from appliance.timeutil import epoch_iso, iso_ms, now_iso

DECISIONS = ("confirm", "reject", "unsure")
ALERT_SCHEMA = ALERT.schema
DECISION_SCHEMA = DECISION.schema


def new_event_id() -> str:
    return str(uuid.uuid4())


# The records' time format lives in appliance/timeutil.py; these names are how the events package says it.
utc_now_iso = now_iso
__all__ = ["ALERT_SCHEMA", "DECISIONS", "DECISION_SCHEMA", "Alert", "Decision", "epoch_iso", "iso_ms", "new_event_id",
           "utc_now_iso"]


@dataclass
class Alert:
    device_id: str
    subject_id: str
    category: str
    score: float
    threshold: float
    track_id: int
    model_id: str
    watchlist_id: str
    watchlist_version: int
    crop_jpeg: bytes | None = field(repr=False)  # None once retention purged it
    deployment_id: str | None = None
    watchlist_sha256: str | None = None
    looks: int | None = None  # how many embedded looks of the track matched the subject when the rule fired
    captured_at: str | None = None  # the camera frame of the look that raised it (the crop's time)
    first_seen_at: str | None = None  # the first frame of the track: when the person came into view
    event_id: str = field(default_factory=new_event_id)
    created_at: str = field(default_factory=utc_now_iso)

    def to_payload(self, *, with_crop: bool = True) -> AlertPayload:
        """The MQTT payload (validated). `with_crop=False` gives the same without the image (audit, logs)."""
        p: AlertPayload = {
            "schema": ALERT_SCHEMA,
            "event_id": self.event_id,
            "created_at": self.created_at,
            "captured_at": self.captured_at,
            "first_seen_at": self.first_seen_at,
            "device_id": self.device_id,
            "deployment_id": self.deployment_id,
            "subject_id": self.subject_id,
            "category": self.category,
            "score": round(float(self.score), 6),
            "threshold": round(float(self.threshold), 6),
            "track_id": int(self.track_id),
            "looks": self.looks,
            "model_id": self.model_id,
            "watchlist_id": self.watchlist_id,
            "watchlist_version": int(self.watchlist_version),
            "watchlist_sha256": self.watchlist_sha256,
            "crop_jpeg_b64": None,
        }
        if with_crop and self.crop_jpeg is not None:
            p["crop_jpeg_b64"] = base64.b64encode(self.crop_jpeg).decode("ascii")
        return check_payload(p, ALERT_SCHEMA)

    @classmethod
    def from_payload(cls, p: dict) -> Alert:
        """From a payload already validated against alert.json (or alert_v1.json: no capture times)."""
        crop = None
        if p.get("crop_jpeg_b64"):
            try:
                crop = base64.b64decode(p["crop_jpeg_b64"], validate=True)
            except binascii.Error:
                raise ValueError("crop_jpeg_b64 is not valid base64") from None
        return cls(
            event_id=p["event_id"], created_at=p["created_at"], device_id=p["device_id"],
            deployment_id=p.get("deployment_id"), subject_id=p["subject_id"], category=p["category"],
            score=p["score"], threshold=p["threshold"], track_id=p["track_id"], looks=p.get("looks"),
            model_id=p["model_id"], watchlist_id=p["watchlist_id"], watchlist_version=p["watchlist_version"],
            watchlist_sha256=p.get("watchlist_sha256"), crop_jpeg=crop,
            captured_at=p.get("captured_at"), first_seen_at=p.get("first_seen_at"),
        )


@dataclass
class Decision:
    device_id: str
    alert_id: str
    officer_id: str
    decision: str  # one of DECISIONS
    note: str | None = None
    event_id: str = field(default_factory=new_event_id)
    created_at: str = field(default_factory=utc_now_iso)

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, not {self.decision!r}")
        if self.note is not None:
            self.note = self.note.strip() or None

    def to_payload(self) -> DecisionPayload:
        return check_payload({
            "schema": DECISION_SCHEMA,
            "event_id": self.event_id,
            "alert_id": self.alert_id,
            "created_at": self.created_at,
            "device_id": self.device_id,
            "officer_id": self.officer_id,
            "decision": self.decision,
            "note": self.note,
        }, DECISION_SCHEMA)

    @classmethod
    def from_payload(cls, p: dict) -> Decision:
        return cls(event_id=p["event_id"], alert_id=p["alert_id"], created_at=p["created_at"],
                   device_id=p["device_id"], officer_id=p["officer_id"], decision=p["decision"], note=p.get("note"))
