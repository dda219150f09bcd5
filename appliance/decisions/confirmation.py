"""Whether an alert counts as confirmed, given the officers' decisions on it (pure logic).

One-officer mode (default): the latest decision on the alert counts, whoever made it.
Two-officer mode (deployment.two_officer_confirmation): each officer's latest decision counts, and the
alert is forwarded as confirmed only when two *different* officers confirm it and none rejects it. One
confirmation waits for a second officer; a confirmation and a rejection are a dispute, never a confirmation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

STATES = ("pending", "confirmed", "rejected", "unsure", "awaiting_second", "disputed")


@dataclass(frozen=True)
class Outcome:
    state: str  # one of STATES
    confirmed_by: tuple[str, ...] = ()
    rejected_by: tuple[str, ...] = ()

    @property
    def forward_as_confirmed(self) -> bool:
        return self.state == "confirmed"


def _field(d, name: str):
    return d[name] if isinstance(d, dict) else getattr(d, name)


def outcome(decisions: Iterable, *, two_officer: bool) -> Outcome:
    """`decisions`: dicts or Decision objects (officer_id, decision), oldest first, as decisions_for() gives."""
    ordered = list(decisions)
    if not ordered:
        return Outcome("pending")
    latest: dict[str, str] = {}
    for d in ordered:  # dicts keep insertion order; re-inserting moves nothing, so track order explicitly
        latest.pop(_field(d, "officer_id"), None)
        latest[_field(d, "officer_id")] = _field(d, "decision")
    confirms = tuple(o for o, v in latest.items() if v == "confirm")
    rejects = tuple(o for o, v in latest.items() if v == "reject")
    if not two_officer:
        last = _field(ordered[-1], "decision")
        state = {"confirm": "confirmed", "reject": "rejected", "unsure": "unsure"}[last]
        return Outcome(state, confirms, rejects)
    if confirms and rejects:
        return Outcome("disputed", confirms, rejects)
    if len(confirms) >= 2:
        return Outcome("confirmed", confirms)
    if len(confirms) == 1:
        return Outcome("awaiting_second", confirms)
    if rejects:
        return Outcome("rejected", (), rejects)
    return Outcome("unsure")
