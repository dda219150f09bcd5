"""The records the events package hands to other packages (issue 14: typed seams).

TypedDicts, so they stay plain dicts at run time: the console serialises them to JSON, the publisher to MQTT,
and the tests compare them with dict literals. Field names are the columns and payload keys they always had.
"""

from __future__ import annotations

from typing import Any, TypedDict

from appliance.watchlist.types import StatusWatchlist


class AlertFields(TypedDict):
    """What every form of an alert carries: the payload, the stored row and the console's view."""

    event_id: str
    created_at: str
    captured_at: str | None
    first_seen_at: str | None
    device_id: str
    deployment_id: str | None
    subject_id: str
    category: str
    score: float
    threshold: float
    track_id: int
    looks: int | None
    model_id: str
    watchlist_id: str
    watchlist_version: int


class AlertPayload(AlertFields):
    """An alert as published (lfr.alert/2, appliance/schemas/alert.json): Alert.to_payload(). The crop travels
    as base64, and only on MQTT (None in the outbox row and the audit entry)."""

    schema: str
    watchlist_sha256: str | None
    crop_jpeg_b64: str | None


class DecisionRow(TypedDict):
    """A row of the decisions table (EventStore.decisions_for, and an alert's `latest_decision`)."""

    event_id: str
    alert_id: str
    created_at: str
    device_id: str
    officer_id: str
    decision: str  # confirm, reject, unsure
    note: str | None


class DecisionPayload(DecisionRow):
    """An officer's decision as published (appliance/schemas/decision.json): Decision.to_payload(), its row
    with the schema."""

    schema: str


class _AlertColumns(AlertFields):
    watchlist_sha256: str | None
    has_crop: bool
    latest_decision: DecisionRow | None


class AlertRow(_AlertColumns, total=False):
    """An alert as EventStore.alerts() and alert() give it: its columns, `has_crop`, `latest_decision`; and
    `crop_jpeg` (bytes or None) only from alert(event_id) with with_crop=True."""

    crop_jpeg: bytes | None


class Counters(TypedDict):
    """EventStore.counters(): each alert counted by its outcome; rejected_share = rejected / decided."""

    alerts: int
    confirmed: int
    rejected: int
    unsure: int
    pending: int
    rejected_share: float | None


class OutboxMessage(TypedDict):
    """An outbox row ready to publish (EventStore.outbox_unsent / outbox_unreceived): the payload is a dict
    with the alert's crop filled in as base64."""

    id: int
    topic: str
    event_id: str
    payload: dict[str, Any]


class OutboxRow(TypedDict):
    """An outbox row's delivery state (EventStore.outbox)."""

    id: int
    topic: str
    event_id: str
    created_at: str
    sent_at: str | None
    received_at: str | None


class OutboxStats(TypedDict):
    total: int
    unsent: int
    unreceived: int


class Link(TypedDict, total=False):
    """The MQTT link's state (OutboxPublisher.link; the status topic's `link`). `state` is up or down, and
    "off" where a van runs without a broker."""

    state: str
    since: str | None
    reconnects: int


class StatusCounters(Counters):
    """The status topic's `counters`: the store's counters and the daemon's face counts."""

    faces_seen: int
    faces_skipped_quality: int | None
    expected_false_alerts_per_face: float | None


class _StatusHead(TypedDict):
    schema: str
    device_id: str
    time: str
    state: str  # STATES in events/status.py
    detail: str | None


class StatusPayload(_StatusHead, total=False):
    """The retained device status, lfr.status/1 (appliance/schemas/status.json). The last will
    (offline_payload) has only the head; StatusReporter.payload() has every field but `warnings`,
    which is there only when there is one."""

    fps: float | None
    counters: StatusCounters
    watchlist: StatusWatchlist | None
    model_id: str | None
    threshold: float | None
    deployment_id: str | None
    link: Link
    outbox_backlog: int
    warnings: list[str]


class _ReceiptBody(TypedDict):
    schema: str  # lfr.receipt/1 (unsigned) or lfr.receipt/2
    device_id: str
    stream_id: str
    upto: int  # every outbox row up to this sequence number arrived
    gap: bool
    time: str


class Receipt(_ReceiptBody, total=False):
    """The control room's cumulative receipt (appliance/schemas/receipt.json, receipt_v1.json): sign_receipt()
    adds the key id and the signature, unsigned_receipt() is for vans without a pinned key."""

    key_id: str
    sig: str
