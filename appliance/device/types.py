"""The records the device's helpers hand to other packages (issue 14: typed seams). TypedDicts: plain dicts
at run time, printed as JSON by `appliance selftest --json`."""

from __future__ import annotations

from typing import Any, TypedDict


class CheckRecord(TypedDict):
    """One check of the self-test as the report holds it (selftest.CheckResult, as a dict)."""

    name: str
    status: str  # pass, fail, skip
    reason: str
    details: dict[str, Any]
    seconds: float


class SelftestReport(TypedDict):
    """`appliance selftest --json` (selftest/1): every check, and whether the van may go out."""

    schema: str
    device: str
    config: str | None  # the configuration file's path
    time: str
    ok: bool
    failed: list[str]  # the names of the checks that failed
    checks: list[CheckRecord]


class TimeServerReading(TypedDict, total=False):
    """One NTP server asked for the time: how far this clock is from it (offset_s > 0: the server is ahead),
    or `error` (unreachable, or not synchronised itself)."""

    server: str
    error: str
    offset_s: float
    delay_s: float
    stratum: int
