"""The control room's own database of alerts, decisions, deployment events and the last status per van.

SQLCipher through appliance.storage when a key provider is given, as `appliance control listen` does by
default (key file in `<db>.keys/`, like the van's); plain SQLite otherwise (tests, a caller's choice). Either
way the files are mode 0600, and crops are purged after the retention period (`purge_crops`).
Every event is stored once: the event id is the primary key and inserts are
INSERT OR IGNORE, so a redelivered message changes nothing. `streams` remembers, per van and outbox
stream, the highest sequence number stored in order (the basis of receipts).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import sqlite_utils

from appliance import message_kinds as kinds
from appliance.audit.types import AuditHeadPayload
from appliance.control.types import Arrival, AuditHeadRow
from appliance.decisions.confirmation import Outcome, outcome
from appliance.errors import StorageError
from appliance.events.types import StatusPayload
from appliance.storage import KeyProvider, Migration, Migrations, migrate, open_db


def _v1(db: sqlite_utils.Database) -> None:
    c = db.conn
    c.execute("""CREATE TABLE alerts (
        event_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at TEXT NOT NULL, received_at TEXT NOT NULL,
        seq INTEGER, deployment_id TEXT, subject_id TEXT NOT NULL, category TEXT NOT NULL, score REAL NOT NULL,
        threshold REAL NOT NULL, payload TEXT NOT NULL, crop_jpeg BLOB)""")  # payload without the crop
    c.execute("""CREATE TABLE decisions (
        event_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, alert_id TEXT NOT NULL, created_at TEXT NOT NULL,
        received_at TEXT NOT NULL, seq INTEGER, officer_id TEXT NOT NULL, decision TEXT NOT NULL, note TEXT,
        payload TEXT NOT NULL)""")
    c.execute("""CREATE TABLE deployments (
        event_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at TEXT NOT NULL, received_at TEXT NOT NULL,
        seq INTEGER, deployment_id TEXT NOT NULL, event TEXT NOT NULL, payload TEXT NOT NULL)""")
    c.execute("""CREATE TABLE status (
        device_id TEXT PRIMARY KEY, time TEXT NOT NULL, state TEXT NOT NULL, received_at TEXT NOT NULL,
        payload TEXT NOT NULL)""")
    c.execute("""CREATE TABLE streams (
        device_id TEXT NOT NULL, stream_id TEXT NOT NULL, last_seq INTEGER NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (device_id, stream_id))""")
    # The order events were stored in, across kinds: what "in order per device" is checked against.
    c.execute("""CREATE TABLE arrivals (
        n INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, kind TEXT NOT NULL, event_id TEXT NOT NULL,
        seq INTEGER, received_at TEXT NOT NULL)""")
    # Payloads refused (malformed, invalid, wrong device): counted and explained, never stored.
    c.execute("""CREATE TABLE rejected (
        n INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, seq INTEGER, reason TEXT NOT NULL,
        received_at TEXT NOT NULL)""")


def _v2(db: sqlite_utils.Database) -> None:
    # The highest audit chain head seen per van (issue 12): a later export must reach it with the same hash.
    db.conn.execute("""CREATE TABLE audit_heads (
        device_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL, at TEXT NOT NULL, key_id TEXT NOT NULL,
        sig TEXT NOT NULL, received_at TEXT NOT NULL)""")


CONTROL_MIGRATIONS = Migrations("control-room", [Migration(1, "alerts, decisions, deployments, status", _v1),
                                                 Migration(2, "audit chain heads", _v2)])


def default_keys_dir(path: Path) -> Path:
    """Where `appliance control listen` keeps the database key unless told otherwise: `<db>.keys/`."""
    path = Path(path)
    return path.with_name(path.name + ".keys")


def open_control_db(path: Path, key_provider: KeyProvider | None = None) -> sqlite_utils.Database:
    path = Path(path)
    if key_provider is not None:
        return open_db(path, key_provider, migrations=CONTROL_MIGRATIONS)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Face crops live here: 0600 from the first byte (SQLite gives the -wal and -shm files the same mode).
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(path, 0o600)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        conn.execute("PRAGMA secure_delete = ON")  # purged crops are overwritten, not left in free pages
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")  # a receipt is sent only for what is on disk
        db = sqlite_utils.Database(conn)
        migrate(db, CONTROL_MIGRATIONS)
    except (sqlite3.Error, OSError) as e:
        hint = " (encrypted? give --db-keys)" if "not a database" in str(e) else ""
        raise StorageError(f"cannot open {path}: {e}{hint}") from None
    return db


class ControlStore:
    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        self.lock = threading.RLock()

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def last_seq(self, device_id: str, stream_id: str) -> int | None:
        row = self.db.conn.execute("SELECT last_seq FROM streams WHERE device_id = ? AND stream_id = ?",
                                   (device_id, stream_id)).fetchone()
        return None if row is None else int(row[0])

    def streams(self, since: str) -> list[tuple[str, str, int]]:
        """(device, stream, last_seq) of streams that stored something since `since`."""
        return [tuple(r) for r in self.db.conn.execute(
            "SELECT device_id, stream_id, last_seq FROM streams WHERE updated_at >= ? ORDER BY device_id",
            (since,)).fetchall()]

    def set_last_seq(self, device_id: str, stream_id: str, seq: int, now: str) -> None:
        self.db.conn.execute(
            "INSERT INTO streams (device_id, stream_id, last_seq, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (device_id, stream_id) DO UPDATE SET last_seq = excluded.last_seq, "
            "updated_at = excluded.updated_at", (device_id, stream_id, seq, now))

    def insert_event(self, kind: str, device_id: str, payload: dict, crop: bytes | None, seq: int | None,
                     now: str) -> bool:
        """Store one alert/decision/deployment event; False if its event id was already stored."""
        p = payload
        if kind == kinds.ALERT.name:
            stored = {k: v for k, v in p.items() if k != "crop_jpeg_b64"}
            cur = self.db.conn.execute(
                "INSERT OR IGNORE INTO alerts (event_id, device_id, created_at, received_at, seq, deployment_id, "
                "subject_id, category, score, threshold, payload, crop_jpeg) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (p["event_id"], device_id, p["created_at"], now, seq, p["deployment_id"], p["subject_id"],
                 p["category"], p["score"], p["threshold"], json.dumps(stored, sort_keys=True), crop))
        elif kind == kinds.DECISION.name:
            cur = self.db.conn.execute(
                "INSERT OR IGNORE INTO decisions (event_id, device_id, alert_id, created_at, received_at, seq, "
                "officer_id, decision, note, payload) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (p["event_id"], device_id, p["alert_id"], p["created_at"], now, seq, p["officer_id"],
                 p["decision"], p["note"], json.dumps(p, sort_keys=True)))
        elif kind == kinds.DEPLOYMENT.name:
            cur = self.db.conn.execute(
                "INSERT OR IGNORE INTO deployments (event_id, device_id, created_at, received_at, seq, deployment_id,"
                " event, payload) VALUES (?,?,?,?,?,?,?,?)",
                (p["event_id"], device_id, p["created_at"], now, seq, p["deployment"]["id"], p["event"],
                 json.dumps(p, sort_keys=True)))
        else:
            raise ValueError(kind)
        if cur.rowcount:
            self.db.conn.execute("INSERT INTO arrivals (device_id, kind, event_id, seq, received_at) "
                                 "VALUES (?, ?, ?, ?, ?)", (device_id, kind, p["event_id"], seq, now))
        return bool(cur.rowcount)

    def note_audit_head(self, device_id: str, head: AuditHeadPayload, now: str) -> int | None:
        """Keep the highest head seen for this van. Returns the previous highest seq when this head is *lower*
        (the van's log went back: cut, or restored from an old copy), else None."""
        row = self.db.conn.execute("SELECT seq FROM audit_heads WHERE device_id = ?", (device_id,)).fetchone()
        if row is not None and head["seq"] < row[0]:
            return int(row[0])
        if row is None or head["seq"] > row[0]:
            self.db.conn.execute(
                "INSERT INTO audit_heads (device_id, seq, hash, at, key_id, sig, received_at) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (device_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at = excluded.at, "
                "key_id = excluded.key_id, sig = excluded.sig, received_at = excluded.received_at",
                (device_id, head["seq"], head["hash"], head["at"], head["key_id"], head["sig"], now))
        return None

    def audit_head(self, device_id: str) -> AuditHeadRow | None:
        cols = ("device_id", "seq", "hash", "at", "key_id", "sig", "received_at")
        with self.lock:
            row = self.db.conn.execute(f"SELECT {', '.join(cols)} FROM audit_heads WHERE device_id = ?",
                                       (device_id,)).fetchone()
        return None if row is None else dict(zip(cols, row, strict=True))

    def purge_crops(self, before: str) -> int:
        """Drop the crops of alerts received before `before` (ISO time): the van's retention, kept here too.
        The alert and its decisions stay. Returns how many crops were dropped."""
        with self.lock, self.db.conn:
            return self.db.conn.execute("UPDATE alerts SET crop_jpeg = NULL WHERE crop_jpeg IS NOT NULL "
                                        "AND received_at < ?", (before,)).rowcount

    def add_rejected(self, topic: str, seq: int | None, reason: str, now: str) -> None:
        self.db.conn.execute("INSERT INTO rejected (topic, seq, reason, received_at) VALUES (?, ?, ?, ?)",
                             (topic, seq, reason, now))

    def set_status(self, device_id: str, payload: StatusPayload, now: str) -> None:
        self.db.conn.execute(
            "INSERT INTO status (device_id, time, state, received_at, payload) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET time = excluded.time, state = excluded.state, "
            "received_at = excluded.received_at, payload = excluded.payload",
            (device_id, payload["time"], payload["state"], now, json.dumps(payload, sort_keys=True)))

    # -- queries (tests, tools) ---------------------------------------------------------------------------
    def arrivals(self, device_id: str | None = None) -> list[Arrival]:
        sql = "SELECT n, device_id, kind, event_id, seq FROM arrivals"
        args: tuple = ()
        if device_id is not None:
            sql += " WHERE device_id = ?"
            args = (device_id,)
        with self.lock:
            rows = self.db.conn.execute(sql + " ORDER BY n", args).fetchall()
        return [dict(zip(("n", "device_id", "kind", "event_id", "seq"), r, strict=True)) for r in rows]

    def count(self, table: str) -> int:
        if table not in ("alerts", "decisions", "deployments", "status", "rejected"):
            raise ValueError(table)
        with self.lock:
            return int(self.db.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def two_officer(self, device_id: str, deployment_id: str | None) -> bool:
        """Whether the van ran this deployment under the two-officer rule, as its deployment event says
        (`two_officer_confirmation` in the record). No event for it, or a record from a van before the field
        existed: one officer, the vans' default."""
        if deployment_id is None:
            return False
        with self.lock:
            row = self.db.conn.execute("SELECT payload FROM deployments WHERE device_id = ? AND deployment_id = ? "
                                       "LIMIT 1", (device_id, deployment_id)).fetchone()
        return row is not None and json.loads(row[0])["deployment"].get("two_officer_confirmation") is True

    def alert_outcome(self, device_id: str, alert_id: str) -> Outcome:
        """What the alert stands at, from the officers' decisions the van sent, under the rule its deployment
        ran with: the console's rule (appliance/decisions/confirmation.py), so the control room never shows as
        confirmed what the van still holds as awaiting a second officer."""
        with self.lock:
            alert = self.db.conn.execute("SELECT deployment_id FROM alerts WHERE device_id = ? AND event_id = ?",
                                         (device_id, alert_id)).fetchone()
            # The van's order: the outbox sequence where it sent one, else the time decided.
            rows = self.db.conn.execute(
                "SELECT officer_id, decision FROM decisions WHERE device_id = ? AND alert_id = ? "
                "ORDER BY seq IS NULL, seq, created_at", (device_id, alert_id)).fetchall()
        decisions = [{"officer_id": o, "decision": d} for o, d in rows]
        return outcome(decisions, two_officer=self.two_officer(device_id, alert[0] if alert else None))

    def status(self, device_id: str) -> StatusPayload | None:
        with self.lock:
            row = self.db.conn.execute("SELECT payload FROM status WHERE device_id = ?", (device_id,)).fetchone()
        return None if row is None else json.loads(row[0])
