"""Two-officer confirmation: forwarded as confirmed only when two different officers confirm."""

from __future__ import annotations

import pytest

from appliance.decisions.confirmation import outcome
from appliance.events.models import Decision


def d(officer, decision):
    return {"officer_id": officer, "decision": decision}


@pytest.mark.parametrize("decisions, state", [
    ([], "pending"),
    ([d("A", "confirm")], "awaiting_second"),
    ([d("A", "confirm"), d("A", "confirm")], "awaiting_second"),  # the same officer twice is one officer
    ([d("A", "confirm"), d("B", "confirm")], "confirmed"),
    ([d("A", "confirm"), d("B", "reject")], "disputed"),
    ([d("A", "confirm"), d("B", "confirm"), d("C", "reject")], "disputed"),
    ([d("A", "reject"), d("A", "confirm"), d("B", "confirm")], "confirmed"),  # A changed their mind
    ([d("A", "confirm"), d("B", "confirm"), d("B", "unsure")], "awaiting_second"),  # B withdrew
    ([d("A", "reject")], "rejected"),
    ([d("A", "unsure"), d("B", "unsure")], "unsure"),
])
def test_two_officer(decisions, state):
    o = outcome(decisions, two_officer=True)
    assert o.state == state
    assert o.forward_as_confirmed == (state == "confirmed")


@pytest.mark.parametrize("decisions, state", [
    ([d("A", "confirm")], "confirmed"),
    ([d("A", "confirm"), d("B", "reject")], "rejected"),
    ([d("A", "reject"), d("A", "unsure")], "unsure"),
])
def test_one_officer_latest_counts(decisions, state):
    assert outcome(decisions, two_officer=False).state == state


def test_accepts_decision_objects():
    ds = [Decision(device_id="van-01", alert_id="a", officer_id=o, decision="confirm") for o in ("A", "B")]
    o = outcome(ds, two_officer=True)
    assert o.forward_as_confirmed and o.confirmed_by == ("A", "B")
