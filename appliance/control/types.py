"""The records the control room's store hands to its readers (issue 14: typed seams). TypedDicts: plain dicts
at run time, named as the control-room database's columns."""

from __future__ import annotations

from typing import TypedDict

from appliance.audit.types import SignedHead


class AuditHeadRow(SignedHead):
    """The highest audit chain head seen from a van (ControlStore.audit_head): `appliance audit verify
    --heads` checks an export against it."""

    device_id: str
    received_at: str


class Arrival(TypedDict):
    """One event as it arrived at the control room, in arrival order (ControlStore.arrivals)."""

    n: int
    device_id: str
    kind: str
    event_id: str
    seq: int | None
