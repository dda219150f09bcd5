"""Watchlist entries and their binary records inside a bundle's (encrypted) payload.

A payload is a sequence of records, each:
    b"A" | u32 meta_len | meta (canonical JSON) | u16 n_templates | u16 dim | n*dim float32 LE | u32 photo_len | JPEG
    b"R" | u32 meta_len | meta (canonical JSON: {"id": ...})
All integers big-endian. An entry's digest is the SHA-256 of its whole "A" record; the watchlist's state
hash is computed from the sorted (id, digest) pairs, so the control room and the van can compare states.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

ADD, REMOVE = b"A", b"R"
MAX_META = 64 * 1024
MAX_PHOTO = 8 * 1024 * 1024
MAX_TEMPLATES = 64
STATE_DOMAIN = b"lfr-watchlist-state/1\n"

# Subject metadata, in the order the console and the CSV show it. Required ones are enforced twice:
# when the control room builds a bundle and when the van verifies every entry.
REQUIRED_FIELDS = ("id", "display_name", "category", "legal_basis", "image_source", "expires_at")
OPTIONAL_FIELDS = ("image_date", "added_by", "review_due", "notes")
FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS


class RecordError(ValueError):
    """A payload record is malformed (the bundle is refused as invalid)."""


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True, eq=False)
class Entry:
    """One subject: metadata, one or more L2-normalised templates, and a reference photo (JPEG)."""

    meta: dict
    templates: np.ndarray  # (n, dim) float32
    photo_jpeg: bytes

    @property
    def id(self) -> str:
        return self.meta["id"]

    def __repr__(self) -> str:  # never print templates or the photo
        return f"Entry(id={self.id!r}, templates={len(self.templates)}, photo={len(self.photo_jpeg)} bytes)"


def encode_add(entry: Entry) -> bytes:
    meta = canonical_json(entry.meta)
    t = np.ascontiguousarray(entry.templates, dtype="<f4")
    if t.ndim != 2 or not 1 <= t.shape[0] <= MAX_TEMPLATES:
        raise RecordError(f"subject {entry.id}: templates must be (1..{MAX_TEMPLATES}, dim)")
    return b"".join(
        [ADD, struct.pack(">I", len(meta)), meta, struct.pack(">HH", *t.shape), t.tobytes(),
         struct.pack(">I", len(entry.photo_jpeg)), entry.photo_jpeg]
    )


def encode_remove(subject_id: str) -> bytes:
    meta = canonical_json({"id": subject_id})
    return REMOVE + struct.pack(">I", len(meta)) + meta


def digest(record: bytes) -> str:
    return hashlib.sha256(record).hexdigest()


def state_hash(watchlist_id: str, digests: Iterable[tuple[str, str]]) -> str:
    """The hash of a whole watchlist state: its id and every (subject id, entry digest), sorted."""
    h = hashlib.sha256(STATE_DOMAIN + watchlist_id.encode() + b"\n")
    for sid, d in sorted(digests):
        h.update(f"{sid}\t{d}\n".encode())
    return h.hexdigest()


def _read_exact(f: BinaryIO, n: int) -> bytes:
    b = f.read(n)
    if len(b) != n:
        raise RecordError("payload ends inside a record")
    return b


@dataclass(frozen=True, eq=False)
class Record:
    op: str  # "add" or "remove"
    meta: dict
    entry: Entry | None
    digest: str | None


def _meta(raw: bytes) -> dict:
    try:
        meta = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RecordError("entry metadata is not JSON") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("id"), str):
        raise RecordError("entry metadata has no subject id")
    return meta


def read_records(f: BinaryIO) -> Iterator[Record]:
    """Parse records from a plaintext payload stream (sizes are bounded before anything is allocated)."""
    while True:
        op = f.read(1)
        if not op:
            return
        if op not in (ADD, REMOVE):
            raise RecordError(f"unknown record type {op!r}")
        (n,) = struct.unpack(">I", _read_exact(f, 4))
        if n > MAX_META:
            raise RecordError("entry metadata too large")
        raw_meta = _read_exact(f, n)
        meta = _meta(raw_meta)
        if op == REMOVE:
            yield Record("remove", meta, None, None)
            continue
        count, dim = struct.unpack(">HH", _read_exact(f, 4))
        if not 1 <= count <= MAX_TEMPLATES or not 1 <= dim <= 4096:
            raise RecordError(f"subject {meta['id']}: bad template shape {count}x{dim}")
        tbytes = _read_exact(f, count * dim * 4)
        (p,) = struct.unpack(">I", _read_exact(f, 4))
        if p > MAX_PHOTO:
            raise RecordError(f"subject {meta['id']}: reference photo too large")
        photo = _read_exact(f, p)
        templates = np.frombuffer(tbytes, dtype="<f4").reshape(count, dim).astype(np.float32)
        record = b"".join([ADD, struct.pack(">I", n), raw_meta, struct.pack(">HH", count, dim), tbytes,
                           struct.pack(">I", p), photo])
        yield Record("add", meta, Entry(meta, templates, photo), digest(record))
