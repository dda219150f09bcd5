"""JSON the console page gets: an alert with its subject, its evidence links and its decision history.

Only what an officer needs to decide is sent. Images are separate authenticated URLs (never inlined), and
the subject's details come from the watchlist store at the time of viewing: a subject removed from the
watchlist since the alert shows as such, without a reference photo.
"""

from __future__ import annotations

from typing import TypedDict
from urllib.parse import quote

from appliance.decisions.confirmation import outcome
from appliance.events.types import AlertFields
from appliance.watchlist.types import SubjectRow

# captured_at (the crop's frame) and first_seen_at (the track's first frame) are None for alerts stored
# before the store kept them; the page shows them only when known.
_ALERT_FIELDS = ("event_id", "created_at", "captured_at", "first_seen_at", "device_id", "deployment_id",
                 "subject_id", "category", "score", "threshold", "track_id", "looks", "model_id", "watchlist_id",
                 "watchlist_version")
_DECISION_FIELDS = ("event_id", "alert_id", "created_at", "officer_id", "decision", "note")
_SUBJECT_FIELDS = ("id", "display_name", "category", "notes", "review_due", "expires_at")


class SubjectView(TypedDict):
    id: str
    display_name: str
    category: str
    notes: str | None
    review_due: str | None
    expires_at: str


class OutcomeView(TypedDict):
    state: str  # pending, confirmed, rejected, unsure, awaiting_second, disputed
    confirmed_by: list[str]
    rejected_by: list[str]
    two_officer: bool


class OutboxReading(TypedDict):
    """A numbered reading of the outbox backlog (ConsoleContext.outbox_reading; None: unreadable)."""

    seq: int
    backlog: int | None


class _DecisionFields(TypedDict):
    event_id: str
    alert_id: str
    created_at: str
    officer_id: str
    decision: str
    note: str | None


class DecisionView(_DecisionFields, total=False):
    """A decision as the page gets it; the stream and the POST add where its alert stands (`outcome`), the
    POST also the outbox reading taken after its commit."""

    outcome: OutcomeView
    outbox: OutboxReading


class AlertView(AlertFields):
    """An alert as the page gets it (GET /api/alerts, /api/alerts/{id}, the stream's `alert`)."""

    crop_url: str | None
    reference_url: str | None
    subject: SubjectView | None  # None: no longer on the watchlist
    decisions: list[DecisionView]
    outcome: OutcomeView


def _get(obj, name: str, default=None):
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def decision_view(d) -> DecisionView:
    return {f: _get(d, f) for f in _DECISION_FIELDS}


def subject_view(subject: SubjectRow | None) -> SubjectView | None:
    return {f: subject.get(f) for f in _SUBJECT_FIELDS} if subject else None


def outcome_view(decisions: list, two_officer: bool) -> OutcomeView:
    """Where the alert stands (pending, confirmed, rejected, unsure, awaiting_second, disputed)."""
    o = outcome(decisions, two_officer=two_officer)
    return {"state": o.state, "confirmed_by": list(o.confirmed_by), "rejected_by": list(o.rejected_by),
            "two_officer": two_officer}


def alert_view(alert, subject: SubjectRow | None, decisions: list | None, has_reference: bool,
               two_officer: bool = False) -> AlertView:
    v = {f: _get(alert, f) for f in _ALERT_FIELDS}
    eid = quote(str(v["event_id"]), safe="")
    has_crop = _get(alert, "has_crop")
    if has_crop is None:
        has_crop = _get(alert, "crop_jpeg") is not None
    v["crop_url"] = f"/api/alerts/{eid}/crop.jpg" if has_crop else None
    v["reference_url"] = f"/api/alerts/{eid}/reference.jpg" if has_reference else None
    v["subject"] = subject_view(subject)
    v["decisions"] = [decision_view(d) for d in decisions or []]
    v["outcome"] = outcome_view(v["decisions"], two_officer)
    return v
