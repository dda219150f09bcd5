"""The audit chain: one append-only log in the encrypted events database, hash-chained and signed.

Each entry's hash covers its content and the previous entry's hash; the hash is signed with the device's
Ed25519 identity key. Changing, inserting or deleting an entry breaks the chain at that entry, and rewriting
the rest of the chain to hide it needs the device's private key. The log holds no biometric data: an entry
whose data carries an image or an embedding is refused (a bug, not a runtime condition).

    log = AuditLog(events_store, AuditSigner.from_file(keys_dir / "device.ed25519.key"), device_id)
    log.attach(events_store)            # alerts, decisions and deployments are audited in their own transaction
    log.record("login", actor="PC-1234", data={"ok": True})
    report = verify_chain(events_store.db, public_key)   # report.first_bad names the first broken entry
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlite_utils
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.audit.tables import AUDIT_SCHEMA
from appliance.audit.types import AuditHeadPayload
from appliance.events.models import utc_now_iso
from appliance.keys.keypairs import key_id, load_signing_key
from appliance.message_kinds import ALERT, AUDIT_HEAD, DECISION, DEPLOYMENT

GENESIS = "0" * 64
DOMAIN = b"lfr-audit/1\n"  # hashes of audit entries cannot be confused with any other signed thing
# Keys that would carry biometric content: an entry holding one of them is refused.
FORBIDDEN_KEYS = frozenset({"crop_jpeg", "crop_jpeg_b64", "crop", "image", "photo", "embedding", "template",
                            "aligned", "display_name"})

# What is audited (docs/audit.md lists who writes each).
KINDS = (
    "deployment.started", "deployment.ended", "watchlist.applied", "watchlist.refused", "watchlist.erased",
    "alert", "decision", "config.changed", "config.needs_restart", "config.refused", "threshold.changed",
    "login", "login.failed", "logout",
    "purge", "legal_hold.set", "legal_hold.cleared", "revocation", "command.accepted", "command.refused",
    "command.failed", "audit.exported", "pipeline.changed", "watchlist.subjects_expired", "threshold.unequal",
)
_COLS = ("seq", "at", "device_id", "kind", "actor", "data", "prev", "hash", "key_id", "sig")


def canonical(obj) -> bytes:
    """The one byte form that is hashed and signed: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _check_data(data, path: str = "data") -> None:
    if isinstance(data, dict):
        for k, v in data.items():
            if k in FORBIDDEN_KEYS:
                raise ValueError(f"audit entries hold no biometric data: {path}.{k} refused")
            _check_data(v, f"{path}.{k}")
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _check_data(v, f"{path}[{i}]")
    elif isinstance(data, (bytes, bytearray)):
        raise ValueError(f"audit entries hold no binary data: {path} refused")


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    device_id: str
    kind: str
    actor: str
    data: dict
    prev: str
    hash: str
    key_id: str
    sig: str  # base64 Ed25519 signature over the 32 raw bytes of `hash`

    def body(self) -> dict:
        return {"seq": self.seq, "at": self.at, "device_id": self.device_id, "kind": self.kind,
                "actor": self.actor, "data": self.data, "prev": self.prev}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: tuple) -> AuditEntry:
        d = dict(zip(_COLS, row, strict=True))
        d["data"] = json.loads(d["data"])
        return cls(**d)


def entry_hash(body: dict) -> str:
    return hashlib.sha256(DOMAIN + canonical(body)).hexdigest()


class AuditSigner:
    """The device's Ed25519 identity key, used to sign audit entry hashes and exports."""

    def __init__(self, private_key: Ed25519PrivateKey):
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_file(cls, path: Path) -> AuditSigner:
        return cls(load_signing_key(path))

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._key.sign(message)).decode("ascii")


def append_entry(db: sqlite_utils.Database, signer: AuditSigner, device_id: str, kind: str, actor: str,
                 data: dict | None = None, at: str | None = None) -> AuditEntry:
    """Append one entry. Call inside the caller's transaction (the events store's lock is held)."""
    if kind not in KINDS:  # one list, documented in docs/audit.md: a new kind is added there on purpose
        raise ValueError(f"audit kind {kind!r} is not one of audit.chain.KINDS")
    data = dict(data or {})
    _check_data(data)
    last = db.conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    body = {"seq": seq, "at": at or utc_now_iso(), "device_id": device_id, "kind": kind, "actor": actor or "system",
            "data": data, "prev": prev}
    h = entry_hash(body)
    entry = AuditEntry(**body, hash=h, key_id=signer.key_id, sig=signer.sign(bytes.fromhex(h)))
    db.conn.execute(f"INSERT INTO audit ({', '.join(_COLS)}) VALUES ({', '.join('?' * len(_COLS))})",
                    (entry.seq, entry.at, entry.device_id, entry.kind, entry.actor,
                     canonical(entry.data).decode(), entry.prev, entry.hash, entry.key_id, entry.sig))
    return entry


def check_entry(entry: AuditEntry, public_key: Ed25519PublicKey, expected_seq: int | None,
                expected_prev: str | None) -> str | None:
    """None if the entry is sound (and follows the expected one), else one line saying what is wrong."""
    if expected_seq is not None and entry.seq != expected_seq:
        return f"sequence jumps from {expected_seq - 1} to {entry.seq} (entries missing or inserted)"
    if expected_prev is not None and entry.prev != expected_prev:
        return "does not follow the previous entry (its prev hash differs: an entry before it was changed, " \
               "removed or inserted)"
    if entry_hash(entry.body()) != entry.hash:
        return "its content does not match its hash (the entry was altered)"
    if entry.key_id != key_id(public_key):
        return f"signed by key {entry.key_id}, not by this device's key {key_id(public_key)}"
    try:
        public_key.verify(base64.b64decode(entry.sig), bytes.fromhex(entry.hash))
    except (InvalidSignature, ValueError):
        return "its signature is not valid (the entry was re-hashed without the device key)"
    return None


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int  # entries checked (up to and including the first bad one)
    first_bad: int | None = None  # seq of the first broken entry
    reason: str | None = None
    last_hash: str | None = None

    def line(self) -> str:
        if self.ok:
            return f"audit chain OK: {self.checked} entries, head {self.last_hash or GENESIS}"
        return f"audit chain BROKEN at entry {self.first_bad}: {self.reason} ({self.checked} entries checked)"


def iter_entries(db: sqlite_utils.Database, *, from_at: str | None = None, to_at: str | None = None,
                 batch: int = 1000) -> Iterator[AuditEntry]:
    """Entries in chain order (optionally with from_at <= at < to_at), read in batches."""
    after = 0
    cond, args = [], []
    if from_at:
        cond.append("at >= ?")
        args.append(from_at)
    if to_at:
        cond.append("at < ?")
        args.append(to_at)
    where = "".join(f" AND {c}" for c in cond)
    while True:
        rows = db.conn.execute(f"SELECT {', '.join(_COLS)} FROM audit WHERE seq > ?{where} ORDER BY seq LIMIT ?",
                               (after, *args, batch)).fetchall()
        if not rows:
            return
        for r in rows:
            yield AuditEntry.from_row(r)
        after = rows[-1][0]


def verify_entries(entries, public_key: Ed25519PublicKey, *, first_seq: int | None = 1,
                   prev: str | None = GENESIS) -> VerifyReport:
    """Check a run of entries in order; the first one must have `first_seq` and follow `prev` (None: any)."""
    n = 0
    expected_seq, expected_prev = first_seq, prev
    for e in entries:
        n += 1
        why = check_entry(e, public_key, expected_seq, expected_prev)
        if why:
            return VerifyReport(False, n, e.seq, why)
        expected_seq, expected_prev = e.seq + 1, e.hash
    return VerifyReport(True, n, last_hash=expected_prev if n else None)


def verify_chain(db: sqlite_utils.Database, public_key: Ed25519PublicKey) -> VerifyReport:
    """Check the whole chain from its first entry: contiguous, linked, unaltered, signed by this device."""
    return verify_entries(iter_entries(db), public_key)


class AuditLog:
    """Appends entries through an events store (its lock and transaction), signs them with the device key."""

    def __init__(self, store, signer: AuditSigner, device_id: str):
        self.store = store  # appliance.events.store.EventStore (duck-typed: .transaction(), .db)
        store.ensure_schema(AUDIT_SCHEMA)  # this package's table, whoever opened the database
        self.signer = signer
        self.device_id = device_id

    def record(self, kind: str, actor: str = "system", data: dict | None = None) -> AuditEntry:
        """Append one entry in its own transaction (committed on return)."""
        with self.store.transaction() as db:
            return append_entry(db, self.signer, self.device_id, kind, actor, data)

    def append_in(self, db: sqlite_utils.Database, kind: str, actor: str = "system",
                  data: dict | None = None) -> AuditEntry:
        """Append inside a transaction the caller holds (atomically with what it audits)."""
        return append_entry(db, self.signer, self.device_id, kind, actor, data)

    def attach(self, store) -> None:
        """Audit every alert, decision and deployment event in the same transaction that stores it."""
        store.add_write_hook(self.write_hook)

    def write_hook(self, db: sqlite_utils.Database, kind: str, obj) -> None:
        if kind == ALERT.name:  # the events store's kinds are the registry's (appliance/message_kinds.py)
            p = obj.to_payload(with_crop=False)
            data = {k: p[k] for k in ("event_id", "deployment_id", "subject_id", "category", "score", "threshold",
                                      "track_id", "looks", "captured_at", "first_seen_at", "model_id",
                                      "watchlist_id", "watchlist_version", "watchlist_sha256")}
            data["had_crop"] = obj.crop_jpeg is not None
            self.append_in(db, "alert", "system", data)
        elif kind == DECISION.name:
            data = {"event_id": obj.event_id, "alert_id": obj.alert_id, "decision": obj.decision,
                    "has_note": obj.note is not None}
            self.append_in(db, "decision", obj.officer_id, data)
        elif kind == DEPLOYMENT.name:
            dep = obj["deployment"]
            actor = (dep.get("ended_by") or dep["authorised_by"]) if obj["event"] == "ended" else dep["authorised_by"]
            self.append_in(db, f"deployment.{obj['event']}", actor, {"event_id": obj["event_id"], "deployment": dep})

    def head(self) -> AuditEntry | None:
        with self.store.transaction() as db:
            row = db.conn.execute(f"SELECT {', '.join(_COLS)} FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return AuditEntry.from_row(row) if row else None

    def head_payload(self) -> AuditHeadPayload | None:
        """The chain head as published on lfr/v1/devices/{device}/audit/head (appliance/schemas/audit_head.json)."""
        e = self.head()
        if e is None:
            return None
        return {"schema": AUDIT_HEAD.schema, "device_id": e.device_id, "time": utc_now_iso(), "seq": e.seq,
                "hash": e.hash, "at": e.at, "key_id": e.key_id, "sig": e.sig}

    def verify(self) -> VerifyReport:
        with self.store.transaction() as db:
            return verify_chain(db, self.signer.public_key)
