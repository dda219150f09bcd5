"""The records the retention package hands to other packages (issue 14: typed seams)."""

from __future__ import annotations

from typing import TypedDict


class LegalHold(TypedDict):
    """An alert kept past retention (legal_holds(); `appliance retention holds`)."""

    alert_id: str
    held_by: str
    reason: str
    held_at: str
