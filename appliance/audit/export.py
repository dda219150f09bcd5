"""Audit export: signed JSON lines the control room verifies with the device's public key alone.

Every line but the last is one audit entry exactly as stored (content, prev hash, hash, key id, signature).
The last line is a trailer signed by the device: the period, the number of entries, the first and last
sequence numbers and the last hash, so a file cut short or with lines dropped is detected, not just a
changed line. The first entry's `prev` links to the entry before the export; give the previous export's
last hash (`expect_prev`) to check that the two exports join up.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import sqlite_utils
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance.audit.chain import AuditEntry, AuditSigner, canonical, check_entry, iter_entries
from appliance.audit.types import SignedHead
from appliance.events.models import utc_now_iso
from appliance.keys.keypairs import key_id

EXPORT_SCHEMA = "lfr.audit_export/1"


def _trailer_message(trailer: dict) -> bytes:
    return b"lfr-audit-export/1\n" + canonical({k: v for k, v in trailer.items() if k != "sig"})


def export_lines(db: sqlite_utils.Database, signer: AuditSigner, device_id: str, *, from_at: str | None = None,
                 to_at: str | None = None) -> Iterator[str]:
    """JSON lines for the entries with from_at <= at < to_at, then the signed trailer."""
    count, first, last = 0, None, None
    for e in iter_entries(db, from_at=from_at, to_at=to_at):
        count += 1
        first = first or e
        last = e
        yield json.dumps({"type": "entry", **e.to_dict()}, sort_keys=True, ensure_ascii=False)
    trailer = {"type": "trailer", "schema": EXPORT_SCHEMA, "device_id": device_id, "from": from_at, "to": to_at,
               "count": count, "first_seq": first.seq if first else None, "last_seq": last.seq if last else None,
               "first_prev": first.prev if first else None, "last_hash": last.hash if last else None,
               "exported_at": utc_now_iso(), "key_id": signer.key_id}
    trailer["sig"] = signer.sign(_trailer_message(trailer))
    yield json.dumps(trailer, sort_keys=True)


@dataclass(frozen=True)
class ExportReport:
    ok: bool
    entries: int
    reason: str | None = None
    line: int | None = None  # 1-based line of the first problem
    seq: int | None = None  # its audit sequence number, when it is an entry
    trailer: dict | None = None

    def summary(self) -> str:
        if self.ok:
            t = self.trailer or {}
            return (f"export OK: {self.entries} entries (seq {t.get('first_seq')}..{t.get('last_seq')}) from device "
                    f"{t.get('device_id')}, signed by key {t.get('key_id')}")
        if not self.line:  # the lines verify; the log they come from does not match what the control room saw
            return f"export NOT complete: {self.reason}"
        where = f"line {self.line}" + (f" (audit entry {self.seq})" if self.seq is not None else "")
        return f"export NOT valid at {where}: {self.reason}"


def check_against_head(report: ExportReport, head: SignedHead, public_key: Ed25519PublicKey,
                       hashes: dict[int, str]) -> ExportReport:
    """An export that verified, checked against the highest chain head the control room has seen from the van:
    the log must reach it, with the same hash there. A log cut at its end (which its own chain cannot show)
    fails here. `hashes`: seq -> hash of the export's entries."""
    if not report.ok:
        return report
    try:
        public_key.verify(base64.b64decode(head["sig"]), bytes.fromhex(head["hash"]))
    except (InvalidSignature, ValueError):
        return ExportReport(False, report.entries, "the stored audit head's signature is not the device's", 0)
    last = (report.trailer or {}).get("last_seq") or 0
    if last < head["seq"]:
        return ExportReport(False, report.entries, f"the van's log is shorter than a head the control room has "
                            f"seen: it ends at seq {last}, the head seen on {head['received_at']} is seq "
                            f"{head['seq']} (entries cut from its end?)", 0)
    if head["seq"] in hashes and hashes[head["seq"]] != head["hash"]:
        return ExportReport(False, report.entries, f"entry {head['seq']} differs from the head the control room "
                            "has seen (the log was rewritten from there)", 0, head["seq"])
    return report


def verify_export(lines: Iterable[str], public_key: Ed25519PublicKey, *, device_id: str | None = None,
                  expect_prev: str | None = None, hashes: dict[int, str] | None = None) -> ExportReport:
    """Verify an export with the device's public key: every entry, their chain, and the signed trailer.
    `hashes`, if given, is filled with seq -> hash of every entry (for check_against_head)."""
    """Verify an export with the device's public key: every entry, their chain, and the signed trailer."""
    expected_seq = None
    expected_prev = expect_prev
    n = 0
    trailer = None
    lineno = 0
    for lineno, raw in enumerate(lines, 1):
        raw = raw.strip()
        if not raw:
            continue
        if trailer is not None:
            return ExportReport(False, n, "lines after the trailer", lineno)
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            return ExportReport(False, n, "not a JSON line", lineno)
        if not isinstance(obj, dict):
            return ExportReport(False, n, "not a JSON object", lineno)
        if obj.get("type") == "trailer":
            trailer = obj
            continue
        try:
            obj.pop("type", None)
            entry = AuditEntry(**obj)
        except TypeError:
            return ExportReport(False, n, "not an audit entry", lineno)
        why = check_entry(entry, public_key, expected_seq, expected_prev)
        if why is None and device_id is not None and entry.device_id != device_id:
            why = f"from device {entry.device_id}, not {device_id}"
        if why:
            return ExportReport(False, n, why, lineno, entry.seq)
        n += 1
        expected_seq, expected_prev = entry.seq + 1, entry.hash
        if hashes is not None:
            hashes[entry.seq] = entry.hash
        if n == 1:
            first_entry = entry
    if trailer is None:
        return ExportReport(False, n, "no trailer: the export is incomplete (cut short?)", lineno + 1)
    try:
        public_key.verify(base64.b64decode(trailer.get("sig", "")), _trailer_message(trailer))
    except (InvalidSignature, ValueError):
        return ExportReport(False, n, "the trailer's signature is not valid", lineno)
    if trailer.get("key_id") != key_id(public_key):
        return ExportReport(False, n, "the trailer names another key", lineno)
    if trailer.get("count") != n:
        return ExportReport(False, n, f"the trailer says {trailer.get('count')} entries, the file holds {n}", lineno)
    if n and (trailer.get("last_hash") != expected_prev or trailer.get("first_seq") != first_entry.seq
              or trailer.get("first_prev") != first_entry.prev):
        return ExportReport(False, n, "the entries do not match the trailer (first or last entries missing)", lineno)
    if device_id is not None and trailer.get("device_id") != device_id:
        return ExportReport(False, n, f"the export is from device {trailer.get('device_id')}, not {device_id}", lineno)
    return ExportReport(True, n, trailer=trailer)
