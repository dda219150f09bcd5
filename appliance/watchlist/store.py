"""The van's watchlist database (SQLCipher): subjects, templates, reference photos, metadata, sync history.

A bundle is applied in one SQLite transaction together with the new metadata, so after a crash or a
SIGKILL the database holds the old watchlist or the new one, never a mix. The state hash stored with the
metadata is recomputed from the rows on every load, which proves it.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import sqlite_utils

from appliance.errors import WatchlistError
from appliance.storage import KeyProvider, Migration, Migrations, erase_db, open_db, write_transaction
from appliance.storage.databases import WATCHLIST, db_path
from appliance.watchlist.bundle import BundleRefused, OpenedBundle
from appliance.watchlist.records import FIELDS, state_hash
from appliance.watchlist.timeutil import iso, parse_time, utcnow
from appliance.watchlist.types import (
    ActiveWatchlist,
    SubjectRow,
    SyncEvent,
    WatchlistMeta,
    WatchlistStatus,
    WatchlistSummary,
)
from appliance.watchlist.validation import entry_problem

# A control-room clock a little ahead of the van's must not get a fresh bundle refused.
_CLOCK_SKEW = timedelta(minutes=10)


def _v1(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE subjects (
            id TEXT PRIMARY KEY,
            display_name TEXT NOT NULL,
            category TEXT NOT NULL,
            legal_basis TEXT NOT NULL,
            image_source TEXT NOT NULL,
            image_date TEXT,
            added_by TEXT,
            review_due TEXT,
            expires_at TEXT NOT NULL,
            notes TEXT,
            entry_sha256 TEXT NOT NULL,
            version_added INTEGER NOT NULL
        );
        CREATE TABLE templates (
            subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            dim INTEGER NOT NULL,
            embedding BLOB NOT NULL,
            PRIMARY KEY (subject_id, idx)
        );
        CREATE TABLE reference_photos (
            subject_id TEXT PRIMARY KEY REFERENCES subjects(id) ON DELETE CASCADE,
            jpeg BLOB NOT NULL
        );
        CREATE TABLE watchlist (
            singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
            watchlist_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            kind TEXT NOT NULL,
            watchlist_sha256 TEXT NOT NULL,
            content_sha256 TEXT NOT NULL,
            bundle_sha256 TEXT NOT NULL,
            model_id TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            signer TEXT NOT NULL,
            applied_at TEXT NOT NULL
        );
        CREATE TABLE versions_seen (
            watchlist_id TEXT PRIMARY KEY,
            highest_version INTEGER NOT NULL
        );
        CREATE TABLE sync_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT,
            detail TEXT,
            transfer_id TEXT,
            bundle_sha256 TEXT,
            watchlist_id TEXT,
            version INTEGER
        );
        """
    )


MIGRATIONS = Migrations("watchlist", [Migration(1, "subjects, templates, photos, metadata, sync events", _v1)])


class WatchlistStore:
    """Thread-safe access to the watchlist database (one connection, one lock)."""

    def __init__(self, db: sqlite_utils.Database, path: Path | None = None):
        self.db = db
        self.path = path
        self._lock = threading.RLock()

    @classmethod
    def open(cls, data_dir: Path, key_provider: KeyProvider, *, create: bool = True) -> WatchlistStore:
        path = db_path(data_dir, WATCHLIST)
        return cls(open_db(path, key_provider, migrations=MIGRATIONS, create=create), path)

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file and truncate it, so no copy of erased rows stays there."""
        with self._lock:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # -- reading --------------------------------------------------------------------------------------
    def meta(self) -> WatchlistMeta | None:
        with self._lock:
            rows = list(self.db.query("SELECT * FROM watchlist WHERE singleton = 1"))
        if not rows:
            return None
        m = dict(rows[0])
        m.pop("singleton")
        return m

    def _state_hash(self, watchlist_id: str) -> str:
        rows = self.db.execute("SELECT id, entry_sha256 FROM subjects").fetchall()
        return state_hash(watchlist_id, rows)

    def counts(self) -> tuple[int, int]:
        with self._lock:
            s = self.db.execute("SELECT count(*) FROM subjects").fetchone()[0]
            t = self.db.execute("SELECT count(*) FROM templates").fetchone()[0]
        return int(s), int(t)

    def check_integrity(self) -> None:
        """Raise WatchlistError unless the rows hash to the stored state hash (never a mixed list)."""
        with self._lock:
            m = self.meta()
            if m is None:
                if self.db.execute("SELECT count(*) FROM subjects").fetchone()[0]:
                    raise WatchlistError("subjects present without watchlist metadata")
                return
            actual = self._state_hash(m["watchlist_id"])
        if actual != m["watchlist_sha256"]:
            raise WatchlistError(f"watchlist rows hash to {actual[:12]}, metadata says {m['watchlist_sha256'][:12]}")

    def reference_photo(self, subject_id: str) -> bytes | None:
        with self._lock:
            row = self.db.execute("SELECT jpeg FROM reference_photos WHERE subject_id = ?", [subject_id]).fetchone()
        return bytes(row[0]) if row else None

    def subject(self, subject_id: str) -> SubjectRow | None:
        with self._lock:
            rows = list(self.db.query("SELECT * FROM subjects WHERE id = ?", [subject_id]))
        return rows[0] if rows else None

    def load_gallery(self, *, now: datetime | None = None):
        """The matcher's Gallery for the active watchlist; empty when there is none or it has expired."""
        from appliance.matching.gallery import Gallery  # the matcher is optional for build-only tools

        now = now or utcnow()
        with self._lock:
            m = self.meta()
            if m is None or parse_time(m["expires_at"]) <= now:
                return Gallery.empty()
            rows = self.db.execute(
                "SELECT t.subject_id, t.dim, t.embedding FROM templates t JOIN subjects s ON s.id = t.subject_id "
                "WHERE s.expires_at > ? ORDER BY t.subject_id, t.idx",
                [iso(now)],
            ).fetchall()
            meta = {
                r["id"]: {"display_name": r["display_name"], "category": r["category"]}
                for r in self.db.query(
                    "SELECT id, display_name, category FROM subjects WHERE expires_at > ?", [iso(now)]
                )
            }
        if not rows:
            return Gallery.empty(watchlist_id=m["watchlist_id"], version=m["version"], hash=m["watchlist_sha256"])
        emb = np.stack([np.frombuffer(r[2], dtype="<f4") for r in rows]).astype(np.float32)
        return Gallery([r[0] for r in rows], emb, meta, watchlist_id=m["watchlist_id"], version=m["version"],
                       hash=m["watchlist_sha256"])

    def next_expiry(self, *, now: datetime | None = None) -> datetime | None:
        """When the gallery next shrinks: the bundle's expiry or the soonest subject expiry after `now`."""
        now = now or utcnow()
        with self._lock:
            m = self.meta()
            if m is None:
                return None
            row = self.db.execute("SELECT min(expires_at) FROM subjects WHERE expires_at > ?", [iso(now)]).fetchone()
        times = [parse_time(m["expires_at"])] + ([parse_time(row[0])] if row and row[0] else [])
        future = [t for t in times if t > now]
        return min(future) if future else None

    def last_event(self, status: str | None = None) -> SyncEvent | None:
        sql = "SELECT time, status, reason, detail, watchlist_id, version FROM sync_events"
        args: list = []
        if status:
            sql += " WHERE status = ?"
            args.append(status)
        with self._lock:
            rows = list(self.db.query(sql + " ORDER BY id DESC LIMIT 1", args))
        return rows[0] if rows else None

    def applied_event(self, transfer_id: str) -> SyncEvent | None:
        """The 'applied' sync event of a transfer, if that transfer was applied (crash recovery)."""
        with self._lock:
            rows = list(self.db.query(
                "SELECT * FROM sync_events WHERE transfer_id = ? AND status = 'applied' ORDER BY id DESC LIMIT 1",
                [transfer_id]))
        return rows[0] if rows else None

    def status(self, *, now: datetime | None = None) -> WatchlistStatus:
        now = now or utcnow()
        m = self.meta() or {}
        subjects, templates = self.counts()
        expires = m.get("expires_at")
        return {
            "schema": "watchlist_status/1",
            "watchlist_id": m.get("watchlist_id"),
            "version": m.get("version"),
            "watchlist_sha256": m.get("watchlist_sha256"),
            "subjects": subjects,
            "templates": templates,
            "model_id": m.get("model_id"),
            "issued_at": m.get("issued_at"),
            "expires_at": expires,
            "expired": expires is None or parse_time(expires) <= now,
            "signer": m.get("signer"),
            "applied_at": m.get("applied_at"),
            "last_sync": self.last_event(),
            "last_refusal": self.last_event("refused"),
        }

    def summary(self) -> WatchlistSummary | None:
        """The watchlist in force (None: none applied), as the rest of the van sees it."""
        m = self.meta()
        if m is None:
            return None
        return WatchlistSummary(m["watchlist_id"], int(m["version"]), m["watchlist_sha256"], self.counts()[0],
                                m["expires_at"])

    def active_summary(self) -> ActiveWatchlist | None:
        """The `active` object of a watchlist ack (appliance/schemas/watchlist_ack.json)."""
        s = self.summary()
        return s.ack_payload() if s is not None else None

    # -- checking and applying ------------------------------------------------------------------------
    def check_header(self, header: dict, *, model_id: str, now: datetime) -> None:
        """Header-level refusals, before anything is decrypted: model, time window, version, base."""
        if header["model_id"] != model_id:
            raise BundleRefused("wrong_model", f"built for model {header['model_id']}, this device runs {model_id}",
                                header)
        if parse_time(header["expires_at"]) <= now:
            raise BundleRefused("expired", f"the bundle expired at {header['expires_at']}", header)
        if parse_time(header["issued_at"]) > now + _CLOCK_SKEW:
            raise BundleRefused("not_yet_valid", f"issued at {header['issued_at']}, in the future", header)
        wid, version = header["watchlist_id"], header["version"]
        with self._lock:
            row = self.db.execute("SELECT highest_version FROM versions_seen WHERE watchlist_id = ?", [wid]).fetchone()
            current = self.meta()
        if row is not None and version == row[0]:
            raise BundleRefused("replay", f"version {version} of {wid} was already applied", header)
        if row is not None and version < row[0]:
            raise BundleRefused("older_version", f"version {version} of {wid} is older than {row[0]}", header)
        if header["kind"] == "delta" and (
            current is None or current["watchlist_id"] != wid or current["version"] != header["base_version"]
        ):
            have = f"{current['watchlist_id']} v{current['version']}" if current else "no watchlist"
            raise BundleRefused("base_mismatch", f"delta on v{header['base_version']} of {wid}; device has {have}",
                                header)

    def apply(self, bundle: OpenedBundle, *, model_id: str, now: datetime | None = None,
              transfer_id: str | None = None, dim: int | None = None, progress=None) -> ActiveWatchlist | None:
        """Verify every entry and apply the bundle in one transaction. Raises BundleRefused (nothing changed)."""
        now = now or utcnow()
        h = bundle.header
        self.check_header(h, model_id=model_id, now=now)
        adds = removes = 0
        with self._lock, write_transaction(self.db):
            if dim is None and h["kind"] == "delta":  # a delta must match the templates already there
                row = self.db.execute("SELECT dim FROM templates LIMIT 1").fetchone()
                dim = row[0] if row else None
            if h["kind"] == "full":
                self.db.execute("DELETE FROM subjects")
            for rec in bundle.records():
                sid = rec.meta["id"]
                if rec.op == "remove":
                    removes += 1
                    if self.db.execute("DELETE FROM subjects WHERE id = ?", [sid]).rowcount != 1:
                        raise BundleRefused("invalid_entry", f"remove of subject {sid}, not on the list", h)
                    continue
                adds += 1
                if dim is None:  # every template of one watchlist has the same size
                    dim = int(rec.entry.templates.shape[1])
                problem = entry_problem(rec.entry, now=now, dim=dim)
                if problem:
                    raise BundleRefused("invalid_entry", f"subject {sid}: {problem}", h)
                self._insert(rec, h["version"])
                if progress is not None:
                    progress(adds)
            if adds != h["entry_count"] or removes != h["remove_count"]:
                raise BundleRefused("tampered", "record counts differ from the header", h)
            actual = self._state_hash(h["watchlist_id"])
            if actual != h["watchlist_sha256"]:
                raise BundleRefused("hash_mismatch", "the resulting watchlist does not hash to the "
                                    "signed watchlist_sha256", h)
            self._set_meta(h, bundle.file_sha256, now)
            self._event(now, "applied", None, None, transfer_id, bundle.file_sha256, h["watchlist_id"],
                        h["version"])
        return self.active_summary()

    def _insert(self, rec, version: int) -> None:
        e = rec.entry
        sid = e.id
        self.db.execute("DELETE FROM subjects WHERE id = ?", [sid])  # an add replaces (delta update)
        row = {f: e.meta.get(f) for f in FIELDS}
        row.update(entry_sha256=rec.digest, version_added=version)
        cols = ", ".join(row)
        self.db.execute(f"INSERT INTO subjects ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
        t = np.ascontiguousarray(e.templates, dtype="<f4")
        self.db.conn.executemany(
            "INSERT INTO templates (subject_id, idx, dim, embedding) VALUES (?, ?, ?, ?)",
            [(sid, i, t.shape[1], t[i].tobytes()) for i in range(len(t))],
        )
        self.db.execute("INSERT INTO reference_photos (subject_id, jpeg) VALUES (?, ?)", [sid, e.photo_jpeg])

    def _set_meta(self, h: dict, bundle_sha256: str, now: datetime) -> None:
        self.db.execute("DELETE FROM watchlist")
        self.db.execute(
            "INSERT INTO watchlist (singleton, watchlist_id, version, kind, watchlist_sha256, content_sha256, "
            "bundle_sha256, model_id, issued_at, expires_at, signer, applied_at) "
            "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [h["watchlist_id"], h["version"], h["kind"], h["watchlist_sha256"], h["content_sha256"], bundle_sha256,
             h["model_id"], h["issued_at"], h["expires_at"], h["signer"]["key_id"], iso(now)],
        )
        self.db.execute(
            "INSERT INTO versions_seen (watchlist_id, highest_version) VALUES (?, ?) "
            "ON CONFLICT(watchlist_id) DO UPDATE SET highest_version = max(highest_version, excluded.highest_version)",
            [h["watchlist_id"], h["version"]],
        )

    def _event(self, now, status, reason, detail, transfer_id, bundle_sha256, watchlist_id, version) -> None:
        self.db.execute(
            "INSERT INTO sync_events (time, status, reason, detail, transfer_id, bundle_sha256, watchlist_id, "
            "version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [iso(now), status, reason, detail, transfer_id, bundle_sha256, watchlist_id, version],
        )

    def record_refusal(self, reason: str, detail: str, *, header: dict | None, transfer_id: str | None,
                       bundle_sha256: str | None, now: datetime | None = None) -> None:
        h = header or {}
        wid = h.get("watchlist_id") if isinstance(h.get("watchlist_id"), str) else None
        ver = h.get("version") if isinstance(h.get("version"), int) else None
        with self._lock, write_transaction(self.db):
            self._event(now or utcnow(), "refused", reason, detail[:500], transfer_id, bundle_sha256, wid, ver)

    def revoke(self) -> None:
        """Remove the active watchlist (subjects and metadata); versions seen are kept against replays."""
        with self._lock, write_transaction(self.db):
            self.db.execute("DELETE FROM subjects")
            self.db.execute("DELETE FROM watchlist")



def erase(data_dir: Path, key_provider: KeyProvider) -> list[str]:
    """Crypto-erase the watchlist: destroy its key, then delete the database files."""
    return erase_db(db_path(data_dir, WATCHLIST), key_provider)
