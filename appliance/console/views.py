"""JSON the console page gets: an alert with its subject, its evidence links and its decision history.

Only what an officer needs to decide is sent. Images are separate authenticated URLs (never inlined), and
the subject's details come from the watchlist store at the time of viewing: a subject removed from the
watchlist since the alert shows as such, without a reference photo.
"""

from __future__ import annotations

from urllib.parse import quote

from appliance.decisions.confirmation import outcome

# captured_at (the crop's frame) and first_seen_at (the track's first frame) are None for alerts stored
# before the store kept them; the page shows them only when known.
_ALERT_FIELDS = ("event_id", "created_at", "captured_at", "first_seen_at", "device_id", "deployment_id",
                 "subject_id", "category", "score", "threshold", "track_id", "looks", "model_id", "watchlist_id",
                 "watchlist_version")
_DECISION_FIELDS = ("event_id", "alert_id", "created_at", "officer_id", "decision", "note")
_SUBJECT_FIELDS = ("id", "display_name", "category", "notes", "review_due", "expires_at")


def _get(obj, name: str, default=None):
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def decision_view(d) -> dict:
    return {f: _get(d, f) for f in _DECISION_FIELDS}


def subject_view(subject: dict | None) -> dict | None:
    return {f: subject.get(f) for f in _SUBJECT_FIELDS} if subject else None


def outcome_view(decisions: list, two_officer: bool) -> dict:
    """Where the alert stands (pending, confirmed, rejected, unsure, awaiting_second, disputed)."""
    o = outcome(decisions, two_officer=two_officer)
    return {"state": o.state, "confirmed_by": list(o.confirmed_by), "rejected_by": list(o.rejected_by),
            "two_officer": two_officer}


def alert_view(alert, subject: dict | None, decisions: list | None, has_reference: bool,
               two_officer: bool = False) -> dict:
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
