"""The encrypted events database: alerts (with the live crop), decisions, and the outbox.

Every alert and decision is written together with its outbox row in ONE committed transaction before
anything is published, so an event that exists is an event that will be delivered (principle 4).
Subscribers (the console) are told after the commit. One connection, serialised by a lock: the daemon's
hot path, the publisher thread and the console's server all share it, and each call is short.

Outbox rows carry the payload JSON; an alert's crop is NOT copied into it (the crop lives only in
alerts.crop_jpeg, where retention can NULL it) and is filled in when the row is published.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from appliance.decisions.confirmation import outcome
from appliance.errors import ApplianceError
from appliance.events.models import DECISIONS, Alert, Decision, utc_now_iso
from appliance.events.schemas import check_payload
from appliance.events.types import AlertRow, Counters, DecisionRow, OutboxMessage, OutboxRow, OutboxStats
from appliance.message_kinds import ALERT, DECISION, DEPLOYMENT, OUTBOX_KINDS
from appliance.storage import KeyProvider, Migration, Migrations, migrate_part, open_db, write_transaction
from appliance.storage.databases import EVENTS, db_path

log = logging.getLogger(__name__)

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Outbox topic suffixes (lfr/v1/devices/{device}/<suffix>): the registry's outbox kinds (appliance/message_kinds.py).
TOPICS: tuple[str, ...] = tuple(k.topic for k in OUTBOX_KINDS)


def _v1(db: sqlite_utils.Database) -> None:
    c = db.conn
    c.execute("""CREATE TABLE alerts (
        event_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, device_id TEXT NOT NULL, deployment_id TEXT,
        subject_id TEXT NOT NULL, category TEXT NOT NULL, score REAL NOT NULL, threshold REAL NOT NULL,
        track_id INTEGER NOT NULL, looks INTEGER, model_id TEXT NOT NULL, watchlist_id TEXT NOT NULL,
        watchlist_version INTEGER NOT NULL, watchlist_sha256 TEXT,
        crop_jpeg BLOB)""")  # its own column: retention sets it to NULL
    c.execute("CREATE INDEX alerts_created ON alerts (created_at)")
    c.execute("CREATE INDEX alerts_deployment ON alerts (deployment_id)")
    c.execute(f"""CREATE TABLE decisions (
        event_id TEXT PRIMARY KEY, alert_id TEXT NOT NULL REFERENCES alerts(event_id),
        created_at TEXT NOT NULL, device_id TEXT NOT NULL, officer_id TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ({", ".join(repr(d) for d in DECISIONS)})), note TEXT)""")
    c.execute("CREATE INDEX decisions_alert ON decisions (alert_id, created_at)")
    # History, frozen: the outbox as version 1 made it, with its list of topics (migration 4 drops the CHECK).
    c.execute("""CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL CHECK (topic IN ('alerts', 'decisions', 'deployments')),
        event_id TEXT NOT NULL UNIQUE, payload TEXT NOT NULL, created_at TEXT NOT NULL,
        sent_at TEXT, received_at TEXT)""")
    c.execute("CREATE INDEX outbox_unsent ON outbox (sent_at, id)")
    c.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    # The outbox stream id: the receiver orders by (stream, outbox id); a re-provisioned database is a new stream.
    c.execute("INSERT INTO meta (key, value) VALUES ('stream_id', ?)", (os.urandom(8).hex(),))


def _v2(db: sqlite_utils.Database) -> None:
    # Until issue 14 this created the accountability tables (audit, deployments, legal_holds, command_nonces)
    # by importing their packages. Each of those packages now owns its tables and migrates them itself
    # (storage.migrate_part; their migration 1 adopts a table this step made in an older database), so the
    # events package imports none of them. The version number stays: databases out there are past it.
    del db


def _v3(db: sqlite_utils.Database) -> None:
    # Alert schema version 2: when the crop's frame was taken and when the track began. Rows stored before
    # keep NULL (not known); their outbox payloads stay version 1, which receivers still accept.
    db.conn.execute("ALTER TABLE alerts ADD COLUMN captured_at TEXT")
    db.conn.execute("ALTER TABLE alerts ADD COLUMN first_seen_at TEXT")


def _v4(db: sqlite_utils.Database) -> None:
    # The outbox's topics come from the message-kind registry, not from a CHECK constraint that a new kind
    # would have to migrate again (SQLite cannot alter a CHECK: the table is rebuilt, every row kept with
    # its id). The AUTOINCREMENT counter is carried over too: a sequence number is never handed out twice,
    # even after the newest rows were pruned, or the receiver would drop the new event as a duplicate.
    c = db.conn
    seq = c.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    c.execute("""CREATE TABLE outbox_v4 (
        id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,
        event_id TEXT NOT NULL UNIQUE, payload TEXT NOT NULL, created_at TEXT NOT NULL,
        sent_at TEXT, received_at TEXT)""")
    c.execute("INSERT INTO outbox_v4 (id, topic, event_id, payload, created_at, sent_at, received_at) "
              "SELECT id, topic, event_id, payload, created_at, sent_at, received_at FROM outbox ORDER BY id")
    c.execute("DROP TABLE outbox")
    c.execute("ALTER TABLE outbox_v4 RENAME TO outbox")
    c.execute("CREATE INDEX outbox_unsent ON outbox (sent_at, id)")
    top = max(int(seq[0]) if seq else 0, int(c.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()[0]))
    c.execute("DELETE FROM sqlite_sequence WHERE name = 'outbox'")
    if top:
        c.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)", (top,))


EVENTS_MIGRATIONS = Migrations("events", [
    Migration(1, "alerts, decisions, outbox", _v1),
    Migration(2, "audit chain, deployments, legal holds, command nonces", _v2),
    Migration(3, "alerts.captured_at, alerts.first_seen_at", _v3),
    Migration(4, "outbox topics from the message-kind registry (no CHECK)", _v4),
])

_ALERT_COLS = ("event_id", "created_at", "captured_at", "first_seen_at", "device_id", "deployment_id",
               "subject_id", "category", "score", "threshold", "track_id", "looks", "model_id", "watchlist_id",
               "watchlist_version", "watchlist_sha256")
_DECISION_COLS = ("event_id", "alert_id", "created_at", "device_id", "officer_id", "decision", "note")

Listener = Callable[[str, dict], None]
WriteHook = Callable[[sqlite_utils.Database, str, object], None]


class EventStore:
    """Alerts, decisions and the outbox in the encrypted events database. Thread-safe."""

    def __init__(self, db: sqlite_utils.Database, path: Path | None = None):
        self.db = db
        self.path = path
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._write_hooks: list[WriteHook] = []
        self._sent_event = threading.Condition(self._lock)
        # deployment.two_officer_confirmation: the counters then count an alert as confirmed only when two
        # different officers confirmed it (decisions/confirmation.py), as the console shows it
        self.two_officer = False

    @classmethod
    def open(cls, data_dir: Path, key_provider: KeyProvider, *, create: bool = True) -> EventStore:
        path = db_path(data_dir, EVENTS)
        return cls(open_db(path, key_provider, migrations=EVENTS_MIGRATIONS, create=create), path)

    @classmethod
    def from_config(cls, config) -> EventStore:
        from appliance.storage import key_provider_from_config

        store = cls.open(config.device.data_dir, key_provider_from_config(config))
        store.two_officer = bool(config.deployment.two_officer_confirmation)
        return store

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file and truncate it, so no copy of deleted rows stays there.
        Outside any transaction (a checkpoint inside one does nothing), under the store's lock."""
        with self._lock:
            self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def ensure_schema(self, part: Migrations) -> None:
        """Create or migrate another package's tables in this database (the audit chain, deployments, ...):
        each owns its own migrations, so this package never imports them. Cheap when they are up to date."""
        with self._lock:
            migrate_part(self.db, part)

    # -- notification --------------------------------------------------------------------------------
    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call `callback(kind, data)` after each commit: kind "alert" (summary, no crop), "decision", or
        "outbox" ({"backlog": n}, when rows are sent). Runs in the writer's thread: keep it short and hand
        over (asyncio: loop.call_soon_threadsafe). Returns a function that unsubscribes."""
        with self._lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)
        return unsubscribe

    def add_write_hook(self, hook: WriteHook) -> None:
        """Call `hook(db, kind, obj)` INSIDE the transaction of every write (kind "alert", "decision",
        "deployment"): e.g. the audit chain appends its entry atomically with the event."""
        with self._lock:
            self._write_hooks.append(hook)

    def _notify(self, kind: str, data: dict) -> None:
        for cb in list(self._listeners):
            try:
                cb(kind, data)
            except Exception:  # a broken listener must not undo or block a committed event
                log.exception("event listener failed on %s", kind)

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """Lock + one transaction, for callers that write several things atomically (use enqueue() inside)."""
        with self._lock, write_transaction(self.db):
            yield self.db

    # -- writes ---------------------------------------------------------------------------------------
    def add_alert(self, alert: Alert) -> None:
        """Store the alert and its outbox row in one transaction (committed on return), then notify."""
        payload = alert.to_payload(with_crop=False)  # validates; the crop is filled in at publish time
        with self.transaction():
            row = {c: payload[c] for c in _ALERT_COLS}
            row["crop_jpeg"] = alert.crop_jpeg
            self.db.conn.execute(
                f"INSERT INTO alerts ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
            self.enqueue(ALERT.topic, alert.event_id, payload)
            for hook in self._write_hooks:
                hook(self.db, ALERT.name, alert)
        summary = self.alert(alert.event_id, with_crop=False)
        self._notify(ALERT.name, summary)

    def add_decision(self, decision: Decision) -> None:
        payload = decision.to_payload()
        with self.transaction():
            if self.db.conn.execute("SELECT 1 FROM alerts WHERE event_id = ?", (decision.alert_id,)).fetchone() is None:
                raise ApplianceError(f"no alert {decision.alert_id} to decide on")
            self.db.conn.execute(
                f"INSERT INTO decisions ({', '.join(_DECISION_COLS)}) VALUES ({', '.join('?' * len(_DECISION_COLS))})",
                tuple(payload[c] for c in _DECISION_COLS))
            self.enqueue(DECISION.topic, decision.event_id, payload)
            for hook in self._write_hooks:
                hook(self.db, DECISION.name, decision)
        self._notify(DECISION.name, {c: payload[c] for c in _DECISION_COLS})

    def add_deployment_event(self, payload: Mapping[str, Any]) -> None:
        """Queue a deployment started/ended event (payload per deployment.json) for publishing: the deployments
        package's DeploymentPayload (typed there: that package sits above this one)."""
        check_payload(payload, DEPLOYMENT.schema)
        with self.transaction():
            self.enqueue(DEPLOYMENT.topic, payload["event_id"], payload)
            for hook in self._write_hooks:
                hook(self.db, DEPLOYMENT.name, payload)
        self._notify(DEPLOYMENT.name, payload)

    def enqueue(self, topic: str, event_id: str, payload: Mapping[str, Any]) -> int:
        """Add an outbox row; call inside transaction(). Returns its id (the per-device sequence number)."""
        if topic not in TOPICS:
            raise ValueError(f"outbox topic must be one of {TOPICS}, not {topic!r}")
        cur = self.db.conn.execute(
            "INSERT INTO outbox (topic, event_id, payload, created_at) VALUES (?, ?, ?, ?)",
            (topic, event_id, json.dumps(payload, separators=(",", ":"), sort_keys=True), utc_now_iso()))
        return int(cur.lastrowid)

    # -- console queries ------------------------------------------------------------------------------
    def _alert_dict(self, row: tuple, cols: list[str], with_crop: bool) -> AlertRow:
        d = dict(zip(cols, row, strict=True))
        crop = d.pop("crop_jpeg", None)
        d["has_crop"] = bool(d.pop("has_crop", crop is not None))
        if with_crop:
            d["crop_jpeg"] = crop
        dec = self.db.conn.execute(
            f"SELECT {', '.join(_DECISION_COLS)} FROM decisions WHERE alert_id = ? "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1", (d["event_id"],)).fetchone()
        d["latest_decision"] = dict(zip(_DECISION_COLS, dec, strict=True)) if dec else None
        return d

    def alerts(self, limit: int = 50, before: str | None = None, *, deployment_id: str | None = None) -> list[AlertRow]:
        """Newest first, without crops (`has_crop` says if there is one). Each dict has the alert's fields plus
        `latest_decision` (dict or None). `before` pages on: the event_id of the last alert already shown
        (exact, even when several alerts share a millisecond), or a created_at time."""
        sql = f"SELECT {', '.join(_ALERT_COLS)}, crop_jpeg IS NOT NULL AS has_crop FROM alerts"
        where, args = [], []
        if before is not None and _UUID.match(before):
            where.append("(created_at, rowid) < (SELECT created_at, rowid FROM alerts WHERE event_id = ?)")
            args.append(before)
        elif before is not None:
            where.append("created_at < ?")
            args.append(before)
        if deployment_id is not None:
            where.append("deployment_id = ?")
            args.append(deployment_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        args.append(int(limit))
        cols = [*_ALERT_COLS, "has_crop"]
        with self._lock:
            return [self._alert_dict(r, cols, False) for r in self.db.conn.execute(sql, args).fetchall()]

    def alert(self, event_id: str, *, with_crop: bool = True) -> AlertRow | None:
        """One alert as a dict (with `crop_jpeg` bytes or None unless with_crop=False), or None."""
        cols = [*_ALERT_COLS, "crop_jpeg"]
        with self._lock:
            row = self.db.conn.execute(f"SELECT {', '.join(cols)} FROM alerts WHERE event_id = ?",
                                       (event_id,)).fetchone()
            return None if row is None else self._alert_dict(row, cols, with_crop)

    def get_alert(self, event_id: str) -> Alert | None:
        d = self.alert(event_id)
        if d is None:
            return None
        return Alert(**{c: d[c] for c in _ALERT_COLS}, crop_jpeg=d["crop_jpeg"])

    def crop(self, event_id: str) -> bytes | None:
        with self._lock:
            row = self.db.conn.execute("SELECT crop_jpeg FROM alerts WHERE event_id = ?", (event_id,)).fetchone()
        return row[0] if row else None

    def decisions_for(self, alert_id: str) -> list[DecisionRow]:
        """The alert's decisions, oldest first (the last one counts)."""
        with self._lock:
            rows = self.db.conn.execute(
                f"SELECT {', '.join(_DECISION_COLS)} FROM decisions WHERE alert_id = ? ORDER BY created_at, rowid",
                (alert_id,)).fetchall()
        return [dict(zip(_DECISION_COLS, r, strict=True)) for r in rows]

    def counters(self, *, deployment_id: str | None = None, two_officer: bool | None = None) -> Counters:
        """{alerts, confirmed, rejected, unsure, pending, rejected_share}: each alert counts by its outcome
        (decisions/confirmation.py): in one-officer mode its latest decision; in two-officer mode confirmed
        only when two different officers confirmed it (one confirmation is still pending, a dispute counts
        as unsure). rejected_share = rejected / decided (None before any decision). two_officer: the mode to
        count in (a deployment's own, from its record); None: this store's (the config's)."""
        where = "WHERE a.deployment_id = ?" if deployment_id is not None else ""
        args = (deployment_id,) if deployment_id is not None else ()
        two_officer = self.two_officer if two_officer is None else two_officer
        with self._lock:
            if not two_officer:
                rows = self.db.conn.execute(f"""
                    SELECT (SELECT d.decision FROM decisions d WHERE d.alert_id = a.event_id
                            ORDER BY d.created_at DESC, d.rowid DESC LIMIT 1) AS latest, count(*)
                    FROM alerts a {where} GROUP BY latest""", args).fetchall()
            else:
                rows = self._two_officer_counts(where, args)
        by = {k: n for k, n in rows}
        c = {"alerts": sum(by.values()), "confirmed": by.get("confirm", 0), "rejected": by.get("reject", 0),
             "unsure": by.get("unsure", 0), "pending": by.get(None, 0)}
        decided = c["confirmed"] + c["rejected"] + c["unsure"]
        c["rejected_share"] = round(c["rejected"] / decided, 4) if decided else None
        return c

    def _two_officer_counts(self, where: str, args: tuple) -> list[tuple[str | None, int]]:
        decisions: dict[str, list[dict]] = {}
        for alert_id, officer_id, decision in self.db.conn.execute(f"""
                SELECT d.alert_id, d.officer_id, d.decision FROM decisions d JOIN alerts a ON a.event_id = d.alert_id
                {where} ORDER BY d.created_at, d.rowid""", args):
            decisions.setdefault(alert_id, []).append({"officer_id": officer_id, "decision": decision})
        total = self.db.conn.execute(f"SELECT count(*) FROM alerts a {where}", args).fetchone()[0]
        as_latest = {"confirmed": "confirm", "rejected": "reject", "unsure": "unsure", "disputed": "unsure"}
        counts = Counter(as_latest.get(outcome(ds, two_officer=True).state) for ds in decisions.values())
        counts[None] += total - len(decisions)  # no decision yet
        return list(counts.items())

    # -- outbox (the publisher) -----------------------------------------------------------------------
    def outbox_backlog(self) -> int:
        """Events not yet acknowledged (PUBACK) by the broker."""
        with self._lock:
            return int(self.db.conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0])

    def stream_id(self) -> str:
        with self._lock:
            return self.db.conn.execute("SELECT value FROM meta WHERE key = 'stream_id'").fetchone()[0]

    def outbox_unsent(self, after_id: int = 0, limit: int = 100) -> list[OutboxMessage]:
        """Unsent rows with id > after_id, oldest first: {id, topic, event_id, payload (dict, crop filled in)}."""
        return self._outbox_rows("sent_at IS NULL", after_id, limit)

    def outbox_unreceived(self, after_id: int = 0, limit: int = 100) -> list[OutboxMessage]:
        """Rows the receiver has not confirmed yet (sent or not), oldest first."""
        return self._outbox_rows("received_at IS NULL", after_id, limit)

    def _outbox_rows(self, cond: str, after_id: int, limit: int) -> list[OutboxMessage]:
        with self._lock:
            rows = self.db.conn.execute(
                f"SELECT id, topic, event_id, payload FROM outbox WHERE {cond} AND id > ? ORDER BY id LIMIT ?",
                (after_id, limit)).fetchall()
            out: list[OutboxMessage] = []
            for rid, topic, event_id, payload in rows:
                p = json.loads(payload)
                if topic == ALERT.topic:
                    crop = self.crop(event_id)
                    if crop is not None:
                        p["crop_jpeg_b64"] = base64.b64encode(crop).decode("ascii")
                out.append({"id": rid, "topic": topic, "event_id": event_id, "payload": p})
        return out

    def outbox(self, after_id: int = 0, limit: int = 1000) -> list[OutboxRow]:
        """Outbox rows in order with their state: {id, topic, event_id, created_at, sent_at, received_at}."""
        cols = ("id", "topic", "event_id", "created_at", "sent_at", "received_at")
        with self._lock:
            rows = self.db.conn.execute(f"SELECT {', '.join(cols)} FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                                        (after_id, limit)).fetchall()
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def mark_sent(self, ids: list[int]) -> None:
        """The broker acknowledged these rows (PUBACK)."""
        if not ids:
            return
        now = utc_now_iso()
        with self.transaction():
            self.db.conn.executemany("UPDATE outbox SET sent_at = ? WHERE id = ? AND sent_at IS NULL",
                                     [(now, i) for i in ids])
            self._sent_event.notify_all()
        self._notify("outbox", {"backlog": self.outbox_backlog()})

    def mark_received(self, upto_id: int) -> int:
        """The control room confirmed every row up to `upto_id` (a cumulative receipt). Returns rows marked."""
        now = utc_now_iso()
        with self.transaction():
            n = self.db.conn.execute(
                "UPDATE outbox SET received_at = ?, sent_at = coalesce(sent_at, ?) "
                "WHERE id <= ? AND received_at IS NULL",
                (now, now, upto_id)).rowcount
        return n

    def published_upto(self) -> int:
        """The highest outbox id ever acknowledged by the broker or confirmed: a receipt beyond it is not believed."""
        with self._lock:
            row = self.db.conn.execute(
                "SELECT coalesce(max(id), 0) FROM outbox WHERE sent_at IS NOT NULL OR received_at IS NOT NULL"
            ).fetchone()
        return max(int(row[0]), self.received_upto())

    def received_upto(self) -> int:
        """The highest outbox id up to which every row is confirmed by a receipt (0: none)."""
        with self._lock:
            row = self.db.conn.execute(
                "SELECT coalesce((SELECT min(id) - 1 FROM outbox WHERE received_at IS NULL), "
                "(SELECT max(id) FROM outbox), 0)").fetchone()
        return int(row[0])

    def outbox_stats(self) -> OutboxStats:
        with self._lock:
            total, unsent, unreceived = self.db.conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE sent_at IS NULL), count(*) FILTER (WHERE received_at IS NULL)"
                " FROM outbox").fetchone()
        return {"total": total, "unsent": unsent, "unreceived": unreceived}

    def wait_sent(self, timeout: float) -> bool:
        """Wait until the backlog is empty (tests, clean shutdown)."""
        deadline = time.monotonic() + timeout
        with self._sent_event:
            while self.outbox_backlog():
                left = deadline - time.monotonic()
                if left <= 0 or not self._sent_event.wait(left):
                    return self.outbox_backlog() == 0
        return True
