"""The bundle file (format 1): a signed cleartext header, then the encrypted payload. See docs/bundle-format.md.

    offset  size  what
    0       8     magic b"LFRWLB\\x00\\x01"
    8       4     header length H (u32, big-endian)
    12      H     header: canonical JSON (UTF-8), schema watchlist_bundle_header/1
    12+H    64    Ed25519 signature over bytes [0, 12+H)
    76+H    S     payload ciphertext, S = header.payload.size; SHA-256 = header.payload.sha256

The signature covers the header, and the header pins the ciphertext's size and hash, so one signature
check covers every byte. Nothing in the header is trusted before the signature is verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.keys.keypairs import key_id
from appliance.message_kinds import WATCHLIST_BUNDLE
from appliance.watchlist.envelope import (
    NONCE_PREFIX,
    EnvelopeError,
    SegmentReader,
    StreamParams,
    ciphertext_size,
    decrypt_stream,
    encrypt_stream,
    new_content_key,
    unwrap_key,
    wrap_key,
)
from appliance.watchlist.records import Record, RecordError, canonical_json, read_records
from appliance.watchlist.schemas import first_error

MAGIC = b"LFRWLB\x00\x01"
SIG_BYTES = 64
MAX_HEADER = 1024 * 1024
DEFAULT_SEGMENT = 1024 * 1024
HEADER_SCHEMA = WATCHLIST_BUNDLE.schema  # what the chunks of a bundle carry


class BundleRefused(Exception):
    """A bundle the device will not apply. `reason` is a code from the ack schema; `detail` one line."""

    def __init__(self, reason: str, detail: str, header: dict | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.header = header


def _sha256_copy(src: BinaryIO, dst: BinaryIO | None = None, limit: int | None = None) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    while True:
        want = 1 << 20 if limit is None else min(1 << 20, limit - n)
        if want <= 0:
            break
        b = src.read(want)
        if not b:
            break
        h.update(b)
        n += len(b)
        if dst is not None:
            dst.write(b)
    return h.hexdigest(), n


def write_bundle(
    out_path: Path,
    fields: dict,
    plaintext: BinaryIO,
    plain_size: int,
    signing_key: Ed25519PrivateKey,
    recipients: list[tuple[str, object]],
    *,
    segment_bytes: int = DEFAULT_SEGMENT,
) -> dict:
    """Encrypt `plaintext` to every (device id, X25519 public key), sign, and write the bundle atomically.

    `fields` holds the watchlist part of the header (watchlist_id, version, kind, base_version, model_id,
    issued_at, expires_at, entry_count, remove_count, content_sha256, watchlist_sha256). Returns the header.
    """
    if not recipients:
        raise ValueError("a bundle needs at least one recipient device")
    bundle_id = os.urandom(16)
    content_key = new_content_key()
    params = StreamParams(content_key, os.urandom(NONCE_PREFIX), segment_bytes, bundle_id)
    out_path = Path(out_path)
    tmp = out_path.with_name(out_path.name + ".part")
    cipher_tmp = out_path.with_name(out_path.name + ".cipher.part")
    try:
        with open(cipher_tmp, "w+b") as ct:
            encrypt_stream(plaintext, plain_size, ct, params)
            size = ct.tell()
            assert size == ciphertext_size(plain_size, segment_bytes)
            ct.seek(0)
            digest, _ = _sha256_copy(ct)
            header = {
                "schema": HEADER_SCHEMA,
                "format": 1,
                "bundle_id": bundle_id.hex(),
                **fields,
                "signer": {"alg": "Ed25519", "key_id": key_id(signing_key.public_key())},
                "payload": {"cipher": "AES-256-GCM-STREAM", "segment_bytes": segment_bytes,
                            "nonce_prefix": params.nonce_prefix.hex(), "size": size, "sha256": digest},
                "recipients": [wrap_key(content_key, dev, pub, bundle_id) for dev, pub in recipients],
            }
            problem = first_error("watchlist_bundle_header", header)
            if problem:
                raise ValueError(f"bundle header: {problem}")
            hbytes = canonical_json(header)
            signed = MAGIC + struct.pack(">I", len(hbytes)) + hbytes
            with open(tmp, "wb") as out:
                out.write(signed)
                out.write(signing_key.sign(signed))
                ct.seek(0)
                _sha256_copy(ct, out)
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, out_path)
    finally:
        for p in (tmp, cipher_tmp):
            p.unlink(missing_ok=True)
    return header


def read_header_unverified(path: Path) -> dict | None:
    """The header as the file claims it, for reports only (never trusted); None if unreadable."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != MAGIC:
                return None
            (n,) = struct.unpack(">I", f.read(4))
            if n > MAX_HEADER:
                return None
            header = json.loads(f.read(n))
            return header if isinstance(header, dict) else None
    except (OSError, ValueError, struct.error):
        return None


@dataclass
class OpenedBundle:
    """A bundle whose signature, ciphertext hash and recipient wrap have been checked."""

    path: Path
    header: dict
    payload_offset: int
    params: StreamParams
    file_sha256: str

    def records(self) -> Iterator[Record]:
        """Decrypt and parse the payload, streaming. Raises BundleRefused on any inconsistency."""
        size = self.header["payload"]["size"]
        with open(self.path, "rb") as f:
            f.seek(self.payload_offset)
            reader = SegmentReader(decrypt_stream(f, size, self.params))
            hashing = _HashingReader(reader)
            try:
                yield from read_records(hashing)
            except EnvelopeError as e:
                raise BundleRefused("tampered", str(e), self.header) from None
            except RecordError as e:
                raise BundleRefused("invalid_entry", str(e), self.header) from None
            if hashing.hexdigest() != self.header["content_sha256"]:
                raise BundleRefused("tampered", "payload does not match content_sha256", self.header)


class _HashingReader:
    def __init__(self, inner):
        self.inner = inner
        self.h = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        b = self.inner.read(n)
        self.h.update(b)
        return b

    def hexdigest(self) -> str:
        return self.h.hexdigest()


def verify_signature(path: Path, verify_key: Ed25519PublicKey) -> dict:
    """The header of a bundle whose framing, signature and ciphertext check out (no device key needed)."""
    return _check_signed(Path(path), verify_key)[0]


def open_bundle(
    path: Path, verify_key: Ed25519PublicKey, device_id: str, device_key: X25519PrivateKey
) -> OpenedBundle:
    """Check a bundle's framing, signature, ciphertext and recipient, in that order. Raises BundleRefused."""
    path = Path(path)
    header, offset = _check_signed(path, verify_key)
    mine = [r for r in header["recipients"] if r["device"] == device_id]
    if not mine:
        raise BundleRefused("not_for_this_device", f"the bundle is not encrypted to device {device_id}", header)
    dev_kid = key_id(device_key.public_key())
    if mine[0]["key_id"] != dev_kid:
        raise BundleRefused(
            "not_for_this_device", f"encrypted to key {mine[0]['key_id']}, this device's key is {dev_kid}", header
        )
    bundle_id = bytes.fromhex(header["bundle_id"])
    try:
        key = unwrap_key(mine[0], device_key, bundle_id)
    except EnvelopeError as e:
        raise BundleRefused("not_for_this_device", str(e), header) from None
    pl = header["payload"]
    params = StreamParams(key, bytes.fromhex(pl["nonce_prefix"]), pl["segment_bytes"], bundle_id)
    return OpenedBundle(path, header, offset, params, file_sha256(path))


def _check_signed(path: Path, verify_key: Ed25519PublicKey) -> tuple[dict, int]:
    total = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:8] != MAGIC:
            if len(head) < 12 and MAGIC.startswith(head[:8]) and head:
                raise BundleRefused("truncated", "the file ends before the header")
            raise BundleRefused("malformed", "not a watchlist bundle (bad magic)")
        (n,) = struct.unpack(">I", head[8:])
        if n > MAX_HEADER:
            raise BundleRefused("malformed", f"header length {n} is implausible")
        hbytes = f.read(n)
        sig = f.read(SIG_BYTES)
        if len(hbytes) < n or len(sig) < SIG_BYTES:
            raise BundleRefused("truncated", "the file ends inside the header or signature")
        try:
            header = json.loads(hbytes)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BundleRefused("malformed", "the header is not JSON") from None
        if not isinstance(header, dict):
            raise BundleRefused("malformed", "the header is not a JSON object")
        pinned = key_id(verify_key)
        claimed = (header.get("signer") or {}).get("key_id") if isinstance(header.get("signer"), dict) else None
        if claimed != pinned:
            raise BundleRefused("wrong_signer", f"signed by key {claimed}, the pinned control-room key is {pinned}")
        try:
            verify_key.verify(sig, head + hbytes)
        except InvalidSignature:
            raise BundleRefused("bad_signature", "the signature does not verify with the pinned key") from None
        # From here on the header is the control room's own words.
        problem = first_error("watchlist_bundle_header", header)
        if problem:
            raise BundleRefused("malformed", f"header: {problem}", header)
        offset = 12 + n + SIG_BYTES
        size = header["payload"]["size"]
        if total < offset + size:
            raise BundleRefused("truncated", f"payload has {total - offset} of {size} bytes", header)
        if total > offset + size:
            raise BundleRefused("tampered", f"{total - offset - size} unexpected bytes after the payload", header)
        digest, _ = _sha256_copy(f, limit=size)
        if digest != header["payload"]["sha256"]:
            raise BundleRefused("tampered", "the payload's SHA-256 does not match the signed header", header)
    return header, offset


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return _sha256_copy(f)[0]
