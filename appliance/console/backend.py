"""What the console needs from the rest of the appliance, bundled in one object the daemon builds.

The console reads alerts and decisions from the events store, subjects and reference photos from the
watchlist store, officers from the officer store, and the live state from a status callable. It writes
exactly one thing: an officer's decision, through `decide`, which stores it in the events database (the
outbox) so it is published to the control room like every other event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from appliance.config import ConsoleConfig
from appliance.deployments.types import DeploymentStatus
from appliance.events.types import AlertRow, Counters, DecisionRow
from appliance.watchlist.types import SubjectRow


class EventStoreLike(Protocol):
    """The part of appliance.events.EventStore the console uses."""

    def alerts(self, limit: int = 50, before: str | None = None) -> list[AlertRow]: ...
    def alert(self, event_id: str) -> AlertRow | None: ...
    def decisions_for(self, alert_id: str) -> list[DecisionRow]: ...
    def counters(self) -> Counters: ...
    def outbox_backlog(self) -> int: ...
    def subscribe(self, callback: Callable[..., None]) -> Any: ...


class WatchlistLike(Protocol):
    """The part of appliance.watchlist.store.WatchlistStore the console uses (read only)."""

    def subject(self, subject_id: str) -> SubjectRow | None: ...
    def reference_photo(self, subject_id: str) -> bytes | None: ...


class OfficersLike(Protocol):
    def verify(self, officer_id: str, pin: str): ...
    def is_active(self, officer_id: str) -> bool: ...


# decide(alert_id, officer_id, decision, note) -> the stored Decision
DecideHook = Callable[[str, str, str, "str | None"], Any]
class ConsoleStatus(TypedDict, total=False):
    """What the status strip and counters panel show (docs/console.md); every key optional. The page's
    JavaScript (static/console.js) reads them."""

    camera: str  # running, lost, opening, ended, stopped
    camera_fps: float
    faces_seen: int
    faces_skipped_quality: int
    watchlist_id: str | None
    watchlist_version: int | None
    watchlist_subjects: int | None
    watchlist_expires_at: str | None
    matching: bool
    broker: str | None  # up, down, off
    outbox_backlog: int | None
    threshold: float
    threshold_floor: float | None
    model_id: str
    deployment: DeploymentStatus | None
    expected_false_alert_rate: float | None
    expected_false_alert_rate_upper: float | None
    rejected_share: float | None
    calibration_groups: dict | None  # the threshold's evaluation per group (matching/group_evidence.py)
    warnings: list[str]  # the technician's banner: pipeline changed, settings waiting for a restart


StatusProvider = Callable[[], ConsoleStatus]
# audit(kind, actor, data) for the audit chain, e.g. appliance.audit.AuditLog.record; optional. Kinds:
# "login" ({"via": "console"}), "login.failed" ({"reason", ...}), "logout". Never a PIN.
AuditHook = Callable[[str, str, dict], Any]


@dataclass
class ConsoleBackend:
    events: EventStoreLike
    watchlist: WatchlistLike
    officers: OfficersLike
    status: StatusProvider
    decide: DecideHook
    config: ConsoleConfig = field(default_factory=ConsoleConfig)
    audit: AuditHook | None = None
    device_id: str = "van"
    # deployment.two_officer_confirmation: an alert counts as confirmed only once two officers confirm it.
    two_officer: bool = False
    # appliance.deployments.manager.DeploymentManager: officers start and end deployments from the console.
    # None hides the feature (the routes answer 404). Its starts and ends are audited by the audit chain's
    # write hook in the same transaction, so the console does not audit them again.
    deployments: Any = None


def store_decision(events, device_id: str) -> DecideHook:
    """The standard decide hook: a Decision committed to the events store (and so to its outbox)."""
    from appliance.events.models import Decision  # the events package is the daemon's; imported when wired

    def decide(alert_id: str, officer_id: str, decision: str, note: str | None):
        d = Decision(device_id=device_id, alert_id=alert_id, officer_id=officer_id, decision=decision, note=note)
        events.add_decision(d)
        return d

    return decide
