"""Time, in one place: every timestamp the appliance writes is UTC ISO 8601 ending in Z.

- `now_iso()` / `iso_ms(dt)` / `epoch_iso(t)`: **the** format for new records (events, audit entries, officers,
  self-test reports): milliseconds and Z, e.g. `2026-11-26T06:30:00.123Z`. It sorts as text.
- `iso(dt)`: the same to the second, for dates a person or the control room sets (a watchlist's and a
  subject's `expires_at`, `review_due`, a deployment's planned end), as signed bundles carry them.
- `parse_time(value)`: reads all of these, and what older versions wrote (`+00:00` offsets, naive times as
  UTC, bare dates).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timezone

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    """To the second: `2026-11-26T06:30:00Z`."""
    return dt.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(dt: datetime) -> str:
    """To the millisecond: `2026-11-26T06:30:00.123Z` (the records' format)."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now_iso() -> str:
    """UTC now in the records' format."""
    return iso_ms(utcnow())


def epoch_iso(t: float) -> str:
    """A wall-clock time.time() value (e.g. a camera frame's timestamp) in the records' format."""
    return iso_ms(datetime.fromtimestamp(t, timezone.utc))


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
