"""The deployment lifecycle: start, end (officer, command, planned end, revocation), and the matching gate.

The events database holds the deployments table; a start or an end writes its row and its outbox event
(lfr/v1/devices/{device}/deployments) in one transaction, and the audit chain's write hook appends its entry
in that same transaction. `is_active()` is what the daemon's `matching_enabled()` asks on every frame: it
reads memory only, and it turns false at the planned end even before `check()` has written the end.

    deployments = DeploymentManager(events, device_id, context=matching_context, config=config.deployment,
                                    counters=counters.snapshot, wipe_watchlist=wipe)
    deployments.load()                         # picks up a deployment that was active before a restart
    deployments.start(request, source="console")
    deployments.is_active()                    # the matching gate
    deployments.check()                        # every few seconds: planned end, and changes made by the CLI
    deployments.end("officer", by="PC-1234")
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from appliance.deployments import record as rec
from appliance.deployments.record import DeploymentError, DeploymentRequest, MatchingContext
from appliance.deployments.tables import DEPLOYMENTS_SCHEMA
from appliance.deployments.types import DeploymentCounts, DeploymentRecord, DeploymentStatus
from appliance.watchlist.timeutil import utcnow

log = logging.getLogger(__name__)

Listener = Callable[[str, DeploymentRecord], None]  # (event "started" | "ended", record)
_COLS = ("id", "record", "starts_at", "planned_end", "ended_at", "end_reason", "ended_by", "counts")


class DeploymentManager:
    # What a reload (SIGHUP) may change while the daemon runs; the daemon applies it on the frame thread.
    # two_officer_confirmation is copied into the console when it starts: it needs a restart.
    RELOADABLE = frozenset({"wipe_watchlist_on_end", "max_hours"})

    def update_config(self, config) -> None:
        """A new DeploymentConfig (only RELOADABLE fields differ). One reference swap: readers see old or new."""
        self.config = config

    def __init__(self, events, device_id: str, *, context: Callable[[], MatchingContext], config,
                 counters: Callable[[], dict[str, int]] | None = None, wipe_watchlist: Callable[[], None] | None = None,
                 audit=None, clock: Callable[[], datetime] = utcnow):
        self.events = events  # appliance.events.store.EventStore
        events.ensure_schema(DEPLOYMENTS_SCHEMA)  # this package's table, whoever opened the database
        self.device_id = device_id
        self.context = context
        self.config = config  # DeploymentConfig
        self.counters = counters
        self.wipe_watchlist = wipe_watchlist
        self.audit = audit  # AuditLog, for the watchlist wipe (starts and ends are audited by its write hook)
        self.clock = clock
        self._lock = threading.RLock()
        self._active: DeploymentRecord | None = None
        self._planned_end: datetime | None = None
        self._base_counts: Counter = Counter()
        self._base_snapshot: Counter = Counter()
        self._listeners: list[Listener] = []

    # -- the gate (hot path: memory only) ------------------------------------------------------------
    def is_active(self) -> bool:
        end = self._planned_end
        return end is not None and self.clock() < end

    def active(self) -> DeploymentRecord | None:
        """The active deployment's record (a copy), or None."""
        a = self._active
        return DeploymentRecord(**a) if a is not None else None

    def active_id(self) -> str | None:
        a = self._active
        return a["id"] if a is not None and self.is_active() else None

    def on_change(self, listener: Listener) -> None:
        """Call `listener(event, record)` after a deployment started or ended (in the caller's thread)."""
        self._listeners.append(listener)

    # -- lifecycle -----------------------------------------------------------------------------------
    def load(self) -> DeploymentRecord | None:
        """Adopt the deployment left active in the database (after a restart, or started by the CLI)."""
        with self._lock:
            row = self._open_row()
            if row is None:
                self._set_active(None)
                return None
            self._set_active(json.loads(row["record"]))
            self._base_counts = Counter(json.loads(row["counts"] or "{}"))
            self._base_snapshot = Counter(self.counters() if self.counters else {})
            return self.active()

    def start(self, request: DeploymentRequest, *, source: str, extra: dict | None = None) -> DeploymentRecord:
        """Start a deployment now; refuses with DeploymentError if one is active or the request is incomplete.
        `extra`: more fields for the record (e.g. the id of the signed command that started it)."""
        with self._lock:
            self.check()
            if self._active is not None:
                raise DeploymentError(f"deployment {self._active['id']} is active; end it first")
            now = self.clock()
            record = rec.build_record(request, self.context(), now=now, source=source,
                                      max_hours=self.config.max_hours,
                                      two_officer=self.config.two_officer_confirmation)
            record.update(extra or {})
            payload = rec.payload(self.device_id, "started", record)
            with self.events.transaction() as db:
                db.conn.execute(
                    "INSERT INTO deployments (id, record, starts_at, planned_end, counts) VALUES (?, ?, ?, ?, '{}')",
                    (record["id"], json.dumps(record, sort_keys=True), record["starts_at"], record["planned_end"]))
                self.events.add_deployment_event(payload)
            self._base_counts = Counter()
            self._base_snapshot = Counter(self.counters() if self.counters else {})
            self._set_active(record)
        log.info("deployment %s started by %s (%s), planned end %s, watchlist %s v%s, threshold %.4f",
                 record["id"], record["authorised_by"], source, record["planned_end"], record["watchlist"]["id"],
                 record["watchlist"]["version"], record["threshold"])
        self._emit("started", record)
        return record

    def end(self, reason: str, *, by: str, deployment_id: str | None = None) -> DeploymentRecord | None:
        """End the active deployment (None if there is none). The gate closes before anything is written."""
        with self._lock:
            active = self._active
            if active is None or (deployment_id is not None and deployment_id != active["id"]):
                if deployment_id is not None:
                    raise DeploymentError(f"deployment {deployment_id} is not the active one")
                return None
            self._planned_end = None  # stop matching first
            now = self.clock()
            at = min(now, rec.planned_end(active)) if reason == "planned_end" else now
            record = rec.ended(active, reason=reason, by=by, at=at)
            counts = self._counts()
            payload = rec.payload(self.device_id, "ended", {**record, "counts": counts})
            with self.events.transaction() as db:
                db.conn.execute(
                    "UPDATE deployments SET record = ?, ended_at = ?, end_reason = ?, ended_by = ?, counts = ? "
                    "WHERE id = ?", (json.dumps(record, sort_keys=True), record["ended_at"], reason, by,
                                     json.dumps(counts, sort_keys=True), record["id"]))
                self.events.add_deployment_event(payload)
            self._set_active(None)
        log.info("deployment %s ended (%s, by %s)", record["id"], reason, by)
        self._emit("ended", record)
        if self.config.wipe_watchlist_on_end and self.wipe_watchlist is not None and reason != "revoked":
            self._wipe(record["id"])
        return record

    def _wipe(self, deployment_id: str) -> None:
        try:
            self.wipe_watchlist()
        except Exception as e:
            log.error("the watchlist could not be wiped at the end of deployment %s: %s", deployment_id, e)
            if self.audit is not None:
                self.audit.record("watchlist.erased", "system", {"deployment_id": deployment_id, "ok": False,
                                                                 "error": str(e)[:300]})
            return
        log.info("watchlist wiped at the end of deployment %s (deployment.wipe_watchlist_on_end)", deployment_id)
        if self.audit is not None:
            self.audit.record("watchlist.erased", "system", {"deployment_id": deployment_id, "ok": True,
                                                             "why": "deployment.wipe_watchlist_on_end"})

    def check(self) -> None:
        """End a deployment whose planned end has passed; adopt starts and ends made by another process."""
        with self._lock:
            active = self._active
            if active is not None:
                row = self._row(active["id"])
                if row is not None and row["ended_at"] is not None:  # ended by the CLI
                    log.info("deployment %s was ended by %s (%s)", active["id"], row["ended_by"], row["end_reason"])
                    self._set_active(None)
                    self._emit("ended", json.loads(row["record"]))
                    return
                if self.clock() >= rec.planned_end(active):
                    self.end("planned_end", by="system")
                return
            row = self._open_row()
            if row is not None:  # started by the CLI (or left open and adopted)
                record = json.loads(row["record"])
                if self.clock() >= rec.planned_end(record):
                    self.load()
                    self.end("planned_end", by="system")
                else:
                    self.load()
                    log.info("deployment %s (started by %s, %s) is active: matching until %s", record["id"],
                             record["authorised_by"], record.get("source"), record["planned_end"])
                    self._emit("started", record)

    def update_counts(self) -> DeploymentCounts:
        """Store the active deployment's counts (faces seen, skipped for quality...) so far; returns them."""
        with self._lock:
            if self._active is None:
                return {}
            counts = self._counts()
            with self.events.transaction() as db:
                db.conn.execute("UPDATE deployments SET counts = ? WHERE id = ?",
                                (json.dumps(counts, sort_keys=True), self._active["id"]))
            return counts

    def rebaseline(self) -> None:
        """Forget what the counters did since the last start or load: call it right after the tracks were
        flushed for a start, so faces that were in view before it do not count as the deployment's."""
        with self._lock:
            if self._active is not None:
                self._base_snapshot = Counter(self.counters() if self.counters else {})

    # -- queries -------------------------------------------------------------------------------------
    def status(self) -> DeploymentStatus | None:
        """For the status topic and the console: the active deployment in short, or None."""
        a = self._active
        if a is None or not self.is_active():
            return None
        return {"id": a["id"], "authorised_by": a["authorised_by"], "purpose": a["purpose"],
                "location": a["location"]["text"], "starts_at": a["starts_at"], "planned_end": a["planned_end"],
                "watchlist_id": a["watchlist"]["id"], "watchlist_version": a["watchlist"]["version"],
                "threshold": a["threshold"]}

    def get(self, deployment_id: str) -> DeploymentRecord | None:
        return get_deployment(self.events, deployment_id)

    # -- internals -----------------------------------------------------------------------------------
    def _counts(self) -> DeploymentCounts:
        snap = Counter(self.counters() if self.counters else {})
        delta = Counter({k: v - self._base_snapshot.get(k, 0) for k, v in snap.items()})
        return {k: int(v) for k, v in (self._base_counts + delta).items()}

    def _set_active(self, record: DeploymentRecord | None) -> None:
        self._active = record
        self._planned_end = rec.planned_end(record) if record is not None else None

    def _open_row(self) -> dict | None:
        with self.events.transaction() as db:
            r = db.conn.execute(f"SELECT {', '.join(_COLS)} FROM deployments WHERE ended_at IS NULL "
                                "ORDER BY starts_at DESC LIMIT 1").fetchone()
        return dict(zip(_COLS, r, strict=True)) if r else None

    def _row(self, deployment_id: str) -> dict | None:
        with self.events.transaction() as db:
            r = db.conn.execute(f"SELECT {', '.join(_COLS)} FROM deployments WHERE id = ?",
                                (deployment_id,)).fetchone()
        return dict(zip(_COLS, r, strict=True)) if r else None

    def _emit(self, event: str, record: DeploymentRecord) -> None:
        for cb in list(self._listeners):
            try:
                cb(event, record)
            except Exception:
                log.exception("deployment listener failed on %s", event)


def get_deployment(events, deployment_id: str) -> DeploymentRecord | None:
    """A deployment's record with its counts (`counts`), from the events database."""
    with events.transaction() as db:
        r = db.conn.execute("SELECT record, counts FROM deployments WHERE id = ?", (deployment_id,)).fetchone()
    if r is None:
        return None
    return {**json.loads(r[0]), "counts": json.loads(r[1] or "{}")}


def list_deployments(events, limit: int = 50) -> list[DeploymentRecord]:
    with events.transaction() as db:
        rows = db.conn.execute("SELECT record, counts FROM deployments ORDER BY starts_at DESC LIMIT ?",
                               (limit,)).fetchall()
    return [{**json.loads(r), "counts": json.loads(c or "{}")} for r, c in rows]
