"""Receipts (lfr.receipt/2): only the pinned control-room key, this van, this stream, and never beyond what the
van has published (appliance/events/receipts.py). Pure logic with real Ed25519 keys."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.events.receipts import ReceiptRefused, check_receipt, sign_receipt, unsigned_receipt
from appliance.events.schemas import payload_error

KEY = Ed25519PrivateKey.generate()
STREAM = "0123456789abcdef"


PUBLIC = KEY.public_key()


def check(body, key=PUBLIC, published=10):
    return check_receipt(body, key, device_id="van-01", stream_id=STREAM, published_upto=published)


def test_a_signed_receipt_within_what_was_published_is_believed():
    body = sign_receipt(KEY, device_id="van-01", stream_id=STREAM, upto=7, gap=True)
    assert payload_error(body, "lfr.receipt/2") is None
    assert check(body) == (7, True)


@pytest.mark.parametrize("forge, why", [
    (lambda: unsigned_receipt(device_id="van-01", stream_id=STREAM, upto=3, gap=False), "expected 'lfr.receipt/2'"),
    (lambda: sign_receipt(Ed25519PrivateKey.generate(), device_id="van-01", stream_id=STREAM, upto=3, gap=False),
     "not the pinned"),
    (lambda: {**sign_receipt(KEY, device_id="van-01", stream_id=STREAM, upto=3, gap=False), "upto": 9},
     "does not verify"),
    (lambda: sign_receipt(KEY, device_id="van-02", stream_id=STREAM, upto=3, gap=False), "for device 'van-02'"),
    (lambda: sign_receipt(KEY, device_id="van-01", stream_id=STREAM, upto=10**9, gap=False), "published only up to"),
    (lambda: {"schema": "lfr.receipt/2", "upto": 10**30}, "missing"),
    (lambda: ["not", "an", "object"], "not a JSON object"),
])
def test_forged_or_out_of_bounds_receipts_are_refused(forge, why):
    with pytest.raises(ReceiptRefused, match=why):
        check(forge())


def test_another_stream_is_ignored_and_a_van_without_a_key_takes_unsigned_receipts_within_bounds():
    other = sign_receipt(KEY, device_id="van-01", stream_id="f" * 16, upto=3, gap=False)
    assert check(other) is None
    v1 = unsigned_receipt(device_id="van-01", stream_id=STREAM, upto=3, gap=False)
    assert check(v1, key=None) == (3, False)
    with pytest.raises(ReceiptRefused, match="published only up to"):
        check(unsigned_receipt(device_id="van-01", stream_id=STREAM, upto=11, gap=False), key=None)
