"""The retained device status (lfr/v1/devices/{device}/status, schema lfr.status/1).

The daemon reports what only it knows (state, fps, faces seen, watchlist, model, deployment) with
`StatusReporter.update(...)`; the reporter adds the store's counters, the outbox backlog and the MQTT link
state when a payload is built. The OutboxPublisher publishes it retained on every connect, on every
change and every `interval`; its last will is `offline_payload()`. Counts only, never a biometric.
"""

from __future__ import annotations

import threading

from appliance.events.models import utc_now_iso
from appliance.events.schemas import check_payload
from appliance.events.types import Counters, Link, StatusCounters, StatusPayload
from appliance.message_kinds import STATUS

STATUS_SCHEMA = STATUS.schema
STATES = ("starting", "running", "idle", "degraded", "stopping", "offline")


def offline_payload(device_id: str, detail: str) -> StatusPayload:
    return check_payload({"schema": STATUS_SCHEMA, "device_id": device_id, "time": utc_now_iso(),
                          "state": "offline", "detail": detail}, STATUS_SCHEMA)


class StatusReporter:
    """Thread-safe holder of the daemon's status fields; `changed` is set by every update."""

    def __init__(self, device_id: str, store=None):
        self.device_id = device_id
        self.store = store
        self._lock = threading.Lock()
        self.changed = threading.Event()
        self._fields: dict = {"state": "starting", "detail": None, "fps": None, "faces_seen": 0,
                              "faces_skipped_quality": None, "expected_false_alerts_per_face": None,
                              "watchlist": None, "model_id": None, "threshold": None, "deployment_id": None,
                              "warnings": []}

    def update(self, **fields) -> None:
        """e.g. update(state="running", fps=24.8, faces_seen=1200, watchlist={"id":..,"version":..,
        "expires_at":..}, model_id=.., threshold=.., deployment_id=..). Unknown names are refused."""
        unknown = set(fields) - set(self._fields)
        if unknown:
            raise ValueError(f"unknown status fields: {', '.join(sorted(unknown))}")
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"state must be one of {STATES}")
        with self._lock:
            significant = any(k in ("state", "watchlist", "deployment_id", "model_id", "threshold")
                              and self._fields[k] != v for k, v in fields.items())
            self._fields.update(fields)
        if significant:
            self.changed.set()

    def payload(self, link: Link | None = None, *, state: str | None = None) -> StatusPayload:
        with self._lock:
            f = dict(self._fields)
        store_counters: Counters = self.store.counters() if self.store is not None else {
            "alerts": 0, "confirmed": 0, "rejected": 0, "unsure": 0, "pending": 0, "rejected_share": None}
        counters: StatusCounters = {
            "faces_seen": int(f["faces_seen"]), "faces_skipped_quality": f["faces_skipped_quality"],
            "expected_false_alerts_per_face": f["expected_false_alerts_per_face"], **store_counters}
        return check_payload({
            "schema": STATUS_SCHEMA, "device_id": self.device_id, "time": utc_now_iso(),
            "state": state or f["state"], "detail": f["detail"],
            "fps": None if f["fps"] is None else round(float(f["fps"]), 2),
            "counters": counters, "watchlist": f["watchlist"], "model_id": f["model_id"],
            "threshold": f["threshold"], "deployment_id": f["deployment_id"],
            "link": link or {"state": "down", "since": None, "reconnects": 0},
            "outbox_backlog": self.store.outbox_backlog() if self.store is not None else 0,
            **({"warnings": list(f["warnings"])} if f["warnings"] else {}),
        }, STATUS_SCHEMA)
