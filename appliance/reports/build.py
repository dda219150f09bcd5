"""The transparency report of one deployment, as data: its record, what the system saw and did, and the two
rates the public debate mixes up. Counts only: no image, no embedding, no name, no subject id.

    report = build_report(events, "D-20261126-0900-ab12", public_key=device_key)
    Path("report.html").write_text(render_html(report))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from appliance.audit.chain import iter_entries, verify_chain
from appliance.deployments.manager import get_deployment
from appliance.errors import ApplianceError
from appliance.events.models import iso_ms, utc_now_iso
from appliance.watchlist.timeutil import parse_time


@dataclass
class Report:
    deployment: dict
    faces_seen: int
    faces_skipped_quality: int
    faces_not_checked: int  # passed the quality gate but left before being compared (e.g. too brief)
    looks_checked: int  # comparisons with the watchlist (a face is compared at its best few looks)
    alerts: int
    confirmed: int
    rejected: int
    unsure: int
    pending: int
    expected_false_alert_rate: float | None  # per face seen, from the model's evaluation
    expected_false_alerts: float | None  # the rate times the faces seen
    rejected_share: float | None  # rejected / decided
    alert_rate_measured: float | None  # alerts / faces seen
    audit: dict = field(default_factory=dict)  # {checked, ok, entries_in_period, reason}
    generated_at: str = field(default_factory=utc_now_iso)
    device_id: str = ""


def build_report(events, deployment_id: str, *, public_key=None) -> Report:
    dep = get_deployment(events, deployment_id)
    if dep is None:
        raise ApplianceError(f"no deployment {deployment_id} in this device's events database")
    counts = dep.get("counts") or {}
    # The rule the deployment ran with (its record says since the field exists), not today's configuration.
    c = events.counters(deployment_id=deployment_id, two_officer=dep.get("two_officer_confirmation"))
    seen = int(counts.get("faces_seen", 0))
    rate = dep.get("expected_false_alert_rate")
    audit = {"checked": False}
    # Audit times carry milliseconds, deployment times whole seconds: compare them in one format.
    start = iso_ms(parse_time(dep["starts_at"]))
    end = iso_ms(parse_time(dep["ended_at"]) + timedelta(seconds=1)) if dep.get("ended_at") else None
    with events.transaction() as db:
        audit["entries_for_deployment"] = sum(1 for _ in iter_entries(db, from_at=start, to_at=end))
        if public_key is not None:
            v = verify_chain(db, public_key)
            audit.update(checked=True, ok=v.ok, entries=v.checked, reason=v.reason, first_bad=v.first_bad)
        device = db.conn.execute("SELECT device_id FROM audit ORDER BY seq LIMIT 1").fetchone()
    return Report(
        deployment={k: dep.get(k) for k in ("id", "authorised_by", "source", "purpose", "location", "dpia_ref",
                                            "starts_at", "planned_end", "ended_at", "end_reason", "ended_by",
                                            "watchlist", "threshold", "model")},
        faces_seen=seen,
        faces_skipped_quality=int(counts.get("faces_skipped_quality", 0)),
        # A track flushed at a start or an end may be counted without having been seen inside: keep the
        # parts within the whole.
        faces_not_checked=min(int(counts.get("faces_not_embedded", 0)),
                              max(0, seen - int(counts.get("faces_skipped_quality", 0)))),
        looks_checked=int(counts.get("looks_embedded", 0)),
        alerts=c["alerts"], confirmed=c["confirmed"], rejected=c["rejected"], unsure=c["unsure"],
        pending=c["pending"],
        expected_false_alert_rate=rate,
        expected_false_alerts=round(rate * seen, 2) if rate is not None else None,
        rejected_share=c["rejected_share"],
        alert_rate_measured=round(c["alerts"] / seen, 6) if seen else None,
        audit=audit,
        device_id=device[0] if device else "",
    )
