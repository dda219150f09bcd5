"""UTC timestamps as ISO 8601 strings ending in Z: the one time format in bundles, acks and the database."""

from __future__ import annotations

import re
from datetime import datetime, time, timezone

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str, *, end_of_day: bool = False) -> datetime:
    """Parse an ISO 8601 time (naive means UTC) or a bare date (start, or end, of that day in UTC)."""
    value = str(value).strip()
    if _DATE.match(value):
        d = datetime.strptime(value, "%Y-%m-%d").date()
        return datetime.combine(d, time(23, 59, 59) if end_of_day else time(0, 0), tzinfo=timezone.utc)
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def normalise_time(value: str, *, end_of_day: bool = False) -> str:
    return iso(parse_time(value, end_of_day=end_of_day))
