"""The cryptography of a bundle, all from `cryptography` (no home-made primitives):

- a random 256-bit content key encrypts the payload with AES-256-GCM in fixed-size segments (the STREAM
  construction, as in Tink's streaming AEAD: nonce = 7-byte random prefix | u32 segment index | last-flag
  byte), so a device decrypts a large bundle segment by segment in little memory;
- the content key is wrapped for each device: ephemeral X25519 ECDH with the device's public key,
  HKDF-SHA256 to a key-encryption key, AES-256-GCM (the device id is the associated data);
- the header (which holds the wraps and the ciphertext's SHA-256) is signed with Ed25519.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.keys.keypairs import key_id, raw_public

TAG = 16
NONCE_PREFIX = 7
WRAP_INFO = b"lfr-watchlist-bundle/1 key-wrap "
PAYLOAD_AAD = b"lfr-watchlist-bundle/1 payload "


class EnvelopeError(ValueError):
    pass


def new_content_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _kek(shared: bytes, epk: bytes, device_pub: bytes, bundle_id: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=epk + device_pub, info=WRAP_INFO + bundle_id).derive(shared)


def wrap_key(content_key: bytes, device_id: str, device_pub: X25519PublicKey, bundle_id: bytes) -> dict:
    eph = X25519PrivateKey.generate()
    epk = raw_public(eph.public_key())
    kek = _kek(eph.exchange(device_pub), epk, raw_public(device_pub), bundle_id)
    nonce = os.urandom(12)
    wrapped = AESGCM(kek).encrypt(nonce, content_key, device_id.encode())
    return {"device": device_id, "key_id": key_id(device_pub), "epk": epk.hex(), "nonce": nonce.hex(),
            "wrapped_key": wrapped.hex()}


def unwrap_key(recipient: dict, device_key: X25519PrivateKey, bundle_id: bytes) -> bytes:
    epk = bytes.fromhex(recipient["epk"])
    try:
        shared = device_key.exchange(X25519PublicKey.from_public_bytes(epk))
        kek = _kek(shared, epk, raw_public(device_key.public_key()), bundle_id)
        return AESGCM(kek).decrypt(bytes.fromhex(recipient["nonce"]), bytes.fromhex(recipient["wrapped_key"]),
                                   recipient["device"].encode())
    except (InvalidTag, ValueError):
        raise EnvelopeError("the content key does not decrypt with this device's key") from None


@dataclass(frozen=True)
class StreamParams:
    key: bytes
    nonce_prefix: bytes
    segment_bytes: int
    bundle_id: bytes

    def nonce(self, index: int, last: bool) -> bytes:
        return self.nonce_prefix + struct.pack(">IB", index, 1 if last else 0)

    @property
    def aad(self) -> bytes:
        return PAYLOAD_AAD + self.bundle_id


def ciphertext_size(plain_size: int, segment_bytes: int) -> int:
    segments = max(1, -(-plain_size // segment_bytes))
    return plain_size + segments * TAG


def encrypt_stream(src: BinaryIO, plain_size: int, dst: BinaryIO, p: StreamParams) -> None:
    aes = AESGCM(p.key)
    segments = max(1, -(-plain_size // p.segment_bytes))
    for i in range(segments):
        chunk = src.read(p.segment_bytes)
        dst.write(aes.encrypt(p.nonce(i, i == segments - 1), chunk, p.aad))


def decrypt_stream(src: BinaryIO, cipher_size: int, p: StreamParams) -> Iterator[bytes]:
    """Plaintext segments in order; raises EnvelopeError on any tampering, reordering or truncation."""
    aes = AESGCM(p.key)
    seg = p.segment_bytes + TAG
    segments = max(1, -(-cipher_size // seg))
    for i in range(segments):
        chunk = src.read(seg)
        if len(chunk) < TAG:
            raise EnvelopeError("payload ends early")
        try:
            yield aes.decrypt(p.nonce(i, i == segments - 1), chunk, p.aad)
        except InvalidTag:
            raise EnvelopeError(f"payload segment {i} does not authenticate") from None


class SegmentReader:
    """A read-only file object over decrypted segments, so record parsing streams too."""

    def __init__(self, segments: Iterator[bytes]):
        self._it = segments
        self._buf = b""
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        avail = len(self._buf) - self._pos
        if n >= 0 and avail >= n:  # the common case: no copying of the segment
            out = self._buf[self._pos:self._pos + n]
            self._pos += n
            return out
        parts = [self._buf[self._pos:]]
        have = avail
        self._buf, self._pos = b"", 0
        for seg in self._it:
            if n >= 0 and have + len(seg) >= n:
                take = n - have
                parts.append(seg[:take])
                self._buf, self._pos = seg, take
                return b"".join(parts)
            parts.append(seg)
            have += len(seg)
        return b"".join(parts)
