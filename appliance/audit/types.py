"""The records the audit package hands to other packages (issue 14: typed seams). TypedDicts: plain dicts
at run time, named as appliance/schemas/audit_head.json names them."""

from __future__ import annotations

from typing import TypedDict


class SignedHead(TypedDict):
    """What identifies a chain head and proves it: the entry's seq, hash and time, signed by the device key.
    check_against_head (audit/export.py) needs only this part of whichever head it is given."""

    seq: int
    hash: str
    at: str
    key_id: str
    sig: str  # base64 Ed25519 signature over the 32 raw bytes of `hash`


class AuditHeadPayload(SignedHead):
    """The chain head as published on lfr/v1/devices/{device}/audit/head (lfr.audit_head/1)."""

    schema: str
    device_id: str
    time: str
