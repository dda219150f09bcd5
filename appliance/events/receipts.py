"""Receipts (control room -> van): signed by the control room, checked by the van before it believes one.

A receipt tells a van "every event of your stream up to `upto` is stored". A van that believed a forged one
would stop re-sending events the control room never got, and would tell the receiver (lfr-base) to skip
them. So, with `lfr.receipt/2`:
  - the receipt is signed by the control-room key the van already pins (bundles, commands);
  - it names the van and its stream, so one van's receipt cannot be replayed to another or to a new stream;
  - `upto` is never beyond what the van has published: a signed receipt from a confused or rolled-back
    receiver still cannot make the van forget events it never sent.
A replayed old receipt is harmless: receipts are cumulative, so an older `upto` changes nothing, and an old
`gap` only makes the van publish again (duplicates are dropped by the receiver).

    body = sign_receipt(signing_key, device_id="van-01", stream_id=..., upto=12, gap=False)
    upto, gap = check_receipt(body, verify_key, device_id="van-01", stream_id=..., published_upto=15)
"""

from __future__ import annotations

import base64
import binascii
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.events.models import utc_now_iso
from appliance.events.schemas import payload_error
from appliance.events.types import Receipt
from appliance.keys.keypairs import key_id
from appliance.message_kinds import RECEIPT

RECEIPT_V2, RECEIPT_V1 = RECEIPT.accepts  # signed; unsigned (frozen): a van with a pinned key ignores it
_DOMAIN = b"lfr-receipt/2\n"


class ReceiptRefused(ValueError):
    """A receipt the van does not believe; str() is the one line it logs."""


def _signed_bytes(body: dict) -> bytes:
    fields = {k: v for k, v in body.items() if k != "sig"}
    return _DOMAIN + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_receipt(private_key: Ed25519PrivateKey, *, device_id: str, stream_id: str, upto: int, gap: bool,
                 time: str | None = None) -> Receipt:
    body: Receipt = {"schema": RECEIPT_V2, "device_id": device_id, "stream_id": stream_id, "upto": int(upto),
            "gap": bool(gap), "time": time or utc_now_iso(), "key_id": key_id(private_key.public_key())}
    body["sig"] = base64.b64encode(private_key.sign(_signed_bytes(body))).decode("ascii")
    return body


def unsigned_receipt(*, device_id: str, stream_id: str, upto: int, gap: bool) -> Receipt:
    """lfr.receipt/1, for vans without a pinned key (a receiver started without --signing-key)."""
    return {"schema": RECEIPT_V1, "device_id": device_id, "stream_id": stream_id, "upto": int(upto),
            "gap": bool(gap), "time": utc_now_iso()}


def check_receipt(body, verify_key: Ed25519PublicKey | None, *, device_id: str, stream_id: str,
                  published_upto: int) -> tuple[int, bool] | None:
    """(upto, gap) of a receipt this van may believe; None if it is for another stream of this van (an old
    events database: ignored); ReceiptRefused otherwise. With a pinned key, only a signed lfr.receipt/2 is
    believed; `published_upto` is the highest sequence number this van has published."""
    accepted = (RECEIPT_V2,) if verify_key is not None else (RECEIPT_V2, RECEIPT_V1)
    err = payload_error(body, accepted)
    if err:
        raise ReceiptRefused(err)
    if verify_key is not None:
        if body["key_id"] != key_id(verify_key):
            raise ReceiptRefused(f"signed by key {body['key_id']}, not the pinned control-room key")
        try:
            verify_key.verify(base64.b64decode(body["sig"], validate=True), _signed_bytes(body))
        except (InvalidSignature, binascii.Error, ValueError):
            raise ReceiptRefused("the signature does not verify with the pinned control-room key") from None
    if body["device_id"] != device_id:
        raise ReceiptRefused(f"for device {body['device_id']!r}, this is {device_id!r}")
    if body["stream_id"] != stream_id:
        return None
    if body["upto"] > published_upto:
        raise ReceiptRefused(f"confirms up to {body['upto']}, but this van has published only up to "
                             f"{published_upto}")
    return body["upto"], body["gap"]
