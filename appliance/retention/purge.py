"""Retention: alert crops go after `crop_days` unless the alert is on legal hold; records go much later.

A purge sets the crop column to NULL (the events database runs with secure_delete, so the freed pages are
overwritten) and then checkpoints the write-ahead log so no old copy of a page lingers there. Decisions
and the alert's record (without an image) stay for `records_days`; the audit chain is never purged on the
device. Each purge that removes anything appends one audit entry with the counts and the cut-off.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from appliance.errors import ApplianceError
from appliance.events.models import iso_ms, utc_now_iso
from appliance.retention.tables import LEGAL_HOLDS_SCHEMA
from appliance.retention.types import LegalHold
from appliance.watchlist.timeutil import utcnow

log = logging.getLogger(__name__)

_NOT_HELD = "event_id NOT IN (SELECT alert_id FROM legal_holds)"


@dataclass(frozen=True)
class PurgeResult:
    crops_purged: int
    crops_held: int  # past the cut-off but kept: on legal hold
    alerts_deleted: int
    decisions_deleted: int
    crop_cutoff: str
    records_cutoff: str

    @property
    def anything(self) -> bool:
        return bool(self.crops_purged or self.alerts_deleted or self.decisions_deleted)


def purge(events, audit, *, crop_days: int, records_days: int, now: datetime | None = None) -> PurgeResult:
    """Purge what is past its retention period, in one transaction with its audit entry."""
    now = now or utcnow()
    crop_cutoff = iso_ms(now - timedelta(days=crop_days))
    records_cutoff = iso_ms(now - timedelta(days=max(records_days, crop_days)))
    events.ensure_schema(LEGAL_HOLDS_SCHEMA)
    with events.transaction() as db:
        c = db.conn
        held = c.execute(f"SELECT count(*) FROM alerts WHERE crop_jpeg IS NOT NULL AND created_at < ? "
                         f"AND NOT ({_NOT_HELD})", (crop_cutoff,)).fetchone()[0]
        crops = c.execute(f"UPDATE alerts SET crop_jpeg = NULL WHERE crop_jpeg IS NOT NULL AND created_at < ? "
                          f"AND {_NOT_HELD}", (crop_cutoff,)).rowcount
        # Records past the long period go too, once the control room has had them (their outbox row was sent).
        old = f"""SELECT event_id FROM alerts WHERE created_at < ? AND {_NOT_HELD}
                  AND event_id NOT IN (SELECT event_id FROM outbox WHERE sent_at IS NULL)
                  AND event_id NOT IN (SELECT d.alert_id FROM decisions d JOIN outbox o ON o.event_id = d.event_id
                                       WHERE o.sent_at IS NULL)"""
        decisions = c.execute(f"DELETE FROM decisions WHERE alert_id IN ({old})", (records_cutoff,)).rowcount
        c.execute(f"DELETE FROM outbox WHERE event_id IN ({old})", (records_cutoff,))
        alerts = c.execute(f"DELETE FROM alerts WHERE event_id IN ({old})", (records_cutoff,)).rowcount
        result = PurgeResult(crops, held, alerts, decisions, crop_cutoff, records_cutoff)
        if result.anything:
            audit.append_in(db, "purge", "system", {**asdict(result), "crop_days": crop_days,
                                                    "records_days": records_days})
    if result.anything:
        events.checkpoint()  # no copy of the purged crops left in the write-ahead log
        log.info("retention purge: %d crops purged (%d on legal hold kept), %d alerts and %d decisions deleted",
                 crops, held, alerts, decisions)
    return result


def set_legal_hold(events, audit, alert_id: str, *, officer: str, reason: str) -> None:
    """Keep this alert's crop past the retention period (until the hold is cleared). Audited."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplianceError("a legal hold needs a reason (e.g. the case or court reference)")
    events.ensure_schema(LEGAL_HOLDS_SCHEMA)
    with events.transaction() as db:
        row = db.conn.execute("SELECT crop_jpeg IS NOT NULL FROM alerts WHERE event_id = ?", (alert_id,)).fetchone()
        if row is None:
            raise ApplianceError(f"no alert {alert_id}")
        if db.conn.execute("SELECT 1 FROM legal_holds WHERE alert_id = ?", (alert_id,)).fetchone():
            raise ApplianceError(f"alert {alert_id} is already on legal hold")
        db.conn.execute("INSERT INTO legal_holds (alert_id, held_by, reason, held_at) VALUES (?, ?, ?, ?)",
                        (alert_id, officer, reason[:300], utc_now_iso()))
        audit.append_in(db, "legal_hold.set", officer, {"alert_id": alert_id, "reason": reason[:300],
                                                        "crop_present": bool(row[0])})


def clear_legal_hold(events, audit, alert_id: str, *, officer: str, reason: str) -> None:
    events.ensure_schema(LEGAL_HOLDS_SCHEMA)
    with events.transaction() as db:
        if db.conn.execute("DELETE FROM legal_holds WHERE alert_id = ?", (alert_id,)).rowcount == 0:
            raise ApplianceError(f"alert {alert_id} is not on legal hold")
        audit.append_in(db, "legal_hold.cleared", officer, {"alert_id": alert_id, "reason": (reason or "")[:300]})


def legal_holds(events) -> list[LegalHold]:
    cols = ("alert_id", "held_by", "reason", "held_at")
    events.ensure_schema(LEGAL_HOLDS_SCHEMA)
    with events.transaction() as db:
        rows = db.conn.execute(f"SELECT {', '.join(cols)} FROM legal_holds ORDER BY held_at").fetchall()
    return [dict(zip(cols, r, strict=True)) for r in rows]


class RetentionService:
    """Runs purge() at start and then every `interval_minutes` in its own thread (off the hot path)."""

    # Every field may change while running; a new interval counts from the end of the current wait.
    RELOADABLE = frozenset({"crop_days", "records_days", "interval_minutes"})

    def __init__(self, events, audit, config):
        events.ensure_schema(LEGAL_HOLDS_SCHEMA)  # this package's table, whoever opened the database
        self.events = events
        self.audit = audit
        self.config = config  # RetentionConfig
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: PurgeResult | None = None

    def update_config(self, config) -> None:
        """A new RetentionConfig, used by the next purge (one reference swap)."""
        self.config = config

    def run_once(self) -> PurgeResult:
        self.last = purge(self.events, self.audit, crop_days=self.config.crop_days,
                          records_days=self.config.records_days)
        return self.last

    def start(self) -> RetentionService:
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the next run tries again; the van keeps working
                log.exception("retention purge failed")
            self._stop.wait(self.config.interval_minutes * 60)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
